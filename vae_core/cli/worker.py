"""python -m vae_core worker --queue redis://HOST:PORT/DB: train the jobs that app processes queue on Redis."""
from __future__ import annotations

import argparse
import os
from typing import Any

from vae_core.host import QUEUE_ENV, SETTINGS

MAX_WORKERS = 64


def add_worker_parser(sub: Any) -> None:
    worker = sub.add_parser("worker", help="train the jobs the app queues on Redis (with VAE_LAB_QUEUE set), here "
                            "or on any machine that shares the runs folder at the same path")
    worker.add_argument("--queue", help=f"the Redis address, redis://HOST:PORT/DB (default: ${QUEUE_ENV})")
    worker.add_argument("--workers", type=int, default=1, help="jobs this machine trains at once, one core each "
                        "(default 1)")
    worker.add_argument("--burst", action="store_true", help="exit once the queue is empty")


def cmd_worker(ns: argparse.Namespace) -> int:
    queue = next(s for s in SETTINGS if s.field == "queue_url")
    url = queue.value({QUEUE_ENV: ns.queue or os.environ.get(QUEUE_ENV, "")})
    if not url:
        raise ValueError(f"No queue to work on: pass --queue redis://HOST:PORT/DB or set {QUEUE_ENV}.")
    if not 1 <= ns.workers <= MAX_WORKERS:
        raise ValueError(f"--workers={ns.workers} is out of range; it must be from 1 to {MAX_WORKERS}.")
    from vae_core.jobs.worker import run_workers  # imports torch: the work horses fork with it loaded

    run_workers(url, ns.workers, "empty" if ns.burst else "stopped")
    return 0
