"""A browser is known by an HttpOnly cookie, never by its address: a second browser opening the first one's
exact address (read off a projector) gets the view, not the person, not the job, not the runs."""
from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from browser_harness import VIEWPORT, go_to, picker_options, running_server, start_training, wait_settled
from tests.helpers import assert_no_exception, wait_for_status

pytestmark = pytest.mark.e2e

COOKIE = "vae_lab_browser"  # ui/cookie.py COOKIE, spelled out: this test checks what the browser holds
SHOT = Path("/tmp/identity.png")


def has_u(url: str) -> bool:
    return "u" in parse_qs(urlsplit(url).query)


def open_page(browser, url: str, seen: list[str]):
    """A new browser context on url, settled once it holds its identity cookie; every URL it asks for is kept."""
    context = browser.new_context(viewport=VIEWPORT)
    context.on("request", lambda request: seen.append(request.url))
    page = context.new_page()
    page.on("framenavigated", lambda frame: seen.append(frame.url))
    page.set_default_timeout(90_000)
    page.goto(url, wait_until="domcontentloaded")  # the server's first answer already sets the cookie
    assert identity(context), f"no identity cookie after the first page load of {url}"
    wait_settled(page, timeout=120_000)
    return page


def identity(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == COOKIE), None)


def test_an_address_read_off_a_projector_opens_the_view_not_the_person(browser, tmp_path):
    seen: list[str] = []
    runs = tmp_path / "runs"
    with running_server(runs, tmp_path, {"VAE_LAB_CHECKPOINT_EVERY_S": "1"}) as server:
        a = open_page(browser, server.url, seen)
        go_to(a, "Train", timeout=120_000)
        start_training(a, n_train=200, epochs=1000, budget_s=120)  # A stops it below: the budget is a bound
        first = wait_for_status(a, "step", timeout_s=180)
        b = open_page(browser, a.url, seen)  # A's exact address, as a stranger would type it
        the_cookie_is_a_secret(a, b)
        b_gets_the_view_only(a, b, first)
        assert_old_links_lose_u(browser, server.url, seen)
        page_loads_set_it_httponly(server.url)
        a_alone_sees_its_run(a, b, runs)
    assert seen and not [u for u in seen if has_u(u)], [u for u in seen if has_u(u)]


def the_cookie_is_a_secret(a, b) -> None:
    mine, theirs = identity(a.context), identity(b.context)
    assert mine and theirs, (a.context.cookies(), b.context.cookies())
    assert mine["httpOnly"] and mine["sameSite"] == "Lax" and mine["path"] == "/", mine
    assert mine["value"] != theirs["value"]
    assert mine["value"] not in a.url and not a.evaluate("document.cookie").count(COOKIE)  # scripts cannot read it


def b_gets_the_view_only(a, b, first: str) -> None:
    assert urlsplit(b.url).path == urlsplit(a.url).path, (a.url, b.url)  # the same page
    b.screenshot(path=str(SHOT), full_page=True)
    assert_no_exception(b, "A's address opened by B", SHOT)
    assert b.locator(".st-key-train_stop button").is_disabled(), SHOT  # A's job is not B's to stop
    assert "your training job" not in b.get_by_test_id("stMain").inner_text().lower(), SHOT
    deadline = time.monotonic() + 120
    while step_of(later := wait_for_status(a, "step", timeout_s=120)) <= step_of(first):
        assert time.monotonic() < deadline, (first, later)  # A's job still runs, for A
        a.wait_for_timeout(1_000)
    assert a.locator(".st-key-train_stop button").is_enabled()


def a_alone_sees_its_run(a, b, runs: Path) -> None:
    """A stops its job (no waiting for a budget under a loaded CPU); the saved run is A's alone."""
    a.locator(".st-key-train_stop button").click()
    deadline = time.monotonic() + 180
    while not [m for m in runs.glob("*/metrics.json") if json.loads(m.read_text()).get("status") == "stopped"]:
        assert time.monotonic() < deadline, f"A's stopped run was never saved: {list(runs.glob('*/metrics.json'))}"
        time.sleep(1)
    time.sleep(2.5)  # the run list is cached for 2 s
    for page in (a, b):
        page.reload(wait_until="domcontentloaded")
        wait_settled(page, timeout=120_000)
    mine, theirs = picker_options(a, "you"), picker_options(b, "you")
    assert any(o.startswith("you ") for o in mine), mine  # A's run, A's to see as A's
    assert not any(o.startswith("you ") for o in theirs), theirs  # nothing of A's is B's


def step_of(text: str) -> int:
    return int(text.split("step ")[1].split(",")[0].replace(",", ""))


def assert_old_links_lose_u(browser, url: str, seen: list[str]) -> None:
    old: list[str] = []
    page = open_page(browser, f"{url}/?u=xyz12345abc&recon_n=11", old)
    page.wait_for_function("() => !new URLSearchParams(location.search).has('u')", timeout=30_000)
    text = page.get_by_test_id("stMain").inner_text()
    page.screenshot(path="/tmp/identity-old-link.png")
    assert "no longer takes who you are from links" in text, text[:500]
    assert parse_qs(urlsplit(page.url).query).get("recon_n") == ["11"], page.url  # the view stays
    assert not has_u(page.url)
    seen.extend(u for u in old if not u.startswith(f"{url}/?u=xyz12345abc"))  # only the link typed had u
    page.context.close()


def page_loads_set_it_httponly(url: str) -> None:
    with urllib.request.urlopen(url) as response:
        [header] = [v for k, v in response.getheaders() if k.lower() == "set-cookie" and v.startswith(COOKIE)]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/" in header, header
