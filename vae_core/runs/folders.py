"""Run folders: weights.safetensors + config.json + metrics.json, saved atomically, loaded without
unpickling anything. A checkpoint is untrusted input: every field is validated before use."""
from __future__ import annotations

import dataclasses
import glob
import json
import logging
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from vae_core import host
from vae_core.config import RunConfig
from vae_core.data.base import ImageDataset
from vae_core.data.normalize import Normalizer
from vae_core.data.vector_normalize import VectorNormalizer
from vae_core.model.vae import VAE, build_model
from vae_core.runs.previews import PREVIEWS, PreviewsError, TrainingPreviews, read_previews_file, write_previews
from vae_core.runs.samples import SAMPLES, SamplesError, read_samples_file, write_samples
from vae_core.training.resume import TRAIN_STATE, TrainState, write_train_state

log = logging.getLogger(__name__)
R = TypeVar("R")

FORMAT = "vae-lab-run/1"
WEIGHTS, CONFIG, METRICS = "weights.safetensors", "config.json", "metrics.json"
MAX_JSON_BYTES = 8 * 2**20  # a config or metrics file bigger than this is not one of ours
MAX_WEIGHTS_BYTES = 512 * 2**20
SWAP_RETRY_S = 0.2  # a reader that caught a run between a save's two renames looks again after this

# metrics.json's status; "interrupted": the process that trained it is gone (derived, or saved by the child)
RunStatus = Literal["running", "finished", "stopped", "diverged", "interrupted", "failed"]


class RunLoadError(ValueError):
    """A run folder that cannot be loaded; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class LoadedRun:
    path: Path
    config: RunConfig
    normalizer: Normalizer | VectorNormalizer  # vectors: VectorNormalizer
    model: VAE  # eval mode; treat as read-only (it may be shared between sessions)
    metrics: dict[str, Any]  # status, test metrics, training summary and history

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class RunRecord:
    """What metrics.json holds. A checkpoint of a job still training has status "running"."""
    status: RunStatus
    message: str = ""
    steps: int = 0
    test: dict[str, Any] = field(default_factory=dict)  # EvalMetrics.to_dict(); empty if not evaluated
    history: dict[str, list[float]] = field(default_factory=dict)  # column-wise, first step kept
    owner: str | None = None  # who started the job (a session), None from the CLI
    started: float | None = None  # unix time the job started
    pid: int | None = None  # the process that wrote it
    host: str | None = None  # the machine that process runs on
    heartbeat: float | None = None  # unix time of this save
    checkpoint_every_s: float | None = None  # the writer's checkpoint interval
    sweep: str | None = None  # the sweep this run is a variant of (the sweep's id), None if trained alone
    world_size: int = 1  # processes that trained it together
    device: str = "cpu"  # the device type it trained on: cpu, cuda or mps
    precision: str = "float32"  # float32, or bf16: the network in bfloat16 (autocast), weights and terms float32
    title: str | None = None  # the name its owner gave it (rename_run); the folder's name never changes


    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


TITLE_MAX_CHARS = 40  # a run's title: short enough for the sidebar's picker


def title_problem(title: object) -> str | None:
    """Why this is not a run title (None: it is one): 1 to TITLE_MAX_CHARS printable characters, no line breaks."""
    if not isinstance(title, str) or not title.strip():
        return f"A title needs 1 to {TITLE_MAX_CHARS} characters: type a name for the run."
    if len(title.strip()) > TITLE_MAX_CHARS:
        return f"That title is {len(title.strip())} characters long: a title has at most {TITLE_MAX_CHARS}."
    if not title.isprintable():
        return "A title is one line of printable characters: remove the line breaks, tabs or control characters."
    return None


def default_runs_dir() -> Path:
    """Where runs trained by users go: the host's setting (host.runs_dir: $VAE_LAB_RUNS, else ./runs)."""
    return host.runs_dir()


def bundled_models_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "models"  # the repository's models/ (vae_core/runs/folders.py)


def run_name(config: RunConfig) -> str:
    """A readable, unique-enough folder name: time, dataset, activation, likelihood."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    m, d, l = config.model, config.data, config.loss
    return f"{stamp}-{d.dataset}-{d.normalization}-{m.output_activation}-{l.likelihood}-{uuid.uuid4().hex[:4]}"


def run_tag(name: str) -> str:
    """What tells a run folder apart in a picker: run_name's random part, and a sweep variant's value after it
    ("ab12 · lr-0.01", "c3d4 · fixed_x0.1-s2"); a name of another shape, its last four characters."""
    parts = name.split("-")
    if len(parts) < RUN_NAME_PARTS:
        return name[-4:]
    return parts[RUN_NAME_PARTS - 1] + (f" · {'-'.join(parts[RUN_NAME_PARTS:])}" if len(parts) > RUN_NAME_PARTS else "")


RUN_NAME_PARTS = 7  # run_name: date, time, dataset, normalization, activation, likelihood, random part


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


def save_run(run_dir: Path, model: VAE, config: RunConfig, normalizer: Normalizer | VectorNormalizer,
             metrics: dict[str, Any], samples: ImageDataset | None = None,
             train_state: TrainState | None = None, previews: TrainingPreviews | None = None) -> Path:
    """Write the run folder atomically: a crash mid-save leaves any previous run at run_dir intact.

    samples: test images kept beside the weights (see run_samples.samples_to_keep), or None.
    train_state: what resuming it needs beyond the weights (train_state.py), or None.
    previews: its reconstructions through training (runs/previews.py), or None.
    """
    run_dir = Path(run_dir)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(run_dir, "tmp")
    tmp.mkdir()
    try:
        state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        cfg = {"format": FORMAT, "run": config.to_dict(), "normalization": normalizer.to_dict()}
        _write(tmp / CONFIG, json.dumps(cfg, indent=2).encode())
        _write(tmp / METRICS, json.dumps(_json_safe(metrics), indent=2).encode())
        if samples is not None:
            write_samples(tmp / SAMPLES, samples)
        if train_state is not None:
            write_train_state(tmp / TRAIN_STATE, train_state)
        if previews is not None:
            write_previews(tmp / PREVIEWS, previews)
        _swap_in(tmp, run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return run_dir


def read_samples(run_dir: str | Path) -> ImageDataset | None:
    """The test images the run carries; None if it has none; RunLoadError if they are bad."""
    path = Path(run_dir) / SAMPLES
    if not path.is_file():
        return None
    try:
        return read_samples_file(path, read_config(Path(run_dir))[0])
    except SamplesError as e:
        raise RunLoadError(str(e)) from None


def read_previews(run_dir: str | Path) -> TrainingPreviews | None:
    """The run's training previews; None if it kept none (trained before runs did); RunLoadError if they are bad."""
    path = Path(run_dir) / PREVIEWS
    if not path.is_file():
        return None
    try:
        return read_previews_file(path, read_config(Path(run_dir))[0])
    except PreviewsError as e:
        raise RunLoadError(str(e)) from None


def write_metrics(run_dir: Path, metrics: dict[str, Any]) -> None:
    """Replace a run's metrics.json atomically: a reader finds the old file or the new one, never half of one."""
    tmp = Path(run_dir) / f".{METRICS}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _write(tmp, json.dumps(_json_safe(metrics), indent=2).encode())
        os.replace(tmp, Path(run_dir) / METRICS)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def discard_run(run_dir: Path) -> None:
    """Delete a run folder atomically: renamed first to a hidden "del" temporary, which listings skip at once
    and a cleanup removes (never restores) should the removal not finish."""
    doomed = _temporary(Path(run_dir), "del")
    os.rename(run_dir, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


# tmp: a save being written; old: the run a save replaces; del: a run being deleted (listing.py cleans them up)
def _temporary(run_dir: Path, kind: Literal["tmp", "old", "del"]) -> Path:
    """A hidden sibling named after its writer's pid, so a cleanup can tell a live save from debris."""
    return run_dir.parent / f".{run_dir.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _swap_in(tmp: Path, run_dir: Path) -> None:
    if not run_dir.exists():
        os.rename(tmp, run_dir)
        return
    old = _temporary(run_dir, "old")
    os.rename(run_dir, old)
    os.rename(tmp, run_dir)
    shutil.rmtree(old, ignore_errors=True)


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise RunLoadError(f"{path.name} is missing from {path.parent}: a run folder holds "
                           f"{WEIGHTS}, {CONFIG} and {METRICS}.")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise RunLoadError(f"{path} is larger than {MAX_JSON_BYTES // 2**20} MB: not a VAE Lab file.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunLoadError(f"{path} is not valid JSON ({e}). Re-save the run or pick another.") from None


def read_config(run_dir: Path) -> tuple[RunConfig, Normalizer | VectorNormalizer]:
    raw = read_json(Path(run_dir) / CONFIG)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise RunLoadError(f"{run_dir}/{CONFIG} is not a VAE Lab run config (expected format {FORMAT!r}).")
    try:
        config = RunConfig.from_dict(raw.get("run"))
        return config, _normalizer(raw.get("normalization") or {}, config)
    except ValueError as e:
        raise RunLoadError(f"{run_dir}/{CONFIG} is invalid: {e}") from None


def _normalizer(saved: dict, config: RunConfig) -> Normalizer | VectorNormalizer:
    """The saved normalization, of the run's kind of data: its channels, or its features."""
    if config.data.kind == "vectors":
        return VectorNormalizer.from_dict(saved, config.model.features)
    normalizer = Normalizer.from_dict(saved)
    if len(normalizer.shift) != config.model.channels:
        raise ValueError(f"the normalization has {len(normalizer.shift)} channels but the model has "
                         f"{config.model.channels}.")
    return normalizer


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise RunLoadError(f"{WEIGHTS} is missing from {path.parent}. VAE Lab loads only safetensors "
                           "weights (never pickled .pt/.pth files, which can run code when loaded).")
    if path.stat().st_size > MAX_WEIGHTS_BYTES:
        raise RunLoadError(f"{path} is larger than {MAX_WEIGHTS_BYTES // 2**20} MB: too big for these models.")
    return _read_tensors(path)


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise RunLoadError(f"{path} is not a readable safetensors file ({e}).") from None


def load_run(run_dir: str | Path) -> LoadedRun:
    """Rebuild the model from config.json and load its weights; raise RunLoadError with the reason."""
    return across_a_swap(_load_run, Path(run_dir))


def across_a_swap(read: Callable[[Path], R], run_dir: Path) -> R:
    """read(run_dir), tried again once if it failed while a checkpoint was being swapped in."""
    try:
        return read(run_dir)
    except (RunLoadError, OSError):
        if not _save_in_progress(run_dir):
            raise
    time.sleep(SWAP_RETRY_S)  # the swap is two renames: over within milliseconds
    return read(run_dir)


def _save_in_progress(run_dir: Path) -> bool:
    name = glob.escape(run_dir.name)
    return any(next(run_dir.parent.glob(f".{name}.{kind}-*"), None) for kind in ("tmp", "old"))


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """metrics.json of a run, checked to be a JSON object (no weights read)."""
    metrics = read_json(Path(run_dir) / METRICS)
    if not isinstance(metrics, dict):
        raise RunLoadError(f"{run_dir}/{METRICS} must be a JSON object.")
    return metrics


def _load_run(run_dir: Path) -> LoadedRun:
    if not run_dir.is_dir():
        raise RunLoadError(f"{run_dir} is not a folder: a run is a folder with {WEIGHTS}, {CONFIG}, {METRICS}.")
    config, normalizer = read_config(run_dir)
    state = _read_weights(run_dir / WEIGHTS)
    # The sigma floor follows from the normalization (no run saves it): runs saved before it existed load alike.
    model = build_model(config.model, config.loss.likelihood, config.loss.sigma, sigma_floor=normalizer.sigma_floor())
    _check_state(state, model, run_dir)
    model.load_state_dict(state, strict=True)
    model.eval().requires_grad_(False)
    metrics = read_json(run_dir / METRICS)
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
