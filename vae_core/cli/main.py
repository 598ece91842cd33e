"""python -m vae_core train | evaluate | runs | zoo — the terminal front end.

Options are generated from the config dataclasses, so the CLI has every option the app has, named
after the fields (`--output-activation`, `--latent-dim`, ...). Progress goes to stderr; the run
folder's path (train) or the JSON object (evaluate --json) goes to stdout.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import typing
from pathlib import Path
from typing import Any, Sequence

from vae_core.config import DATASET_DEFAULTS, SECTIONS, FieldInfo, RunConfig, default_for, fields_info, range_text

# Fields the CLI names differently (unit in the name, or a clash between sections).
FLAG_NAMES = {("train", "time_budget_s"): "--time-budget", ("data", "seed"): "--data-seed"}
DERIVED = {("model", "channels"), ("model", "image_size")}  # set from the dataset, not by hand


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line, not the whole usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(section)
        for info in fields_info(cls).values():
            if (section, info.name) in DERIVED:
                continue
            group.add_argument(option_flag(section, info.name), dest=f"{section}.{info.name}",
                               default=argparse.SUPPRESS, help=option_help(info), **_arg_type(info))


def option_flag(section: str, name: str) -> str:
    """The command-line flag of a config field: --latent-dim for latent_dim, unless FLAG_NAMES renames it."""
    return FLAG_NAMES.get((section, name), "--" + name.replace("_", "-"))


def option_help(info: FieldInfo) -> str:
    """The --help line of a config option, from the field's spec: help, range, default."""
    default = info.spec.none_means if info.default is None and info.spec.none_means else info.default
    parts = [info.spec.help.rstrip(".") or info.spec.label]
    if info.kind in ("integer", "number") and info.spec.lo is not None:
        parts.append(range_text(info))
    return f"{'; '.join(parts)} (default: {default})".replace("%", "%%")  # argparse formats help with %


def _arg_type(info: FieldInfo) -> dict[str, Any]:
    if info.kind == "choice":
        return {"choices": info.options, "type": type(info.options[0])}
    if isinstance(info.default, bool):
        return {"action": argparse.BooleanOptionalAction}
    return {"type": {"integer": int, "number": float}.get(info.kind, str), "metavar": info.name.upper()}


def config_from_args(ns: argparse.Namespace) -> RunConfig:
    """The RunConfig the options describe; the model's image shape comes from the dataset."""
    from vae_core.training.trainer import make_run_config

    given: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in vars(ns).items():
        if "." in key:
            section, name = key.split(".", 1)
            given[section][name] = value
    dataset = given["data"].get("dataset", default_for("data.dataset", ""))
    for path, value in DATASET_DEFAULTS.get(dataset, {}).items():  # the dataset's own, where not given
        section, name = path.split(".")
        given[section].setdefault(name, value)
    return make_run_config(*(SECTIONS[s](**given[s]) for s in SECTIONS))


def _dataset_defaults_text() -> str:
    """The epilog of train --help: the defaults a dataset changes (DATASET_DEFAULTS)."""
    lines = [f"--dataset {dataset} changes these defaults: " + ", ".join(
        f"{option_flag(*path.split('.'))} {value}" for path, value in values.items())
        for dataset, values in DATASET_DEFAULTS.items()]
    return " ".join(lines) + (". Under torchrun --batch-size is each process's; the run's batch is N times it."
                              if lines else "")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m vae_core", description="VAE Lab: train and evaluate small VAEs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    train = sub.add_parser("train", help="train a VAE and save a run folder", epilog=_dataset_defaults_text())
    _add_config_options(train)
    train.add_argument("--out", type=Path, help="the run folder to write (default: a new folder under --runs-dir)")
    train.add_argument("--runs-dir", type=Path, help="where new runs go (default: $VAE_LAB_RUNS or ./runs)")
    train.add_argument("--quiet", action="store_true", help="no progress lines")
    from vae_core.training.state import RESUME_MAY_CHANGE

    may_change = ", ".join(option_flag("train", f) for f in RESUME_MAY_CHANGE)
    train.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue that run (weights, optimizer, "
                       f"step, history) in its own folder; only {may_change} may change (--epochs: the total)")
    _add_sweep_option(train)
    ev = sub.add_parser("evaluate", help="evaluate a run on its dataset's test split")
    ev.add_argument("run_dir", type=Path)
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--data-dir", help="where the dataset's files are (overrides the run's setting)")
    ev.add_argument("--n-test", type=int, help="evaluate on a random subset of this many test images")
    ev.add_argument("--iwae-k", type=int, default=16, help="importance samples per image for the IWAE bound (0: skip)")
    runs = sub.add_parser("runs", help="list run folders")
    runs.add_argument("--runs-dir", type=Path)
    _add_zoo_parser(sub)
    from vae_core.cli.images import add_images_parser
    from vae_core.cli.lab import add_lab_parser

    add_lab_parser(sub)
    add_images_parser(sub)
    return parser


def _add_zoo_parser(sub: Any) -> None:
    from vae_core.config import DataConfig, field_options

    zoo = sub.add_parser("zoo", help="the zoo: one run per output activation x normalization x likelihood")
    cmds = zoo.add_subparsers(dest="zoo_command", required=True, parser_class=_Parser)
    build = cmds.add_parser("build", help="train the zoo (one run folder per line on stdout)")
    build.add_argument("--dataset", default="sprites", choices=field_options(DataConfig, "dataset"))
    build.add_argument("--data-dir", help="where the dataset's files are (not sprites)")
    build.add_argument("--out", type=Path, help="where the run folders go (default: models/ for sprites, "
                       "else the runs folder)")
    build.add_argument("--workers", type=int, default=2, help="processes training at once (default: 2)")
    for name, what in (("list", "list the zoo's runs and their test metrics"),
                       ("table", "print the README's markdown table of the zoo"),
                       ("refresh", "evaluate the zoo's runs again with the current evaluation and rewrite their "
                        "test metrics (no training; one run folder per line on stdout)")):
        cmd = cmds.add_parser(name, help=what)
        cmd.add_argument("--dir", type=Path, help="where to look (default: models/ and the runs folder)")
    cmds.choices["list"].add_argument("--json", action="store_true", help="one JSON object per line")


def _progress(every_s: float = 1.0):
    last = [0.0]

    def on_step(m) -> None:
        if time.monotonic() - last[0] >= every_s:
            last[0] = time.monotonic()
            sys.stderr.write(f"step {m.step:6d}  epoch {m.epoch:6.2f}  recon {m.recon_nats:10.2f}  "
                             f"kl {m.kl_nats:8.2f}  elbo {m.elbo_nats:10.2f} nats/image  "
                             f"{m.images_per_s:7.0f} img/s\n")
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
    snap = run_in_foreground(config, ns.runs_dir or default_runs_dir(), ns.out,
                             on_step=None if ns.quiet else _progress(), dist=dist)
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
    from vae_core.training.state import RESUME_MAY_CHANGE

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
    """A run's test metrics in one line (t: an EvalMetrics)."""
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


TRAINED_WITH = ("world_size", "device", "precision")  # how a run was trained, as its metrics.json says


def cmd_evaluate(ns: argparse.Namespace) -> int:
    from vae_core.data.datasets import load_dataset
    from vae_core.model.evaluate import evaluate
    from vae_core.runs.folders import RunRecord, load_run

    run = load_run(ns.run_dir)
    overrides = {k: v for k, v in (("data_dir", ns.data_dir), ("n_test", ns.n_test)) if v is not None}
    data_cfg = dataclasses.replace(run.config.data, **overrides)
    test = load_dataset(data_cfg, "test")
    if not 0 <= ns.iwae_k <= 10_000:
        raise ValueError(f"--iwae-k={ns.iwae_k} is out of range; it must be from 0 to 10000.")
    metrics = evaluate(run.model, run.normalizer, test.images, dataset=data_cfg.dataset, config=run.config,
                       steps=run.metrics.get("steps") or 0,
                       iwae_k=ns.iwae_k).to_dict()
    record = {f.name: f.default for f in dataclasses.fields(RunRecord)}  # a run saved before these were kept
    metrics.update({k: run.metrics.get(k, record[k]) for k in TRAINED_WITH})
    if ns.json:
        sys.stdout.write(json.dumps(metrics) + "\n")
    else:
        for k, v in metrics.items():
            if not isinstance(v, list):
                sys.stdout.write(f"{k:>18}: {v}\n")
    return 0


def cmd_runs(ns: argparse.Namespace) -> int:
    from vae_core.runs.folders import bundled_models_dir, default_runs_dir, list_runs

    for info in list_runs(bundled_models_dir(), ns.runs_dir or default_runs_dir()):
        sys.stdout.write(f"{info.status:>9}  {info.path}\n")
    return 0


def cmd_zoo(ns: argparse.Namespace) -> int:
    return {"build": _zoo_build, "list": _zoo_list, "table": _zoo_table, "refresh": _zoo_refresh}[ns.zoo_command](ns)


def _zoo_build(ns: argparse.Namespace) -> int:
    from vae_core.runs.folders import bundled_models_dir, default_runs_dir
    from vae_core.zoo import build_zoo, check_workers, zoo_configs

    check_workers(ns.workers)
    out = ns.out or (bundled_models_dir() if ns.dataset == "sprites" else default_runs_dir())
    entries = zoo_configs(ns.dataset, ns.data_dir)
    sys.stderr.write(f"training {len(entries)} runs into {out}, {ns.workers} at a time\n")
    start, count = time.monotonic(), iter(range(1, len(entries) + 1))

    def on_done(r) -> None:
        why = "" if r.status == "finished" else f": {r.message}"
        sys.stderr.write(f"[{next(count)}/{len(entries)}] {r.name}: {r.status} in {r.seconds:.0f} s "
                         f"({time.monotonic() - start:.0f} s in all){why}\n")
        if r.run_dir:
            sys.stdout.write(f"{r.run_dir}\n")
            sys.stdout.flush()

    results = build_zoo(entries, out, ns.workers, on_done)
    return 0 if all(r.status == "finished" for r in results) else 1


def _zoo_records(ns: argparse.Namespace) -> list:
    from vae_core.runs.folders import bundled_models_dir, default_runs_dir
    from vae_core.zoo import zoo_list

    return zoo_list(*([ns.dir] if ns.dir else [bundled_models_dir(), default_runs_dir()]))


def _zoo_list(ns: argparse.Namespace) -> int:
    for r in _zoo_records(ns):
        if ns.json:
            sys.stdout.write(json.dumps(r.to_dict()) + "\n")
        else:
            elbo = "ELBO ?" if r.elbo_nats is None else f"ELBO {r.elbo_nats:.1f}"
            sys.stdout.write(f"{r.status:>9}  {r.verdict:>10}  {elbo:>16}  {r.path}\n")
    return 0


def _zoo_table(ns: argparse.Namespace) -> int:
    from vae_core.zoo import zoo_table

    sys.stdout.write(zoo_table(_zoo_records(ns)) + "\n")
    return 0


def _zoo_refresh(ns: argparse.Namespace) -> int:
    from vae_core.zoo import refresh_run

    for r in _zoo_records(ns):
        if r.status == "running":  # its writer is alive and would overwrite the folder
            sys.stderr.write(f"skipped {r.path}: still training\n")
            continue
        start = time.monotonic()
        test = refresh_run(r.path)
        bpd = "—" if test["bits_per_dim"] is None else f"{test['bits_per_dim']:.3f}"
        sys.stderr.write(f"{r.name}: ELBO {test['elbo_nats']:.1f} nats, bits/dim {bpd} "
                         f"({time.monotonic() - start:.1f} s)\n")
        sys.stdout.write(f"{r.path}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from vae_core.data.datasets import DatasetNotFoundError
    from vae_core.runs.folders import RunLoadError

    parser = build_parser()
    ns = parser.parse_args(argv)
    from vae_core.cli.images import cmd_images
    from vae_core.cli.lab import cmd_lab

    command = {"train": cmd_train, "evaluate": cmd_evaluate, "runs": cmd_runs, "zoo": cmd_zoo, "lab": cmd_lab,
               "images": cmd_images}[ns.command]
    try:
        return command(ns)
    except (ValueError, DatasetNotFoundError, RunLoadError, OSError) as e:  # bad input: one line, status 2
        sys.stderr.write(f"{parser.prog}: error: {e}\n")
        return 2
