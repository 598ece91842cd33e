"""A training job in a child process, so watching it costs the server almost nothing.

In a thread the job shares the server's GIL: a watched run trained at 28 steps/s instead of 48 and
every other page slowed down. Here the child runs TrainingJob's loop (the CLI's code path, with
its checkpoints) and streams JobUpdates (steps, uint8 previews, status) over a Pipe; a reader thread
in the parent folds them into a JobState, so snapshot() never waits on the child.

The child is forked from a "forkserver": a clean process started once per server, that has imported torch and the
training code, so a job starts in a fraction of a second instead of importing them again (~2 s of CPU a job;
forking the multi-threaded server itself would copy locks held by its other threads). The server's environment
travels with each job (the fork server keeps the one it started with). The child stops when asked (an Event),
when its server dies (its pid is gone, or the pipe to it breaks: its parent is the fork server, which outlives
the server while any job runs) or on SIGTERM (the server shutting down), and saves the run each time.
"""
from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import multiprocessing.spawn
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from vae_core.config import RunConfig
from vae_core.jobs.job import BaseJob
from vae_core.jobs.plan import SweepPlan
from vae_core.jobs.progress import JobUpdate, StopSignal, failure_updates
from vae_core.jobs.training_job import TrainingJob
from vae_core.runs.folders import CONFIG
from vae_core.training.trainer import StepMetrics

log = logging.getLogger(__name__)

PROCESS_PREFIX = "vae-lab-job-"
SEND_EVERY_S = 0.1  # steps are batched: a few pipe messages a second, whatever the step rate
CHILD_EXIT_WAIT_S = 10.0  # after the pipe closes, how long to wait for the child's exit code


@dataclass(frozen=True)
class ChildSpec:
    """Everything the child needs, pickled to it at spawn."""
    config: RunConfig
    runs_dir: Path
    run_dir: Path
    owner: str | None
    token: str
    checkpoint_every_s: float
    preview_every_s: float
    history_cap: int
    server_pid: int
    environ: dict[str, str]  # the server's environment when the job started (VAE_LAB_* settings among it)
    sweep: SweepPlan | None  # fixed by the parent: the same id and folders on both sides


@dataclass
class ProcessJob(BaseJob):
    """A job trained in a child process: TrainingJob's loop there, its updates streamed back over a pipe."""
    startup_s: float | None = field(default=None, init=False)  # start() to the child's "running"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._process: Any = None
        self._stop: StopSignal | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> "ProcessJob":
        ctx = job_context()
        receive, send = ctx.Pipe(duplex=False)
        self._stop = ctx.Event()
        spec = ChildSpec(self.config, Path(self.runs_dir), self.run_dir, self.owner, self.token,
                         self.checkpoint_every_s, self.preview_every_s, self.history_cap, os.getpid(), dict(os.environ),
                         self.sweep)
        self._process = ctx.Process(target=child_main, args=(send, self._stop, spec),
                                    name=PROCESS_PREFIX + self.token, daemon=True)
        self._t0 = time.monotonic()
        self._process.start()
        send.close()  # the child holds the only writing end: its death is our EOF
        self._reader = threading.Thread(target=self._read, args=(receive,), name="vae-lab-job-reader", daemon=True)
        self._reader.start()
        return self

    def stop(self) -> None:
        """Ask the child to stop after the current step; it still evaluates and saves the run."""
        if self._stop is not None:
            self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._reader is not None:
            self._reader.join(timeout)
        return self._reader is None or not self._reader.is_alive()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _read(self, receive: Connection) -> None:
        try:
            while True:
                for update in receive.recv():  # a batch of updates, in order
                    self._apply(update)
        except (EOFError, OSError):
            pass  # the child closed its end: it finished, or it died
        finally:
            receive.close()
        self._process.join(CHILD_EXIT_WAIT_S)  # reaps it: a zombie would still look alive to runs.listing.pid_alive
        if not (snap := self._state.snapshot()).done:
            for update in failure_updates(snap, self._death_message()):
                self._state.apply(update)
        if self.on_done:
            self.on_done()

    def _apply(self, update: JobUpdate) -> None:
        if update.status == "running" and self.startup_s is None:
            self.startup_s = time.monotonic() - self._t0
            log.info("job %s: child process running %.2f s after start", self.token, self.startup_s)
        self._state.apply(update)

    def _death_message(self) -> str:
        code = self._process.exitcode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with status {code}"
        history = self._state.snapshot().history  # a sweep's: its lead variant's
        at = f" at step {history[-1].step}" if history else ""
        saved = [d for d in (self.sweep.run_dirs if self.sweep else (self.run_dir,)) if (d / CONFIG).is_file()]
        if len(saved) == 1:
            return (f"The training process {how}{at}. Its last checkpoint is in {saved[0]} and loads like any "
                    "run (listed as interrupted); train again to go further.")
        if saved:
            return (f"The training process {how}{at}. The last checkpoints are in {', '.join(map(str, saved))} and "
                    "load like any run (listed as interrupted); train again to go further.")
        return f"The training process {how}{at}, before its first checkpoint: nothing was saved. Train again."


PRELOADED = ["vae_core.jobs.process_job"]  # what the fork server imports once: torch and the training code
_PATCH_LOCK = threading.Lock()


def job_context() -> Any:
    """The fork server's context, preloading PRELOADED (read when the fork server starts, at the first job)."""
    _skip_main_module_in_children()
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOADED)
    return ctx


def _skip_main_module_in_children() -> None:
    """Job children must not re-run the parent's __main__ (Streamlit sets it to app.py).

    multiprocessing prepares each child by importing the parent's main script; under Streamlit that is the whole
    app, run without a session. Only processes named PROCESS_PREFIX... are affected.
    """
    with _PATCH_LOCK:
        original = multiprocessing.spawn.get_preparation_data
        if getattr(original, "vae_lab", False):
            return

        def preparation_data(name: str) -> dict[str, Any]:
            data = original(name)
            if name.startswith(PROCESS_PREFIX):
                data.pop("init_main_from_path", None)
                data.pop("init_main_from_name", None)
            return data

        preparation_data.vae_lab = True  # type: ignore[attr-defined]
        multiprocessing.spawn.get_preparation_data = preparation_data


# ----------------------------------------------------------------------------- in the child process

class _Sender:
    """Batches step updates into a few messages a second (a message is a tuple of JobUpdates, applied in
    order: each variant's steps, then the change that was due); a gone parent makes sending a no-op."""

    def __init__(self, send: Connection):
        self.send, self.last, self.broken = send, time.monotonic(), False
        self.steps: dict[int | None, list[StepMetrics]] = {}  # by variant (None: the job's own run)

    def __call__(self, update: JobUpdate) -> None:
        self.steps.setdefault(update.variant, []).extend(update.steps)
        if update.only_steps() and time.monotonic() - self.last < SEND_EVERY_S:
            return
        self._send(() if update.only_steps() else (dataclasses.replace(update, steps=()),))

    def flush(self) -> None:
        if any(self.steps.values()):
            self._send(())

    def _send(self, changes: tuple[JobUpdate, ...]) -> None:
        steps = tuple(JobUpdate(tuple(s), variant=v) for v, s in self.steps.items() if s)
        self.steps, self.last = {}, time.monotonic()
        if self.broken:
            return
        try:
            self.send.send((*steps, *changes))
        except OSError:  # the server is gone; the job notices (_why_interrupted) and saves
            self.broken = True


def child_main(send: Connection, stop: StopSignal, spec: ChildSpec) -> None:
    """The child's entry point: train with TrainingJob's loop in this (main) thread, then exit."""
    import torch

    os.environ.clear()
    os.environ.update(spec.environ)  # the fork server's own environment is the one it started with
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminated.set())  # the server shutting down: save, then exit
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent decides
    torch.set_num_threads(spec.config.train.num_threads or 1)  # one core per job; the others serve pages
    sender = _Sender(send)
    run_dir = None if spec.sweep else spec.run_dir  # a sweep's folders are in its plan
    job = TrainingJob(spec.config, spec.runs_dir, run_dir=run_dir, owner=spec.owner, token=spec.token,
                      checkpoint_every_s=spec.checkpoint_every_s, preview_every_s=spec.preview_every_s,
                      history_cap=spec.history_cap, on_update=sender, stop_event=stop,
                      interrupted=lambda: _why_interrupted(spec.server_pid, sender, terminated), sweep=spec.sweep)
    job.run()
    sender.flush()
    send.close()


def _why_interrupted(server_pid: int, sender: _Sender, terminated: threading.Event) -> str | None:
    if sender.broken or not _alive(server_pid):
        return "The server that started this job stopped; the run was saved where it had got to."
    if terminated.is_set():
        return "The server is shutting down; the run was saved where it had got to."
    return None


def _alive(pid: int) -> bool:
    """Whether a process of that pid exists (a server killed and not yet reaped still does: the broken pipe tells)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the pid: not our server
        return False
    return True
