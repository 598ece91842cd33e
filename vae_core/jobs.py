"""A training run in a background thread, safe to poll from a web page.

The thread never touches any UI: it folds every change into a JobState under a lock, checks a stop
Event every step, stores errors instead of raising them, checkpoints its run folder every few seconds
(status "running") and saves it when it ends (finished, stopped, diverged, interrupted), so nothing
trained is lost. worker.ProcessJob runs this same loop in a child process.
"""
from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generic, Literal, Protocol, TypeVar

import numpy as np
import torch

from .compatibility import Verdict
from .config import RunConfig
from .data import DatasetNotFoundError, pixels
from .evaluate import EvalMetrics, evaluate
from .host import HostSettings
from .latent import reconstruct
from .runs import RunRecord, RunStatus, run_name, save_run, writer_fields
from .train import StepMetrics, Trainer, TrainingData, TrainingDiverged, check_compatibility, prepare_data

log = logging.getLogger(__name__)

JobStatus = Literal["starting", "running", "finished", "stopped", "diverged", "interrupted", "failed"]
N_PREVIEW = 8
HISTORY_CAP = 1000  # points a job keeps for its live curves (plus the latest)
T = TypeVar("T")


class History(Generic[T]):
    """Every k-th appended point from the first, k doubling when the cap is hit, plus the latest point.

    Appends are numbered 1, 2, ... (one per training step): the kept points are 1, 1+k, 1+2k, ..., so
    they are uniform in step and always start at the first; memory stays under `cap` points.
    """

    def __init__(self, cap: int = HISTORY_CAP):
        if cap < 2:
            raise ValueError(f"History cap={cap} is too small; keep at least 2 points.")
        self.cap, self.stride, self.count = cap, 1, 0
        self._kept: list[T] = []
        self._latest: T | None = None

    def append(self, item: T) -> None:
        self.count += 1
        self._latest = item
        if (self.count - 1) % self.stride:
            return
        self._kept.append(item)
        if len(self._kept) > self.cap:
            del self._kept[1::2]  # the survivors are 2k apart, still from the first point
            self.stride *= 2

    def extend(self, items: tuple[T, ...] | list[T]) -> None:
        for item in items:
            self.append(item)

    def points(self) -> tuple[T, ...]:
        """The kept points and then the latest one (not repeated when it was kept)."""
        if self._latest is None or (self._kept and self._kept[-1] is self._latest):
            return tuple(self._kept)
        return (*self._kept, self._latest)

    def __len__(self) -> int:
        return len(self.points())


def thin(points: tuple[T, ...], n: int) -> tuple[T, ...]:
    """At most n points: every k-th from the first, then the last (for a chart or a kept record)."""
    if len(points) <= n:
        return points
    kept = points[::math.ceil((len(points) - 1) / (n - 1))]
    return kept if kept[-1] is points[-1] else (*kept, points[-1])


@dataclass(frozen=True)
class Preview:
    """Test inputs and their reconstructions as 8-bit pixels: small enough to send every second."""
    step: int
    input_pixels: np.ndarray  # (N, C, H, W) uint8
    recon_pixels: np.ndarray  # (N, C, H, W) uint8

    @property
    def inputs(self) -> np.ndarray:
        """(N, C, H, W) float32 in [0, 1], as figures.image_grid takes them."""
        return self.input_pixels.astype(np.float32) / 255.0

    @property
    def recons(self) -> np.ndarray:
        """(N, C, H, W) float32 in [0, 1]."""
        return self.recon_pixels.astype(np.float32) / 255.0


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> uint8 grey levels, rounded (NaN shows as black)."""
    return (torch.nan_to_num(images, nan=0.0).clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()


@dataclass(frozen=True)
class JobSnapshot:
    status: JobStatus
    history: tuple[StepMetrics, ...]  # uniform in step from step 1, ending at the latest step
    message: str  # what went wrong, or where the run was saved
    run_dir: Path | None  # set once the final save succeeded
    preview: Preview | None
    verdict: Verdict | None
    test_metrics: EvalMetrics | None

    @property
    def done(self) -> bool:
        return self.status not in ("starting", "running")


@dataclass(frozen=True)
class JobUpdate:
    """What changed in a job; None fields did not. A child process sends these to its parent."""
    steps: tuple[StepMetrics, ...] = ()
    status: JobStatus | None = None
    message: str | None = None
    preview: Preview | None = None
    verdict: Verdict | None = None
    test_metrics: EvalMetrics | None = None
    run_dir: Path | None = None

    def only_steps(self) -> bool:
        return all(getattr(self, f) is None for f in _STATE_FIELDS)


_STATE_FIELDS = ("status", "message", "preview", "verdict", "test_metrics", "run_dir")


class JobState:
    """A job's observable state: written by one thread, read by many, every access under the lock."""

    def __init__(self, history_cap: int = HISTORY_CAP):
        self._lock = threading.Lock()
        self._history: History[StepMetrics] = History(history_cap)
        self._fields: dict[str, Any] = dict(status="starting", message="", preview=None, verdict=None,
                                            test_metrics=None, run_dir=None)

    def apply(self, update: JobUpdate) -> None:
        with self._lock:
            self._history.extend(update.steps)
            self._fields.update({f: getattr(update, f) for f in _STATE_FIELDS if getattr(update, f) is not None})

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            f = self._fields
            return JobSnapshot(f["status"], self._history.points(), f["message"], f["run_dir"], f["preview"],
                               f["verdict"], f["test_metrics"])

    def history(self) -> tuple[StepMetrics, ...]:
        with self._lock:
            return self._history.points()


class StopSignal(Protocol):
    """threading.Event or multiprocessing's Event."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...


def host_checkpoint_every_s() -> float:
    return HostSettings.from_env().checkpoint_every_s


@dataclass
class TrainingJob:
    config: RunConfig
    runs_dir: Path
    data: TrainingData | None = None  # None: loaded in the thread (a download must not block the page)
    run_dir: Path | None = None  # exact folder to save to; None: a new name under runs_dir, fixed now
    history_cap: int = HISTORY_CAP
    preview_every_s: float = 1.0
    on_step: Callable[[StepMetrics], None] | None = None  # called in the worker thread
    owner: str | None = None  # who started it (a session); None from the CLI
    token: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    checkpoint_every_s: float | None = None  # None: the host's setting (VAE_LAB_CHECKPOINT_EVERY_S)
    on_update: Callable[[JobUpdate], None] | None = None  # every change, in the worker thread
    on_done: Callable[[], None] | None = None  # after the final state is set, in the worker thread
    interrupted: Callable[[], str | None] | None = None  # why the job must end now (its server is gone)
    stop_event: StopSignal = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir) if self.run_dir else Path(self.runs_dir) / run_name(self.config)
        if self.checkpoint_every_s is None:
            self.checkpoint_every_s = host_checkpoint_every_s()
        self._state = JobState(self.history_cap)
        self._started = time.time()
        self._last_checkpoint = 0.0

    def start(self) -> "TrainingJob":
        self._thread = threading.Thread(target=self.run, name="vae-lab-training", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the job to stop after the current step; it still evaluates and saves the run."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def snapshot(self) -> JobSnapshot:
        return self._state.snapshot()

    def _emit(self, update: JobUpdate) -> None:
        self._state.apply(update)
        if self.on_update:
            self.on_update(update)

    def run(self) -> None:
        """Train, evaluate and save in the calling thread; errors end up in the state, never raised."""
        self._started = time.time()
        try:
            self._run()
        except (DatasetNotFoundError, ValueError) as e:
            self._emit(JobUpdate(status="failed", message=str(e)))
        except Exception as e:  # the page must show it, not lose it in a thread
            log.exception("training job failed")
            self._emit(JobUpdate(status="failed", message=f"Training failed: {type(e).__name__}: {e}"))
        if self.on_done:
            self.on_done()

    def _run(self) -> None:
        data = self.data or prepare_data(self.config)
        self._emit(JobUpdate(verdict=check_compatibility(self.config, data.normalizer)))
        trainer = Trainer(self.config, data.train.images, data.normalizer)
        self._emit(JobUpdate(status="running"))
        self._last_checkpoint = time.monotonic()
        try:
            status, message = self._train(trainer, data)
        except TrainingDiverged as e:
            status, message = "diverged", str(e)
        self._finish(trainer, data, status, message)

    def _train(self, trainer: Trainer, data: TrainingData) -> tuple[RunStatus, str]:
        last_preview = 0.0
        for metrics in trainer.steps():
            self._emit(JobUpdate(steps=(metrics,)))
            if self.on_step:
                self.on_step(metrics)
            if time.monotonic() - last_preview >= self.preview_every_s:
                self._emit(JobUpdate(preview=self._preview(trainer, data, metrics.step)))
                last_preview = time.monotonic()
            self._maybe_checkpoint(trainer, data)
            if self.stop_event.is_set():
                return "stopped", "Stopped by the user."
            reason = self.interrupted() if self.interrupted else None
            if reason:
                return "interrupted", reason
        return "finished", ""

    def _preview(self, trainer: Trainer, data: TrainingData, step: int) -> Preview:
        """Reconstructions of the first test images, in eval mode; the model goes back to training mode."""
        p = pixels(data.test.images[:N_PREVIEW])  # (N, C, H, W)
        x_hat = reconstruct(trainer.model, data.normalizer.forward(p))  # sets eval mode (BatchNorm, sigma*)
        trainer.model.train()
        return Preview(step, data.test.images[:N_PREVIEW].numpy().copy(), to_pixels(data.normalizer.inverse(x_hat)))

    def _maybe_checkpoint(self, trainer: Trainer, data: TrainingData) -> None:
        """Save the run as "running" every checkpoint_every_s, so a crash or kill loses at most that much."""
        if time.monotonic() - self._last_checkpoint < self.checkpoint_every_s:
            return
        self._last_checkpoint = time.monotonic()
        if not all(torch.isfinite(p).all() for p in trainer.model.parameters()):
            return  # the next step raises TrainingDiverged and the final save keeps the last finite weights
        try:
            save_run(self.run_dir, trainer.model, self.config, data.normalizer,
                     self._record("running", "Training; this is its latest checkpoint.", trainer.step, None))
        except OSError as e:  # the final save reports a full disk; the training itself goes on
            log.warning("checkpoint of %s failed: %s", self.run_dir, e)

    def _record(self, status: RunStatus, message: str, steps: int, test: EvalMetrics | None) -> dict[str, Any]:
        return RunRecord(status=status, message=message, steps=steps, test=test.to_dict() if test else {},
                         history=history_rows(list(self._state.history())), owner=self.owner,
                         started=self._started, checkpoint_every_s=self.checkpoint_every_s,
                         **writer_fields()).to_dict()

    def _finish(self, trainer: Trainer, data: TrainingData, status: RunStatus, message: str) -> None:
        """Evaluate and save; a failed evaluation still saves the weights (nothing trained is lost)."""
        try:
            test = evaluate(trainer.model, data.normalizer, data.test.images, dataset=self.config.data.dataset,
                            loss=self.config.loss)
        except Exception as e:
            log.exception("evaluation after training failed")
            test, message = None, f"{message} The test evaluation failed ({type(e).__name__}: {e}).".strip()
        try:
            run_dir = save_run(self.run_dir, trainer.model, self.config, data.normalizer,
                               self._record(status, message, trainer.step, test))
        except OSError as e:
            self._emit(JobUpdate(status="failed", message=f"{message} Saving the run to {self.run_dir} failed: "
                                 f"{e}. Free some space or point VAE_LAB_RUNS at a writable folder, then train "
                                 "again.".strip()))
            return
        note = f"Saved to {run_dir}." if not message else f"{message} Saved to {run_dir}."
        self._emit(JobUpdate(status=status, message=note, run_dir=run_dir, test_metrics=test,
                             preview=self._preview(trainer, data, trainer.step)))


HISTORY_FIELDS = ("step", "epoch", "recon_nats", "kl_nats", "elbo_nats", "elapsed_s")


def history_rows(history: list[StepMetrics], max_rows: int = 1000) -> dict[str, list[float]]:
    """Column-wise training history for metrics.json: every n-th point from the first, then the last
    (at most max_rows + 1 rows, so a job's History of max_rows points and its latest is kept whole)."""
    stride = max(1, math.ceil((len(history) - 1) / max_rows))
    kept = history[::stride]
    if history and kept[-1] is not history[-1]:
        kept.append(history[-1])
    return {f: [getattr(m, f) for m in kept] for f in HISTORY_FIELDS}


def run_in_foreground(config: RunConfig, runs_dir: Path, run_dir: Path | None = None,
                      on_step: Callable[[StepMetrics], None] | None = None,
                      checkpoint_every_s: float | None = None, owner: str | None = None) -> JobSnapshot:
    """Train to the end while the caller waits (the CLI); Ctrl-C stops it and still saves the run.

    checkpoint_every_s: None reads the host's setting (VAE_LAB_CHECKPOINT_EVERY_S, default 5 s).
    """
    job = TrainingJob(config, runs_dir, run_dir=run_dir, on_step=on_step, owner=owner,
                      checkpoint_every_s=checkpoint_every_s)
    job.start()
    try:
        while not job.join(0.2):
            pass
    except KeyboardInterrupt:
        job.stop()
        job.join()
    return job.snapshot()
