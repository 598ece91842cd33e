"""End to end: a link to the Compare page, opened in a fresh browser, draws the runs it names."""
from __future__ import annotations

import shutil

import pytest

from browser_harness import PLOTLY, wait_settled
from tests.helpers import assert_no_exception, screenshot

pytestmark = pytest.mark.e2e

# A family of the zoo: z-scored sprites, fixed-σ Gaussian, the three output activations.
THREE = ("sprites-sigmoid-zscore-gaussian", "sprites-tanh-zscore-gaussian", "sprites-linear-zscore-gaussian")
ACTIVATIONS = ("sigmoid", "tanh", "linear")


def test_a_compare_link_draws_three_runs(page, app_url, tmp_path):
    page.goto(f"{app_url}/compare?compare={','.join(THREE)}", wait_until="domcontentloaded")
    wait_settled(page, timeout=90_000)
    errors_chart = page.locator(f".st-key-compare_errors {PLOTLY}")
    curves = page.locator(f".st-key-compare_curves {PLOTLY}")
    for chart in (errors_chart, curves, page.locator(f".st-key-compare_ranges {PLOTLY}")):
        chart.wait_for(state="visible", timeout=60_000)
    shot = tmp_path / "compare.png"
    shutil.copy(screenshot(page, "page-compare"), shot)  # the whole page (Streamlit scrolls inside <main>)
    assert_no_exception(page, "Compare from a link", shot)
    rows = errors_chart.locator(".ytick text").all_text_contents()
    assert len(rows) == 3 and all(a in r for a, r in zip(ACTIVATIONS, rows)), f"error-map rows {rows} ({shot})"
    assert curves.locator("g.legend g.traces").count() == 3, f"curve legend ({shot})"
    assert curves.locator("g.scatterlayer g.trace").count() == 9, f"three panels of three runs ({shot})"
