"""python -m vae_core lab ID: train a lab's family, print its table and conclusion, write its report."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vae_core.config import DataConfig, field_options, fields_info
from vae_core.data.images.dataset import IMAGE_OPTIONS
from vae_core.labs.base import LAB_SEEDS, STEP_BUDGETS, LabSettings, lab_images
from vae_core.training.sweeps import FAMILY_MAX_SEEDS


def add_lab_parser(sub: Any) -> None:
    from vae_core.labs import LABS

    lab = sub.add_parser("lab", help="run one of the four questions' labs and print its measured conclusion")
    lab.add_argument("lab_id", choices=list(LABS), help="which lab")
    lab.add_argument("--dataset", choices=field_options(DataConfig, "dataset"),
                     help="default: sprites, or vectors (the bundled ones) for a lab on vectors")
    lab.add_argument("--data-dir", help="where the dataset's files are (not sprites)")
    lab.add_argument("--vectors", help="--dataset vectors: your CSV or .npy (one row a sample; default: the bundled "
                     "vectors)")
    _add_images_options(lab)
    lab.add_argument("--seed", type=int, default=0, help="the first seed: data, initial weights, batch order and z "
                     "noise")
    lab.add_argument("--seeds", type=int, default=LAB_SEEDS, help=f"train the family on this many seeds, from --seed "
                     f"(1 to {FAMILY_MAX_SEEDS}); a verdict holds only where every seed agrees (default {LAB_SEEDS})")
    lab.add_argument("--steps", type=int, help="optimizer steps of every variant, so a seed reproduces the lab "
                     "bit for bit (default: the lab's own, " + budgets_help() + ")")
    lab.add_argument("--runs-dir", type=Path, help="where the variants' runs go (default: $VAE_LAB_RUNS or ./runs)")
    lab.add_argument("--report", type=Path, help="a folder to write report.md and its figures into")
    lab.add_argument("--instant", action="store_true", help="measure the bundled runs instead of training, where "
                     "the lab has them (sampled-z on sprites)")


IMAGE_FIELDS = ("images", *IMAGE_OPTIONS)


def budgets_help() -> str:
    """Each lab's default steps and the time they take at its measured rate: "zscore-tanh 160 (about 44 s a seed)"."""
    return "; ".join(f"{lab_id} {b.steps} (about {b.seconds():.0f} s a seed)" for lab_id, b in STEP_BUDGETS.items())


def _add_images_options(lab: argparse.ArgumentParser) -> None:
    from vae_core.cli.options import arg_type, option_flag, option_help

    for name in IMAGE_FIELDS:
        info = fields_info(DataConfig)[name]
        lab.add_argument(option_flag("data", name), dest=name, default=info.default, help=option_help(info),
                         **arg_type(info))


def lab_settings(ns: argparse.Namespace) -> LabSettings:
    """The lab's settings from its options (with --dataset images, the images as a lab uses them)."""
    from vae_core.labs import lab

    chosen = lab(ns.lab_id)
    steps = ns.steps if ns.steps is not None else chosen.budget.steps
    ns.dataset = ns.dataset or ("vectors" if chosen.kind == "vectors" else "sprites")
    check_kind(chosen, ns)
    if ns.dataset == "vectors":
        return vector_settings(ns, steps)
    if ns.dataset != "images":
        return LabSettings(ns.dataset, ns.data_dir, ns.seed, steps, seeds=1 if ns.instant else ns.seeds)
    if not ns.images:
        raise ValueError("--dataset images needs --images PATH (a folder or a .zip of images).")
    from vae_core.data.images.dataset import read_images

    data = DataConfig(dataset="images", seed=ns.seed, **{f: getattr(ns, f) for f in IMAGE_FIELDS})
    read = read_images(data.images, data)
    return LabSettings("images", None, ns.seed, steps, images=lab_images(read.settle(data), len(read.test)),
                       train_images=len(read.train), seeds=1 if ns.instant else ns.seeds)


def check_kind(chosen: Any, ns: argparse.Namespace) -> None:
    """A lab runs on the kind of data it was designed for (images or vectors); ValueError naming the others."""
    from vae_core.labs import LABS

    if (kind := "vectors" if ns.dataset == "vectors" else "images") != chosen.kind:
        others = ", ".join(i for i, other in LABS.items() if other.kind == kind)
        raise ValueError(f"The lab {chosen.id} runs on {chosen.kind}, not {kind}: pick one of the labs for {kind} "
                         f"({others}) or another --dataset.")
    if ns.vectors and ns.dataset != "vectors":
        raise ValueError("--vectors FILE needs --dataset vectors.")


def vector_settings(ns: argparse.Namespace, steps: int) -> LabSettings:
    """A lab on vectors: the file's (else the bundled), z-scored, read once for their sizes."""
    from vae_core.labs.rows import lab_vectors

    data = DataConfig(dataset="vectors", vectors=ns.vectors, seed=ns.seed, normalization="zscore",
                      test_share=ns.test_share)
    found = lab_vectors(data)
    return LabSettings("vectors", None, ns.seed, steps, seeds=ns.seeds, vectors=found.data,
                       train_images=found.train_rows)


def cmd_lab(ns: argparse.Namespace) -> int:
    from vae_core.labs import lab
    from vae_core.labs.report import table, write_report
    from vae_core.labs.run import conclude_family, run_lab
    from vae_core.runs.folders import default_runs_dir

    chosen = lab(ns.lab_id)
    settings = lab_settings(ns)
    instant = chosen.instant(settings) if ns.instant and chosen.instant else None
    if ns.instant and instant is None:
        raise ValueError(f"The lab {chosen.id} has no bundled runs for {settings.dataset}: run it without --instant.")
    outcome = conclude_family(chosen, settings, instant) if instant else \
        run_lab(chosen, settings, ns.runs_dir or default_runs_dir())
    t = table(outcome)
    sys.stdout.write(f"{chosen.title}\n\n" + "\n".join(" | ".join(r) for r in (t.header, *t.rows)) + "\n\n")
    sys.stdout.write("".join(f"- {_tag(f.verdict)}{f.text.replace('**', '')}\n" for f in outcome.findings))
    if ns.report:
        sys.stdout.write(f"\nreport: {write_report(outcome, ns.report)}\n")
    return 0 if outcome.measured else 2


def _tag(verdict: str) -> str:
    """"[agrees] ", or nothing for a measurement or a calculation, which no verdict can contradict."""
    return "" if verdict == "measured" else f"[{verdict}] "
