"""Your images from the command line: the same loader as the app, the same summary, training and labs."""
from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from vae_core.cli.main import main
from vae_core.config import DataConfig
from vae_core.data.datasets import dataset_shape
from vae_core.runs.folders import load_run, read_samples


def folder_of_images(root, grey: bool = False):
    """Two class folders of 12 small images, and a text file the loader skips."""
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for k in range(12):
            shape = (20, 30) if grey else (20, 30, 3)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / cls / f"{k}.png")
    (root / "readme.txt").write_text("hello")
    return root


def test_the_images_command_says_what_it_loaded_and_what_each_activation_cannot_reach(tmp_path, capsys):
    assert main(["images", str(folder_of_images(tmp_path / "mine")), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["summary"].startswith("24 images loaded (22 train, 2 test, 2 classes); 1 skipped: 1 not an image")
    assert record["skipped"] == [{"name": "readme.txt", "reason": "not_image",
                                  "detail": "not a PNG, JPEG, BMP, WebP, GIF or TIFF image"}]
    outside = record["stats"]["outside"]
    assert outside["unit"]["sigmoid"] == 0 and outside["zscore"]["linear"] == 0 and outside["zscore"]["tanh"] > 0.3
    assert main(["images", str(tmp_path / "mine")]) == 0
    assert "zscore" in capsys.readouterr().out


def test_training_on_a_folder_carries_its_labelled_test_images(tmp_path, capsys):
    images = folder_of_images(tmp_path / "mine", grey=True)
    argv = ["train", "--dataset", "images", "--images", str(images), "--image-size", "28", "--width", "8",
            "--latent-dim", "2", "--epochs", "1", "--batch-size", "8", "--runs-dir", str(tmp_path / "runs"), "--quiet"]
    assert main(argv) == 0
    run = load_run(capsys.readouterr().out.strip())
    assert run.config.data.color == "grey" and run.config.model.channels == 1  # "auto" settled from the images
    samples = read_samples(run.path)
    assert samples.images.shape == (2, 1, 28, 28) and samples.label_names == ("a", "b")


def test_images_without_the_images_dataset_are_refused(tmp_path, capsys):
    assert main(["train", "--images", str(tmp_path), "--quiet"]) == 2
    assert "needs dataset='images'" in capsys.readouterr().err
    assert main(["lab", "sampled-z", "--dataset", "images"]) == 2
    assert "--images PATH" in capsys.readouterr().err
    assert main(["images", str(tmp_path / "nothing-here")]) == 2
    assert "neither a folder nor a file" in capsys.readouterr().err


def test_auto_colour_is_read_from_the_images(tmp_path):
    grey = folder_of_images(tmp_path / "grey", grey=True)
    cfg = DataConfig(dataset="images", images=str(grey), image_size=64)
    assert dataset_shape(cfg) == (1, 64)
    assert dataset_shape(DataConfig(dataset="images", images=str(grey), color="rgb")) == (3, 32)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (255, 0, 0)).save(buf, "PNG")
    (grey / "a" / "red.png").write_bytes(buf.getvalue())
    assert dataset_shape(cfg) == (3, 64)  # one image in colour: RGB


def test_a_lab_runs_on_images_from_the_cli(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("VAE_LAB_JOB_TIME_CAP_S", "1")
    images = folder_of_images(tmp_path / "mine")
    code = main(["lab", "sampled-z", "--dataset", "images", "--images", str(images), "--steps", "20",
                 "--runs-dir", str(tmp_path / "runs"), "--report", str(tmp_path / "report")])
    out = capsys.readouterr().out
    assert code == 0 and "samples nearest x" in out
    assert f"--dataset images --images {images}" in (tmp_path / "report" / "report.md").read_text()
