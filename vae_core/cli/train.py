"""python -m vae_core train: one run, a sweep (--sweep) or a resumed run (--resume); under torchrun, one process
of several. Progress goes to stderr; the run folder's path (one per variant of a sweep) to stdout."""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from vae_core.cli.options import add_config_options, config_from_args, dataset_defaults_text, option_flag
from vae_core.config import RunConfig, default_for


def add_train_parser(sub: Any) -> None:
    from vae_core.training.resume import RESUME_MAY_CHANGE

    train = sub.add_parser("train", help="train a VAE and save a run folder", epilog=dataset_defaults_text())
    add_config_options(train)
    train.add_argument("--out", type=Path, help="the run folder to write (default: a new folder under --runs-dir)")
    train.add_argument("--runs-dir", type=Path, help="where new runs go (default: $VAE_LAB_RUNS or ./runs)")
    train.add_argument("--quiet", action="store_true", help="no progress lines")
    may_change = ", ".join(option_flag("train", f) for f in RESUME_MAY_CHANGE)
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue that run (weights, optimizer, "
                       f"step, history) in its own folder; only {may_change} may change (--epochs: the total)")
    _add_sweep_option(train)


def _progress(per: str = "image", every_s: float = 1.0):
    """A progress line a second; per: what a nat is counted per (vectors: a normalized row, as the loss sees it)."""
    last = [0.0]

    def on_step(m) -> None:
        if time.monotonic() - last[0] >= every_s:
            last[0] = time.monotonic()
            sys.stderr.write(f"step {m.step:6d}  epoch {m.epoch:6.2f}  recon {m.recon_nats:10.2f}  "
                             f"kl {m.kl_nats:8.2f}  elbo {m.elbo_nats:10.2f} nats/{per}  "
                             f"{m.images_per_s:7.0f} {'rows' if per != 'image' else 'img'}/s\n")
    return on_step


def _add_sweep_option(train: argparse.ArgumentParser) -> None:
    from vae_core.training.sweeps import SWEEP_MAX_VARIANTS

    train.add_argument("--sweep", metavar="FIELD=V1,V2,...",
                       help=f"train a family in lockstep, one run per value (2 to {SWEEP_MAX_VARIANTS}), all else as "
                       "the other options say: e.g. output_activation=sigmoid,tanh,linear or beta=0.5,1,4; prints "
                       "one run folder per variant")


def cmd_train(ns: argparse.Namespace) -> int:
    from vae_core.training.distributed import dist_from_env, leave

    dist = dist_from_env()  # under torchrun: one process of several
    if dist is not None:
        _per_process(ns, dist)
    try:
        return _train(ns, dist)
    finally:
        leave()


def _train(ns: argparse.Namespace, dist: Any) -> int:
    from vae_core.jobs.training_job import run_in_foreground
    from vae_core.runs.folders import default_runs_dir

    if ns.resume:
        return _resume(ns, dist)
    if getattr(ns, "data.dataset", None) == "images" and getattr(ns, "data.images", None):
        _check_images(ns)
    config = config_from_args(ns)
    if ns.sweep is not None:
        return _train_sweep(ns, config)
    per = "normalized row" if config.data.kind == "vectors" else "image"
    snap = run_in_foreground(config, ns.runs_dir or default_runs_dir(), ns.out,
                             on_step=None if ns.quiet else _progress(per), dist=dist)
    return _report(snap, ns.quiet, dist is None or dist.main)


def _per_process(ns: argparse.Namespace, dist: Any) -> None:
    """Under torchrun: --batch-size is each process's, so the run's batch is N times it; rank 0 alone prints."""
    if ns.sweep is not None:
        raise ValueError("--sweep trains a family in one process; under torchrun train one run at a time.")
    if not ns.resume:
        dataset = getattr(ns, "data.dataset", default_for("data.dataset", ""))
        per_process = getattr(ns, "train.batch_size", default_for("train.batch_size", dataset))
        setattr(ns, "train.batch_size", per_process * dist.world)
        if dist.main and not ns.quiet:
            sys.stderr.write(f"{dist.world} processes, {per_process} images each: {per_process * dist.world} "
                             "images per step\n")
    ns.quiet = ns.quiet or not dist.main


def _report(snap: Any, quiet: bool, main: bool = True) -> int:
    """A finished job on stderr, its run folder on stdout; the exit status (2 failed, 1 diverged, else 0).
    Under torchrun only rank 0 (main) says anything: it alone evaluated and saved."""
    if snap.status == "failed":
        sys.stderr.write(f"error: {snap.message}\n" if main else "")
        return 2
    if snap.test_metrics and not quiet:
        sys.stderr.write(f"{snap.status}: {_test_line(snap.test_metrics)}\n")
    if snap.status == "diverged" and main:
        sys.stderr.write(f"warning: {snap.message}\n")
    if main:
        sys.stdout.write(f"{snap.run_dir}\n")
    return 1 if snap.status == "diverged" else 0


def _resume(ns: argparse.Namespace, dist: Any) -> int:
    """train --resume RUN_DIR: the run's own config, with only what RESUME_MAY_CHANGE names changed."""
    from vae_core.jobs.training_job import run_in_foreground
    from vae_core.runs.folders import read_config
    from vae_core.training.resume import RESUME_MAY_CHANGE

    given = {k: v for k, v in vars(ns).items() if "." in k}
    others = sorted(option_flag(*k.split(".")) for k in given if not k.startswith("train.")
                    or k.split(".")[1] not in RESUME_MAY_CHANGE)
    if others or ns.sweep is not None or ns.out is not None:
        raise ValueError(f"--resume continues a run as it was configured, in its own folder: drop "
                         f"{', '.join(others) or '--sweep/--out'}.")
    config = read_config(ns.resume)[0]
    train = dataclasses.replace(config.train, **{k.split(".")[1]: v for k, v in given.items()})
    snap = run_in_foreground(dataclasses.replace(config, train=train), ns.resume.parent, ns.resume,
                             on_step=None if ns.quiet else _progress(), resume=True, dist=dist)
    return _report(snap, ns.quiet, dist is None or dist.main)


def _check_images(ns: argparse.Namespace) -> None:
    """Say what was loaded and skipped before training, and settle "auto" colour from the images once."""
    from vae_core.config import DataConfig
    from vae_core.data.images.dataset import read_images

    data = DataConfig(**{k.split(".", 1)[1]: v for k, v in vars(ns).items() if k.startswith("data.")})
    read = read_images(data.images, data)
    if not ns.quiet:
        sys.stderr.write(read.summary() + "\n")
    setattr(ns, "data.color", read.settle(data).color)


def _test_line(t: Any) -> str:
    """A run's test metrics in one line (t: an EvalMetrics, or a VectorEvalMetrics)."""
    if t.dataset == "vectors":
        return (f"test ELBO {t.elbo_nats:.2f} nats per raw row (recon {t.recon_nats:.2f}, KL {t.kl_nats:.2f}; "
                f"log-Jacobian {t.log_jacobian_nats:.2f}), {t.active_units} active units")
    return (f"test ELBO {t.elbo_nats:.2f} nats/image (recon {t.recon_nats:.2f}, KL {t.kl_nats:.2f}), "
            f"PSNR {t.psnr_db:.2f} dB, {t.active_units} active units")


def _train_sweep(ns: argparse.Namespace, config: RunConfig) -> int:
    """One run folder per saved variant on stdout; a refused variant says why on stderr. Status 0 if one
    variant trained to its end (or to a stop), 1 if every saved one diverged, 2 if none could train."""
    from vae_core.jobs.training_job import run_in_foreground
    from vae_core.runs.folders import default_runs_dir
    from vae_core.training.sweeps import parse_sweep

    if ns.out is not None:
        raise ValueError("--out names one run folder, but a sweep saves one per variant: use --runs-dir.")
    spec = parse_sweep(ns.sweep)
    snap = run_in_foreground(config, ns.runs_dir or default_runs_dir(), sweep=spec,
                             on_update=None if ns.quiet else _sweep_progress(spec.labels))
    for variant in snap.variants:
        _report_variant(variant, ns.quiet)
    if not any(v.run_dir for v in snap.variants):
        sys.stderr.write(f"error: {snap.message}\n")
        return 2
    return 0 if any(v.status in ("finished", "stopped", "interrupted") for v in snap.variants) else 1


def _report_variant(v: Any, quiet: bool) -> None:
    """A variant's outcome: its folder on stdout if it was saved, what happened on stderr."""
    if v.run_dir is None:
        sys.stderr.write(f"{'refused' if v.status == 'refused' else 'error'}: {v.label}: {v.message}\n")
        return
    if v.test_metrics and not quiet:
        sys.stderr.write(f"{v.label} {v.status}: {_test_line(v.test_metrics)}\n")
    if v.status == "diverged":
        sys.stderr.write(f"warning: {v.label}: {v.message}\n")
    sys.stdout.write(f"{v.run_dir}\n")


def _sweep_progress(labels: tuple[str, ...], every_s: float = 1.0):
    """A progress line a second: the step and each variant's latest batch ELBO."""
    latest: dict[int, Any] = {}
    last = [0.0]

    def on_update(update) -> None:
        if update.variant is None or not update.steps:
            return
        latest[update.variant] = update.steps[-1]
        if time.monotonic() - last[0] >= every_s:
            last[0] = time.monotonic()
            m = max(latest.values(), key=lambda m: m.step)
            elbos = "  ".join(f"{labels[i]} {latest[i].elbo_nats:.1f}" for i in sorted(latest))
            sys.stderr.write(f"step {m.step:6d}  epoch {m.epoch:6.2f}  ELBO nats/image: {elbos}\n")
    return on_update
