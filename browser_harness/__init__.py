"""A real server and Debian's Chromium, without pytest: shared by the browser tests (tests/e2e) and bench/.

See ../shared/notes/browser-testing.md for why these exact flags and waits.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1000}
SERVER_START_TIMEOUT_S = 60.0

APP = "[data-testid='stApp']"
EXCEPTION = "[data-testid='stException']"
PLOTLY = "[data-testid='stPlotlyChart']"
# Streamlit's own frontend failures land in the console or in an error dialog, not in stException.
FRONTEND_ERROR_WORDS = ("Cached ForwardMsg MISS", "Bad delta path index", "Bad message format",
                        "Connection error", "Uncaught")


class ServerError(RuntimeError):
    """The app server did not start or died; the message ends with its output."""


@dataclass(frozen=True)
class Server:
    url: str
    proc: subprocess.Popen
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200 and r.read().decode().strip() == "ok"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tail(path: Path, n: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no output)"


def stop_server(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the server's process group (it was started in its own session); SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def start_server(runs_dir: Path, log_dir: Path, env: Mapping[str, str] | None = None,
                 port: int | None = None) -> Server:
    """`streamlit run app.py` on `port` (else a free loopback port); returns once /_stcore/health says ok."""
    port = port or free_port()
    log = Path(log_dir) / f"server-{port}.log"
    full_env = dict(os.environ, VAE_LAB_RUNS=str(runs_dir), PYTHONUNBUFFERED="1", **(env or {}))
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py",
           "--server.headless", "true", "--server.address", "127.0.0.1", "--server.port", str(port),
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", proc, log)
    _wait_healthy(server)
    return server


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not healthy(server.url):
        if server.proc.poll() is not None or time.monotonic() > deadline:
            stop_server(server.proc)
            raise ServerError(f"streamlit was not healthy at {server.url} (exit code {server.proc.returncode}); "
                              f"its output ends with:\n{tail(server.log)}")
        time.sleep(0.2)


@contextlib.contextmanager
def running_server(runs_dir: Path, log_dir: Path, env: Mapping[str, str] | None = None,
                   port: int | None = None) -> Iterator[Server]:
    server = start_server(runs_dir, log_dir, env, port)
    try:
        yield server
    finally:
        stop_server(server.proc)


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """Debian's Chromium through Playwright (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


# --------------------------------------------------------------------------- waiting and reading

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

    Right after a click the rerun request may not have reached the server yet, so the app can still
    say `notRunning` from before: hence a grace period, then the condition must hold for `stable_ms`.
    Times are in milliseconds, as everywhere in Playwright.
    """
    page.wait_for_timeout(grace_ms)
    page.locator(f"{APP}[data-test-connection-state='CONNECTED']").wait_for(state="attached", timeout=timeout)
    page.locator(f"{APP}[data-test-script-state='notRunning']").wait_for(state="attached", timeout=timeout)
    page.evaluate("() => { window.__vaeLabSettledSince = null; }")
    page.wait_for_function(_SETTLED_JS, arg=[stable_ms], timeout=timeout, polling=50)


# The images a chart shows (go.Image travels as a PNG data URI in an SVG <image>; st.image is an <img>)
# plus its text: enough to tell one rendering of a figure from another without comparing pixels.
CHART_SIGNATURE_JS = """
(el) => {
  const imgs = Array.from(el.querySelectorAll("image, img")).map(i => i.getAttribute("href") || i.getAttribute("xlink:href") || i.getAttribute("src") || "");
  const paths = Array.from(el.querySelectorAll("path.js-line, g.trace path, g.points path")).map(p => p.getAttribute("d") || "");
  const text = Array.from(el.querySelectorAll("text")).map(t => t.textContent);
  return JSON.stringify({imgs, paths, text});
}
"""


def chart_signature(chart) -> str:
    return chart.evaluate(CHART_SIGNATURE_JS)


def wait_changed(chart, before: str, timeout_s: float = 10.0, poll_ms: int = 20) -> float:
    """Seconds until the chart's signature differs from `before` (raises TimeoutError after timeout_s)."""
    start = time.perf_counter()
    while chart_signature(chart) == before:
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError(f"the chart did not change within {timeout_s:.0f} s")
        chart.page.wait_for_timeout(poll_ms)
    return time.perf_counter() - start


def go_to(page, name: str, timeout: float = 60_000) -> None:
    """Click the sidebar link `name` and wait for the page to settle."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
    wait_settled(page, timeout=timeout)


def exception_texts(page) -> list[str]:
    """The text of every Streamlit exception box on the page (empty when there is none)."""
    return [t.strip()[:2000] for t in page.locator(EXCEPTION).all_inner_texts()]


def record_errors(page, errors: list[str]) -> None:
    """Append every page error and console error of `page` to `errors` as it happens."""
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console.{msg.type}: {msg.text}")
            if msg.type == "error" else None)


# --------------------------------------------------------------------------- memory

def rss_mb(pid: int) -> float:
    """Resident memory of one process in MB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """Every descendant of pid (training workers are children of the server)."""
    out = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids = (task / "children").read_text().split()
            for kid in map(int, kids):
                out += [kid, *children(kid)]
    except OSError:
        pass
    return out


# --------------------------------------------------------------------------- training from the Train page

def fill_number(page, key: str, value: float) -> None:
    """Type into the number input with widget key `key`, commit it (Enter) and settle."""
    box = page.locator(f".st-key-{key} input")
    box.fill(str(value))
    box.press("Enter")
    wait_settled(page)


def start_training(page, n_train: int = 500, epochs: int = 1000, budget_s: float = 60) -> None:
    """On the Train page: a small sprites run (n_train images, at most budget_s seconds), started."""
    for key, value in (("cfg_n_train", n_train), ("cfg_epochs", epochs), ("cfg_time_budget", budget_s)):
        fill_number(page, key, value)
    page.locator(".st-key-train_start button").click()
    wait_settled(page)


def train_status(page) -> str:
    """The Train page's status line, lower case ("" when there is none)."""
    loc = page.locator(".st-key-train_status")
    return loc.inner_text(timeout=5_000).lower() if loc.count() else ""


def picker_options(page, typed: str) -> list[str]:
    """The model picker's options that match `typed` (the list is virtual: only a filtered one is all there)."""
    page.locator(".st-key-model_choice").click()
    page.keyboard.type(typed)
    page.wait_for_timeout(500)
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return options
