"""Server-side latency of a traversal update on the Latent space page, for the default bundled model.

    python -m bench.bench_traversal [--calls 50]

Times exactly what the page's fragment does on a slider move (encode the anchor, decode the grid,
build the figure) plus the JSON encoding Streamlit does on it; goal: under 50 ms. It is measured
idle, then while a training job runs in a background thread (as on the Train page, one torch
thread), to show whether the page stays responsive during training.
"""
import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from vae_plots import views
from vae_core.config import DataConfig, LossConfig, ModelConfig, TrainConfig
from vae_core.data.datasets import load_dataset
from vae_core.jobs.training_job import TrainingJob
from vae_core.runs.folders import bundled_models_dir, load_run
from vae_core.training.trainer import make_run_config

DEFAULT = "sprites-sigmoid-unit-bernoulli"


def measure(run, images, calls: int) -> list[float]:
    dims = views.informative_dims(run, 10)
    times = []
    for i in range(calls):
        span = 0.5 + (i % 10) * 0.5  # a slider being dragged
        t = time.perf_counter()
        views.traversal(run, images[i % len(images)], dims, span).to_json()
        times.append((time.perf_counter() - t) * 1000)
    return times


def report(label: str, times: list[float]) -> None:
    q = statistics.quantiles(times, n=10)
    print(f"{label:<34} median {statistics.median(times):6.1f} ms   p90 {q[-1]:6.1f} ms   (n={len(times)}, goal < 50 ms)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50)
    args = ap.parse_args()
    run = load_run(bundled_models_dir() / DEFAULT)
    images = load_dataset(DataConfig(n_test=64), "test").images
    for threads in (2, 1):  # the app runs with 1 (ui/state.py APP_THREADS); 2 is torch's default here
        torch.set_num_threads(threads)
        measure(run, images, 5)  # warm up
        report(f"idle, {threads} torch thread(s)", measure(run, images, args.calls))
    config = make_run_config(DataConfig(n_train=5000), ModelConfig(), LossConfig(),
                             TrainConfig(epochs=1000, num_threads=1))
    with tempfile.TemporaryDirectory() as tmp:
        job = TrainingJob(config, Path(tmp)).start()
        while job.snapshot().status != "running":
            time.sleep(0.1)
        time.sleep(1.0)
        report("while a job trains (1 thread each)", measure(run, images, args.calls))
        steps = len(job.snapshot().history)
        job.stop()
        job.join()
    print(f"torch threads now {torch.get_num_threads()}; the background job ran {steps} steps meanwhile")


if __name__ == "__main__":
    main()
