"""Every configuration renders: tiny runs at the extremes the Train form and the CLI allow (latent 1 and 256,
batch 1, 64-pixel sprites, the MLP on RGB and on grey, each likelihood and output activation, BatchNorm
before the output, no test metrics, a diverged run, one test image), each opened on every page with AppTest.

Runs are built once per module (a few training steps on a few dozen images); grey 28-pixel data is a
tiny MNIST written in torchvision's layout, so nothing is downloaded and nothing skips.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from vae_core.config import DataConfig, LossConfig, ModelConfig, TrainConfig
from vae_core.export.frames import TRAVERSAL_MAX_DIMS
from vae_core.data.datasets import load_dataset
from vae_core.data.sprites import make_sprites
from vae_core.model.evaluate import COLLAPSE_MIN_STEPS, posterior_collapse
from vae_core.jobs.training_job import TrainingJob
from vae_core.model.latent import project_2d
from vae_plots.latent_map import GRID_CURVE
from vae_core.model.vae import build_model
from vae_core.data.normalize import fit_normalizer
from vae_core.runs.folders import save_run
from vae_core.training.trainer import TrainingData, make_run_config

ROOT = Path(__file__).resolve().parents[1]
RECON, LATENT, DIAG, TRAIN = (f"app_pages/{p}.py" for p in ("reconstructions", "latent", "diagnostics", "train"))
N_TEST = 40


@dataclass(frozen=True)
class Case:
    data: DataConfig = DataConfig(n_train=32, n_test=N_TEST)
    model: ModelConfig = ModelConfig(width=4, depth=2, hidden_dim=16)
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig(epochs=1, batch_size=16)
    status: tuple[str, ...] = ("finished",)  # what training may end in
    evaluated: bool = True  # False: saved with no test metrics and no history, as a run from elsewhere may be


def case(status: str | tuple[str, ...] = "finished", evaluated: bool = True, **parts: dict) -> Case:
    """A Case whose data, model, loss and train sections replace the tiny defaults' fields."""
    base = Case()
    changed = {name: dataclasses.replace(getattr(base, name), **kw) for name, kw in parts.items()}
    statuses = (status,) if isinstance(status, str) else status
    return dataclasses.replace(base, status=statuses, evaluated=evaluated, **changed)


GREY = dict(dataset="mnist")
CASES: dict[str, Case] = {
    "latent-1": case(model=dict(latent_dim=1)),
    "latent-256": case(model=dict(latent_dim=256)),
    "batch-1": case(data=dict(n_train=5), train=dict(batch_size=1)),
    "sprites-64px": case(data=dict(image_size=64), model=dict(depth=3)),
    "mlp-rgb-32px": case(model=dict(arch="mlp")),
    "mlp-grey-28px": case(data=GREY, model=dict(arch="mlp", latent_dim=2)),
    "conv-grey-28px-depth-5": case(data=GREY, model=dict(depth=5)),
    "bernoulli-sigmoid-unit": case(loss=dict(likelihood="bernoulli")),
    "continuous_bernoulli-sigmoid-unit": case(loss=dict(likelihood="continuous_bernoulli")),
    "gaussian-tanh-symmetric": case(data=dict(normalization="symmetric"), model=dict(output_activation="tanh"),
                                    loss=dict(likelihood="gaussian")),
    "gaussian_learned-linear-zscore": case(data=dict(normalization="zscore"), model=dict(output_activation="linear"),
                                           loss=dict(likelihood="gaussian_learned")),
    "gaussian_optimal-sigmoid-unit": case(loss=dict(likelihood="gaussian_optimal")),
    "gaussian_pixel-linear-zscore": case(data=dict(normalization="zscore"), model=dict(output_activation="linear"),
                                         loss=dict(likelihood="gaussian_pixel")),
    "laplace-tanh-symmetric": case(data=dict(normalization="symmetric"), model=dict(output_activation="tanh"),
                                   loss=dict(likelihood="laplace")),
    "batchnorm-sigmoid-unit-gaussian": case(model=dict(output_norm="batchnorm"), loss=dict(likelihood="gaussian")),
    "no-test-metrics": case(evaluated=False),
    # A tiny fixed sigma and a huge learning rate: ELBOs of -1e9 nats, then NaN at step 2.
    "diverged": case("diverged", data=dict(normalization="zscore"), model=dict(output_activation="linear"),
                     loss=dict(likelihood="gaussian", sigma=0.001), train=dict(epochs=2, lr=1.0)),
    "one-test-image": case(data=dict(n_test=1), model=dict(latent_dim=3)),
    # lr 0.1 instead: no NaN, but ELBOs of -1e21 nats and a KL of 1e14 (it may still diverge on another CPU).
    "exploded": case(("finished", "diverged"), data=dict(normalization="zscore"),
                     model=dict(output_activation="linear"),
                     loss=dict(likelihood="gaussian", sigma=0.001), train=dict(epochs=2, lr=0.1)),
    "diverged-batchnorm": case("diverged", data=dict(normalization="zscore"),
                               model=dict(output_activation="linear", output_norm="batchnorm"),
                               loss=dict(likelihood="gaussian", sigma=0.001), train=dict(epochs=2, lr=1.0)),
    "diverged-gaussian_optimal": case("diverged", data=dict(normalization="zscore"),
                                      model=dict(output_activation="linear"),
                                      loss=dict(likelihood="gaussian_optimal"), train=dict(epochs=2, lr=1.0)),
}
# The two diverged-* cases pin that a diverged run keeps finite buffers too (BatchNorm statistics,
# gaussian_optimal's sigma*), so it can be loaded and inspected.
PARAMS = list(CASES)


# --------------------------------------------------------------------------------------------- building runs

def write_idx(path: Path, array: np.ndarray) -> None:
    """An uint8 array in the idx format torchvision's MNIST reads (big-endian dims after a magic number)."""
    header = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_tiny_mnist(root: Path, n: int = 64) -> Path:
    """Grey 28x28 'digits' (sprites' brightness, cropped) in root/MNIST/raw, both splits."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    sprites = make_sprites(n, 32, seed=1)
    grey = sprites.images.float().mean(1)[:, 2:30, 2:30].round().numpy()  # (n, 28, 28)
    labels = (sprites.labels.numpy() * 2 + np.arange(n) % 2) % 10
    for split in ("train", "t10k"):
        write_idx(raw / f"{split}-images-idx3-ubyte", grey)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return root


def build_run(name: str, spec: Case, runs_dir: Path, data_dir: Path) -> Path:
    """Train the case for its few steps and save it as the app would (evaluated), or save it untrained."""
    data = dataclasses.replace(spec.data, data_dir=str(data_dir)) if spec.data.dataset != "sprites" else spec.data
    config = make_run_config(data, spec.model, spec.loss, spec.train)
    train = load_dataset(config.data, "train")
    prepared = TrainingData(train, load_dataset(config.data, "test"),
                            fit_normalizer(data.normalization, train.images, data.data_scale))
    if not spec.evaluated:  # stopped before its first step, its evaluation failed: "test" is null
        torch.manual_seed(0)
        model = build_model(config.model, config.loss.likelihood, config.loss.sigma)
        return save_run(runs_dir / name, model, config, prepared.normalizer,
                        {"status": "stopped", "steps": 0, "test": None})
    job = TrainingJob(config, runs_dir, data=prepared, run_dir=runs_dir / name)
    job.run()  # in this thread: train, evaluate and save, as the app's worker does
    snap = job.snapshot()
    assert snap.status in spec.status and snap.run_dir is not None, (name, snap.status, snap.message)
    return snap.run_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Callable[[str], Path]:
    """name -> the run folder, built on first use and kept for the module; each in a runs folder of its own,
    because the sidebar labels runs by activation · normalization · likelihood and Streamlit maps a label
    shared by two runs back to the last of them: the loaded run would switch at the next rerun."""
    data_dir = write_tiny_mnist(tmp_path_factory.mktemp("data"))
    runs_root = tmp_path_factory.mktemp("runs")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = build_run(name, CASES[name], runs_root / name, data_dir)
        return cache[name]
    return get


# --------------------------------------------------------------------------------------------- rendering

def figure(at: AppTest, key: str) -> dict:
    """The Plotly figure of the chart with this key (what the browser would draw)."""
    chart = next(c for c in at.get("plotly_chart") if c.proto.id and key in c.proto.id)
    return json.loads(chart.proto.spec)


def values(array: list | dict) -> np.ndarray:
    """Plotly's JSON holds arrays as lists or as base64 typed arrays ({"dtype", "bdata"})."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
    return np.asarray(array)


def widget_keys(at: AppTest) -> set[str]:
    return {w.key for kind in ("slider", "number_input", "selectbox", "select_slider") for w in at.get(kind)}


def check_page(at: AppTest, name: str, page: str) -> None:
    """No exception, no error; a chart on each page of this file's scope (Train may have no history to draw)."""
    where = f"{name} on {page}"
    assert not at.exception, (where, [e.value for e in at.exception])
    assert not at.error, (where, [e.value for e in at.error])
    assert page == TRAIN or at.get("plotly_chart"), f"{where}: no chart"


def check_reconstructions(at: AppTest, spec: Case) -> None:
    grid = figure(at, "recon_grid")["data"][0]
    assert grid["type"] == "image" and grid["source"].startswith("data:image/png;base64,")
    cards = {m.label for m in at.metric}
    assert ("ELBO" in cards) == spec.evaluated
    assert spec.evaluated or any("no test metrics" in i.value for i in at.info)


def check_latent(at: AppTest, spec: Case) -> None:
    latent_dim, n_test = spec.model.latent_dim, spec.data.n_test
    rows = figure(at, "traversal_chart")["layout"]["yaxis"]["ticktext"]
    assert len(rows) == min(latent_dim, 10)  # the default: 10 rows at most
    if latent_dim == 1:
        assert "traverse_dims" not in widget_keys(at)  # min = max: no slider, a caption says why
    else:
        assert at.slider(key="traverse_dims").max == min(latent_dim, TRAVERSAL_MAX_DIMS)
    points = figure(at, "map_chart")["data"][GRID_CURVE + 1:]  # the invisible click targets first
    assert sum(len(values(t["x"])) for t in points) == n_test
    assert all(np.isfinite(values(t["x"]).astype(float)).all() for t in points)


def check_diagnostics(at: AppTest, spec: Case) -> None:
    bars = figure(at, "diag_kl")["data"]
    assert sum(len(b["x"]) for b in bars) == spec.model.latent_dim
    cards = {m.label: m.value for m in at.metric}
    value, _, error = cards["ELBO"].partition(" ± ")  # the estimate, then its standard error
    assert len(value) <= 12 and len(error) <= 12, cards["ELBO"]  # "-1.70 × 10⁹", not "-1700476672.00"
    if spec.status == ("diverged",):
        assert any("diverged at step" in w.value for w in at.warning)
    assert any("too early to speak of posterior collapse" in c.value for c in at.caption)  # a few steps only


CHECKS = {RECON: check_reconstructions, LATENT: check_latent, DIAG: check_diagnostics}


@pytest.mark.parametrize("name", PARAMS)
def test_every_page_renders(name, built, monkeypatch):
    path = built(name)
    monkeypatch.setenv("VAE_LAB_RUNS", str(path.parent))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["run_path"] = str(path)
    at.run()
    for page in (RECON, LATENT, DIAG, TRAIN):
        if page != RECON:
            at.switch_page(page).run()
        check_page(at, name, page)
        assert at.session_state["run_path"] == str(path), f"{name} on {page}: the run did not stay loaded"
        if page in CHECKS:
            CHECKS[page](at, CASES[name])


# --------------------------------------------------------------------------------------------- the rules behind them

def test_the_collapse_alarm_needs_a_trained_model_with_no_informative_dimension():
    quiet = [0.001] * 10
    assert posterior_collapse(quiet) and posterior_collapse(quiet, steps=COLLAPSE_MIN_STEPS)
    assert not posterior_collapse(quiet, steps=1)  # a run that diverged at step 2 holds its initial weights
    assert not posterior_collapse([0.001] * 255 + [4.0], steps=5000)  # one dimension used: z is not ignored
    assert not posterior_collapse([])


@pytest.mark.parametrize("mu", [torch.zeros(1, 5), torch.ones(4, 5), torch.tensor([[1.0, float("nan"), 0.0]])])
def test_the_map_projects_what_a_pca_cannot(mu):
    """One test image, identical codes or a NaN: the first two coordinates as they are, no crash, no "nan%"."""
    proj = project_2d(mu)
    assert proj.points.shape == (len(mu), 2) and proj.explained is None and proj.axis_names == ("z0", "z1")


def test_one_latent_dimension_is_mapped_on_a_line():
    proj = project_2d(torch.arange(3.0)[:, None])
    assert proj.points[:, 1].eq(0).all() and proj.axis_names == ("z0", "—")
