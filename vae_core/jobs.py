"""A training run in a background thread, safe to poll from a web page.

The thread never touches any UI: it appends metrics to a bounded history under a lock, checks a stop
Event every step, stores errors instead of raising them, and saves the run folder when it ends
(finished, stopped or diverged), so nothing trained is lost.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np

from .config import RunConfig
from .data import DatasetNotFoundError, pixels
from .evaluate import EvalMetrics, evaluate
from .latent import reconstruct
from .likelihoods import Verdict
from .runs import run_name, save_run
from .train import StepMetrics, Trainer, TrainingData, TrainingDiverged, check_compatibility, prepare_data

log = logging.getLogger(__name__)

JobStatus = Literal["starting", "running", "finished", "stopped", "diverged", "failed"]
N_PREVIEW = 8


@dataclass(frozen=True)
class Preview:
    step: int
    inputs: np.ndarray  # (N, C, H, W) pixels in [0, 1]
    recons: np.ndarray  # (N, C, H, W) pixels, clipped to [0, 1]


@dataclass(frozen=True)
class JobSnapshot:
    status: JobStatus
    history: tuple[StepMetrics, ...]
    message: str  # what went wrong, or where the run was saved
    run_dir: Path | None
    preview: Preview | None
    verdict: Verdict | None
    test_metrics: EvalMetrics | None

    @property
    def done(self) -> bool:
        return self.status not in ("starting", "running")


def append_bounded(history: list, item: object, cap: int) -> None:
    """Append; when full, thin the older half to every other point so memory stays bounded."""
    history.append(item)
    if len(history) > cap:
        half = len(history) // 2
        history[:half] = history[:half:2]


@dataclass
class TrainingJob:
    config: RunConfig
    runs_dir: Path
    data: TrainingData | None = None  # None: loaded in the thread (a download must not block the page)
    run_dir: Path | None = None  # exact folder to save to; None: a new name under runs_dir
    history_cap: int = 2000
    preview_every_s: float = 1.0
    on_step: Callable[[StepMetrics], None] | None = None  # called in the worker thread
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _state: dict = field(default_factory=dict, repr=False)

    def start(self) -> "TrainingJob":
        self._state = dict(status="starting", history=[], message="", run_dir=None, preview=None,
                           verdict=None, test_metrics=None)
        self._thread = threading.Thread(target=self._run, name="vae-lab-training", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to stop after the current step; it still evaluates and saves the run."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            s = self._state
            return JobSnapshot(s["status"], tuple(s["history"]), s["message"], s["run_dir"], s["preview"],
                               s["verdict"], s["test_metrics"])

    def _set(self, **kw) -> None:
        with self._lock:
            self._state.update(kw)

    def _run(self) -> None:
        try:
            data = self.data or prepare_data(self.config)
            self._set(verdict=check_compatibility(self.config, data.normalizer))
            trainer = Trainer(self.config, data.train.images, data.normalizer)
            self._set(status="running")
            try:
                status, message = self._train(trainer, data)
            except TrainingDiverged as e:
                status, message = "diverged", str(e)
            self._finish(trainer, data, status, message)
        except (DatasetNotFoundError, ValueError) as e:
            self._set(status="failed", message=str(e))
        except Exception as e:  # the page must show it, not lose it in a thread
            log.exception("training job failed")
            self._set(status="failed", message=f"Training failed: {type(e).__name__}: {e}")

    def _train(self, trainer: Trainer, data: TrainingData) -> tuple[JobStatus, str]:
        last_preview = 0.0
        for metrics in trainer.steps():
            with self._lock:
                append_bounded(self._state["history"], metrics, self.history_cap)
            if self.on_step:
                self.on_step(metrics)
            if time.monotonic() - last_preview >= self.preview_every_s:
                self._set(preview=self._preview(trainer, data, metrics.step))
                last_preview = time.monotonic()
            if self._stop.is_set():
                return "stopped", "Stopped by the user."
        return "finished", ""

    def _preview(self, trainer: Trainer, data: TrainingData, step: int) -> Preview:
        """Reconstructions of the first test images, in eval mode; the model goes back to training mode."""
        p = pixels(data.test.images[:N_PREVIEW])  # (N, C, H, W)
        x_hat = reconstruct(trainer.model, data.normalizer.forward(p))  # sets eval mode (BatchNorm, sigma*)
        trainer.model.train()
        recons = data.normalizer.inverse(x_hat).clamp(0, 1)
        return Preview(step, p.numpy(), recons.numpy())

    def _finish(self, trainer: Trainer, data: TrainingData, status: JobStatus, message: str) -> None:
        """Evaluate and save; a failed evaluation still saves the weights (nothing trained is lost)."""
        try:
            test = evaluate(trainer.model, data.normalizer, data.test.images, dataset=self.config.data.dataset,
                            loss=self.config.loss)
        except Exception as e:
            log.exception("evaluation after training failed")
            test, message = None, f"{message} The test evaluation failed ({type(e).__name__}: {e}).".strip()
        with self._lock:
            history = list(self._state["history"])
        metrics = {"status": status, "message": message, "steps": trainer.step,
                   "test": test.to_dict() if test else {}, "history": history_rows(history)}
        target = self.run_dir or Path(self.runs_dir) / run_name(self.config)
        try:
            run_dir = save_run(target, trainer.model, self.config, data.normalizer, metrics)
        except OSError as e:
            self._set(status="failed", message=f"{message} Saving the run to {target} failed: {e}. Free some "
                      "space or point VAE_LAB_RUNS at a writable folder, then train again.".strip())
            return
        note = f"Saved to {run_dir}." if not message else f"{message} Saved to {run_dir}."
        self._set(status=status, message=note, run_dir=run_dir, test_metrics=test,
                  preview=self._preview(trainer, data, trainer.step))


HISTORY_FIELDS = ("step", "epoch", "recon_nats", "kl_nats", "elbo_nats", "elapsed_s")


def history_rows(history: list[StepMetrics], max_rows: int = 1000) -> dict[str, list[float]]:
    """Column-wise training history for metrics.json, thinned to at most max_rows points."""
    stride = max(1, -(-len(history) // max_rows))
    kept = history[::stride]
    return {f: [getattr(m, f) for m in kept] for f in HISTORY_FIELDS}


def run_in_foreground(config: RunConfig, runs_dir: Path, run_dir: Path | None = None,
                      on_step: Callable[[StepMetrics], None] | None = None) -> JobSnapshot:
    """Train to the end while the caller waits (the CLI); Ctrl-C stops it and still saves the run."""
    job = TrainingJob(config, runs_dir, run_dir=run_dir, on_step=on_step)
    job.start()
    try:
        while not job.join(0.2):
            pass
    except KeyboardInterrupt:
        job.stop()
        job.join()
    return job.snapshot()


