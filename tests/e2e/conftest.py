"""Fixtures for the browser tests: a real `streamlit run app.py` server and Debian's Chromium driven
by Playwright (see notes/browser-testing.md for why these exact flags).

Without /usr/bin/chromium or the playwright package the browser tests are skipped with a reason,
unless VAE_LAB_REQUIRE_BROWSER=1 (set by .ci/run), in which case they fail instead.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
SCREENSHOTS = REPO / "artifacts" / "screenshots"
SERVER_START_TIMEOUT_S = 60.0

APP = "[data-testid='stApp']"
EXCEPTION = "[data-testid='stException']"
PLOTLY = "[data-testid='stPlotlyChart']"


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
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        skip_or_fail(f"the playwright package is not installed ({exc}): "
                     "pip install -r requirements-test.txt")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


# --------------------------------------------------------------------------- the app server

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200 and r.read().decode().strip() == "ok"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no output)"


def _stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the server was started in its own process group
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory) -> Path:
    """VAE_LAB_RUNS for the server: runs trained in the browser land here, never in the repo."""
    return tmp_path_factory.mktemp("vae_lab_runs")


@contextlib.contextmanager
def running_app(runs_dir: Path, log_dir: Path):
    """`streamlit run app.py` on a free loopback port, healthy; yields its base URL, stops it after."""
    port = _free_port()
    log = log_dir / "server.log"
    env = dict(os.environ, VAE_LAB_RUNS=str(runs_dir), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py",
           "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with code {proc.returncode} before it was healthy; "
                            f"its output ends with:\n{_tail(log)}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit was not healthy at {url}/_stcore/health after "
                            f"{SERVER_START_TIMEOUT_S:.0f} s; its output ends with:\n{_tail(log)}",
                            pytrace=False)
            time.sleep(0.2)
        yield url
    finally:
        _stop_server(proc)
        if proc.returncode not in (0, -signal.SIGTERM, None):
            print(f"\nstreamlit server exited with {proc.returncode}; output tail:\n{_tail(log)}")


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

_SETTLED_JS = """
([stableMs]) => {
  const app = document.querySelector("[data-testid='stApp']");
  const ok = !!app
    && app.getAttribute("data-test-connection-state") === "CONNECTED"
    && app.getAttribute("data-test-script-state") === "notRunning"
    && !document.querySelector("[data-testid='stSkeleton']");
  const now = performance.now();
  if (!ok) { window.__vaeLabSettledSince = null; return false; }
  if (window.__vaeLabSettledSince == null) window.__vaeLabSettledSince = now;
  return now - window.__vaeLabSettledSince >= stableMs;
}
"""


def wait_settled(page, timeout: float = 30_000, grace_ms: int = 250, stable_ms: int = 400) -> None:
    """Wait until Streamlit is connected, its script is not running and no skeleton is left.

    Right after a click or key press the rerun request may not have reached the server yet, so the
    app can still say `notRunning` from before. Hence a short grace period, and then the settled
    condition must hold continuously for `stable_ms` (a rerun that starts late resets the clock).
    Times are in milliseconds, as everywhere in Playwright.
    """
    page.wait_for_timeout(grace_ms)
    page.locator(f"{APP}[data-test-connection-state='CONNECTED']").wait_for(state="attached", timeout=timeout)
    page.locator(f"{APP}[data-test-script-state='notRunning']").wait_for(state="attached", timeout=timeout)
    page.evaluate("() => { window.__vaeLabSettledSince = null; }")
    page.wait_for_function(_SETTLED_JS, arg=[stable_ms], timeout=timeout, polling=50)


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


def exception_texts(page) -> list[str]:
    """The text of every Streamlit exception box on the page (empty when there is none)."""
    return [t.strip()[:2000] for t in page.locator(EXCEPTION).all_inner_texts()]


def assert_no_exception(page, where: str, shot: Path | None = None) -> None:
    texts = exception_texts(page)
    if texts:
        if shot is None:
            shot = screenshot(page, f"FAILED-{where}".replace(" ", "_"))
        pytest.fail(f"{where}: {len(texts)} exception box(es) on the page (screenshot {shot}):\n"
                    + "\n---\n".join(texts), pytrace=False)
