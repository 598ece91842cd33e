"""python -m vae_core train | evaluate | runs | zoo | lab | images | vectors | export | worker: the terminal front end.

One module a command (cli/train.py, cli/zoo.py, cli/lab.py, cli/images.py, cli/vectors.py, cli/export.py,
cli/worker.py; evaluate and runs are here), their
shared options in cli/options.py. Each command imports what it needs when it runs.
Progress goes to stderr; what a script wants (a run folder's path, evaluate --json's object) to stdout.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Sequence

from vae_core.cli.export import add_export_parser, cmd_export
from vae_core.cli.images import add_images_parser, cmd_images
from vae_core.cli.lab import add_lab_parser, cmd_lab
from vae_core.cli.options import Parser
from vae_core.cli.train import add_train_parser, cmd_train
from vae_core.cli.vectors import add_vectors_parser, cmd_vectors
from vae_core.cli.worker import add_worker_parser, cmd_worker
from vae_core.cli.zoo import add_zoo_parser, cmd_zoo


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="python -m vae_core", description="VAE Lab: train and evaluate small VAEs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_train_parser(sub)
    ev = sub.add_parser("evaluate", help="evaluate a run on its dataset's test split")
    ev.add_argument("run_dir", type=Path)
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--data-dir", help="where the dataset's files are (overrides the run's setting)")
    ev.add_argument("--n-test", type=int, help="evaluate on a random subset of this many test images")
    ev.add_argument("--iwae-k", type=int, default=16, help="importance samples per image for the IWAE bound (0: skip)")
    ev.add_argument("--save-pages", action="store_true", help="instead, compute what Diagnostics and Compare show "
                    "first and save it in the run (evaluations.safetensors), as training does")
    runs = sub.add_parser("runs", help="list run folders")
    runs.add_argument("--runs-dir", type=Path)
    add_zoo_parser(sub)
    add_lab_parser(sub)
    add_images_parser(sub)
    add_vectors_parser(sub)
    add_export_parser(sub)
    add_worker_parser(sub)
    return parser


TRAINED_WITH = ("world_size", "device", "precision")  # how a run was trained, as its metrics.json says


def cmd_evaluate(ns: argparse.Namespace) -> int:
    from vae_core.data.datasets import load_dataset
    from vae_core.jobs.data_kinds import evaluate_test
    from vae_core.runs.folders import RunRecord, load_run
    from vae_core.training.trainer import TrainingData

    run = load_run(ns.run_dir)
    if ns.save_pages:
        return _save_pages(run)
    overrides = {k: v for k, v in (("data_dir", ns.data_dir), ("n_test", ns.n_test)) if v is not None}
    data_cfg = dataclasses.replace(run.config.data, **overrides)
    test = load_dataset(data_cfg, "test")
    if not 0 <= ns.iwae_k <= 10_000:
        raise ValueError(f"--iwae-k={ns.iwae_k} is out of range; it must be from 0 to 10000.")
    data = TrainingData(test, test, run.normalizer)  # evaluation reads the test split only
    metrics = evaluate_test(run.model, data, dataclasses.replace(run.config, data=data_cfg),
                            run.metrics.get("steps") or 0, ns.iwae_k).to_dict()
    record = {f.name: f.default for f in dataclasses.fields(RunRecord)}  # a run saved before these were kept
    metrics.update({k: run.metrics.get(k, record[k]) for k in TRAINED_WITH})
    if ns.json:
        sys.stdout.write(json.dumps(metrics) + "\n")
        return 0
    for k, v in metrics.items():
        if not isinstance(v, list) or data_cfg.kind == "vectors":  # a vector run's lists are per feature or dimension
            sys.stdout.write(f"{k:>18}: {_short(v)}\n")
    return 0


def _short(value: object) -> object:
    """A list of numbers with four significant digits each; anything else as it is."""
    if isinstance(value, list):
        return "[" + ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value) + "]"
    return value


def _save_pages(run) -> int:
    from vae_core.runs.evaluations import save_page_evaluations

    sys.stdout.write(f"{save_page_evaluations(run)}\n")
    return 0


def cmd_runs(ns: argparse.Namespace) -> int:
    from vae_core.runs.folders import bundled_models_dir, default_runs_dir
    from vae_core.runs.listing import list_runs

    for info in list_runs(bundled_models_dir(), ns.runs_dir or default_runs_dir()):
        sys.stdout.write(f"{info.status:>9}  {info.path}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from vae_core.data.base import DatasetNotFoundError
    from vae_core.runs.folders import RunLoadError

    parser = build_parser()
    ns = parser.parse_args(argv)
    command = {"train": cmd_train, "evaluate": cmd_evaluate, "runs": cmd_runs, "zoo": cmd_zoo, "lab": cmd_lab,
               "images": cmd_images, "vectors": cmd_vectors, "export": cmd_export, "worker": cmd_worker}[ns.command]
    try:
        return command(ns)
    except (ValueError, DatasetNotFoundError, RunLoadError, OSError) as e:  # bad input: one line, status 2
        sys.stderr.write(f"{parser.prog}: error: {e}\n")
        return 2
