"""A run's page estimates (evaluations.safetensors): what Diagnostics and Compare show first, computed once where
the run was trained, so a class's first visits read them instead of computing them in the server that draws
every page (measured under load: 64% of that server's CPU went to these estimates, the IWAE bound most).

Each entry is stamped with the digests of the weights and of the test images it was computed on, and is used
only where both still match: a resumed run or another server's test split recomputes, never shows a stale
number. Scalars are JSON in the header, the image-by-image values (for paired comparisons) tensors: no
pickles. A file that is not one of ours is ignored, with a warning in the log, and recomputed.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vae_core.model.evaluate import EvalMetrics, PerImage, evaluate
from vae_core.runs.folders import CONFIG, WEIGHTS, LoadedRun, RunLoadError, load_run
from vae_core.runs.test_images import page_images

log = logging.getLogger(__name__)

EVALUATIONS = "evaluations.safetensors"
FORMAT = "vae-lab-evaluations/1"
MAX_EVALUATIONS_BYTES = 4 * 2**20  # three entries of 1,000 images are ~60 KB
PARENT_POLL_S = 1.0  # how often a background evaluator checks that its server is still there


@dataclass(frozen=True)
class EvalRequest:
    """An estimate a page shows: on its first n test images, with an IWAE bound of k samples (0: none)."""
    n_images: int
    iwae_k: int

    def key(self) -> str:
        return f"n{self.n_images}-k{self.iwae_k}"


# What the pages ask for first, one fact each: their controls start here, and a trained run saves these.
DIAGNOSTICS_DENSITY = EvalRequest(200, 20)  # Diagnostics' density section (its sliders' defaults)
DIAGNOSTICS_POSTERIOR = EvalRequest(1000, 0)  # Diagnostics' posterior section
COMPARE = EvalRequest(200, 10)  # Compare's metrics: three runs evaluate in ~3 s on one core, cold
PAGE_REQUESTS = (DIAGNOSTICS_DENSITY, DIAGNOSTICS_POSTERIOR, COMPARE)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def images_digest(images: torch.Tensor) -> str:
    """Of uint8 test images (N, C, H, W): which images, in which order."""
    return digest(images.contiguous().numpy().tobytes())


def weights_digest(run_dir: Path) -> str:
    return digest((Path(run_dir) / WEIGHTS).read_bytes())


def read_evaluation(run_dir: Path, images: torch.Tensor, iwae_k: int) -> EvalMetrics | None:
    """The saved estimate on exactly these images with this k, for these weights; None where there is none."""
    entries = _read(Path(run_dir) / EVALUATIONS)
    found = entries.get(EvalRequest(len(images), iwae_k).key())
    if found is None or found[0] != {"weights": weights_digest(run_dir), "images": images_digest(images)}:
        return None
    return found[1]


def save_page_evaluations(run: LoadedRun, requests: tuple[EvalRequest, ...] = PAGE_REQUESTS) -> Path:
    """Compute what the pages ask for first, on the images they show, and save it in the run's folder."""
    images = page_images(run)
    stamp_weights = weights_digest(run.path)
    entries = {}
    for r in requests:
        chosen = images[:r.n_images]
        metrics = evaluate_loaded(run, chosen, r.iwae_k)
        entries[EvalRequest(len(chosen), r.iwae_k).key()] = ({"weights": stamp_weights,
                                                              "images": images_digest(chosen)}, metrics)
    return _write(Path(run.path) / EVALUATIONS, entries)


def evaluate_run(path: str, mtime: float, n_images: int, iwae_k: int) -> EvalMetrics:
    """The run saved at `mtime` evaluated on the first n_images its pages show (a background evaluator's work)."""
    run = _loaded(path, mtime)
    images = page_images(run)[:n_images]
    return read_evaluation(run.path, images, iwae_k) or evaluate_loaded(run, images, iwae_k)  # saved: not again


def evaluate_loaded(run: LoadedRun, images: torch.Tensor, iwae_k: int) -> EvalMetrics:
    """A saved run evaluated on uint8 images (N, C, H, W) as its pages show it: its loss's β, its steps."""
    return evaluate(run.model, run.normalizer, images, dataset=run.config.data.dataset, config=run.config,
                    steps=run.metrics.get("steps") or 0, iwae_k=iwae_k)


@functools.lru_cache(maxsize=8)
def _loaded(path: str, mtime: float) -> LoadedRun:
    """Cached: an evaluator asked for several estimates of a run loads it once."""
    if (Path(path) / CONFIG).stat().st_mtime != mtime:
        raise RunLoadError(f"{path} was saved again since this estimate was asked for; ask again.")
    return load_run(path)


def evaluator_process(threads: int, server: int) -> None:
    """A background evaluator's process: the lowest priority (the pages being drawn come first), `threads` torch
    threads, and it ends with `server`, the process id of the server that started it."""
    os.nice(19)
    torch.set_num_threads(threads)
    threading.Thread(target=_end_with, args=(server,), name="vae-lab-end-with-server", daemon=True).start()


def _end_with(server: int) -> None:
    """A server killed outright (kill -9) cannot end its evaluator: the evaluator sees it gone and ends itself (also
    one started as its server exited, whose parent was already gone when it began)."""
    while os.getppid() == server:
        time.sleep(PARENT_POLL_S)
    os._exit(0)


def save_after_training(run_dir: Path) -> None:
    """A trained run's page estimates; where they cannot be saved, its pages compute them when asked."""
    try:
        save_page_evaluations(load_run(run_dir))
    except Exception:  # the run itself is saved: an estimate that fails here fails on its page, with the reason
        log.warning("the page estimates of %s were not saved; its pages compute them", run_dir, exc_info=True)


Stamp = dict[str, str]
PER_IMAGE = tuple(f.name for f in dataclasses.fields(PerImage))


def _write(path: Path, entries: dict[str, tuple[Stamp, EvalMetrics]]) -> Path:
    """Atomically, beside the run's other files: a reader sees the old file or the new one."""
    tensors, meta = {}, {"format": FORMAT}
    for key, (stamp, m) in entries.items():
        meta[key] = json.dumps({"stamp": stamp, "metrics": m.to_dict()})
        for name in PER_IMAGE:
            value = getattr(m.per_image, name) if m.per_image is not None else None
            if value is not None:
                tensors[f"{key}.{name}"] = value.detach().cpu().contiguous()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


def _read(path: Path) -> dict[str, tuple[Stamp, EvalMetrics]]:
    if not path.is_file():
        return {}
    try:
        if path.stat().st_size > MAX_EVALUATIONS_BYTES:
            raise ValueError(f"larger than {MAX_EVALUATIONS_BYTES // 2**20} MB")
        with safe_open(str(path), "pt") as f:
            tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"not format {FORMAT!r}")
        return {key: _entry(key, json.loads(text), tensors) for key, text in meta.items() if key != "format"}
    except (SafetensorError, OSError, ValueError, TypeError, KeyError, RuntimeError) as e:
        log.warning("ignoring %s, recomputing its estimates: %s", path, e)
        return {}


def _entry(key: str, saved: dict, tensors: dict[str, torch.Tensor]) -> tuple[Stamp, EvalMetrics]:
    per_image = PerImage(**{name: tensors.get(f"{key}.{name}") for name in PER_IMAGE})
    return saved["stamp"], EvalMetrics(**saved["metrics"], per_image=per_image)
