"""Fixtures for the browser tests: a real `streamlit run app.py` server and Debian's Chromium driven
by Playwright (see ../shared/notes/browser-testing.md for why these exact flags). The helpers that the
browser tests share are in tests/helpers.py; the server and the browser in browser_harness.

Without /usr/bin/chromium or the playwright package the browser tests are skipped with a reason,
unless VAE_LAB_REQUIRE_BROWSER=1 (set by .ci/run), in which case they fail instead.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from browser_harness import CHROMIUM, VIEWPORT, chromium, wait_settled
from tests.helpers import running_app


def browser_required() -> bool:
    return os.environ.get("VAE_LAB_REQUIRE_BROWSER") == "1"


def skip_or_fail(reason: str) -> None:
    """Skip locally; in CI (VAE_LAB_REQUIRE_BROWSER=1) a missing browser is an error, not a skip."""
    if browser_required():
        pytest.fail(f"{reason} (VAE_LAB_REQUIRE_BROWSER=1, so this is a failure, not a skip)",
                    pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- the browser

@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} not found: install Debian's chromium "
                     "(apt-get install -y chromium chromium-driver) to run the browser tests")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        skip_or_fail(f"the playwright package is not installed ({exc}): "
                     "pip install -r requirements-test.txt")
    with chromium() as b:
        yield b


# --------------------------------------------------------------------------- the app server

@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    """VAE_LAB_RUNS for the server: runs trained in the browser land here, never in the repo."""
    return tmp_path_factory.mktemp("vae_lab_runs")


@pytest.fixture(scope="session")
def app_url(browser, runs_dir, tmp_path_factory):
    """The app for the whole session. Depends on `browser` so a machine without one skips first."""
    with running_app(runs_dir, tmp_path_factory.mktemp("streamlit_server")) as url:
        yield url


# --------------------------------------------------------------------------- a page per test

@pytest.fixture
def page(browser, app_url):
    """A fresh browser context (so a fresh Streamlit session) on the app's start page, settled.

    Page errors and console errors are collected in `page.vae_lab_errors` for tests to report.
    """
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    pg.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}")
          if msg.type == "error" else None)
    pg.vae_lab_errors = errors
    pg.set_default_timeout(30_000)
    pg.goto(app_url, wait_until="domcontentloaded")
    wait_settled(pg, timeout=60_000)
    try:
        yield pg
    finally:
        if errors:  # shown with the test's captured output when it fails
            print("browser errors:\n  " + "\n  ".join(errors[:20]))
        context.close()
