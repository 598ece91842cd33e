"""A class on one server: many sessions at once on a fresh server, quick clicking, and no request that
leaves the machine. Each test says which failure it pins:

- six sessions opening at once on a fresh server raced on a lazy import (pandas, half initialized,
  seen by Plotly from another session): exception boxes on most pages (ui/preload.py);
- two page changes crossing a busy browser made Streamlit reference a message the browser had just
  evicted ("Cached ForwardMsg MISS", a Connection error dialog; .streamlit/config.toml and
  bench/repro_forwardmsg_miss.py);
- a ":material/...:" page icon was fetched from fonts.gstatic.com (app.py): every session's requests are
  recorded from its first, and one to any host but the app's is a problem like an exception box.
"""
from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

from browser_harness import VIEWPORT, exception_texts, wait_settled
from tests.helpers import running_app, screenshot
from ui.pages import PAGES as SIDEBAR

pytestmark = pytest.mark.e2e

# Every page of the sidebar, by its address ("" opens the first): clicking goes through all of them
PAGES = {("" if info is SIDEBAR[0] else info.url_path): info.title for info in SIDEBAR}
# Six sessions on five pages, two on the heavy ones: the first race seen was Train (which imported pandas)
# against Latent space (whose Plotly figures looked pandas up).
SIX_PATHS = ["", "latent", "diagnostics", "compare", "train", "latent"]
LOCAL_HOSTS = {"127.0.0.1"}
# Streamlit's frontend, opened at /<page>, first probes /<page>/_stcore/{health,host-config} to find
# its base path, gets 404 and falls back to /: its own behaviour, logged as a console error.
_BASE_PATH_PROBE = re.compile(r"^http://127\.0\.0\.1:\d+/[^/]+/_stcore/(health|host-config)$")

# Click sidebar link `first`, keep the main thread busy for `busyMs` (as a browser drawing figures on a
# loaded machine is), then click `second`: both requests leave before the browser reads a reply.
_CROSSING_CLICKS_JS = """
([first, second, busyMs]) => {
  const link = (name) => Array.from(document.querySelectorAll("[data-testid='stSidebarNav'] a"))
                              .find(a => a.textContent.trim().endsWith(name));
  link(first).click();
  const until = performance.now() + busyMs;
  while (performance.now() < until) {}
  link(second).click();
}
"""


@dataclass
class Watched:
    """One browser session and everything that went wrong in it."""
    page: object
    name: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Errors so far, plus what the page shows now: exception boxes and error dialogs."""
        found = list(self.errors)
        found += [f"a request left the machine: {u}" for u in sorted(set(foreign(self.requests)))]
        found += [f"exception box: {t[:300]}" for t in exception_texts(self.page)]
        for text in self.page.locator("[role='dialog']").all_inner_texts():
            if text.strip():
                found.append(f"dialog: {text.strip()[:300]}")
        return found


def _console_error(msg) -> str | None:
    if msg.type != "error":
        return None
    where = (msg.location or {}).get("url", "")
    if msg.text.startswith("Failed to load resource") and _BASE_PATH_PROBE.match(where):
        return None
    return f"console.error: {msg.text[:300]} ({where})"


def _record_console(w: Watched, msg) -> None:
    error = _console_error(msg)
    if error:
        w.errors.append(error)


def watch(browser, name: str) -> Watched:
    """A fresh context (a fresh Streamlit session) whose page errors, console errors and every
    request are recorded from the start."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    w = Watched(page, name)
    page.on("pageerror", lambda exc: w.errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: _record_console(w, msg))
    page.on("request", lambda req: w.requests.append(req.url))
    return w


def settle(s: Watched, timeout: float = 90_000) -> None:
    """Wait for the session to settle; a session that never does is noted, not raised, so the report
    says why (a Connection error dialog never reconnects: the tab needs a reload)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout  # here: a machine without it skips

    try:
        wait_settled(s.page, timeout=timeout)
    except PlaywrightTimeout:
        s.errors.append(f"never settled within {timeout / 1000:.0f} s")


def close_all(sessions: list[Watched]) -> None:
    for s in sessions:
        s.page.context.close()


def assert_clean(sessions: list[Watched], where: str) -> None:
    report = {s.name: s.problems() for s in sessions}
    bad = {name: p for name, p in report.items() if p}
    if bad:
        shots = [str(screenshot(s.page, f"FAILED-class-{where}-{i}")) for i, s in enumerate(sessions) if bad.get(s.name)]
        lines = [f"{name}: " + "\n    ".join(p[:6]) for name, p in bad.items()]
        pytest.fail(f"{where}: {len(bad)} of {len(sessions)} sessions went wrong (screenshots {shots}):\n"
                    + "\n".join(lines), pytrace=False)


def foreign(urls: list[str]) -> list[str]:
    """Requests to any host but the app's own (data: and blob: URLs never leave the browser)."""
    return [u for u in urls if urlparse(u).scheme not in ("data", "blob", "about")
            and urlparse(u).hostname not in LOCAL_HOSTS]


def sidebar_link(page, name: str):
    return page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True)


# --------------------------------------------------------------------------- 1. a fresh server, six at once, clicking

NAVIGATE_S = 8.0


def _quick_action(rng: random.Random, s: Watched) -> None:
    """One thing a hurried student does: change page, or nudge a slider, without waiting for the app."""
    page = s.page
    if rng.random() < 0.5:
        # 15 s: six pages share one Chromium and two cores with the server; a click waits its turn there (this test
        # looks for exceptions and lost pages; the timings are bench/bench_toggle.py's)
        sidebar_link(page, rng.choice(list(PAGES.values()))).click(timeout=15_000, no_wait_after=True)
        return
    sliders = page.get_by_role("slider")
    n = sliders.count()
    if n:
        slider = sliders.nth(rng.randrange(n))
        slider.focus(timeout=5_000)
        for _ in range(rng.choice([1, 3])):
            slider.press(rng.choice(["ArrowLeft", "ArrowRight"]), timeout=5_000)


@pytest.mark.parametrize("repetition", range(1))  # bench/soak.py repeats it at length
def test_six_sessions_open_at_once_on_a_fresh_server_and_click_through_pages_quickly(browser, tmp_path: Path,
                                                                                     repetition: int):
    with running_app(tmp_path / "runs", tmp_path) as url:
        sessions = [watch(browser, f"/{path}") for path in SIX_PATHS]
        try:
            open_at_once(sessions, url, repetition)
            click_quickly(sessions, random.Random(6))
        finally:
            close_all(sessions)


def open_at_once(sessions: list[Watched], url: str, repetition: int) -> None:
    """Sync Playwright is single-threaded: commit each navigation without waiting for it, so the six first
    requests reach the server within a few milliseconds of each other."""
    for s in sessions:
        s.page.goto(f"{url}{s.name}", wait_until="commit")
    for s in sessions:
        settle(s)
    assert_clean(sessions, f"fresh-server-{repetition}")
    for s, path in zip(sessions, SIX_PATHS):
        title = PAGES[path]
        assert s.page.get_by_role("heading", name=title, level=1).count() == 1, \
            f"{s.name} does not show its page {title!r} ({screenshot(s.page, f'FAILED-six-{path}')})"
    if repetition == 0:
        screenshot(sessions[1].page, "class-six-at-once-latent")


def click_quickly(sessions: list[Watched], rng: random.Random) -> None:
    """Each session's request lands while the others' reruns run: page changes and slider nudges, interleaved."""
    actions, start, deadline = 0, time.monotonic(), time.monotonic() + NAVIGATE_S
    while time.monotonic() < deadline:
        for s in sessions:
            _quick_action(rng, s)
            s.page.wait_for_timeout(rng.choice([0, 50, 150]))
            actions += 1
    clicked = time.monotonic()
    for s in sessions:
        settle(s)
    print(f"{actions} quick actions in {clicked - start:.1f} s; settled {time.monotonic() - clicked:.1f} s later")
    assert_clean(sessions, "clicking-quickly")


def test_two_page_changes_crossing_a_busy_browser(browser, app_url):
    """The "Cached ForwardMsg MISS" sequence (bench/repro_forwardmsg_miss.py): with Streamlit's default
    message cache this ends in a Connection error dialog in most tries."""
    s = watch(browser, "busy browser")
    try:
        s.page.goto(app_url, wait_until="domcontentloaded")
        wait_settled(s.page, timeout=60_000)
        for name in ("Diagnostics", "Reconstructions", "Latent space"):  # Diagnostics: warm its caches
            sidebar_link(s.page, name).click()
            wait_settled(s.page, timeout=60_000)
        # Reconstructions' figures are now two runs old: the next finished run would evict them
        s.page.evaluate(_CROSSING_CLICKS_JS, ["Diagnostics", "Reconstructions", 2_500])
        settle(s, timeout=30_000)
        assert_clean([s], "crossing-page-changes")
        assert s.page.get_by_role("heading", name="Reconstructions", level=1).count() == 1
    finally:
        close_all([s])
