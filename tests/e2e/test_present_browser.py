"""End to end, presentation mode (?present=1) on every page at a projector's 1024×768 and at 1920×1080: every metric
card's value whole, the type at the table's size, the sidebar folded to its toggle; hide= hides exactly what it names,
through a page change and a reload; the sidebar's switch writes present=1 into the address and takes it out."""
from __future__ import annotations

import re

import pytest

from browser_harness import wait_settled
from tests.e2e.test_projector_browser import _CLIPPED_JS, _METRICS_JS, CB, COMPARED, PROJECTOR
from tests.helpers import assert_no_exception, screenshot, wait_for
from ui.pages import PAGES
from ui.present import SIZES

pytestmark = pytest.mark.e2e

FULL_HD = {"width": 1920, "height": 1080}
QUERY = {"reconstructions": f"run={CB}", "diagnostics": f"run={CB}", "compare": f"compare={COMPARED}"}
_ROOT_PX_JS = "() => getComputedStyle(document.documentElement).fontSize"
_SIDEBAR_OPEN_JS = """
() => { const s = document.querySelector("[data-testid='stSidebar']"); const r = s.getBoundingClientRect();
        return r.right > 0 && r.width > 0; }
"""


def _open(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    wait_settled(page, timeout=120_000)
    page.wait_for_timeout(500)  # fonts and widths settle after the script


def _root_px(width: int) -> str:
    return f"{[s for s in SIZES.screens if s.min_width_px <= width][-1].root_px}px"  # narrowest first


@pytest.mark.parametrize("viewport, prefix, whole", [(PROJECTOR, "present", True), (FULL_HD, "present-1920", False)])
def test_every_page_in_presentation_mode_shows_each_value_whole(browser, app_url, viewport, prefix, whole):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    try:
        for info in PAGES:
            name = info.url_path
            _open(page, f"{app_url}/{'' if info is PAGES[0] else name}?present=1&{QUERY.get(name, '')}")
            shot = screenshot(page, f"{prefix}-{name}", full_page=whole)  # 1920: what the room sees first
            assert_no_exception(page, f"{name} in presentation mode at {viewport}", shot)
            assert page.evaluate(_CLIPPED_JS) == [], (name, page.evaluate(_METRICS_JS), shot)
            assert page.evaluate(_ROOT_PX_JS) == _root_px(viewport["width"]), shot
            assert not page.evaluate(_SIDEBAR_OPEN_JS), f"the sidebar is open on {name} ({shot})"
            assert page.get_by_test_id("stExpandSidebarButton").is_visible(), shot
    finally:
        context.close()


def _visible(page, key: str) -> bool:
    return page.locator(f".st-key-{key}").is_visible()


def test_hide_hides_what_it_names_through_a_page_change_and_a_reload(browser, app_url):
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    try:
        _open(page, f"{app_url}/latent?present=1&hide=anchor,range")
        screenshot(page, "present-hide-latent", full_page=False)
        assert not _visible(page, "traverse_anchor") and not _visible(page, "traverse_range")
        assert _visible(page, "traverse_dims") and _visible(page, "interp_a")
        page.get_by_test_id("stExpandSidebarButton").click()
        page.get_by_test_id("stSidebarNav").get_by_role("link", name="Reconstructions").click()
        wait_settled(page, timeout=60_000)
        page.wait_for_timeout(500)
        assert "present=1" in page.url and "hide=anchor%2Crange" in page.url.replace(",", "%2C"), page.url
        assert not _visible(page, "samples_index") and _visible(page, "samples_seed")
        assert page.evaluate(_ROOT_PX_JS) == _root_px(PROJECTOR["width"])
        sidebar = page.get_by_test_id("stSidebar")
        if not page.evaluate(_SIDEBAR_OPEN_JS):
            page.get_by_test_id("stExpandSidebarButton").click()
        sidebar.get_by_text("Link to this view").click()
        link = sidebar.frame_locator("iframe").locator("#link")
        wait_for(lambda: re.search(r"present=1.*hide=anchor(%2C|,)range", link.input_value()), timeout=10)
        page.reload(wait_until="domcontentloaded")
        wait_settled(page, timeout=60_000)
        assert not _visible(page, "samples_index") and _visible(page, "recon_n")
        shot = screenshot(page, "present-hide-reconstructions", full_page=False)
        assert_no_exception(page, "reconstructions with hide=", shot)
    finally:
        context.close()


def test_hide_sidebar_and_controls_leave_the_figures(browser, app_url):
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    try:
        _open(page, f"{app_url}/latent?present=1&hide=sidebar,controls,downloads")
        shot = screenshot(page, "present-hide-all-latent", full_page=False)
        assert not page.get_by_test_id("stSidebar").is_visible() and not page.get_by_test_id(
            "stExpandSidebarButton").is_visible(), shot
        for key in ("traverse_anchor", "traverse_range", "traverse_dims", "prior_seed", "map_color"):
            assert not _visible(page, key), key
        assert page.get_by_test_id("stDownloadButton").first.is_hidden()
        assert page.get_by_test_id("stPlotlyChart").first.is_visible()
    finally:
        context.close()


def test_the_sidebar_switch_writes_present_into_the_address(browser, app_url):
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    try:
        _open(page, f"{app_url}/?hide=seed")
        normal = page.evaluate(_ROOT_PX_JS)
        page.get_by_test_id("stSidebar").get_by_text("Presentation mode").click()
        wait_settled(page, timeout=60_000)
        page.wait_for_timeout(500)
        assert "present=1" in page.url and "hide=seed" in page.url, page.url
        assert page.evaluate(_ROOT_PX_JS) == _root_px(PROJECTOR["width"]) != normal
        assert not page.evaluate(_SIDEBAR_OPEN_JS), "the sidebar stayed open"
        page.get_by_test_id("stExpandSidebarButton").click()
        page.get_by_test_id("stSidebar").get_by_text("Presentation mode").click()
        wait_settled(page, timeout=60_000)
        page.wait_for_timeout(500)
        assert "present" not in page.url and "hide=seed" in page.url, page.url
        assert page.evaluate(_ROOT_PX_JS) == normal
    finally:
        context.close()
