"""The workers of jobs on Redis (jobs/redis_queue.py): `python -m vae_core worker` runs RQ workers, and run_job trains
one job in RQ's work horse with TrainingJob's loop (the CLI's code path, its checkpoints and final save).

While it trains, a thread (Beacon) renews the job's `alive` key, turns a stop key into the job's stop event, notices
a job given up for lost, and writes the job's snapshot to Redis four times a second (at once when its status
changes), so training never waits on the network. A horse whose worker died (its parent changed) saves its run as
interrupted and ends.
"""
from __future__ import annotations

import logging
import os
import pickle
import threading
from typing import Literal

import redis

from vae_core.jobs.progress import JobUpdate, thin_snapshot
from vae_core.jobs.redis_queue import (BEAT_S, DONE_TTL_S, HEARTBEAT_TTL_S, QUEUE_NAME, RUNNING, JobSpec, Keys,
                                       connect_redis, release_owner)
from vae_core.jobs.scheduler import DONE_HISTORY_POINTS
from vae_core.jobs.training_job import TrainingJob

log = logging.getLogger(__name__)

WORKER_GONE = "The worker that trained this job stopped; the run was saved where it had got to."
GIVEN_UP = ("This job's heartbeat stopped reaching the queue for too long, so the app gave it up for lost; the run "
            "was saved where it had got to.")


class Beacon:
    """The job's link to Redis, in a thread of its own so that training never waits on the network: every BEAT_S it
    renews the job's heartbeat, hears a stop (or that the job was given up for lost) and writes the job's snapshot
    if it changed; a change of status wakes it at once."""

    def __init__(self, client: redis.Redis, keys: Keys):
        self.client, self.keys = client, keys
        self.stop_event = threading.Event()  # the TrainingJob's: it stops after its current step
        self.lost = False  # an app process settled the job as lost (this worker was too slow to answer)
        self.job: TrainingJob | None = None  # set once the job is made (it needs this beacon's callbacks first)
        self._parent = os.getppid()
        self._changed = False
        self._wake, self._done = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._beat, name="vae-lab-beacon", daemon=True)

    def start(self) -> "Beacon":
        self._thread.start()
        return self

    def on_update(self, update: JobUpdate) -> None:
        """TrainingJob's on_update, in the training thread: no waiting here."""
        self._changed = True
        if not _routine(update):
            self._wake.set()

    def why_interrupted(self) -> str | None:
        """TrainingJob's `interrupted`: why the job must end now, or None."""
        if os.getppid() != self._parent:
            return WORKER_GONE
        return GIVEN_UP if self.lost else None

    def _beat(self) -> None:
        while not self._done.is_set():
            self._wake.wait(BEAT_S)
            self._wake.clear()
            self._tick()

    def _tick(self) -> None:
        changed, self._changed = self._changed, False
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.keys.alive, 1, px=int(HEARTBEAT_TTL_S * 1000))
        pipe.exists(self.keys.stop)
        pipe.hget(self.keys.job, "state")
        if changed and not self.lost and self.job is not None:
            _publish(pipe, self.keys, pickle.dumps(self.job.snapshot()))
        try:
            _, stop, state, *_ = pipe.execute()
        except redis.RedisError as e:  # training goes on; the run folder keeps what it learns
            log.warning("the beacon of job %s failed: %s", self.keys.token, e)
            self._changed |= changed
            return
        if stop:
            self.stop_event.set()
        self.lost = state != b"started"

    def close(self) -> None:
        self._done.set()
        self._wake.set()
        self._thread.join()

    def finish(self, owner: str) -> None:
        """The job's final snapshot (thinned as a finished record keeps it); its owner may start another."""
        pipe = self.client.pipeline()
        _publish(pipe, self.keys, pickle.dumps(thin_snapshot(self.job.snapshot(), DONE_HISTORY_POINTS)))
        pipe.hset(self.keys.job, "state", "ended")
        pipe.srem(RUNNING, self.keys.token)
        pipe.delete(self.keys.alive, self.keys.stop)
        pipe.expire(self.keys.job, DONE_TTL_S)
        release_owner(pipe, owner, self.keys.token)
        pipe.execute()


def _publish(pipe: redis.client.Pipeline, keys: Keys, snap: bytes) -> None:
    pipe.hset(keys.job, "snap", snap)
    pipe.hincrby(keys.job, "version", 1)


def _routine(update: JobUpdate) -> bool:
    """Only steps, or steps and a preview: nothing a person must see at once."""
    return update.status is None and update.message is None and update.run_dir is None and \
        update.test_metrics is None and update.verdict is None


def run_job(token: str) -> str:
    """RQ's job function, in the work horse: train the job `token` names; its status at the end."""
    from rq import get_current_job

    return train(get_current_job().connection, token)


def train(client: redis.Redis, token: str) -> str:
    """Train one job to its end (a cancelled one not at all); the job's final status."""
    import torch

    keys = Keys(token)
    spec: JobSpec = pickle.loads(client.hget(keys.job, "spec"))
    if not client.transaction(lambda pipe: _begin(pipe, keys), keys.job, value_from_callable=True):
        return "cancelled"
    torch.set_num_threads(spec.config.train.num_threads or 1)  # one core per job, as in the app's child processes
    beacon = Beacon(client, keys)
    beacon.job = TrainingJob(spec.config, spec.runs_dir, run_dir=spec.run_dir, owner=spec.owner, token=token,
                             checkpoint_every_s=spec.checkpoint_every_s, on_update=beacon.on_update,
                             stop_event=beacon.stop_event, interrupted=beacon.why_interrupted, sweep=spec.sweep)
    beacon.start()
    beacon.job.run()
    beacon.close()
    beacon.finish(spec.owner)
    return beacon.job.snapshot().status


def _begin(pipe: redis.client.Pipeline, keys: Keys) -> bool:
    """Within a WATCH of its hash: mark it started, unless it was cancelled while it waited."""
    if pipe.hget(keys.job, "state") != b"queued":
        return False
    pipe.multi()
    pipe.hset(keys.job, "state", "started")
    pipe.set(keys.alive, 1, px=int(HEARTBEAT_TTL_S * 1000))
    pipe.sadd(RUNNING, keys.token)
    return True


def run_workers(url: str, workers: int, until: Literal["stopped", "empty"]) -> None:
    """Train the queue's jobs until stopped (Ctrl-C: the jobs running finish first), or until the queue is empty."""
    from rq import Queue, Worker
    from rq.worker_pool import WorkerPool

    client, burst = connect_redis(url), until == "empty"
    if workers == 1:
        Worker([Queue(QUEUE_NAME, connection=client)], connection=client).work(burst=burst, logging_level="INFO")
        return
    WorkerPool([QUEUE_NAME], connection=client, num_workers=workers).start(burst=burst, logging_level="INFO")
