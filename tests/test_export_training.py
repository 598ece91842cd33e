"""A run's training previews: kept while it trains (bounded, continued by a resume), saved in its folder and its
.zip, read back defensively, and exported as an animated GIF and a PNG by the library and the command line."""
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from tests.helpers import tiny_config
from vae_core.cli.main import main
from vae_core.export import training as t
from vae_core.export.archive import run_zip
from vae_core.export.encode import FRAME_MS, MIN_FRAMES, ExportError, gif_bytes
from vae_core.export.frames import mosaic
from vae_core.jobs.previews import PreviewKeeper
from vae_core.jobs.progress import N_PREVIEW, Preview
from vae_core.jobs.training_job import TrainingJob
from vae_core.runs.folders import RunLoadError, bundled_models_dir, load_run, read_previews
from vae_core.runs.previews import MAX_PREVIEW_FRAMES, PREVIEWS, TrainingPreviews
from vae_core.training.trainer import prepare_data

STEPS_PER_EPOCH = 4  # tiny_config: 128 images in batches of 32


def _train(run_dir: Path, epochs: int, resume: bool = False) -> None:
    """tiny_config for `epochs`, a preview every step; the run saved at run_dir."""
    job = TrainingJob(tiny_config(epochs, None), run_dir.parent, run_dir=run_dir, preview_every_s=0.0,
                      checkpoint_every_s=60.0, resume=resume)
    job.run()
    assert job.snapshot().status == "finished", job.snapshot().message


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    _train(run_dir, 2)
    return run_dir


def _gif(data: bytes) -> tuple[int, int]:
    """(frames, total duration in ms) as PIL decodes the GIF."""
    gif = Image.open(io.BytesIO(data))
    durations = []
    for i in range(gif.n_frames):
        gif.seek(i)
        durations.append(gif.info["duration"])
    return gif.n_frames, sum(durations)


def test_a_run_keeps_its_first_test_images_reconstructed_at_every_preview(trained):
    previews = read_previews(trained)
    steps = 2 * STEPS_PER_EPOCH
    assert previews.steps.tolist() == list(range(1, steps + 1))  # the final save's preview repeats step 8: kept once
    test = prepare_data(tiny_config()).test.images[:N_PREVIEW]
    assert np.array_equal(previews.inputs, test.numpy()) and previews.recons.shape == (steps, *test.shape)
    assert previews.recons.dtype == np.uint8 and not np.array_equal(previews.recons[0], previews.recons[-1])


def test_a_resumed_run_continues_its_previews(tmp_path, trained):
    run_dir = tmp_path / "resumed"
    _train(run_dir, 1)
    _train(run_dir, 2, resume=True)
    again = read_previews(run_dir)
    assert again.steps.tolist() == list(range(1, 2 * STEPS_PER_EPOCH + 1))
    assert np.array_equal(again.recons, read_previews(trained).recons)  # resuming equals training straight through


def test_the_kept_previews_stay_bounded_and_even_from_the_first_to_the_latest():
    keeper, images = PreviewKeeper(), np.zeros((2, 1, 4, 4), np.uint8)
    for step in range(1, 1001):
        keeper.add(Preview(step, images, np.full_like(images, step % 256)))
    keeper.add(Preview(1000, images, images))  # a step kept already is not kept twice
    steps = keeper.saved().steps
    assert len(steps) <= MAX_PREVIEW_FRAMES and steps[0] == 1 and steps[-1] == 1000
    assert len(set(np.diff(steps[:-1]))) == 1  # evenly spaced, then the latest


def test_the_gif_has_a_frame_a_step_and_holds_the_last(trained):
    previews = read_previews(trained)
    frames = t.training_frames(previews)
    assert len(frames) == len(previews) + t.HOLD_FRAMES >= MIN_FRAMES
    assert _gif(gif_bytes(frames)) == (len(frames), len(frames) * FRAME_MS)  # no two alike: none merge
    assert not np.array_equal(frames[0], frames[len(previews) - 1])
    assert frames[0].shape[0] == mosaic(np.stack([previews.inputs] * 2) / 255).shape[0] + t.CAPTION_PX


def test_two_kept_steps_still_make_an_animation_of_min_frames(trained):
    previews = read_previews(trained)
    two = TrainingPreviews(previews.steps[[0, -1]], previews.inputs, previews.recons[[0, -1]])
    frames = t.training_frames(two)
    assert len(frames) == MIN_FRAMES
    assert _gif(gif_bytes(frames)) == (MIN_FRAMES, MIN_FRAMES * FRAME_MS)


def test_the_png_is_the_inputs_over_a_few_steps_with_a_label_column(trained):
    previews = read_previews(trained)
    still = t.training_still(previews)
    tiles = mosaic(np.stack([previews.inputs, *previews.recons[:t.STILL_STEPS]]) / 255)
    assert still.shape == (tiles.shape[0], t.LABEL_PX + tiles.shape[1], 3)
    assert np.array_equal(still[:, t.LABEL_PX:][:tiles.shape[0] // 6], tiles[:tiles.shape[0] // 6])  # inputs on top


def test_a_zipped_run_keeps_its_previews(trained, tmp_path):
    with zipfile.ZipFile(io.BytesIO(run_zip(trained))) as archive:
        assert f"{trained.name}/{PREVIEWS}" in archive.namelist()
        archive.extractall(tmp_path)
    assert np.array_equal(read_previews(tmp_path / trained.name).recons, read_previews(trained).recons)


def _hostile(run_dir: Path, case: str) -> None:
    good = read_previews(run_dir)
    tensors = {"steps": torch.from_numpy(good.steps), "inputs": torch.from_numpy(good.inputs),
               "recons": torch.from_numpy(good.recons)}
    if case == "garbage":
        (run_dir / PREVIEWS).write_bytes(b"\xff" * 64)
        return
    if case == "backwards":
        tensors["steps"] = tensors["steps"].flip(0)
    if case == "other shape":
        tensors["recons"] = tensors["recons"][:, :, :, :8]
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(run_dir / PREVIEWS),
              metadata={"format": "vae-lab-previews/1"} if case != "no format" else {})


@pytest.mark.parametrize("case, words", [("garbage", "not a readable safetensors file"),
                                         ("no format", "not a VAE Lab previews file"),
                                         ("backwards", "increasing steps"), ("other shape", "increasing steps")])
def test_a_bad_previews_file_is_refused_and_the_run_still_loads(trained, tmp_path, case, words):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("weights.safetensors", "config.json", "metrics.json", PREVIEWS):
        (run_dir / name).write_bytes((trained / name).read_bytes())
    _hostile(run_dir, case)
    with pytest.raises(RunLoadError, match=words) as refused:
        read_previews(run_dir)
    assert "Delete it: the run loads without it" in str(refused.value)
    assert load_run(run_dir).config == load_run(trained).config


def _export(run_dir: Path, out: Path) -> int:
    """python -m vae_core export RUN --what training --out OUT, in this process (a new one takes 6 s to start)."""
    return main(["export", str(run_dir), "--what", "training", "--out", str(out)])


def test_the_cli_exports_the_training_gif_and_png(trained, tmp_path, capsys):
    assert _export(trained, tmp_path / "training.gif") == 0
    assert f"training: {len(read_previews(trained)) + t.HOLD_FRAMES} frames" in capsys.readouterr().err
    assert Image.open(tmp_path / "training.gif").n_frames == len(read_previews(trained)) + t.HOLD_FRAMES
    assert _export(trained, tmp_path / "training.png") == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "training.png")), t.training_still(read_previews(trained)))


def test_the_cli_refuses_a_run_without_previews_in_one_line(tmp_path, capsys):
    assert _export(bundled_models_dir() / "sprites-tanh-zscore-gaussian", tmp_path / "training.png") == 2
    err = capsys.readouterr().err
    assert "has no training previews" in err and "Train it again" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "training.png").exists()


def test_the_library_says_what_to_do_where_a_run_kept_none():
    with pytest.raises(ExportError, match="Train it again in this version, or resume it where it has train_state"):
        t.training_previews(bundled_models_dir() / "sprites-tanh-zscore-gaussian")


def test_reconstructions_says_quietly_that_a_bundled_run_kept_no_previews():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=60)
    at.switch_page("app_pages/reconstructions.py").run()
    assert not at.exception
    assert any("none kept with this run" in c.value for c in at.caption)
    assert not any(b.proto.id.endswith("training_gif") for b in at.get("download_button"))
