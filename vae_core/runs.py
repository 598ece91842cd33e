"""Run folders: weights.safetensors + config.json + metrics.json, saved atomically, loaded without
unpickling anything. A checkpoint is untrusted input: every field is validated before use."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import RunConfig
from .models import VAE, build_model
from .normalize import Normalizer

FORMAT = "vae-lab-run/1"
WEIGHTS, CONFIG, METRICS = "weights.safetensors", "config.json", "metrics.json"
MAX_JSON_BYTES = 8 * 2**20  # a config or metrics file bigger than this is not one of ours
MAX_WEIGHTS_BYTES = 512 * 2**20


class RunLoadError(ValueError):
    """A run folder that cannot be loaded; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class LoadedRun:
    path: Path
    config: RunConfig
    normalizer: Normalizer
    model: VAE  # eval mode; treat as read-only (it may be shared between sessions)
    metrics: dict[str, Any]  # status, test metrics, training summary and history

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class RunInfo:
    path: Path
    status: str
    created: float  # unix time of the last save


def default_runs_dir() -> Path:
    """Where runs trained by users go: $VAE_LAB_RUNS, else ./runs (git-ignored)."""
    return Path(os.environ.get("VAE_LAB_RUNS") or "runs")


def bundled_models_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "models"


def run_name(config: RunConfig) -> str:
    """A readable, unique-enough folder name: time, dataset, activation, likelihood."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    m, d, l = config.model, config.data, config.loss
    return f"{stamp}-{d.dataset}-{d.normalization}-{m.output_activation}-{l.likelihood}-{uuid.uuid4().hex[:4]}"


def _json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_run(run_dir: Path, model: VAE, config: RunConfig, normalizer: Normalizer,
             metrics: dict[str, Any]) -> Path:
    """Write the run folder atomically: a crash mid-save leaves any previous run at run_dir intact."""
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = run_dir.parent / f".{run_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        cfg = {"format": FORMAT, "run": config.to_dict(), "normalization": normalizer.to_dict()}
        _write(tmp / CONFIG, json.dumps(cfg, indent=2).encode())
        _write(tmp / METRICS, json.dumps(_json_safe(metrics), indent=2).encode())
        _swap_in(tmp, run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run_dir


def _swap_in(tmp: Path, run_dir: Path) -> None:
    if not run_dir.exists():
        os.rename(tmp, run_dir)
        return
    old = run_dir.parent / f".{run_dir.name}.old-{uuid.uuid4().hex[:8]}"
    os.rename(run_dir, old)
    os.rename(tmp, run_dir)
    shutil.rmtree(old, ignore_errors=True)


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise RunLoadError(f"{path.name} is missing from {path.parent}: a run folder holds "
                           f"{WEIGHTS}, {CONFIG} and {METRICS}.")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise RunLoadError(f"{path} is larger than {MAX_JSON_BYTES // 2**20} MB: not a VAE Lab file.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunLoadError(f"{path} is not valid JSON ({e}). Re-save the run or pick another.") from None


def read_config(run_dir: Path) -> tuple[RunConfig, Normalizer]:
    raw = _read_json(Path(run_dir) / CONFIG)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise RunLoadError(f"{run_dir}/{CONFIG} is not a VAE Lab run config (expected format {FORMAT!r}).")
    try:
        return RunConfig.from_dict(raw.get("run")), Normalizer.from_dict(raw.get("normalization") or {})
    except ValueError as e:
        raise RunLoadError(f"{run_dir}/{CONFIG} is invalid: {e}") from None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise RunLoadError(f"{WEIGHTS} is missing from {path.parent}. VAE Lab loads only safetensors "
                           "weights (never pickled .pt/.pth files, which can run code when loaded).")
    if path.stat().st_size > MAX_WEIGHTS_BYTES:
        raise RunLoadError(f"{path} is larger than {MAX_WEIGHTS_BYTES // 2**20} MB: too big for these models.")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise RunLoadError(f"{path} is not a readable safetensors file ({e}).") from None


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild the model from config.json and load its weights; raise RunLoadError with the reason."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunLoadError(f"{run_dir} is not a folder: a run is a folder with {WEIGHTS}, {CONFIG}, {METRICS}.")
    config, normalizer = read_config(run_dir)
    if len(normalizer.shift) != config.model.channels:
        raise RunLoadError(f"{run_dir}/{CONFIG}: the normalization has {len(normalizer.shift)} channels "
                           f"but the model has {config.model.channels}.")
    state = _read_weights(run_dir / WEIGHTS)
    model = build_model(config.model, config.loss.likelihood, config.loss.sigma)
    _check_state(state, model, run_dir)
    model.load_state_dict(state, strict=True)
    model.eval().requires_grad_(False)
    metrics = _read_json(run_dir / METRICS)
    if not isinstance(metrics, dict):
        raise RunLoadError(f"{run_dir}/{METRICS} must be a JSON object.")
    return LoadedRun(run_dir, config, normalizer, model, metrics)


def _check_state(state: dict[str, torch.Tensor], model: VAE, run_dir: Path) -> None:
    expected = model.state_dict()
    missing, extra = set(expected) - set(state), set(state) - set(expected)
    if missing or extra:
        raise RunLoadError(f"{run_dir}/{WEIGHTS} does not match its config: missing {sorted(missing)[:5]}, "
                           f"unexpected {sorted(extra)[:5]}.")
    for k, v in state.items():
        if v.shape != expected[k].shape or v.dtype != expected[k].dtype:
            raise RunLoadError(f"{run_dir}/{WEIGHTS}: tensor {k} is {v.dtype} {tuple(v.shape)}, but the "
                               f"config needs {expected[k].dtype} {tuple(expected[k].shape)}.")
        if not torch.isfinite(v).all():
            raise RunLoadError(f"{run_dir}/{WEIGHTS}: tensor {k} holds NaN or infinite values.")


_RUN_NAME = re.compile(r"^[^.]")  # temporary and replaced folders start with a dot


def list_runs(*roots: Path) -> list[RunInfo]:
    """Run folders directly under each root, newest first; folders without a config are skipped."""
    found = []
    for root in roots:
        if not Path(root).is_dir():
            continue
        for d in Path(root).iterdir():
            if d.is_dir() and _RUN_NAME.match(d.name) and (d / CONFIG).is_file():
                found.append(RunInfo(d, _status(d), (d / CONFIG).stat().st_mtime))
    return sorted(found, key=lambda r: r.created, reverse=True)


def _status(run_dir: Path) -> str:
    try:
        metrics = _read_json(run_dir / METRICS)
        return str(metrics.get("status", "unknown")) if isinstance(metrics, dict) else "unknown"
    except RunLoadError:
        return "unreadable"
