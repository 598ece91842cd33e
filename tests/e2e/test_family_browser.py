"""End to end: the family toggle flips the loaded model on Reconstructions, a copied link reproduces the
view in a fresh browser (without the sender's identity), and a malformed link shows notices, not errors."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from browser_harness import VIEWPORT, wait_settled
from tests.helpers import assert_no_exception, screenshot

pytestmark = pytest.mark.e2e

TOGGLE = ".st-key-toggle_model_output_activation"
GRID = ".st-key-recon_grid"


def grid_src(page) -> str:
    return page.locator(GRID).first.evaluate(
        "(el) => { const i = el.querySelector('image, img'); return i && (i.getAttribute('href') || i.getAttribute('src')); }")


def sidebar_text(page) -> str:
    return page.get_by_test_id("stSidebar").inner_text()


def test_the_toggle_flips_the_activation_and_a_link_reproduces_the_view(page, browser, app_url):
    page.goto(f"{app_url}/?run=sprites-sigmoid-zscore-gaussian", wait_until="domcontentloaded")
    wait_settled(page, timeout=90_000)
    before = grid_src(page)
    assert "sigmoid output" in sidebar_text(page)
    page.locator(TOGGLE).get_by_role("radio", name="tanh", exact=True).click()
    page.wait_for_function("([sel, before]) => { const i = document.querySelector(sel + ' image, ' + sel + ' img');"
                           " return i && (i.getAttribute('href') || i.getAttribute('src')) !== before; }",
                           arg=[GRID, before], timeout=30_000)
    wait_settled(page)
    assert "tanh output" in sidebar_text(page) and "zscore normalization" in sidebar_text(page)
    page.locator(".st-key-recon_n").get_by_role("slider").focus()
    page.keyboard.press("ArrowRight")  # a page control, which the link carries too
    wait_settled(page)
    shot = screenshot(page, "toggle-tanh", full_page=False)
    assert_no_exception(page, "after the flip", shot)

    query = parse_qs(urlsplit(page.url).query)
    assert query["run"] == ["sprites-tanh-zscore-gaussian"] and query["recon_n"] == ["11"], page.url
    assert "u" not in query, page.url  # the identity is a cookie, never in the address
    page.get_by_text("Link to this view").click()  # the sidebar's share box: the address bar
    box = page.frame_locator("iframe").first.locator("#link")
    shared = box.input_value()
    assert parse_qs(urlsplit(shared).query) == query, shared
    fresh = browser.new_context(viewport=VIEWPORT).new_page()
    try:
        fresh.goto(shared, wait_until="domcontentloaded")
        wait_settled(fresh, timeout=90_000)
        assert "tanh output" in sidebar_text(fresh)
        assert fresh.locator(".st-key-recon_n").get_by_test_id("stSliderThumbValue").inner_text() == "11"
        mine, theirs = (next(c["value"] for c in p.context.cookies() if c["name"] == "vae_lab_browser")
                        for p in (page, fresh))  # ui/cookie.py COOKIE
        assert mine != theirs  # the link did not carry the identity
    finally:
        fresh.context.close()


def test_a_malformed_link_shows_notices_not_exceptions(page, app_url):
    page.goto(f"{app_url}/?run=no-such-run&recon_n=abc&samples_index=-5", wait_until="domcontentloaded")
    wait_settled(page, timeout=90_000)
    shot = screenshot(page, "malformed-link", full_page=False)
    assert_no_exception(page, "a malformed link", shot)
    text = page.get_by_test_id("stMain").inner_text()
    assert "does not have" in text and "“Images” = 'abc' is not allowed" in text, shot
    assert "sigmoid output" in sidebar_text(page)  # the default model
