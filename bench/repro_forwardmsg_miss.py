"""Minimal reproduction of Streamlit's "Cached ForwardMsg MISS" (Streamlit 1.67; no VAE Lab code).

    python -m bench.repro_forwardmsg_miss            # default config, then the workaround

The race (the second scenario of streamlit/streamlit PR #11302, which left it open as "not sure if
this scenario is feasible"; reports: issues #11357, #15816, #16570):
1. A page holds a large element A (>= global.minCachedMessageSize, 10 kB): the browser caches it.
2. Another page is visited: A is now 2 runs old (global.maxCachedMessageAge = 2).
3. The user clicks page X and then, before the browser has processed any message about X, page BIG
   (A's page). Both rerun requests carry the hashes the browser holds, A included.
4. The server finishes the run for X before the request for BIG arrives; the browser processes X's
   new-session message (which re-arms its cache bookkeeping), then X's script-finished message, and
   evicts A (3 runs old); then the run for BIG sends A as a reference to its hash: MISS, the
   connection-error dialog, and the tab needs a reload.

Step 3 needs a browser whose main thread is busy for a moment (here: a 150 ms busy loop between the
clicks, as a browser drawing Plotly figures on a loaded 2-core machine is), and a run for X that ends
within that moment. In VAE Lab this is six people clicking through pages on one shared server.

Workaround (.streamlit/config.toml): global.minCachedMessageSize larger than any message, so no
message is ever sent as a reference. VAE Lab loses nothing: a page's figures change between visits,
and a cached message expires after two runs anyway, so references were rare.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TRIES = 8

APP = """
import streamlit as st
def big():
    st.markdown("A large element: " + "lorem ipsum " * 3000)  # ~36 kB: cacheable
def small(name):
    return lambda: st.write(name)
st.navigation([st.Page(big, title="big", default=True),
               st.Page(small("x"), title="x", url_path="x"), st.Page(small("y"), title="y", url_path="y"),
               st.Page(small("z"), title="z", url_path="z")]).run()
"""

# Click page `first`, keep the main thread busy for `busy_ms` (the browser is drawing something), then
# click page `second`: both clicks reach the server before the browser reads any reply.
CLICK_TWO_JS = """
([first, second, busyMs]) => {
  const link = (name) => Array.from(document.querySelectorAll("[data-testid='stSidebarNav'] a"))
                              .find(a => a.textContent.trim().endsWith(name));  // after any icon
  link(first).click();
  const until = performance.now() + busyMs;
  while (performance.now() < until) {}
  link(second).click();
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(app_dir: Path, extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                             "--server.address", "127.0.0.1", "--server.port", str(port),
                             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", *extra],
                            cwd=app_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def settle(page) -> None:
    page.wait_for_timeout(150)
    page.locator("[data-testid='stApp'][data-test-script-state='notRunning']").wait_for(state="attached")


def visit(page, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
    settle(page)


def misses(extra: list[str], busy_ms: int = 150) -> int:
    """How many of TRIES fresh tabs end with a cache MISS (console, page error or dialog)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "app.py").write_text(textwrap.dedent(APP))
        proc, url = start(Path(tmp), extra)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                count = 0
                for _ in range(TRIES):
                    context = browser.new_context()
                    page = context.new_page()
                    seen: list[str] = []
                    page.on("console", lambda m: seen.append(m.text) if "MISS" in m.text else None)
                    page.on("pageerror", lambda e: seen.append(str(e)) if "MISS" in str(e) else None)
                    page.goto(url)  # the default page lives at /
                    settle(page)
                    visit(page, "x")
                    # A is now 2 runs old (it was cached during the first run: age 1 when that ended)
                    page.evaluate(CLICK_TWO_JS, ["z", "big", busy_ms])
                    page.wait_for_timeout(1500)
                    dialog = page.locator("[role='dialog']").all_inner_texts()
                    count += bool(seen or any("MISS" in d for d in dialog))
                    context.close()
                browser.close()
                return count
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)


if __name__ == "__main__":
    print(f"default config:                     {misses([])} of {TRIES} tabs hit 'Cached ForwardMsg MISS'")
    print(f"global.minCachedMessageSize = 1e12: {misses(['--global.minCachedMessageSize', '1e12'])} "
          f"of {TRIES} tabs hit 'Cached ForwardMsg MISS'")
