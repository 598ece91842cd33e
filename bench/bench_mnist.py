"""MNIST's defaults within a minute: `python -m vae_core train --dataset mnist --time-budget 60`, no other flag.

    python -m bench.bench_mnist [--budget 60] [--data-dir ../shared/data] [-- extra train flags]

Trains through the CLI (a fresh process, as a person would), then prints the training time, the steps and
epochs it reached, images/s, and the test -ELBO in nats (goal: at most 100 on grey MNIST with the defaults:
Bernoulli, sigmoid output, unit data, as PyTorch's VAE example, which reaches about 105.6 after 10 epochs).
Run it on an otherwise idle machine: the budget is wall time.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=60.0, help="--time-budget, seconds")
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("extra", nargs="*", help="more train flags (after --)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as runs:
        cmd = [sys.executable, "-m", "vae_core", "train", "--dataset", "mnist", "--data-dir", args.data_dir,
               "--time-budget", str(args.budget), "--runs-dir", runs, "--quiet", *args.extra]
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(done.stderr[-2000:])
        run = Path(done.stdout.strip())
        metrics = json.loads((run / "metrics.json").read_text())
        config = json.loads((run / "config.json").read_text())["run"]
    history, test = metrics["history"], metrics["test"]
    trained_s, steps = history["elapsed_s"][-1], metrics["steps"]
    print(f"flags: {' '.join(args.extra) or '(defaults)'}")
    print(f"model: {config['model']['arch']} latent {config['model']['latent_dim']}, batch "
          f"{config['train']['batch_size']}, lr {config['train']['lr']:g} ({config['train']['lr_schedule']})")
    print(f"trained {trained_s:.1f} s: {steps} steps, {history['epoch'][-1]:.2f} epochs, "
          f"{steps * config['train']['batch_size'] / trained_s:.0f} images/s; {wall:.1f} s in all")
    print(f"test -ELBO {-test['elbo_nats']:.2f} nats (recon {test['recon_nats']:.2f}, KL {test['kl_nats']:.2f}); "
          f"goal: at most 100")


if __name__ == "__main__":
    main()
