"""Training jobs on Redis (VAE_LAB_QUEUE): every app process submits, watches and stops them; workers train them.

RQ carries the jobs: its queue list gives the places, its job_timeout backs the host's time cap, and its workers
(`python -m vae_core worker`, jobs/worker.py) fork a work horse per job. Beside RQ's keys each job has a hash
(Keys.job) with its JobSpec, its state and the worker's latest JobSnapshot (pickled: JobState's bounded history)
under a version number; an app process unpickles a snapshot once per version, so a page's poll costs one round
trip. One job per person is a per-owner key taken with SET NX. Stop is a key that the worker's heartbeat turns into
the job's stop event (a clean stop: the run is saved as "stopped"). A running job whose heartbeat key expired was
lost with its worker; whoever looks at it first settles it as interrupted (its last checkpoint loads).

Redis is trusted like the app's own memory: the snapshots are pickles, as RQ's jobs are.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import pickle
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.exceptions import LockError
from rq import Queue, Worker
from rq.job import Job as RQJob

from vae_core.config import RunConfig
from vae_core.host import QUEUE_ENV, HostSettings
from vae_core.jobs.plan import SweepPlan, plan_sweep
from vae_core.jobs.progress import JobSnapshot, JobState, JobStatus
from vae_core.jobs.scheduler import ONE_JOB_EACH, JobRecord, RecordStatus, capped, queue_full, record_message
from vae_core.runs.folders import CONFIG, run_name
from vae_core.runs.listing import cleanup_stale_temporaries
from vae_core.training.sweeps import Family

log = logging.getLogger(__name__)

PREFIX = "vae-lab"
QUEUE_NAME = "vae-lab-training"
RUN_JOB = "vae_core.jobs.worker.run_job"  # named, not imported: an app process never imports the worker
BEAT_S = 0.25  # how often a worker renews a job's heartbeat, looks for a stop and writes its snapshot if it changed
HEARTBEAT_TTL_S = 6.0  # a running job whose heartbeat is older than this was lost with its worker
DONE_TTL_S = 86_400  # an ended job's record stays a day: a reload still finds it
JOB_TIMEOUT_GRACE_S = 300  # RQ's job_timeout: the time budget, plus this for loading data, evaluating and saving
CLAIM_TTL_S = 30  # an owner's claim, until its job is queued
KEEP_OWNED = 32  # the latest jobs kept per owner (jobs_of)
KEEP_CACHED = 512  # snapshots and specs an app process keeps unpickled
SLOTS_FRESH_S = 2.0  # how long a count of the workers is reused
SUBMIT_LOCK_S = 5  # the longest a submission holds (and waits for) the lock that makes the queue's limit hold
T = TypeVar("T")

# deletes the owner's key only while it still names this job (a newer job of the same owner keeps its claim)
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@dataclass(frozen=True)
class Keys:
    """The Redis keys of one job."""
    token: str

    @property
    def job(self) -> str:
        return f"{PREFIX}:job:{self.token}"  # hash: spec, state, version, snap

    @property
    def alive(self) -> str:
        return f"{PREFIX}:alive:{self.token}"  # set with a TTL by the worker's heartbeat

    @property
    def stop(self) -> str:
        return f"{PREFIX}:stop:{self.token}"


RUNNING = f"{PREFIX}:running"  # set of the tokens being trained
SUBMIT_LOCK = f"{PREFIX}:submit"  # held while a submission counts the queue and joins it


def owner_key(owner: str) -> str:
    return f"{PREFIX}:owner:{owner}"  # the owner's one queued or running job


def owned_key(owner: str) -> str:
    return f"{PREFIX}:owned:{owner}"  # list of the owner's latest jobs, newest first


def release_owner(client: Any, owner: str, token: str) -> None:
    """Let the owner start another job (a client or a pipeline)."""
    client.eval(_RELEASE, 1, owner_key(owner), token)


@dataclass(frozen=True)
class JobSpec:
    """What a worker needs to train a job, fixed when it was submitted."""
    token: str
    owner: str
    config: RunConfig  # its time budget already capped
    runs_dir: Path  # absolute: every machine mounts the runs folder at the same path
    run_dir: Path | None  # a single run's folder; a sweep's are in its plan
    sweep: SweepPlan | None
    submitted: float
    time_capped: bool
    checkpoint_every_s: float

    @property
    def run_dirs(self) -> tuple[Path, ...]:
        return self.sweep.run_dirs if self.sweep else (self.run_dir,)


@dataclass(frozen=True)
class _Seen:
    """One look at a job: its state ("queued", "started", "ended", "cancelled"), version, heartbeat, queue index."""
    state: str | None
    version: int
    alive: bool
    index: int | None  # 0: next to start; None: not in the queue


class QueueUnavailable(ValueError):
    """The Redis named by VAE_LAB_QUEUE cannot be reached; the message says what to check."""


def shown_url(url: str) -> str:
    """The address without its password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def unreachable(url: str, error: Exception) -> QueueUnavailable:
    why = str(error).rstrip(".")
    return QueueUnavailable(f"The job queue at {shown_url(url)} ({QUEUE_ENV}) cannot be reached: {why}. Check that "
                            "Redis runs there and that this machine can reach it (host, port, password, firewall), "
                            f"or unset {QUEUE_ENV} to train jobs in the app's own process.")


def connect_redis(url: str) -> redis.Redis:
    """A client for url, checked with a PING; QueueUnavailable says what to check."""
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=10, health_check_interval=30)
    try:
        client.ping()
    except redis.RedisError as e:
        raise unreachable(url, e) from None
    return client


def connect(settings: HostSettings) -> "RedisScheduler":
    """The scheduler on the Redis that settings.queue_url names."""
    return RedisScheduler(settings, connect_redis(settings.queue_url))


def _answering(method: Callable[..., T]) -> Callable[..., T]:
    """Redis gone mid-class: the page says what to check instead of a traceback from deep in redis-py."""
    @functools.wraps(method)
    def call(self: "RedisScheduler", *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as e:
            raise unreachable(self.settings.queue_url, e) from None
    return call


class RedisScheduler:
    """The Scheduler of jobs/scheduler.py on Redis: the same records, whichever app process asks."""

    def __init__(self, settings: HostSettings, client: redis.Redis):
        self.settings, self.client = settings, client
        self.queue = Queue(QUEUE_NAME, connection=client)
        self._lock = threading.Lock()  # the caches below, shared by the sessions' threads
        self._specs: collections.OrderedDict[str, JobSpec] = collections.OrderedDict()
        self._snaps: collections.OrderedDict[str, tuple[int, JobSnapshot]] = collections.OrderedDict()
        self._slots = (0.0, 0)  # (when counted, workers)

    @_answering
    def submit(self, owner: str, config: RunConfig, sweep: Family | None = None, runs_dir: Path | None = None) -> str:
        """Queue a job on Redis and return its token (see JobScheduler.submit); ValueError says why it was refused."""
        config, was_capped = capped(config, self.settings.job_time_cap_s)
        runs_dir = Path(runs_dir or self.settings.runs_dir).absolute()
        plan = plan_sweep(config, sweep, runs_dir) if sweep is not None else None
        token = secrets.token_urlsafe(9)
        spec = JobSpec(token, owner, config, runs_dir, None if plan else runs_dir / run_name(config), plan,
                       time.time(), was_capped, self.settings.checkpoint_every_s)
        self._claim(owner, token)
        try:
            with self.client.lock(SUBMIT_LOCK, timeout=SUBMIT_LOCK_S, blocking_timeout=SUBMIT_LOCK_S):
                self._check_room()  # and queue it before another process counts: the limit holds across them
                self._enqueue(spec)
        except LockError:
            release_owner(self.client, owner, token)
            raise ValueError(f"The queue is busy: another submission held it for {SUBMIT_LOCK_S} s. Press Start "
                             "again.") from None
        except BaseException:
            release_owner(self.client, owner, token)
            raise
        return token

    def _claim(self, owner: str, token: str) -> None:
        """Take the owner's one place, atomically across processes; a claim whose job ended is given back first.
        A claim lives CLAIM_TTL_S until its job is queued (a process that died in between does not block its owner)."""
        for _ in range(2):
            if self.client.set(owner_key(owner), token, nx=True, ex=CLAIM_TTL_S):
                return
            held = self.client.get(owner_key(owner))
            record = self.get(held.decode()) if held else None
            if held and (record is None or not record.done):  # None: another process is queueing it right now
                break
            if held:
                release_owner(self.client, owner, held.decode())
        raise ValueError(ONE_JOB_EACH)

    def _check_room(self) -> None:
        waiting, running = self.queue.count, self.client.scard(RUNNING)
        if running >= self.slots() and waiting >= self.settings.max_queue:
            raise ValueError(queue_full(waiting, self.slots()))

    def _enqueue(self, spec: JobSpec) -> None:
        """The job's hash, its owner's list and RQ's job, in one transaction (RQ's first: it opens the MULTI)."""
        keys, pipe = Keys(spec.token), self.client.pipeline()
        timeout = int(spec.config.train.time_budget_s + JOB_TIMEOUT_GRACE_S)  # the job's own budget ends it first
        self.queue.enqueue_call(RUN_JOB, args=(spec.token,), job_id=spec.token, timeout=timeout,
                                result_ttl=DONE_TTL_S, failure_ttl=DONE_TTL_S, pipeline=pipe,
                                description=f"VAE Lab job {spec.token}")
        pipe.hset(keys.job, mapping={"spec": pickle.dumps(spec), "state": "queued", "version": 0})
        pipe.lpush(owned_key(spec.owner), spec.token)
        pipe.ltrim(owned_key(spec.owner), 0, KEEP_OWNED - 1)
        pipe.expire(owned_key(spec.owner), DONE_TTL_S)
        pipe.persist(owner_key(spec.owner))  # the claim now lasts until the job ends
        pipe.execute()

    def slots(self) -> int:
        """How many jobs train at once: the workers listening on the queue (counted every few seconds)."""
        counted, n = self._slots
        if time.monotonic() - counted > SLOTS_FRESH_S:
            n = Worker.count(connection=self.client, queue=self.queue)
            self._slots = (time.monotonic(), n)
        return n

    @_answering
    def position(self, token: str) -> int | None:
        """0 while it runs, 1 for the next in the queue, ...; None once it ended (or for an unknown token)."""
        record = self.get(token)
        return record.position if record else None

    @_answering
    def get(self, token: str) -> JobRecord | None:
        """The job's record, as every app process sees it; None for a token Redis does not know (any more)."""
        return self._records([token])[0]

    @_answering
    def stop(self, token: str) -> None:
        """A queued job is cancelled; a running one stops after its current step and saves its run."""
        keys = Keys(token)
        spec = self._spec(token)
        if spec is None or self.client.transaction(lambda pipe: self._cancel(pipe, spec), keys.job,
                                                  value_from_callable=True):
            return
        if self.client.hget(keys.job, "state") == b"started":
            self.client.set(keys.stop, 1, ex=DONE_TTL_S)

    def _cancel(self, pipe: redis.client.Pipeline, spec: JobSpec) -> bool:
        """Within a WATCH of its hash: cancel the job if it still waits (a worker starting it meanwhile wins)."""
        if pipe.hget(Keys(spec.token).job, "state") != b"queued":
            return False
        pipe.multi()
        pipe.hset(Keys(spec.token).job, "state", "cancelled")
        pipe.lrem(self.queue.key, 0, spec.token)
        pipe.expire(Keys(spec.token).job, DONE_TTL_S)
        pipe.expire(RQJob.key_for(spec.token), DONE_TTL_S)
        release_owner(pipe, spec.owner, spec.token)
        return True

    @_answering
    def jobs_of(self, owner: str) -> list[JobRecord]:
        """This owner's jobs, newest first, ended ones included (their latest KEEP_OWNED, for a day)."""
        tokens = [t.decode() for t in self.client.lrange(owned_key(owner), 0, -1)]
        records = [r for r in self._records(tokens) if r is not None]
        return sorted(records, key=lambda r: r.submitted, reverse=True)

    @_answering
    def active(self) -> list[JobRecord]:
        """Running jobs (oldest first), then the queue in order."""
        running = sorted((t.decode() for t in self.client.smembers(RUNNING)))
        queued = [t.decode() for t in self.client.lrange(self.queue.key, 0, -1)]
        records = [r for r in self._records([*running, *queued]) if r is not None and not r.done]
        return sorted(records, key=lambda r: (r.position, r.submitted if r.position == 0 else 0))

    # ------------------------------------------------------------------------- reading records

    def _records(self, tokens: list[str]) -> list[JobRecord | None]:
        """The tokens' records, read in one round trip (and one more for each snapshot that changed)."""
        pipe = self.client.pipeline(transaction=False)
        for token in tokens:
            pipe.hmget(Keys(token).job, "state", "version")
            pipe.exists(Keys(token).alive)
            pipe.lpos(self.queue.key, token)
        answers = pipe.execute() if tokens else []
        seen = [_Seen(None if s is None else s.decode(), int(v or 0), bool(alive), index)
                for (s, v), alive, index in zip(answers[0::3], answers[1::3], answers[2::3])]
        return [self._record(token, s) for token, s in zip(tokens, seen)]

    def _record(self, token: str, seen: _Seen) -> JobRecord | None:
        spec = self._spec(token) if seen.state else None
        if spec is None:
            return None
        if self._lost(token, seen):
            self._settle_lost(spec)
            return self.get(token)
        snap = self._snapshot(spec, seen.version)
        status: RecordStatus = "cancelled" if seen.state == "cancelled" else (
            "queued" if seen.index is not None else snap.status)
        position = seen.index + 1 if seen.index is not None else 0 if seen.state in ("queued", "started") else None
        message = record_message(spec.config, spec.time_capped, status, position, self.slots(), snap)
        return JobRecord(token, spec.owner, spec.config, status, position, spec.submitted,
                         spec.config.train.time_budget_s, spec.time_capped,
                         None if status in ("queued", "cancelled") else snap, message, spec.sweep)

    def _lost(self, token: str, seen: _Seen) -> bool:
        """Its worker is gone: it ran and its heartbeat expired, or RQ gave it up before it began."""
        if seen.state == "started":
            return not seen.alive
        if seen.state != "queued" or seen.index is not None:
            return False
        rq_job = RQJob.fetch(token, connection=self.client) if self.client.exists(RQJob.key_for(token)) else None
        return rq_job is None or rq_job.get_status() in ("failed", "stopped", "canceled")

    def _spec(self, token: str) -> JobSpec | None:
        return self._cached(self._specs, token, lambda: self._unpickle(Keys(token).job, "spec"))

    def _snapshot(self, spec: JobSpec, version: int) -> JobSnapshot:
        """The worker's latest snapshot (a fresh one while it starts), unpickled once per version in this process."""
        if version == 0:
            return JobState(sweep=spec.sweep).snapshot()
        with self._lock:
            kept = self._snaps.get(spec.token)
        if kept and kept[0] == version:
            return kept[1]
        snap = self._unpickle(Keys(spec.token).job, "snap") or JobState(sweep=spec.sweep).snapshot()
        return self._cached(self._snaps, spec.token, lambda: (version, snap), replace=True)[1]

    def _unpickle(self, key: str, field: str) -> Any:
        raw = self.client.hget(key, field)
        return pickle.loads(raw) if raw is not None else None

    def _cached(self, cache: collections.OrderedDict, token: str, make: Callable[[], Any],
                replace: bool = False) -> Any:
        with self._lock:
            if token in cache and not replace:
                return cache[token]
        value = make()
        with self._lock:
            if value is not None:
                cache[token] = value
                while len(cache) > KEEP_CACHED:
                    cache.popitem(last=False)
        return value

    def _settle_lost(self, spec: JobSpec) -> None:
        """Its worker died: every run not ended is interrupted, its last checkpoint kept; the owner may start again."""
        keys = Keys(spec.token)
        final = lost_snapshot(spec, self._unpickle(keys.job, "snap") or JobState(sweep=spec.sweep).snapshot())

        def settle(pipe: redis.client.Pipeline) -> None:
            if pipe.hget(keys.job, "state") not in (b"started", b"queued"):
                return  # the worker ended it meanwhile, or another process settled it
            pipe.multi()
            pipe.hset(keys.job, mapping={"state": "ended", "snap": pickle.dumps(final)})
            pipe.hincrby(keys.job, "version", 1)
            pipe.srem(RUNNING, spec.token)
            pipe.lrem(self.queue.key, 0, spec.token)
            pipe.expire(keys.job, DONE_TTL_S)
            release_owner(pipe, spec.owner, spec.token)
        self.client.transaction(settle, keys.job)
        log.warning("job %s was lost with its worker: %s", spec.token, final.message)


def lost_snapshot(spec: JobSpec, snap: JobSnapshot) -> JobSnapshot:
    """A job whose worker died: interrupted where a checkpoint was saved (it loads), else failed; so is each variant
    that had not ended (from ProcessJob's words for a dead child)."""
    at = f" at step {snap.history[-1].step}" if snap.history else ""
    for root in {d.parent for d in spec.run_dirs}:  # a kill between a checkpoint's two renames: put it back
        cleanup_stale_temporaries(root)
    saved = [d for d in spec.run_dirs if (d / CONFIG).is_file()]
    status: JobStatus = "interrupted" if saved else "failed"
    message = (f"The worker training this job stopped{at}, before its first checkpoint: nothing was saved. Train again."
               if not saved else
               f"The worker training this job stopped{at}. Its last checkpoint{'s are' if len(saved) > 1 else ' is'} in "
               f"{', '.join(map(str, saved))} and load{'' if len(saved) > 1 else 's'} like any run (listed as "
               "interrupted); train again to go further.")
    variants = tuple(v if v.done else dataclasses.replace(v, status=status, message=message) for v in snap.variants)
    return dataclasses.replace(snap, status=status, message=message, variants=variants)
