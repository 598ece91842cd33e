"""Helpers that several test files share: tiny configs and run folders, an untrained sprite model and a reference
bin mass, uploads of a person's own images and the checks around reading them, polling, and the browser tests' checks.

Fixtures live in conftest.py; the browser and the server themselves in browser_harness, which bench/ shares.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import signal
import subprocess
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest
from torch.distributions import ContinuousBernoulli

from browser_harness import REPO, ServerError, exception_texts, start_server, stop_server, train_status
from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.data.images.dataset import UserImages, read_images
from vae_core.data.images.source import MB, UploadLimits, UploadRefused
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


def save_owned_run(root: Path, name: str, owner: str | None, steps: int = 100, **record) -> Path:
    """An untrained tiny sprites run saved at root/name as owner's, said to have trained `steps` steps; record
    overrides RunRecord's fields (status "running" with listing.writer_fields() is one training now)."""
    config = tiny_config()
    model = build_model(config.model, config.loss.likelihood, config.loss.sigma, seed=0).eval()
    metrics = RunRecord(**{"status": "finished", "owner": owner, "steps": steps, **record}).to_dict()
    return save_run(root / name, model, config, prepare_data(config).normalizer, metrics)


def settings(tmp_path: Path, **kw) -> HostSettings:
    """A host with one job at a time and everything under tmp_path; kw overrides any field."""
    base = HostSettings(max_jobs=1, max_queue=4, job_time_cap_s=60.0, checkpoint_every_s=5.0, runs_dir=tmp_path,
                        data_dir=tmp_path, allow_download=False)
    return dataclasses.replace(base, **kw)


# --------------------------------------------------------------------------- evaluation: a model and a reference

SPRITE_MODEL = dict(channels=3, image_size=32, latent_dim=4, width=8, depth=3)


def sprite_model(likelihood="gaussian", sigma=0.1, seed=0, **kw):
    """An untrained, seeded VAE for the 32 x 32 sprites, in eval mode; kw overrides SPRITE_MODEL's fields."""
    torch.manual_seed(seed)
    return build_model(ModelConfig(**{**SPRITE_MODEL, **kw}), likelihood, sigma).eval()


def reference_log_mass(px, lo, hi):
    """(B,) log P(k|z) per image: each pixel's bin mass as a difference of torch's CDFs (float64 here)."""
    if isinstance(px, ContinuousBernoulli):  # its support is [0, 1]
        lo, hi = lo.clamp(0, 1), hi.clamp(0, 1)
    return (px.cdf(hi) - px.cdf(lo)).log().flatten(1).sum(1)


# --------------------------------------------------------------------------- user images: making images and uploads
# A person's own images (vae_core.data.images): the good images every upload holds, and the zips they come in.

GOOD = 77  # the grey level of every ordinary image, so that the hostile one is the image that is not
GOOD_NAMES = ("good.png", "good2.png")  # two: a seeded split needs at least two usable images
PEAK_BYTES = 16 * MB  # no case holds more than this at once (the zip bomb alone would be 40 MB)


def encoded(im: Image.Image, fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def good_png(level: int = GOOD, size: tuple[int, int] = (32, 32)) -> bytes:
    return encoded(Image.new("L", size, level), "PNG")


def noise(fmt: str, size: int = 32, seed: int = 0, **save) -> bytes:
    """Random RGB pixels: nothing compresses, so a cut lands in the pixel data."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return encoded(Image.fromarray(pixels), fmt, **save)


Data = bytes | Callable[[], bytes]
Builder = Callable[[Path], Path]  # writes an upload under the given folder; returns its path


def as_bytes(d: Data) -> bytes:
    return d() if callable(d) else d


def zipped(*items: tuple[str | zipfile.ZipInfo, Data], good: bool = True,
           patch: Callable[[bytes], bytes] | None = None) -> Builder:
    """A zip of the good images (unless good=False) and the items, in order; patch rewrites its bytes after."""
    def build(where: Path) -> Path:
        buf = io.BytesIO()
        with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, which is the point
            if good:
                for name in GOOD_NAMES:
                    zf.writestr(name, good_png())
            for name, data in items:
                zf.writestr(name, as_bytes(data))
        path = where / "upload.zip"
        path.write_bytes(patch(buf.getvalue()) if patch else buf.getvalue())
        return path
    return build


# --------------------------------------------------------------------------- user images: expected outcomes

@dataclasses.dataclass(frozen=True)
class Skipped:
    reasons: frozenset[str]  # one reason, or either of two where both are right


def skipped(*reasons: str) -> Skipped:
    return Skipped(frozenset(reasons))


@dataclasses.dataclass(frozen=True)
class Loaded:
    notes: tuple[str, ...] = ()  # exactly these conversions
    pixels: Callable[[np.ndarray], bool] | None = None  # on the hostile image, (C, H, W) uint8


@dataclasses.dataclass(frozen=True)
class Refused:
    match: str  # a regex the UploadRefused message must match (re.search)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    build: Builder
    item: str  # the hostile file, as its outcome names it (the last outcome of that name)
    expect: Skipped | Loaded | Refused
    limits: UploadLimits = UploadLimits()
    cfg: dict = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------- user images: running a case

class _Deadline(Exception):
    pass


@contextlib.contextmanager
def deadline(seconds: float):
    """A case that hangs (a pipe opened for reading, a loop of pages) fails instead of stalling the suite."""
    def expire(*_):
        raise _Deadline(f"still reading after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def no_programs(*args, **kwargs):
    raise AssertionError(f"the loader started a program: {args[:1]}")  # Ghostscript, for one


def files_under(root: Path) -> set[str]:
    """Every path under root, links not followed (a pipe is listed, not opened)."""
    found = set()
    for top, dirs, files in os.walk(root):
        found |= {os.path.relpath(os.path.join(top, n), root) for n in dirs + files}
    return found


def evil_anywhere(tmp_path: Path) -> set[str]:
    """Names like evil.png where an extracting loader would have written them."""
    return {str(d / n) for d in (tmp_path.parent, Path("/tmp"), Path.cwd(), Path("/"))
            for n in os.listdir(d) if "evil" in n}


def hostile_image(result: UserImages) -> np.ndarray:
    """The one loaded image that is not GOOD's grey, as (C, H, W)."""
    images = torch.cat([result.train.images, result.test.images]).numpy()
    others = [im for im in images if not (im == GOOD).all()]
    assert len(others) == 1, f"{len(others)} images besides the good ones"
    return others[0]


def read_case(case: Case, upload: Path) -> tuple[UserImages | None, UploadRefused | None, int]:
    """read_images under a deadline and a memory trace: (result, refusal, peak bytes)."""
    cfg = DataConfig(dataset="images", images=str(upload), **case.cfg)
    tracemalloc.start()
    try:
        with deadline(10):
            return read_images(upload, cfg, case.limits), None, tracemalloc.get_traced_memory()[1]
    except UploadRefused as e:
        return None, e, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


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


def check_hostile_upload(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hostile item gets its stated outcome; nothing is written, no program runs, memory stays bounded (the
    corpus is split over two test files by what it attacks; both run their cases through this one check)."""
    made = tmp_path / "made"
    made.mkdir()
    upload = case.build(made)
    before, evil_before = files_under(tmp_path), evil_anywhere(tmp_path)
    monkeypatch.setattr(subprocess, "Popen", no_programs)

    result, refused, peak = read_case(case, upload)

    assert files_under(tmp_path) == before, "the loader wrote files"
    assert evil_anywhere(tmp_path) == evil_before, "a file escaped the upload"
    assert peak < PEAK_BYTES, f"held {peak / MB:.1f} MB at once"
    if isinstance(case.expect, Refused):
        assert refused is not None, f"not refused: {result.summary()}"
        assert re.search(case.expect.match, str(refused)), str(refused)
        return
    assert refused is None, f"refused: {refused}"
    mine = [o for o in result.outcomes if o.name == case.item]
    assert mine, f"no outcome named {case.item!r} among {[o.name for o in result.outcomes]}"
    outcome = mine[-1]
    assert any(o.skip is None for o in result.outcomes if o.name != case.item), "no ordinary image loaded"
    if isinstance(case.expect, Skipped):
        assert outcome.skip in case.expect.reasons, f"{outcome.skip}: {outcome.detail}"
        assert outcome.detail
        return
    assert outcome.skip is None, f"{outcome.skip}: {outcome.detail}"
    assert sorted(outcome.notes) == sorted(case.expect.notes)
    if case.expect.pixels:
        image = hostile_image(result)
        assert case.expect.pixels(image), image


def open_app(page: str | None = None, token: str | None = None, timeout: float = 60, **params: str) -> AppTest:
    """app.py headless, as one browser (token: its identity, ui.session.TOKEN_KEY) opening an address with these
    query parameters, then `page`; asserts it drew no exception."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)
    if token:
        at.session_state["client_token"] = token
    for name, value in params.items():
        at.query_params[name] = value
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at
