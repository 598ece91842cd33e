"""How long a training job takes to start: Start pressed (ProcessJob.start) to the child's first report, for jobs
forked from the fork server (what the app does) against jobs spawned as fresh interpreters (what it did), measured
alternately in one run so both meet the same load; the medians and their ratio.

    python -m bench.bench_job_start [--jobs 6]

The fork server's own start (it imports torch once, at the first job) is left out of the forked times and printed
apart: a server pays it once.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

from tests.helpers import tiny_config
from vae_core.jobs import process_job
from vae_core.jobs.process_job import ProcessJob


def started(runs: Path) -> float:
    """Seconds from start() to the child's first report (startup_s), the job stopped at once after."""
    job = ProcessJob(tiny_config(epochs=1, time_budget_s=30), runs).start()
    while job.startup_s is None:
        time.sleep(0.005)
    job.stop()
    job.join(60)
    return job.startup_s


def spawned_context():
    """What jobs used before the fork server: a fresh interpreter per job."""
    process_job._skip_main_module_in_children()
    return multiprocessing.get_context("spawn")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    jobs = parser.parse_args().jobs
    forked, spawned = [], []
    with tempfile.TemporaryDirectory() as tmp:
        first = started(Path(tmp))  # starts the fork server
        forkserver = process_job.job_context
        for i in range(jobs):
            forked.append(started(Path(tmp)))
            process_job.job_context = spawned_context
            spawned.append(started(Path(tmp)))
            process_job.job_context = forkserver
    print(f"first job (starts the fork server): {first:.2f} s; load average {os.getloadavg()[0]:.1f}")
    print(f"forked:  median {statistics.median(forked):.3f} s  ({', '.join(f'{t:.2f}' for t in forked)})")
    print(f"spawned: median {statistics.median(spawned):.3f} s  ({', '.join(f'{t:.2f}' for t in spawned)})")
    print(f"spawned / forked: {statistics.median(spawned) / statistics.median(forked):.1f}x")


if __name__ == "__main__":
    main()
