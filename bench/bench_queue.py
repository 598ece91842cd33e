"""Jobs on Redis against the embedded scheduler: start latency, stop latency and the cost per training step.

    python -m bench.bench_queue [--rounds 3] [--seconds 6] [--json FILE]

Starts redis-server on a free loopback port and one `python -m vae_core worker`, then for each round trains the same
tiny sprites run twice, once through each scheduler (JobScheduler: a child process of this one; RedisScheduler: the
worker's work horse), for `--seconds` each, then stops it. Measured: submit to the first step seen by the app
(`first_progress_s`), Stop to the run saved as "stopped" (`stop_s`), and training steps per second as the run's own
history says (`steps_per_s`); the cost per step is the difference of their inverses. Also a running job's snapshot:
its pickled size (what a worker writes to Redis a few times a second) and the time to pickle it. Medians over the
rounds.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import statistics
import tempfile
import time
from pathlib import Path

from tests.helpers import settings, tiny_config, wait_for
from tests.redis_server import end, start_redis, start_worker, wait_for_workers
from vae_core.jobs.redis_queue import connect
from vae_core.jobs.scheduler import JobScheduler, Scheduler


def one_job(scheduler: Scheduler, owner: str, seconds: float) -> dict[str, float]:
    t0 = time.monotonic()
    token = scheduler.submit(owner, tiny_config(time_budget_s=seconds * 10))
    wait_for(lambda: (r := scheduler.get(token)).snapshot and r.snapshot.history, timeout=120, every=0.01)
    first = time.monotonic() - t0
    time.sleep(seconds)
    size, ms = pickled(scheduler.get(token).snapshot)  # while it runs: its curves and a preview
    t1 = time.monotonic()
    scheduler.stop(token)
    final = wait_for(lambda: (r := scheduler.get(token)).done and r, timeout=120, every=0.01)
    stop = time.monotonic() - t1
    last = final.snapshot.history[-1]
    return dict(first_progress_s=first, stop_s=stop, steps_per_s=last.step / last.elapsed_s,
                snapshot_bytes=size, pickle_ms=ms)


def pickled(snapshot: object) -> tuple[int, float]:
    """A snapshot's pickled size in bytes, and the milliseconds the worker takes to pickle it."""
    t0 = time.perf_counter()
    for _ in range(20):
        data = pickle.dumps(snapshot)
    return len(data), (time.perf_counter() - t0) / 20 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--json", type=Path)
    ns = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    server, url = start_redis(folder)
    worker = start_worker(url, folder / "worker.log")
    try:
        wait_for_workers(url, 1)
        host = settings(folder / "runs", job_time_cap_s=600.0)
        schedulers = {"in_process": JobScheduler(host), "redis": connect(dataclasses.replace(host, queue_url=url))}
        found = {name: [] for name in schedulers}
        for i in range(ns.rounds):
            for name, scheduler in schedulers.items():
                found[name].append(one_job(scheduler, f"{name}-{i}", ns.seconds))
    finally:
        end(worker)
        end(server)
    result = {name: {k: round(statistics.median(r[k] for r in rounds), 4) for k in rounds[0]}
              for name, rounds in found.items()}
    per_step_ms = 1000 / result["redis"]["steps_per_s"] - 1000 / result["in_process"]["steps_per_s"]
    result["redis_cost_per_step_ms"] = round(per_step_ms, 3)
    text = json.dumps(result, indent=1)
    print(text)  # noqa: T201  (a bench's output)
    if ns.json:
        ns.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
