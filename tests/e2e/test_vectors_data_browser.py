"""End to end, in Chromium at 1024 × 768 on a fresh server: upload a CSV of unbounded numbers on Your data, see its
summary and each feature's range against the output activations, train a dense VAE on it for a few seconds from
the Train page, and see the run finish."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from browser_harness import running_server, wait_settled
from tests.helpers import assert_no_exception, screenshot

pytestmark = pytest.mark.e2e

SMALL = {"width": 1024, "height": 768}  # a classroom projector
CAP_S = "3"  # the host's cap on a job: a few seconds of training, for a test
ROWS, FEATURES = 600, 8


def unbounded_csv(path: Path) -> Path:
    """Rows of numbers on very different scales (hundreds to thousands, offset), two clusters in a label column."""
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, ROWS)
    scale = np.geomspace(0.5, 2000, FEATURES)
    x = (rng.normal(size=(ROWS, FEATURES)) + 3 * label[:, None]) * scale - scale
    lines = [",".join([*(f"x{j + 1}" for j in range(FEATURES)), "label"])]
    lines += [",".join([*(f"{v:.4f}" for v in row), f"group {k}"]) for row, k in zip(x, label)]
    path.write_text("\n".join(lines))
    return path


def test_a_person_uploads_rows_of_numbers_sees_their_ranges_and_trains_on_them(browser, tmp_path: Path):
    env = {"VAE_LAB_JOB_TIME_CAP_S": CAP_S, "VAE_LAB_UPLOADS": str(tmp_path / "uploads")}
    with running_server(tmp_path / "runs", tmp_path, env=env) as server:
        page = browser.new_context(viewport=SMALL).new_page()
        page.goto(f"{server.url}/images", wait_until="domcontentloaded")
        wait_settled(page, timeout=60_000)
        page.get_by_role("tab", name="Rows of numbers (.csv, .npy)").click()
        page.locator(".st-key-vectors_upload input[type='file']").set_input_files(str(unbounded_csv(tmp_path / "m.csv")))
        page.get_by_text(f"{ROWS} rows kept of {ROWS}").wait_for(timeout=60_000)
        wait_settled(page, timeout=60_000)
        main = page.inner_text("[data-testid='stMain']")
        assert f"sigmoid: {FEATURES} of {FEATURES} features leave (0, 1) under zscore" in main
        assert "linear: 0 of" in main and "2 labels" in main
        assert page.locator("[data-testid='stPlotlyChart']").count() == 1  # the ranges figure
        assert_no_exception(page, "the Your data page with vectors")
        screenshot(page, "vectors-your-data")

        page.locator(".st-key-vectors_train button").click()
        page.wait_for_url("**/train**", timeout=30_000)
        wait_settled(page, timeout=60_000)
        assert f"Your vectors: {ROWS} rows kept" in page.inner_text("[data-testid='stMain']")
        page.locator(".st-key-train_start button").click()
        page.wait_for_function("() => document.body.innerText.includes('Test metrics of this run')",
                               timeout=90_000, polling=500)
        wait_settled(page, timeout=60_000)
        text = page.inner_text("[data-testid='stMain']")
        assert "nats per normalized row" in text and "test rows" in text
        assert_no_exception(page, "the Train page after a run on vectors")
        screenshot(page, "vectors-training")
