"""End to end: the not-unit lab on the bundled vectors runs from the Labs page in Chromium at a tiny budget and answers
the asker from its own runs: their loss as a proper ELBO, each variant's σ, ELBO per raw row and posterior μ range."""
from __future__ import annotations

from pathlib import Path

import pytest

from vae_core.labs import not_unit_vectors
from browser_harness import VIEWPORT, running_server, wait_settled
from tests.e2e.test_labs_browser import choose, conclusion
from tests.helpers import assert_no_exception, screenshot

pytestmark = pytest.mark.e2e

LAB = not_unit_vectors.LAB
LAB_ID = LAB.id


def test_the_not_unit_lab_runs_on_the_bundled_vectors_from_the_labs_page(browser, tmp_path: Path):
    with running_server(tmp_path / "runs", tmp_path) as server:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(f"{server.url}/labs", wait_until="domcontentloaded")
        wait_settled(page, timeout=60_000)
        choose(page, "lab", LAB.title)
        main = page.locator("[data-testid='stMain']")
        assert "unrestricted input" in main.inner_text() and "the bundled vectors" in main.inner_text()
        steps = page.locator(f".st-key-lab_steps_{LAB_ID} input")
        steps.fill("30")
        steps.press("Enter")
        wait_settled(page)
        page.locator(".st-key-lab_run button").click()
        found = conclusion(page)
        assert "proper ELBO with σ = 0.0245 on z-scored features" in found and "D = 12 features" in found
        assert "No bits/dim here" in found and "posterior means from" in found
        assert "nats per raw row" in main.inner_text() and "σ per feature" in main.inner_text()
        assert page.locator(".st-key-lab_chart [data-testid='stPlotlyChart']").count() == 1  # the μ ranges
        assert page.locator("[data-testid='stDataFrame']").count() == 1  # the table (a canvas grid)
        assert_no_exception(page, "the not-unit lab on vectors")
        page.locator(".st-key-lab_conclusion").scroll_into_view_if_needed()
        screenshot(page, "lab-not-unit-vectors")
