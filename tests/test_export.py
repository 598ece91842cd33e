"""Exports: a run's traversal, interpolation and prior samples as PNG and animated GIF, and a run as a .zip that
loads elsewhere; the command line with the page's defaults, and clear refusals."""
import csv
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core.export import frames as f
from vae_core.export.archive import RUN_FILES, run_zip
from vae_core.export.encode import MIN_FRAMES, ExportError, gif_bytes, mp4_available, mp4_bytes, png_bytes
from vae_core.runs.folders import bundled_models_dir, load_run
from vae_core.runs.listing import list_runs
from vae_core.runs.test_images import test_images as run_test_images

REPO = Path(__file__).resolve().parent.parent
RUN = bundled_models_dir() / "sprites-tanh-zscore-gaussian"


@pytest.fixture(scope="module")
def run():
    return load_run(RUN)


@pytest.fixture(scope="module")
def images(run):
    return run_test_images(run, 4)


def _gif(data: bytes) -> list[np.ndarray]:
    gif = Image.open(io.BytesIO(data))
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB")))
    return frames


# ----------------------------------------------------------------------------- pictures

def test_the_traversal_png_is_the_pages_grid_with_sharp_enlarged_tiles(run, images):
    dims = f.informative_dims(run, 3)
    grid = f.traversal_grid(run, images[0], dims, 2.0, 9)  # (3, 9, C, 32, 32)
    png = Image.open(io.BytesIO(png_bytes(f.mosaic(grid))))
    zoom = -(-f.TILE_PX // 32)
    assert png.format == "PNG" and png.size == (9 * 32 * zoom + 8 * f.GAP_PX, 3 * 32 * zoom + 2 * f.GAP_PX)
    tile = np.asarray(png)[:32 * zoom, :32 * zoom]
    expected = (grid[0, 0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
    assert np.array_equal(tile[::zoom, ::zoom], expected)  # whole-pixel enlargement of the decoded tile


def test_dimensions_come_most_kl_first(run):
    kl = run.metrics["test"]["kl_per_dim"]
    dims = f.informative_dims(run, 4)
    assert [kl[d] for d in dims] == sorted(kl, reverse=True)[:4]
    assert len(f.informative_dims(run, 99)) == min(run.config.model.latent_dim, f.TRAVERSAL_MAX_DIMS)


def test_the_traversal_gif_sweeps_every_value_there_and_back(run, images):
    grid = f.traversal_grid(run, images[0], f.informative_dims(run, 2), 3.0, 9)
    frames = _gif(gif_bytes(f.traversal_frames(grid)))
    assert len(frames) == 2 * 9 - 2 >= MIN_FRAMES
    assert not np.array_equal(frames[0], frames[8])  # -3σ and +3σ decode differently
    assert np.abs(frames[1].astype(int) - frames[-1].astype(int)).mean() < 3  # back again (palette rounding)
    assert Image.open(io.BytesIO(gif_bytes(f.traversal_frames(grid)))).info["loop"] == 0


def test_the_interpolation_gif_keeps_its_ends_and_moves_between(run, images):
    row = f.interpolation_row(run, images[0], images[1], 10)
    assert row.shape[0] == 12
    frames = _gif(gif_bytes(f.interpolation_frames(row)))
    assert len(frames) == 18
    width = frames[0].shape[1] // 3
    assert not np.array_equal(frames[0][:, width:2 * width], frames[9][:, width:2 * width])
    assert np.array_equal(frames[0][:, :width - 2], frames[9][:, :width - 2])  # A stays where it is


def test_prior_samples_are_a_new_draw_each_frame(run):
    frames = f.prior_frames(run, 16)
    assert len(frames) == 8 and not np.array_equal(frames[0], frames[1])
    assert np.array_equal(frames[0], f.mosaic(f.prior_grid(run, 16, 0), f.PRIOR_COLUMNS))


def test_an_animation_too_short_and_an_mp4_without_its_encoder_are_refused(run, images):
    grid = f.traversal_grid(run, images[0], [0], 1.0, 2)
    with pytest.raises(ExportError, match="at least 8 frames; this one has 2"):
        gif_bytes(f.traversal_frames(grid))
    if mp4_available():
        pytest.skip("imageio-ffmpeg is installed here")
    with pytest.raises(ExportError, match="pip install imageio imageio-ffmpeg"):
        mp4_bytes([f.mosaic(grid[:, 0])] * 8)


# ----------------------------------------------------------------------------- a run to take away

def test_a_zipped_run_loads_in_a_fresh_runs_folder(run, tmp_path):
    data = run_zip(RUN)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        assert sorted(names) == sorted(f"{RUN.name}/{n}" for n in RUN_FILES if (RUN / n).is_file())
        archive.extractall(tmp_path)
    again = load_run(tmp_path / RUN.name)
    assert again.config == run.config and again.metrics["test"] == run.metrics["test"]
    assert all(torch.equal(a, b) for a, b in zip(again.model.state_dict().values(), run.model.state_dict().values()))
    assert [r.name for r in list_runs(tmp_path)] == [RUN.name]


def test_a_broken_run_is_not_zipped(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ValueError):
        run_zip(tmp_path)


# ----------------------------------------------------------------------------- the command line

def _export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vae_core", "export", str(RUN), *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_the_cli_writes_a_gif_with_the_pages_defaults(tmp_path):
    out = tmp_path / "traversal.gif"
    done = _export("--out", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out) and "traversal: 16 frames" in done.stderr
    gif = Image.open(out)
    assert gif.n_frames == 2 * f.TRAVERSAL_VALUES - 2 and gif.size[0] > 8 * gif.size[1]  # one row of 10 dims


@pytest.mark.parametrize("args, words", [(("--out", "x.jpg"), "should end in .png, .gif or .mp4"),
                                         (("--out", "x.gif", "--span", "9"), "--span from 0.5 to 5"),
                                         (("--out", "x.gif", "--dims", "0"), "--dims from 1 to 16"),
                                         (("--out", "x.png", "--what", "interpolation", "--b", "99999"),
                                          "pick a test image below")])
def test_the_cli_refuses_a_bad_flag_in_one_line(tmp_path, args, words):
    done = _export(*(str(tmp_path / a) if a.startswith("x.") else a for a in args))
    assert done.returncode == 2 and words in done.stderr and "Traceback" not in done.stderr


def test_reconstructions_and_their_error_maps_download_as_the_page_draws_them(run, images):
    rows = f.reconstruction_rows(run, images)
    assert rows.shape[:2] == (2, 4) and np.allclose(rows[0], images.numpy() / 255)  # float32 k / 255
    errors = f.error_maps(rows)
    colours = f.heat(errors)
    assert colours.shape == (4, 3, 32, 32) and 0 <= colours.min() and colours.max() <= 1
    worst = np.unravel_index(errors.argmax(), errors.shape)
    assert np.allclose(colours[worst[0], :, worst[1], worst[2]], f.VIRIDIS[-1])  # the largest error: the top colour
    assert np.allclose(f.heat(np.zeros((1, 2, 2)))[0, :, 0, 0], f.VIRIDIS[0])
    assert Image.open(io.BytesIO(png_bytes(f.mosaic(colours)))).size[1] == f.mosaic(colours).shape[0]


@pytest.mark.parametrize("page, keys", [
    ("app_pages/latent.py", {"traversal_png", "traversal_gif", "interp_png", "interp_gif", "prior_png", "prior_gif"}),
    ("app_pages/reconstructions.py", {"recon_png", "recon_errors_png"})])
def test_each_picture_offers_its_downloads_made_only_when_clicked(page, keys):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.switch_page(page).run()
    assert not at.exception
    buttons = {b.proto.id.rsplit("-", 1)[-1]: b.proto for b in at.get("download_button")}
    assert keys | {"run_zip"} <= set(buttons)
    assert all(b.deferred_file_id and not b.url for b in buttons.values())  # no bytes until a click


def test_the_metrics_csv_has_every_number_whole_and_a_row_a_run(run):
    from vae_core.model.evaluate import evaluate
    from vae_plots.compare_table import metrics_csv

    other = load_run(bundled_models_dir() / "sprites-sigmoid-unit-gaussian")
    images = run_test_images(run, 40)
    metrics = [evaluate(r.model, r.normalizer, images, iwae_k=4) for r in (run, other)]
    rows = list(csv.DictReader(io.StringIO(metrics_csv([run, other], [*metrics[:1], None], ["a", "b"]))))
    assert [r["folder"] for r in rows] == [RUN.name, "sprites-sigmoid-unit-gaussian"]
    assert float(rows[0]["ELBO (nats)"]) == metrics[0].elbo_nats  # whole, not the table's rounded text
    assert float(rows[0]["ELBO (nats) MC SE"]) == metrics[0].elbo_mc_se
    assert rows[1]["ELBO (nats)"] == "" and rows[1]["run"] == "b"  # no evaluation: empty, not a made-up number
