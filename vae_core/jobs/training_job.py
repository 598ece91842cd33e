"""A training run in a background thread, safe to poll from a web page.

The thread never touches any UI: it folds every change into a JobState (jobs/progress.py) under a lock, checks a
stop Event every step, stores errors instead of raising them, checkpoints its run folder every few seconds
(status "running") and saves it when it ends (finished, stopped, diverged, interrupted), so nothing
trained is lost. jobs/process_job.py runs this same loop in a child process.

A job trains one run, or a sweep (training/sweeps.py): a family of variants in lockstep, each saved as its own
run folder. A single run is a job's only variant, whose updates are the job's own; a sweep's updates
name their variant, and the job itself has a status and message of its own.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from vae_core.config import RunConfig
from vae_core.data.base import DatasetNotFoundError, pixels
from vae_core.data.normalize import run_normalizer
from vae_core.jobs.job import BaseJob
from vae_core.jobs.previews import PreviewKeeper
from vae_core.jobs.progress import (N_PREVIEW, JobSnapshot, JobUpdate, Preview, StopSignal, VariantStatus,
                                    failure_updates, thin, to_pixels)
from vae_core.model.compatibility import Verdict
from vae_core.jobs.data_kinds import TestMetrics, evaluate_test, keeps_images, samples_for
from vae_core.model.latent import reconstruct
from vae_core.runs.evaluations import save_after_training
from vae_core.runs.folders import RunRecord, RunStatus, load_run, save_run
from vae_core.runs.listing import writer_fields
from vae_core.runs.manifest import ManifestVariant, SweepManifest, write_manifest
from vae_core.training.devices import resolve_device
from vae_core.training.distributed import Dist, join, rank0_clock, trainer_factory
from vae_core.training.lockstep import GroupedLockstep, LockstepStep, LockstepTrainer, NothingToTrain
from vae_core.training.resume import RESUME_MAY_CHANGE, TRAIN_STATE, read_train_state, same_run
from vae_core.training.sweeps import Family, format_value, lockstep_groups
from vae_core.training.trainer import StepMetrics, Trainer, TrainingData, prepare_data

log = logging.getLogger(__name__)
PAGE_ESTIMATED = ("finished", "stopped")  # a single run ending so saves its page estimates; sweeps' many runs do not

@dataclass
class _Variant:
    """One run of a job, as the job's thread handles it (a single run is a job's only variant)."""
    slot: int | None  # its index in the sweep; None: the job's only run, whose updates are the job's own
    config: RunConfig
    data: TrainingData  # the shared images, with this variant's normalizer
    run_dir: Path
    trainer: Trainer | None = None  # None while starting, or refused
    status: VariantStatus = "starting"
    saved: bool = False  # its folder holds a checkpoint or its final save
    last_preview: float = 0.0
    previews: PreviewKeeper = field(default_factory=PreviewKeeper)  # what its run folder keeps of its previews


@dataclass
class TrainingJob(BaseJob):
    """A job trained in a thread of this process (the CLI's, and the child process's of a ProcessJob)."""
    data: TrainingData | None = None  # None: loaded in the thread (a download must not block the page)
    on_step: Callable[[StepMetrics], None] | None = None  # a single run's steps, in the worker thread
    on_update: Callable[[JobUpdate], None] | None = None  # every change, in the worker thread
    interrupted: Callable[[], str | None] | None = None  # why the job must end now (its server is gone)
    stop_event: StopSignal = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    resume: bool = False  # continue the run saved at run_dir (its weights, optimizer, step and history)
    dist: Dist | None = None  # under torchrun: this process's place (rank 0 alone evaluates and saves)

    def __post_init__(self) -> None:
        super().__post_init__()
        self._started = time.time()
        self._last_checkpoint = 0.0
        self._variants: list[_Variant] = []
        self._before: dict[str, Any] = {}  # a resumed run's metrics.json: its history and title carry on
        self._seeded: dict[int, TrainingData] = {}  # a family's other seeds' splits, by data seed
        self.device = torch.device("cpu")  # where it trains: resolved from config.train.device when it starts

    def start(self) -> "TrainingJob":
        self._thread = threading.Thread(target=self.run, name="vae-lab-training", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the job to stop after the current step; it still evaluates and saves every run."""
        self.stop_event.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def _emit(self, update: JobUpdate) -> None:
        self._state.apply(update)
        if self.on_update:
            self.on_update(update)

    def _emit_to(self, v: _Variant, update: JobUpdate) -> None:
        v.status = update.status or v.status
        self._emit(dataclasses.replace(update, variant=v.slot))

    def run(self) -> None:
        """Train, evaluate and save in the calling thread; errors end up in the state, never raised."""
        self._started = time.time()
        try:
            self._run()
        except (DatasetNotFoundError, ValueError) as e:
            self._fail(str(e))
        except Exception as e:  # the page must show it, not lose it in a thread
            log.exception("training job failed")
            self._fail(f"Training failed: {type(e).__name__}: {e}")
        if self.on_done:
            self.on_done()

    def _fail(self, message: str) -> None:
        for update in failure_updates(self._state.snapshot(), message):
            self._emit(update)
        for v in self._variants:
            v.status = v.status if v.status not in ("starting", "running") else "failed"
        if self.sweep is not None and self.sweep.manifest.exists():  # it trained a while: say how it ended
            self._write_manifest("failed")

    def _run(self) -> None:
        """The job from start to end, top to bottom: set up, one lockstep step at a time, evaluate and save."""
        self.device = resolve_device(self.config.train.device)  # a missing accelerator fails the job, saying so
        if self.dist is not None:
            self.device = join(self.dist, self.device)  # under torchrun: this process's device of the group
        data = self.data or prepare_data(self.config)  # here, in the thread: a download must not block the page
        self._variants = self._make_variants(data)
        lockstep = self._lockstep(data)  # a refused variant is announced and left out; all refused: the job fails
        if self.resume:
            self._resume(lockstep)
        self._emit(JobUpdate(status="running"))
        self._write_manifest("running")
        self._last_checkpoint = time.monotonic()
        ending = None
        for step in lockstep.steps():  # one shared batch, one optimizer step for each variant still training
            self._record_step(step)  # curves and, every preview_every_s, reconstructions for the page
            for i in step.diverged:  # its last finite weights are saved now; the others go on
                self._finish(self._variants[i], "diverged", lockstep.messages[i])
            self._maybe_checkpoint()  # a crash or a kill loses at most checkpoint_every_s of training
            ending = self._ending()  # a stop, or its server gone
            if ending and self.dist is None:  # under torchrun a stop reaches every process through agree()
                break
        status, message = ending or self._ending() or ("finished", "")
        for v in self._live():  # whatever ended it, every live run is evaluated and saved: nothing is lost
            self._finish(v, status, message)
        self._conclude(status)

    def _make_variants(self, data: TrainingData) -> list[_Variant]:
        if self.sweep is None:
            return [_Variant(None, self.config, data, self.run_dir)]
        return [_Variant(i, c, self._data_for(c, data), d)
                for i, (c, d) in enumerate(zip(self.sweep.configs, self.sweep.run_dirs))]

    def _data_for(self, config: RunConfig, data: TrainingData) -> TrainingData:
        """The shared splits with the normalizer this variant's data section fits (as prepare_data fits it); on
        another seed (a family's other lockstep group), that seed's splits, loaded once for its variants."""
        if config.data == self.config.data:
            return data
        if config.data.seed != self.config.data.seed:
            if config.data.seed not in self._seeded:
                self._seeded[config.data.seed] = prepare_data(config)
            data = self._seeded[config.data.seed]
        return dataclasses.replace(data, normalizer=run_normalizer(config.data, data.train.stored))

    def _lockstep(self, data: TrainingData) -> LockstepTrainer | GroupedLockstep:
        """The variants' trainers; each refused one says why (all refused: raise, the job fails)."""
        configs, normalizers = [v.config for v in self._variants], [v.data.normalizer for v in self._variants]
        try:
            if len(lockstep_groups(configs)) > 1:
                lockstep = GroupedLockstep(configs, [v.data.train.stored for v in self._variants], normalizers,
                                           self.device, **self._distributed())
            else:
                lockstep = LockstepTrainer(configs, data.train.stored, normalizers, device=self.device,
                                           **self._distributed())
        except NothingToTrain as e:
            self._announce_refusals(e.reasons)
            raise
        self._announce_refusals(lockstep.messages if self.sweep else ())
        for v, trainer in zip(self._variants, lockstep.trainers):
            v.trainer = trainer
            if trainer is not None:
                self._emit_to(v, JobUpdate(status="running" if self.sweep else None,
                                           verdict=trainer.verdict))
        return lockstep

    def _distributed(self) -> dict[str, Any]:
        """Under torchrun: DDP trainers, and rank 0's say on when to stop (the time is up, or a stop)."""
        if self.dist is None:
            return {}
        return {"make_trainer": trainer_factory(self.dist), "agree": self._rank0_clock}

    def _rank0_clock(self, clock: torch.Tensor) -> torch.Tensor:
        if self._ending() is not None:  # a stop on rank 0 stops every process
            clock[0] = 1.0
        return rank0_clock(clock, self.device)

    @property
    def main(self) -> bool:
        """Whether this process evaluates and saves: always, but under torchrun where it is not rank 0."""
        return self.dist is None or self.dist.main

    def _resume(self, lockstep: LockstepTrainer) -> None:
        """Load the saved run into the one trainer: weights, optimizer, z noise and step; keep its history."""
        if self.sweep is not None:
            raise ValueError("A sweep is not resumed as one job: resume each of its runs on its own.")
        run = load_run(self.run_dir)
        if not same_run(run.config, self.config):
            raise ValueError(f"{self.run_dir} was trained with another configuration; a resumed run may change "
                             f"only {', '.join(RESUME_MAY_CHANGE)}.")
        state_file = self.run_dir / TRAIN_STATE
        if not state_file.is_file():
            raise ValueError(f"{self.run_dir} has no {TRAIN_STATE} (saved before runs kept one): it cannot be "
                             "resumed exactly. Train it again.")
        trainer = self._variants[0].trainer
        trainer.resume(run.model.state_dict(), read_train_state(state_file))
        self._variants[0].previews.continue_from(self.run_dir)
        lockstep.step = trainer.step
        self._before = run.metrics

    def _announce_refusals(self, reasons: Sequence[str]) -> None:
        """Refused variants of a sweep (a single run that is refused simply fails)."""
        for v, reason in zip(self._variants, reasons):
            if reason and self.sweep is not None:
                self._emit_to(v, JobUpdate(status="refused", message=reason, verdict=Verdict("refused", reason)))

    def _live(self) -> list[_Variant]:
        return [v for v in self._variants if v.status in ("starting", "running")]

    def _ending(self) -> tuple[RunStatus, str] | None:
        """Why the job must end before its time: a stop, or its server is gone."""
        if self.stop_event.is_set():
            return "stopped", "Stopped by the user."
        reason = self.interrupted() if self.interrupted else None
        return ("interrupted", reason) if reason else None

    def _record_step(self, step: LockstepStep) -> None:
        for v, metrics in zip(self._variants, step.metrics):
            if metrics is None:
                continue
            self._emit_to(v, JobUpdate(steps=(metrics,)))
            if self.on_step and self.sweep is None:
                self.on_step(metrics)
            if self.main and keeps_images(v.config) and time.monotonic() - v.last_preview >= self.preview_every_s:
                self._emit_to(v, JobUpdate(preview=self._kept_preview(v, metrics.step)))
                v.last_preview = time.monotonic()

    def _preview(self, v: _Variant, step: int) -> Preview:
        """Reconstructions of the first test images, in eval mode; the model goes back to training mode."""
        images, normalizer = v.data.test.images[:N_PREVIEW], v.data.normalizer
        x = normalizer.forward(pixels(images)).to(v.trainer.device)
        x_hat = reconstruct(v.trainer.model, x).cpu()  # eval mode (BatchNorm, sigma*)
        v.trainer.model.train()
        return Preview(step, images.numpy().copy(), to_pixels(normalizer.inverse(x_hat)))

    def _kept_preview(self, v: _Variant, step: int) -> Preview:
        preview = self._preview(v, step)
        v.previews.add(preview)
        return preview

    def _maybe_checkpoint(self) -> None:
        """Save every live run as "running" every checkpoint_every_s: a crash or kill loses at most that much."""
        if not self.main or time.monotonic() - self._last_checkpoint < self.checkpoint_every_s:
            return
        self._last_checkpoint = time.monotonic()
        for v in self._live():
            self._checkpoint(v)

    def _checkpoint(self, v: _Variant) -> None:
        if not all(torch.isfinite(p).all() for p in v.trainer.model.parameters()):
            return  # the next step raises TrainingDiverged and the final save keeps the last finite weights
        try:
            self._save(v, self._record(v, "running", "Training; this is its latest checkpoint.", None))
        except OSError as e:  # the final save reports a full disk; the training itself goes on
            log.warning("checkpoint of %s failed: %s", v.run_dir, e)

    def _save(self, v: _Variant, record: dict[str, Any]) -> Path:
        run_dir = save_run(v.run_dir, v.trainer.model, v.config, v.data.normalizer, record,
                           samples_for(v.config, v.data.test), v.trainer.state(), v.previews.saved())
        v.saved = True
        return run_dir

    def _record(self, v: _Variant, status: RunStatus, message: str, test: TestMetrics | None) -> dict[str, Any]:
        return RunRecord(status=status, message=message, steps=v.trainer.step, test=test.to_dict() if test else {},
                         history=resumed_history(self._before.get("history") or {},
                                                 history_rows(list(self._state.history(v.slot)))),
                         owner=self.owner, title=self._before.get("title"),
                         started=self._started, checkpoint_every_s=self.checkpoint_every_s,
                         sweep=self.sweep.id if self.sweep else None, device=self.device.type,
                         world_size=self.dist.world if self.dist else 1, precision=v.config.train.precision,
                         **writer_fields()).to_dict()

    def _finish(self, v: _Variant, status: RunStatus, message: str) -> None:
        """Evaluate and save; a failed evaluation still saves the weights (nothing trained is lost)."""
        if not self.main:  # rank 0 evaluates and saves
            self._emit_to(v, JobUpdate(status=status, message=message))
            return
        preview = None
        try:
            v.trainer.fit_sigma()  # gaussian_optimal: the training set's sigma*, before it is evaluated and saved
            preview = self._kept_preview(v, v.trainer.step) if keeps_images(v.config) else None  # the last frame
            test = evaluate_test(v.trainer.model, v.data, v.config, v.trainer.step).summary()
        except Exception as e:
            log.exception("evaluation after training failed")
            test, message = None, f"{message} The test evaluation failed ({type(e).__name__}: {e}).".strip()
        try:
            run_dir = self._save(v, self._record(v, status, message, test))
        except OSError as e:
            self._emit_to(v, JobUpdate(status="failed", message=f"{message} Saving the run to {v.run_dir} failed: "
                                       f"{e}. Free some space or point VAE_LAB_RUNS at a writable folder, then train "
                                       "again.".strip()))
            return
        if self.sweep is None and status in PAGE_ESTIMATED and keeps_images(v.config):
            save_after_training(run_dir)
        note = f"Saved to {run_dir}." if not message else f"{message} Saved to {run_dir}."
        self._emit_to(v, JobUpdate(status=status, message=note, run_dir=run_dir, test_metrics=test,
                                   preview=preview))

    def _conclude(self, ending: RunStatus) -> None:
        """A sweep's own status and message once every variant has ended; its manifest's final version."""
        if self.sweep is None:
            return
        statuses = [v.status for v in self._variants]
        status = ending if ending in statuses else "diverged" if "diverged" in statuses else "failed"
        outcomes = ", ".join(f"{format_value(value)} {v.status}" for value, v in zip(self.sweep.values,
                                                                                     self._variants))
        saved = sum(v.saved for v in self._variants)
        self._write_manifest(status)
        self._emit(JobUpdate(status=status, message=f"Sweep of {self.sweep.field}: {outcomes}. {saved} "
                             f"run{'s' if saved != 1 else ''} saved, listed in {self.sweep.manifest}."))

    def _write_manifest(self, status: str) -> None:
        """The sweep's manifest (SweepManifest) as things stand; a sweep that never started writes none."""
        if self.sweep is None or not self._variants or all(v.status == "refused" for v in self._variants):
            return
        snap, plan = self._state.snapshot(), self.sweep
        variants = tuple(ManifestVariant(label, value, None if v.status == "refused" else v.run_dir.name,
                                         v.status, s.message)
                         for label, value, v, s in zip(plan.labels, plan.values, self._variants, snap.variants))
        manifest = SweepManifest(plan.id, plan.field, plan.values, status, self.owner, self._started,
                                 variants)
        try:
            write_manifest(plan.manifest, manifest)
        except OSError as e:  # the runs themselves carry the sweep id: a family is still found without it
            log.warning("writing the sweep manifest %s failed: %s", plan.manifest, e)


HISTORY_FIELDS = ("step", "epoch", "recon_nats", "kl_nats", "elbo_nats", "elapsed_s")


def history_rows(history: list[StepMetrics], max_rows: int = 1000) -> dict[str, list[float]]:
    """Column-wise training history for metrics.json, thinned to max_rows + 1 rows (so a job's History of max_rows
    points and its latest is kept whole)."""
    kept = thin(history, max_rows + 1)
    return {f: [getattr(m, f) for m in kept] for f in HISTORY_FIELDS}


def resumed_history(earlier: dict[str, list[float]], new: dict[str, list[float]],
                    max_rows: int = 1000) -> dict[str, list[float]]:
    """A resumed run's history: the earlier rows, then this job's (its clock continued), thinned to max_rows + 1."""
    if not earlier.get("step"):
        return new
    offset = earlier["elapsed_s"][-1] if earlier.get("elapsed_s") else 0.0
    rows = {f: list(earlier.get(f, [])) + [v + offset if f == "elapsed_s" else v for v in new.get(f, [])]
            for f in HISTORY_FIELDS}
    kept = thin(range(len(rows["step"])), max_rows + 1)  # the same rows of every column
    return {f: [values[i] for i in kept] for f, values in rows.items()}


def run_in_foreground(config: RunConfig, runs_dir: Path, run_dir: Path | None = None,
                      on_step: Callable[[StepMetrics], None] | None = None,
                      checkpoint_every_s: float | None = None, owner: str | None = None,
                      sweep: Family | None = None,
                      on_update: Callable[[JobUpdate], None] | None = None, resume: bool = False,
                      dist: Dist | None = None) -> JobSnapshot:
    """Train to the end while the caller waits (the CLI); Ctrl-C stops it and still saves the run(s).

    checkpoint_every_s: None reads the host's setting (VAE_LAB_CHECKPOINT_EVERY_S, default 5 s).
    sweep: train a family in lockstep, one run per value (run_dir must then be None).
    dist: this process's place under torchrun (distributed.py); rank 0 alone evaluates and saves.
    """
    job = TrainingJob(config, runs_dir, run_dir=run_dir, on_step=on_step, owner=owner,
                      checkpoint_every_s=checkpoint_every_s, sweep=sweep, on_update=on_update, resume=resume,
                      dist=dist)
    job.start()
    try:
        while not job.join(0.2):
            pass
    except KeyboardInterrupt:
        job.stop()
        job.join()
    return job.snapshot()

