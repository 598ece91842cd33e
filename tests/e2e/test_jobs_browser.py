"""Training as a class does it: reload the tab mid-run, change page while it finishes, close the laptop.
(kill -9 of the server mid-run is test_kill_browser.py: a file of its own, so the two workers can share the two.)

The test starts its own server (a fresh process, a fresh runs folder) so its jobs never touch the shared
server of test_browser.py; its three browsers share it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from browser_harness import VIEWPORT, go_to, running_server, start_training, wait_settled
from tests.helpers import assert_no_exception, screenshot, wait_for_status

pytestmark = pytest.mark.e2e

FAST = {"VAE_LAB_CHECKPOINT_EVERY_S": "1"}


COOKIE = "vae_lab_browser"  # ui/cookie.py COOKIE: the browser's identity, never in its address


def open_page(browser, url: str, errors: list[str] | None = None, cookies: list[dict] | None = None):
    """A new browser context on url; `cookies` (another context's) make it that same browser again."""
    context = browser.new_context(viewport=VIEWPORT)
    if cookies:
        context.add_cookies(cookies)
    page = context.new_page()
    if errors is not None:
        page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.set_default_timeout(60_000)
    page.goto(url, wait_until="domcontentloaded")
    wait_settled(page, timeout=90_000)
    return page


def identity(context) -> str:
    """The browser's identity: the value of its HttpOnly cookie, which the server set on the first page load."""
    [value] = [c["value"] for c in context.cookies() if c["name"] == COOKIE]
    return value


def start_job(page, epochs: int, budget_s: int) -> None:
    """From any page: open Train, ask for a small run, press Start."""
    go_to(page, "Train")
    start_training(page, epochs=epochs, budget_s=budget_s)


def step_of(text: str) -> int:
    return int(text.split("step ")[1].split(",")[0].replace(",", ""))


def run_folders(runs_dir: Path) -> list[Path]:
    return sorted(p.parent for p in runs_dir.glob("*/metrics.json") if not p.parent.name.startswith("."))


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_a_class_reloads_changes_page_and_closes_laptops_while_training(browser, tmp_path):
    """One server, three browsers, each training: a reload mid-run finds its job live and Stop works; a run
    that ends while its browser is on another page is loaded there; a job whose browser is gone finishes,
    is saved and is listed, and its owner finds it again in the same browser (its identity cookie)."""
    runs = tmp_path / "runs"
    with running_server(runs, tmp_path, {**FAST, "VAE_LAB_MAX_JOBS": "3"}) as server:
        gone = open_page(browser, server.url)
        start_job(gone, epochs=1000, budget_s=4)
        wait_for_status(gone, "running", timeout_s=90)
        owner_url, owner_cookies = gone.url, gone.context.cookies()
        gone.context.close()  # the laptop closes
        elsewhere = open_page(browser, server.url)
        start_job(elsewhere, epochs=1000, budget_s=5)
        wait_for_status(elsewhere, "running", timeout_s=90)
        go_to(elsewhere, "Latent space")
        reloaded = open_page(browser, server.url)
        reload_and_stop(reloaded, runs)
        ends_on_another_page(elsewhere)
        finished_without_its_browser(browser, server.url, owner_url, owner_cookies, runs)


def reload_and_stop(page, runs: Path) -> None:
    start_job(page, epochs=1000, budget_s=300)
    first = step_of(wait_for_status(page, "step", timeout_s=90))
    assert "u" not in parse_qs(urlsplit(page.url).query), f"a browser token in the URL: {page.url}"
    assert identity(page.context), "no identity cookie"
    page.reload(wait_until="domcontentloaded")
    wait_settled(page, timeout=60_000)
    assert "/train" in page.url
    deadline = time.monotonic() + 60  # a live job's step moves on within a second or two; a lost one never does
    while (later := step_of(wait_for_status(page, "step", timeout_s=90))) <= first and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    shot = screenshot(page, "reload-mid-training")
    assert later > first, f"after the reload the job is not live: step {first} -> {later} ({shot})"
    assert page.locator(".st-key-train_stop button").is_enabled(), shot
    page.locator(".st-key-train_stop button").click()
    wait_for_status(page, "stopped", timeout_s=60)
    assert_no_exception(page, "Train after a reload and Stop", screenshot(page, "reload-then-stop"))
    [run] = [r for r in run_folders(runs) if metrics(r)["status"] == "stopped"]
    assert metrics(run)["steps"] >= later


def ends_on_another_page(page) -> None:
    notice = page.get_by_text("is now the loaded model")
    notice.wait_for(state="visible", timeout=90_000)
    wait_settled(page)
    shot = screenshot(page, "finished-elsewhere")
    assert "latent" in page.url, shot
    sidebar = page.locator("[data-testid='stSidebar']").inner_text()
    assert "trained by you" in sidebar, f"the sidebar says {sidebar!r} ({shot})"
    assert_no_exception(page, "Latent space after the run finished", shot)


def finished_without_its_browser(browser, url: str, owner_url: str, owner_cookies: list[dict], runs: Path) -> None:
    [token] = [c["value"] for c in owner_cookies if c["name"] == COOKIE]
    deadline = time.monotonic() + 90
    while not (mine := [r for r in run_folders(runs) if metrics(r).get("owner") == token]) \
            or metrics(mine[0])["status"] != "finished":
        assert time.monotonic() < deadline, f"the run never finished: {[metrics(r)['status'] for r in mine]}"
        time.sleep(1)
    [run] = mine
    time.sleep(2.5)  # the run list is cached for 2 s
    stranger = open_page(browser, url)
    stranger.get_by_test_id("stSidebar").get_by_text("Show short runs").click()  # a 5-second run may be short
    wait_settled(stranger)
    stranger.locator(".st-key-model_choice").click()
    stranger.keyboard.type(run.name[-4:])  # the list draws only the options in view: 25 bundled runs come first
    assert stranger.get_by_role("option").filter(has_text="class ").filter(has_text=run.name[-4:]).count() == 1
    assert identity(stranger.context) != token  # a stranger is not the owner
    stranger.context.close()
    owner = open_page(browser, owner_url, cookies=owner_cookies)  # the owner comes back in the same browser
    sidebar = owner.locator("[data-testid='stSidebar']").inner_text()
    shot = screenshot(owner, "browser-gone-run-found")
    assert "trained by you" in sidebar and "is now the loaded model" in owner.inner_text("body"), shot
