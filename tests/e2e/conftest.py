"""Fixtures for the browser tests: a real `streamlit run app.py` server and Debian's Chromium driven
by Playwright (see notes/browser-testing.md for why these exact flags).

Without /usr/bin/chromium or the playwright package the browser tests are skipped with a reason,
unless VAE_LAB_REQUIRE_BROWSER=1 (set by .ci/run), in which case they fail instead.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

from .harness import (CHROMIUM, EXCEPTION, PLOTLY, REPO, VIEWPORT, ServerError, chromium,  # noqa: F401
                      exception_texts, start_server, stop_server, train_status, wait_settled)

SCREENSHOTS = REPO / "artifacts" / "screenshots"


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


@contextlib.contextmanager
def running_app(runs_dir: Path, log_dir: Path):
    """`streamlit run app.py` on a free loopback port, healthy; yields its base URL, stops it after."""
    try:
        server = start_server(runs_dir, log_dir)
    except ServerError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server.url
    finally:
        stop_server(server.proc)


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


# --------------------------------------------------------------------------- helpers

_CONTENT_HEIGHT_JS = """
() => Math.max(document.documentElement.scrollHeight,
  ...Array.from(document.querySelectorAll("[data-testid='stMain'], [data-testid='stSidebarContent']"))
     .map(e => e.scrollHeight))
"""
MAX_SCREENSHOT_HEIGHT = 8000


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save artifacts/screenshots/<name>.png under the repo root (git-ignored) and return its path.

    Streamlit scrolls inside its own <main> element, so Playwright's full_page alone captures one
    viewport: for a full page the viewport is stretched to the content's height for the shot.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = page.viewport_size
    height = min(int(page.evaluate(_CONTENT_HEIGHT_JS)), MAX_SCREENSHOT_HEIGHT) if full_page else 0
    if size and height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": height})
        page.wait_for_timeout(500)  # let the layout (and Plotly's resize handlers) catch up
        try:
            page.screenshot(path=str(path), full_page=True)
        finally:
            page.set_viewport_size(size)
    else:
        page.screenshot(path=str(path), full_page=full_page)
    return path


def assert_no_exception(page, where: str, shot: Path | None = None) -> None:
    texts = exception_texts(page)
    if texts:
        if shot is None:
            shot = screenshot(page, f"FAILED-{where}".replace(" ", "_"))
        pytest.fail(f"{where}: {len(texts)} exception box(es) on the page (screenshot {shot}):\n"
                    + "\n---\n".join(texts), pytrace=False)


def wait_for_status(page, word: str, timeout_s: float) -> str:
    """Poll the training status text until it contains `word`; fail early on a terminal other state."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = train_status(page).strip()
        if word in text:
            return text
        others = [w for w in ("diverged", "failed") if w in text and w != word]
        if others:
            shot = screenshot(page, f"FAILED-train-{others[0]}")
            pytest.fail(f"training ended as {others[0]!r} while waiting for {word!r}: {text!r} "
                        f"(screenshot {shot})", pytrace=False)
        page.wait_for_timeout(250)
    shot = screenshot(page, f"FAILED-train-no-{word}")
    pytest.fail(f"status never contained {word!r} within {timeout_s:.0f} s; last status: {text!r} "
                f"(screenshot {shot})", pytrace=False)
