"""Helpers that several test files share: tiny configs and run folders, polling, and the browser tests' checks.

Fixtures live in conftest.py; the browser and the server themselves in browser_harness, which bench/ shares.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest

from browser_harness import REPO, ServerError, exception_texts, start_server, stop_server, train_status
from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.host import HostSettings
from vae_core.model.vae import build_model
from vae_core.runs.folders import RunRecord, save_run
from vae_core.training.trainer import make_run_config, prepare_data

T = TypeVar("T")


# --------------------------------------------------------------------------- configs, run folders, settings

def tiny_config(epochs: int = 1000, time_budget_s: float | None = 60.0) -> RunConfig:
    """128 sprites, a 2-block conv VAE: a few ms a step; the budget ends a test that forgets to stop."""
    return make_run_config(DataConfig(n_train=128, n_test=32), ModelConfig(width=8, depth=2, latent_dim=4),
                           LossConfig(likelihood="bernoulli"),
                           TrainConfig(epochs=epochs, batch_size=32, lr=2e-3, time_budget_s=time_budget_s))


def save_activation_family(root: Path, activations: tuple[str, ...] = ("sigmoid", "tanh")) -> dict[str, Path]:
    """tiny-<activation> runs under root that differ only in the output activation (z-scored, Gaussian).

    Untrained models saved as finished runs, for tests that need configs, not training.
    """
    base = make_run_config(DataConfig(normalization="zscore", n_train=64, n_test=16), ModelConfig(width=8),
                           LossConfig(likelihood="gaussian"), TrainConfig(epochs=1))
    normalizer = prepare_data(base).normalizer
    runs = {}
    for act in activations:
        config = dataclasses.replace(base, model=dataclasses.replace(base.model, output_activation=act))
        model = build_model(config.model, "gaussian", 0.1, seed=0).eval()
        runs[act] = save_run(root / f"tiny-{act}", model, config, normalizer, RunRecord("finished").to_dict())
    return runs


def settings(tmp_path: Path, **kw) -> HostSettings:
    """A host with one job at a time and everything under tmp_path; kw overrides any field."""
    base = HostSettings(max_jobs=1, max_queue=4, job_time_cap_s=60.0, checkpoint_every_s=5.0, runs_dir=tmp_path,
                        data_dir=tmp_path, allow_download=False)
    return dataclasses.replace(base, **kw)


# --------------------------------------------------------------------------- waiting on jobs

def wait_for(condition: Callable[[], T], timeout: float = 60.0, every: float = 0.05) -> T:
    """Poll until condition() is truthy and return its value; fail with the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def read_metrics(run_dir: Path) -> dict | None:
    """The run's metrics.json, or None while it is missing or half written."""
    try:
        return json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- the browser tests (tests/e2e)

SCREENSHOTS = REPO / "artifacts" / "screenshots"
_CONTENT_HEIGHT_JS = """
() => Math.max(document.documentElement.scrollHeight,
  ...Array.from(document.querySelectorAll("[data-testid='stMain'], [data-testid='stSidebarContent']"))
     .map(e => e.scrollHeight))
"""
MAX_SCREENSHOT_HEIGHT = 8000


@contextlib.contextmanager
def running_app(runs_dir: Path, log_dir: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free loopback port, healthy; yields its base URL, stops it after."""
    try:
        server = start_server(runs_dir, log_dir)
    except ServerError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server.url
    finally:
        stop_server(server.proc)


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Save artifacts/screenshots/<name>.png under the repo root (git-ignored) and return its path.

    Streamlit scrolls inside its own <main> element, so Playwright's full_page alone captures one
    viewport: for a full page the viewport is stretched to the content's height for the shot.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    size = page.viewport_size
    height = min(int(page.evaluate(_CONTENT_HEIGHT_JS)), MAX_SCREENSHOT_HEIGHT) if full_page else 0
    if size and height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": height})
        page.wait_for_timeout(500)  # let the layout (and Plotly's resize handlers) catch up
        try:
            page.screenshot(path=str(path), full_page=True)
        finally:
            page.set_viewport_size(size)
    else:
        page.screenshot(path=str(path), full_page=full_page)
    return path


def assert_no_exception(page, where: str, shot: Path | None = None) -> None:
    """Fail, with a screenshot, if the page shows any Streamlit exception box."""
    texts = exception_texts(page)
    if texts:
        if shot is None:
            shot = screenshot(page, f"FAILED-{where}".replace(" ", "_"))
        pytest.fail(f"{where}: {len(texts)} exception box(es) on the page (screenshot {shot}):\n"
                    + "\n---\n".join(texts), pytrace=False)


def wait_for_status(page, word: str, timeout_s: float) -> str:
    """Poll the training status text until it contains `word`; fail early on a terminal other state."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = train_status(page).strip()
        if word in text:
            return text
        others = [w for w in ("diverged", "failed") if w in text and w != word]
        if others:
            shot = screenshot(page, f"FAILED-train-{others[0]}")
            pytest.fail(f"training ended as {others[0]!r} while waiting for {word!r}: {text!r} "
                        f"(screenshot {shot})", pytrace=False)
        page.wait_for_timeout(250)
    shot = screenshot(page, f"FAILED-train-no-{word}")
    pytest.fail(f"status never contained {word!r} within {timeout_s:.0f} s; last status: {text!r} "
                f"(screenshot {shot})", pytrace=False)
