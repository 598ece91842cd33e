"""End to end: Diagnostics draws at once what the bundled run saved, and an estimate it did not save (another k,
more images) says it is computing, then appears without a click: the page never waits for it."""
from __future__ import annotations

import pytest

from browser_harness import wait_settled
from tests.helpers import assert_no_exception, screenshot

pytestmark = pytest.mark.e2e


def main_text(page) -> str:
    return page.get_by_test_id("stMain").inner_text()


def test_diagnostics_draws_saved_estimates_at_once_and_fills_in_a_costly_one(page, app_url):
    page.goto(f"{app_url}/diagnostics", wait_until="domcontentloaded")
    wait_settled(page, timeout=90_000)
    assert_no_exception(page, "Diagnostics on the bundled run")
    text = main_text(page)
    assert "IWAE bound, k = 20" in text and "Active units" in text and "Computing on" not in text, text[:800]

    page.goto(f"{app_url}/diagnostics?iwae_k=10&iwae_n=500", wait_until="domcontentloaded")
    page.get_by_text("Computing on 500 test images (IWAE, k = 10)").wait_for(timeout=60_000)
    page.get_by_test_id("stMain").get_by_text("Active units", exact=True).wait_for(timeout=30_000)  # the posterior section does not wait for it
    page.get_by_text("Computing on 500 test images (IWAE, k = 10)").scroll_into_view_if_needed()
    screenshot(page, "diagnostics-computing", full_page=False)
    page.get_by_text("IWAE bound, k = 10").wait_for(timeout=120_000)  # no click: the page's poller redraws it
    wait_settled(page, timeout=60_000)
    assert_no_exception(page, "after the estimate filled in")
    assert "Computing on" not in main_text(page)
    page.get_by_text("IWAE bound, k = 10").scroll_into_view_if_needed()
    screenshot(page, "diagnostics-filled-in", full_page=False)
