"""The server-wide queue of training jobs: a few run at once, the rest wait their turn (FIFO).

Scheduler is what the pages call; JobScheduler is the embedded one, in this process, and
jobs/redis_queue.py the one a host asks for with VAE_LAB_QUEUE (jobs on Redis, trained by workers).
One JobScheduler per server (the UI keeps it in st.cache_resource). Sessions submit configs under
an owner name and find their jobs again by token, after a reload too: a job outlives its browser tab.
Every method is thread-safe. A job's end starts the next one (from the job's own thread), and every
call also checks lazily, so no polling thread is needed.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Protocol

from vae_core.config import RunConfig
from vae_core.host import HostSettings
from vae_core.jobs.plan import SweepPlan, plan_sweep
from vae_core.jobs.process_job import ProcessJob
from vae_core.jobs.progress import JobSnapshot, JobStatus, thin_snapshot
from vae_core.training.sweeps import Family

log = logging.getLogger(__name__)

RecordStatus = JobStatus | Literal["queued", "cancelled"]
KEEP_DONE = 256  # finished job records kept, so a reload still finds its job by token
DONE_HISTORY_POINTS = 200  # a finished record keeps this many curve points (its run folder has them all)


class Job(Protocol):
    token: str
    run_dir: Path

    def start(self) -> "Job": ...

    def stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> bool: ...

    def snapshot(self) -> JobSnapshot: ...


JobFactory = Callable[..., Job]  # (config, runs_dir, *, owner, token, checkpoint_every_s, on_done[, sweep]) -> Job


@dataclass(frozen=True)
class JobRecord:
    """A job as the scheduler sees it; `snapshot` is None while it waits (or if it was cancelled)."""
    token: str
    owner: str
    config: RunConfig  # as it runs: the time budget is already capped
    status: RecordStatus
    position: int | None  # 0 running, 1 next in the queue, ...; None once ended
    submitted: float  # unix time
    time_budget_s: float  # the budget the job runs under
    time_capped: bool  # True: the host's cap (VAE_LAB_JOB_TIME_CAP_S) cut the requested budget
    snapshot: JobSnapshot | None
    message: str  # what a person needs to know: the queue place, the cap, the job's own message
    sweep: SweepPlan | None = None  # a sweep: its plan, the field and values its variants take (config: their base)

    @property
    def done(self) -> bool:
        return self.position is None


class Scheduler(Protocol):
    """What the pages and the labs call, whichever queue the host chose (this process's, or Redis)."""
    settings: HostSettings

    def submit(self, owner: str, config: RunConfig, sweep: Family | None = None,
               runs_dir: Path | None = None) -> str: ...

    def position(self, token: str) -> int | None: ...

    def get(self, token: str) -> JobRecord | None: ...

    def stop(self, token: str) -> None: ...

    def jobs_of(self, owner: str) -> list[JobRecord]: ...

    def active(self) -> list[JobRecord]: ...

    def slots(self) -> int: ...


ONE_JOB_EACH = ("You already have a training job running or queued (one job per session at a time): stop it or "
                "wait for it to finish, then start another.")


def queue_full(waiting: int, slots: int) -> str:
    """Why a Start was refused when the queue is full."""
    return f"The server's training queue is full ({waiting} jobs waiting for {slots} slots): try again in a few minutes."


def capped(config: RunConfig, cap_s: float) -> tuple[RunConfig, bool]:
    """The config with its time budget capped at the host's cap, and whether the cap cut it."""
    asked = config.train.time_budget_s
    if asked is not None and asked <= cap_s:
        return config, False
    return dataclasses.replace(config, train=dataclasses.replace(config.train, time_budget_s=cap_s)), True


def record_message(config: RunConfig, time_capped: bool, status: RecordStatus, position: int | None, slots: int,
                   snap: JobSnapshot | None) -> str:
    """What a person reads about their job: its queue place, the cap, or the job's own message."""
    cap = f" Its time budget is capped at {config.train.time_budget_s:g} s on this server." if time_capped else ""
    if status == "queued":
        return f"Waiting for a free slot: number {position} in the queue ({slots} run at once).{cap}"
    if status == "cancelled":
        return "Cancelled before it started; nothing was trained."
    return f"{snap.message}{cap}".strip()


@dataclass
class _Entry:
    token: str
    owner: str
    config: RunConfig
    submitted: float
    time_capped: bool
    sweep: SweepPlan | None = None
    runs_dir: Path | None = None  # where its runs go; None: the host's runs folder
    job: Job | None = None
    final: JobSnapshot | None = None  # kept once ended; the job object is then let go
    cancelled: bool = False


class JobScheduler:
    def __init__(self, settings: HostSettings, job_factory: JobFactory = ProcessJob):
        self.settings = settings
        self.job_factory = job_factory
        self._lock = threading.RLock()  # reentrant: a job that ends at once calls back while we start it
        self._queue: collections.deque[_Entry] = collections.deque()
        self._running: dict[str, _Entry] = {}
        self._done: collections.OrderedDict[str, _Entry] = collections.OrderedDict()

    def submit(self, owner: str, config: RunConfig, sweep: Family | None = None, runs_dir: Path | None = None) -> str:
        """Queue a job (it starts at once if a slot is free) and return its token.

        sweep: train a family in lockstep, one run per value, as one job (one slot; the time budget and
        its cap are the whole sweep's); a variant that cannot be built raises ValueError here.
        runs_dir: where its runs go (a browser's private space), else the host's runs folder.
        """
        config, was_capped = capped(config, self.settings.job_time_cap_s)
        # planned here, once (ValueError naming a bad variant): the job and its child process keep this plan
        plan = plan_sweep(config, sweep, runs_dir or self.settings.runs_dir) if sweep is not None else None
        with self._lock:
            self._update()
            if any(e.owner == owner for e in self._active_entries()):
                raise ValueError(ONE_JOB_EACH)
            if len(self._running) >= self.settings.max_jobs and len(self._queue) >= self.settings.max_queue:
                raise ValueError(queue_full(len(self._queue), self.settings.max_jobs))
            entry = _Entry(secrets.token_urlsafe(9), owner, config, time.time(), was_capped, plan, runs_dir)
            self._queue.append(entry)
            self._update()
            return entry.token

    def slots(self) -> int:
        """How many jobs train at once."""
        return self.settings.max_jobs

    def position(self, token: str) -> int | None:
        """0 while it runs, 1 for the next in the queue, ...; None once it ended (or for an unknown token)."""
        with self._lock:
            self._update()
            if token in self._running:
                return 0
            return next((i + 1 for i, e in enumerate(self._queue) if e.token == token), None)

    def get(self, token: str) -> JobRecord | None:
        """The job's record, snapshot included; None for a token this server does not know (any more)."""
        with self._lock:
            self._update()
            entry = self._find(token)
            return self._record(entry) if entry else None

    def stop(self, token: str) -> None:
        """A queued job is cancelled; a running one stops after its current step and saves its run."""
        with self._lock:
            self._update()
            entry = self._find(token)
            if entry is None or entry.final is not None or entry.cancelled:
                return
            if entry.job is not None:
                entry.job.stop()
                return
            self._queue.remove(entry)
            entry.cancelled = True
            self._retire(entry)

    def jobs_of(self, owner: str) -> list[JobRecord]:
        """This owner's jobs, newest first, ended ones included (as far as KEEP_DONE reaches)."""
        with self._lock:
            self._update()
            entries = [e for e in (*self._active_entries(), *self._done.values()) if e.owner == owner]
            return [self._record(e) for e in sorted(entries, key=lambda e: e.submitted, reverse=True)]

    def active(self) -> list[JobRecord]:
        """Running jobs, then the queue in order."""
        with self._lock:
            self._update()
            return [self._record(e) for e in self._active_entries()]

    # ------------------------------------------------------------------------- under the lock

    def _active_entries(self) -> list[_Entry]:
        return [*self._running.values(), *self._queue]

    def _find(self, token: str) -> _Entry | None:
        found = self._running.get(token) or self._done.get(token)
        return found or next((e for e in self._queue if e.token == token), None)

    def _update(self) -> None:
        """Retire ended jobs, then start queued ones while there are free slots."""
        with self._lock:
            for entry in [e for e in self._running.values() if e.job is not None and e.job.snapshot().done]:
                del self._running[entry.token]
                self._retire(entry)
            while self._queue and len(self._running) < self.settings.max_jobs:
                self._start(self._queue.popleft())

    def _start(self, entry: _Entry) -> None:
        self._running[entry.token] = entry
        try:
            sweep = {"sweep": entry.sweep} if entry.sweep is not None else {}  # a factory may know single runs only
            entry.job = self.job_factory(entry.config, entry.runs_dir or self.settings.runs_dir, owner=entry.owner,
                                         token=entry.token,
                                         checkpoint_every_s=self.settings.checkpoint_every_s, on_done=self._update,
                                         **sweep)
            entry.job.start()
        except Exception as e:  # e.g. no more processes: say so and keep the queue moving
            log.exception("starting job %s failed", entry.token)
            del self._running[entry.token]
            entry.final = JobSnapshot("failed", (), f"The job could not start ({type(e).__name__}: {e}). Try "
                                      "again; if it keeps failing, tell whoever runs this server.", None, None,
                                      None, None)
            self._retire(entry)
        else:
            log.info("job %s of %s started (%d running, %d queued)", entry.token, entry.owner,
                     len(self._running), len(self._queue))

    def _retire(self, entry: _Entry) -> None:
        if entry.job is not None and entry.final is None:
            snap = entry.job.snapshot()
            entry.final = thin_snapshot(snap, DONE_HISTORY_POINTS)
            entry.job = None  # let the job (and its pipe, thread, full history) go
        self._done[entry.token] = entry
        while len(self._done) > KEEP_DONE:
            self._done.popitem(last=False)

    def _record(self, entry: _Entry) -> JobRecord:
        snap = entry.final or (entry.job.snapshot() if entry.job is not None else None)
        position = 0 if entry.token in self._running else next(
            (i + 1 for i, e in enumerate(self._queue) if e is entry), None)
        status: RecordStatus = "cancelled" if entry.cancelled else snap.status if snap else "queued"
        return JobRecord(entry.token, entry.owner, entry.config, status, position, entry.submitted,
                         entry.config.train.time_budget_s, entry.time_capped, snap,
                         record_message(entry.config, entry.time_capped, status, position, self.settings.max_jobs,
                                        snap), entry.sweep)

