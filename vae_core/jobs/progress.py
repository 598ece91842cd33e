"""What a job shows the pages: its bounded history, previews, per-variant state and the updates a
worker sends, folded under a lock by JobState. No training here (jobs.py trains; worker.py relays)."""
from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, Sequence, TypeVar

import numpy as np
import torch

from vae_core.jobs.plan import SweepPlan
from vae_core.model.compatibility import Verdict
from vae_core.model.evaluate import EvalMetrics
from vae_core.training.trainer import StepMetrics

JobStatus = Literal["starting", "running", "finished", "stopped", "diverged", "interrupted", "failed"]
VariantStatus = Literal[JobStatus, "refused"]  # a sweep variant refused before training (e.g. Bernoulli on [-1, 1])
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


def thin(points: Sequence[T], n: int) -> tuple[T, ...]:
    """At most n points (n >= 2): every k-th from the first, then the last. The one thinning of a finished
    curve, for a chart, a kept record or metrics.json (History thins a curve while it grows)."""
    if len(points) <= n:
        return tuple(points)
    stride = math.ceil((len(points) - 1) / (n - 1))
    kept = tuple(points[::stride])
    return kept if (len(points) - 1) % stride == 0 else (*kept, points[-1])


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
class VariantSnapshot:
    """One variant of a sweep job, as a page sees it."""
    label: str  # "output_activation=tanh"
    status: VariantStatus
    message: str  # why it was refused or diverged, or where it was saved
    history: tuple[StepMetrics, ...]  # uniform in step from step 1, ending at its latest step
    preview: Preview | None
    verdict: Verdict | None  # its activation x normalization x likelihood verdict (refused ones too)
    test_metrics: EvalMetrics | None
    run_dir: Path | None  # set once its final save succeeded

    @property
    def done(self) -> bool:
        return self.status not in ("starting", "running")


@dataclass(frozen=True)
class JobSnapshot:
    """A job's state. A sweep's history, run_dir, preview, verdict and test_metrics are its lead variant's
    (the first one not refused), so a page that knows single runs shows one of them; `variants` has all."""
    status: JobStatus
    history: tuple[StepMetrics, ...]  # uniform in step from step 1, ending at the latest step
    message: str  # what went wrong, or where the run was saved
    run_dir: Path | None  # set once the final save succeeded
    preview: Preview | None
    verdict: Verdict | None
    test_metrics: EvalMetrics | None
    variants: tuple[VariantSnapshot, ...] = ()  # a sweep: one per value, in the sweep's order; () for one run
    sweep: SweepPlan | None = None  # a sweep: its id, field, values, configs, run folders and manifest

    @property
    def done(self) -> bool:
        return self.status not in ("starting", "running")


def thin_snapshot(snap: JobSnapshot, n: int) -> JobSnapshot:
    """The snapshot with at most n curve points per run (what a finished job's record keeps)."""
    variants = tuple(dataclasses.replace(v, history=thin(v.history, n)) for v in snap.variants)
    return dataclasses.replace(snap, history=thin(snap.history, n), variants=variants)


@dataclass(frozen=True)
class JobUpdate:
    """What changed in a job; None fields did not. A child process sends these to its parent."""
    steps: tuple[StepMetrics, ...] = ()
    status: VariantStatus | None = None  # "refused" only for a variant
    message: str | None = None
    preview: Preview | None = None
    verdict: Verdict | None = None
    test_metrics: EvalMetrics | None = None
    run_dir: Path | None = None
    variant: int | None = None  # the sweep variant this is about; None: the job (a single run: its run)

    def only_steps(self) -> bool:
        return all(getattr(self, f) is None for f in _STATE_FIELDS)


_STATE_FIELDS = ("status", "message", "preview", "verdict", "test_metrics", "run_dir")


class _Slot:
    """One run's observable state: a single run's, a sweep variant's, or (status and message) a sweep's."""

    def __init__(self, history_cap: int):
        self.history: History[StepMetrics] = History(history_cap)
        self.fields: dict[str, Any] = dict(status="starting", message="", preview=None, verdict=None,
                                           test_metrics=None, run_dir=None)

    def apply(self, update: JobUpdate) -> None:
        self.history.extend(update.steps)
        self.fields.update({f: getattr(update, f) for f in _STATE_FIELDS if getattr(update, f) is not None})

    def variant(self, label: str) -> VariantSnapshot:
        f = self.fields
        return VariantSnapshot(label, f["status"], f["message"], self.history.points(), f["preview"], f["verdict"],
                               f["test_metrics"], f["run_dir"])


class JobState:
    """A job's observable state: written by one thread, read by many, every access under the lock."""

    def __init__(self, history_cap: int = HISTORY_CAP, sweep: SweepPlan | None = None):
        self._lock = threading.Lock()
        self._sweep = sweep
        self._job = _Slot(history_cap)
        self._variants = [_Slot(history_cap) for _ in sweep.labels] if sweep else []

    def apply(self, update: JobUpdate) -> None:
        with self._lock:
            self._slot(update.variant).apply(update)

    def _slot(self, variant: int | None) -> _Slot:
        return self._job if variant is None else self._variants[variant]

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            job = self._job.fields
            if not self._sweep:
                return JobSnapshot(job["status"], self._job.history.points(), job["message"], job["run_dir"],
                                   job["preview"], job["verdict"], job["test_metrics"])
            variants = tuple(s.variant(label) for s, label in zip(self._variants, self._sweep.labels))
            lead = next((v for v in variants if v.status != "refused"), variants[0])
            return JobSnapshot(job["status"], lead.history, job["message"], lead.run_dir, lead.preview, lead.verdict,
                               lead.test_metrics, variants, self._sweep)

    def history(self, variant: int | None = None) -> tuple[StepMetrics, ...]:
        with self._lock:
            return self._slot(variant).history.points()


def failure_updates(snap: JobSnapshot, message: str) -> list[JobUpdate]:
    """A job that failed: every variant not yet done fails with it, then the job itself."""
    failed = [JobUpdate(status="failed", message=message, variant=i) for i, v in enumerate(snap.variants)
              if not v.done]
    return [*failed, JobUpdate(status="failed", message=message)]


class StopSignal(Protocol):
    """threading.Event or multiprocessing's Event."""

    def is_set(self) -> bool: ...

    def set(self) -> None: ...
