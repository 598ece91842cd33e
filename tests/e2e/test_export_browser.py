"""End to end: an instructor downloads a traversal as an animated GIF and a PNG, the loaded run as a .zip and
Compare's metrics as CSV, in Chromium at 1024×768, and each file opens: the GIF has its frames, the PNG decodes,
the zip loads as a run in a fresh runs folder, the CSV has a row a run. A run that kept its training previews
offers them on Reconstructions as a GIF, a frame a kept step."""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from browser_harness import wait_settled
from tests.helpers import assert_no_exception, screenshot, tiny_config
from vae_core.export.encode import MIN_FRAMES
from vae_core.export.training import HOLD_FRAMES
from vae_core.jobs.training_job import TrainingJob
from vae_core.runs.folders import load_run, read_previews

pytestmark = pytest.mark.e2e

PROJECTOR = {"width": 1024, "height": 768}
RUN = "sprites-tanh-zscore-gaussian"
OTHER = "sprites-sigmoid-unit-gaussian"


def _download(page, key: str, to: Path) -> Path:
    """Click the download button with this key; the file, saved under `to` by its suggested name."""
    button = page.locator(f".st-key-{key} button")
    button.scroll_into_view_if_needed()
    with page.expect_download(timeout=60_000) as info:
        button.click()
    path = to / info.value.suggested_filename
    info.value.save_as(path)
    return path


def test_a_traversal_a_run_and_the_metrics_download_and_open(browser, app_url, tmp_path):
    context = browser.new_context(viewport=PROJECTOR, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(f"{app_url}/latent?run={RUN}", wait_until="domcontentloaded")
        wait_settled(page, timeout=120_000)
        shot = screenshot(page, "export-latent")
        assert_no_exception(page, "the Latent space page", shot)
        gif = Image.open(_download(page, "traversal_gif", tmp_path))
        assert gif.format == "GIF" and gif.n_frames >= MIN_FRAMES, shot
        png = _download(page, "traversal_png", tmp_path)
        assert png.name == f"{RUN}-traversal.png" and Image.open(png).size[1] > 5 * gif.size[1]  # the grid: a row a dim
        archive = _download(page, "run_zip", tmp_path)
        zipfile.ZipFile(archive).extractall(tmp_path / "runs")
        assert load_run(tmp_path / "runs" / RUN).config.model.output_activation == "tanh"
        page.goto(f"{app_url}/compare?compare={RUN},{OTHER}", wait_until="domcontentloaded")
        wait_settled(page, timeout=120_000)
        rows = list(csv.DictReader(_download(page, "compare_csv", tmp_path).open()))
        assert [r["folder"] for r in rows] == [RUN, OTHER] and float(rows[0]["bits/dim"]) > 0
        assert_no_exception(page, "the Compare page", screenshot(page, "export-compare"))
    finally:
        context.close()


def test_a_runs_training_previews_download_as_a_gif(browser, app_url, runs_dir, tmp_path):
    job = TrainingJob(tiny_config(epochs=2, time_budget_s=None), runs_dir, run_dir=runs_dir / "tiny-previews",
                      preview_every_s=0.0)  # a preview every step: 8 steps, 8 frames and the last held
    job.run()
    kept = len(read_previews(job.run_dir))
    context = browser.new_context(viewport=PROJECTOR, accept_downloads=True)
    page = context.new_page()
    try:
        page.goto(f"{app_url}/?run={job.run_dir.name}", wait_until="domcontentloaded")
        wait_settled(page, timeout=120_000)
        page.locator(".st-key-training_gif").scroll_into_view_if_needed()
        shot = screenshot(page, "export-training-previews", full_page=False)
        assert_no_exception(page, "the Reconstructions page", shot)
        assert page.get_by_text(f"{kept} steps from 1 to {kept}").count() == 1, shot
        gif = Image.open(_download(page, "training_gif", tmp_path))
        assert gif.format == "GIF" and gif.n_frames == kept + HOLD_FRAMES >= MIN_FRAMES, shot
        png = _download(page, "training_png", tmp_path)
        assert png.name == "tiny-previews-training.png" and Image.open(png).size[1] > 3 * gif.size[1] // 2
    finally:
        context.close()
