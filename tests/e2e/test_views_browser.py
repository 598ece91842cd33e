"""End to end: the run picked with the family toggle stays in the address across a sidebar page change, so a
reload (or a copied link) shows the same model, not the default."""
from __future__ import annotations

import shutil
from urllib.parse import parse_qs, urlsplit

import pytest

from browser_harness import go_to, wait_settled
from tests.helpers import assert_no_exception, screenshot

pytestmark = pytest.mark.e2e

PICKED = "sprites-tanh-zscore-gaussian"
SHOT = "/tmp/views_survive.png"


def sidebar_text(page) -> str:
    return page.get_by_test_id("stSidebar").inner_text()


def run_in_address(page) -> list[str]:
    return parse_qs(urlsplit(page.url).query).get("run", [])


def flip(page, field: str, value: str) -> None:
    """Click `value` on the sidebar's family toggle for `field` and wait for the sibling to load."""
    page.locator(f".st-key-toggle_{field}").get_by_role("radio", name=value, exact=True).click()
    wait_settled(page)


def test_the_picked_run_survives_a_page_change_and_a_reload(page):
    assert "sigmoid output" in sidebar_text(page)  # the default model
    flip(page, "model_output_activation", "tanh")
    flip(page, "data_normalization", "zscore")
    assert "tanh output" in sidebar_text(page) and "zscore normalization" in sidebar_text(page)
    assert run_in_address(page) == [PICKED], page.url

    go_to(page, "Latent space")
    page.wait_for_url("**/latent?*run=*", timeout=30_000)  # written again after the page change dropped it
    assert run_in_address(page) == [PICKED], page.url
    page.reload(wait_until="domcontentloaded")
    wait_settled(page, timeout=90_000)
    shutil.copy(screenshot(page, "views-survive", full_page=False), SHOT)
    assert_no_exception(page, "after the reload")
    assert urlsplit(page.url).path.endswith("/latent") and run_in_address(page) == [PICKED], page.url
    text = sidebar_text(page)
    assert "tanh output" in text and "zscore normalization" in text, text[:400]


def test_an_overflowing_value_in_a_link_gets_a_notice_and_leaves_the_address(page, app_url):
    page.goto(f"{app_url}/latent?interp_a=inf&prior_seed=1e309&traverse_range=nan", wait_until="domcontentloaded")
    wait_settled(page, timeout=90_000)
    assert_no_exception(page, "a link with inf, 1e309 and nan")
    text = page.get_by_test_id("stMain").inner_text()
    assert "“Image A” = 'inf' is not allowed here" in text and "“Seed” = '1e309'" in text, text[:600]
    assert not {"interp_a", "prior_seed", "traverse_range"} & set(parse_qs(urlsplit(page.url).query)), page.url
    seed = page.locator(".st-key-prior_seed input")
    seed.fill("7")
    seed.press("Enter")  # bound again from the next rerun: the address follows the widget
    wait_settled(page)
    assert parse_qs(urlsplit(page.url).query).get("prior_seed") == ["7"], page.url
    assert_no_exception(page, "after setting the seed")
