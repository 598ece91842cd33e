"""End to end: the real app in a real browser (Debian chromium via Playwright).

Each test opens its own browser context (a fresh Streamlit session) against one shared server whose
VAE_LAB_RUNS points at a pytest temp dir. Screenshots go to artifacts/screenshots/.
"""
from __future__ import annotations

import time

import pytest

from browser_harness import PLOTLY, chart_signature, go_to, wait_settled
from tests.helpers import assert_no_exception, running_app, screenshot

pytestmark = pytest.mark.e2e

PAGES = ["Reconstructions", "Latent space", "Diagnostics", "Train"]

def slider_value(slider) -> str:
    """The slider's current value: aria-valuenow where the widget has one, else the input's value."""
    return slider.get_attribute("aria-valuenow") or slider.input_value()


def set_number(page, key: str, value: float) -> None:
    """Type into the number input with widget key `key` and commit it (Enter), then settle."""
    box = page.locator(f".st-key-{key} input")
    box.click()
    box.fill(str(value))
    box.press("Enter")
    wait_settled(page)
    assert float(box.input_value()) == value, f"{key} shows {box.input_value()!r}, wanted {value}"


# --------------------------------------------------------------------------- 1. every page opens

@pytest.mark.parametrize("name", PAGES)
def test_page_opens(page, name):
    go_to(page, name)
    slug = name.lower().replace(" ", "_")
    shot = screenshot(page, f"page-{slug}")
    assert_no_exception(page, f"page {name!r}", shot)
    charts = page.locator(PLOTLY)
    if name == "Train" and charts.count() == 0:
        start = page.locator(".st-key-train_start button")
        assert start.is_visible(), f"Train page shows neither a chart nor the train_start button ({shot})"
    else:
        charts.first.wait_for(state="visible", timeout=30_000)
        assert charts.count() >= 1, f"no Plotly chart on {name!r} ({shot})"


# --------------------------------------------------------------------------- 2. traversal slider

def test_traversal_slider_redraws(page):
    go_to(page, "Latent space")
    chart = page.locator(f".st-key-traversal_panel {PLOTLY}").first
    chart.wait_for(state="visible", timeout=30_000)
    # Streamlit 1.67 sliders are react-aria: a visually hidden <input type="range"> whose implicit
    # role is slider (so no [role='slider'] attribute and no aria-valuenow; the value is the input's)
    slider = page.locator(".st-key-traverse_range").get_by_role("slider").first
    slider.wait_for(state="attached")
    before_value = slider_value(slider)
    before_sig = chart_signature(chart)
    before_png = chart.screenshot()

    slider.focus()
    slider.press("ArrowLeft")
    slider.press("ArrowLeft")
    wait_settled(page)
    # the redraw can land a moment after the script state flips back: give it a little while
    deadline = time.monotonic() + 10
    while chart_signature(chart) == before_sig and time.monotonic() < deadline:
        page.wait_for_timeout(200)

    after_value = slider_value(slider)
    shot = screenshot(page, "latent_space-traversal-after-slider")
    assert_no_exception(page, "Latent space after moving traverse_range", shot)
    assert after_value != before_value, f"traverse_range stayed at {before_value} ({shot})"
    assert float(after_value) < float(before_value), (before_value, after_value)
    after_sig = chart_signature(chart)
    after_png = chart.screenshot()
    assert after_sig != before_sig or after_png != before_png, \
        f"the traversal chart did not change when traverse_range went {before_value} -> {after_value} ({shot})"


@pytest.mark.parametrize("path,marker", [("train", ".st-key-train_start"), ("latent", ".st-key-traversal_panel")])
def test_a_direct_link_to_a_fresh_server_opens_the_page_inside_the_app(browser, tmp_path, path, marker):
    """A bookmark, or a projector's tab reconnecting after a server restart: the first request a fresh
    server sees names a page. (With the pages in a folder named pages/, Streamlit would treat them as
    old-style pages on that request: a "Page not found" dialog, or the page run without app.py.)"""
    with running_app(tmp_path / "runs", tmp_path) as url:
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        try:
            page.goto(f"{url}/{path}", wait_until="domcontentloaded")
            wait_settled(page, timeout=60_000)
            shot = screenshot(page, f"direct-link-{path}")
            assert page.get_by_text("Page not found").count() == 0, shot
            nav = page.get_by_test_id("stSidebarNav")
            assert nav.get_by_role("link", name="Latent space", exact=True).count() == 1
            assert page.locator(".st-key-model_choice").count() == 1  # app.py's sidebar ran
            assert page.url.split("?")[0].endswith(f"/{path}") and page.locator(marker).count() == 1, shot
            assert_no_exception(page, f"direct link to /{path}", shot)
        finally:
            context.close()


def choose(page, key: str, option: str) -> None:
    """Pick `option` in the select box with widget key `key`, then settle. The box is scrolled to the middle
    first: clicked at the screen's edge, the scroll that brings it in closes the list it opened."""
    page.locator(f".st-key-{key}").evaluate("el => el.scrollIntoView({block: 'center'})")
    page.locator(f".st-key-{key}").click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_settled(page)


def test_the_train_form_says_what_share_of_zscored_targets_a_tanh_cannot_reach(page):
    go_to(page, "Train")
    choose(page, "cfg_likelihood", "gaussian")
    choose(page, "cfg_normalization", "zscore")
    choose(page, "cfg_output_activation", "tanh")
    warning = page.locator("[data-testid='stAlertContentWarning']").filter(has_text="Mismatched")
    text = warning.inner_text()
    assert "of the normalized target values lie outside (-1, 1)" in text, text
    share = float(text.split("% of the normalized")[0].split()[-1])
    assert 1 < share < 20  # zscored sprites: the bright shapes form a long positive tail
    page.get_by_text("How the training loss reduces and weighs its terms").click()
    wait_settled(page)
    choose(page, "cfg_kl_reduction", "mean")
    set_number(page, "cfg_beta", 100)
    info = page.locator("[data-testid='stAlertContentInfo']").filter(has_text="Equivalent β").inner_text()
    assert "Equivalent β of the proper ELBO: 10 " in info, info
    assert_no_exception(page, "Train form, zscore + tanh", screenshot(page, "train-zscore-tanh"))
