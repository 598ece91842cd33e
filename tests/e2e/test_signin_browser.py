"""Named students, end to end in Chromium against a real OpenID Connect provider on loopback (panva's oidc-provider,
tests/oidc_provider.py): Ada signs in at the provider's own login form, trains a one-epoch run, and another browser's
class board shows it under her name; signed in from a second browser, the run is hers there too; signing out
gives the first browser back its own anonymous identity. Nowhere does her subject, email or secret show."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from browser_harness import free_port, go_to, running_server, start_training, wait_settled
from tests.e2e.conftest import skip_or_fail
from tests.helpers import assert_no_exception, screenshot
from tests.oidc_provider import missing, running_provider, write_auth_secrets
from ui.cookie import COOKIE
from vae_core.runs.logins import login_secret, sign_in_key

pytestmark = pytest.mark.e2e

PROJECTOR = {"width": 1024, "height": 768}
ADA = ("ada", "Ada Lovelace", "ada@school.example")  # login, the name the provider gives, the email
SIDEBAR = "[data-testid='stSidebar']"


@pytest.fixture
def signin_server(browser, tmp_path: Path):
    """A VAE Lab server whose secrets.toml names a real provider started for this test."""
    if reason := missing():
        skip_or_fail(reason)
    port = free_port()
    redirect = f"http://127.0.0.1:{port}/oauth2callback"
    with running_provider(redirect, tmp_path) as provider:
        secrets_toml = write_auth_secrets(tmp_path / "secrets.toml", redirect, provider)
        env = {"STREAMLIT_SECRETS_FILES": str(secrets_toml), "VAE_LAB_UPLOADS": str(tmp_path / "uploads")}
        with running_server(tmp_path / "runs", tmp_path, env=env, port=port) as server:
            yield server, provider, tmp_path / "runs"


def _open(browser, url: str):
    page = browser.new_context(viewport=PROJECTOR).new_page()
    page.set_default_timeout(30_000)
    page.goto(url, wait_until="domcontentloaded")
    wait_settled(page, timeout=60_000)
    return page


def _sign_in(page, provider, login: str) -> None:
    """Sidebar's Sign in, then the provider's own form (any password), back at the app."""
    page.locator(SIDEBAR).get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{provider.issuer}/**")
    page.locator("input[name='login']").fill(login)
    page.locator("input[name='password']").fill("correct horse")
    page.get_by_role("button", name="Sign-in").click()
    page.wait_for_url(lambda url: not url.startswith(provider.issuer))
    wait_settled(page, timeout=60_000)


def _finished_runs(runs: Path, timeout_s: float = 90.0) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [json.loads(p.read_text()) for p in runs.glob("*/metrics.json")]
        if found and all(m.get("status") == "finished" for m in found):
            return found
        time.sleep(0.5)
    raise AssertionError(f"no finished run in {runs} within {timeout_s:.0f} s")


def _cookie(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)


def test_a_signed_in_student_s_run_is_labelled_with_her_name_and_follows_her(browser, signin_server):
    server, provider, runs = signin_server
    login, name, email = ADA
    ada = _open(browser, server.url)
    anonymous = _cookie(ada)
    _sign_in(ada, provider, login)
    assert f"Signed in as {name}" in ada.locator(SIDEBAR).inner_text()
    screenshot(ada, "signin-sidebar", full_page=False)

    go_to(ada, "Train")
    start_training(ada, n_train=128, epochs=1, budget_s=30)  # one epoch: any run of hers will do
    (run,) = _finished_runs(runs)
    assert run["owner"] == login_secret(sign_in_key(runs), provider.issuer, login) != anonymous
    run_files = " ".join(p.read_text() for p in runs.glob("*/*.json"))  # the board's .names.json holds the name
    assert f'"{login}"' not in run_files and email not in run_files

    ben = _open(browser, f"{server.url}/board")
    deadline = time.monotonic() + 20
    while name not in (board := ben.inner_text("[data-testid='stMain']")) and time.monotonic() < deadline:
        ben.reload(wait_until="domcontentloaded")
        wait_settled(ben, timeout=60_000)
    assert name in board
    assert all(word not in ben.content() for word in (email, run["owner"], anonymous))
    assert_no_exception(ben, "the class board")
    ben.locator("[data-testid='stMain']").get_by_text(name).first.scroll_into_view_if_needed()
    screenshot(ben, "signin-board", full_page=False)

    again = _open(browser, server.url)  # Ada in another browser: the run is hers there too
    _sign_in(again, provider, login)
    go_to(again, "Train")
    assert "Your runs" in again.inner_text("[data-testid='stMain']") and _cookie(again) != anonymous
    assert again.locator("[class*='st-key-run_delete_']").count() == 1

    ada.locator(SIDEBAR).get_by_role("button", name="Sign out").click()
    ada.get_by_role("button", name="Yes, sign me out").click()  # the provider's own end-session page
    ada.wait_for_url(f"{server.url}/**")
    wait_settled(ada, timeout=60_000)
    assert ada.locator(SIDEBAR).get_by_role("button", name="Sign in").count() == 1
    assert _cookie(ada) == anonymous and name not in ada.locator(SIDEBAR).inner_text()
    assert_no_exception(ada, "signed out")
    screenshot(ada, "signin-signed-out", full_page=False)
