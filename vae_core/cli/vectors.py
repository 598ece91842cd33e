"""python -m vae_core vectors [FILE]: what VAE Lab makes of a CSV or .npy of vectors, before training: what it
loaded, skipped and refused (and why, counted by reason), the splits, the labels and each feature's range. With
no FILE, the bundled vectors."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import TYPE_CHECKING, Any

from vae_core.cli.images import SHOWN_SKIPS
from vae_core.config import DataConfig, fields_info

if TYPE_CHECKING:
    from vae_core.data.vectors.dataset import FeatureRanges, VectorLoad

VECTOR_OPTIONS = ("test_share", "seed")  # the DataConfig fields that shape a file's vectors
NAME_WIDTH = 40  # a feature's name is cut to this many characters in the table of ranges


def add_vectors_parser(sub: Any) -> None:
    from vae_core.cli.options import arg_type, option_flag, option_help

    cmd = sub.add_parser("vectors", help="check a CSV or .npy of vectors (one row a sample) before training on it")
    cmd.add_argument("vectors", nargs="?", help="a .csv (an optional header; optional label and split columns) or "
                     "a 2-D .npy; none: the bundled vectors")
    for name in VECTOR_OPTIONS:
        info = fields_info(DataConfig)[name]
        cmd.add_argument(option_flag("data", name), dest=name, default=info.default, help=option_help(info),
                         **arg_type(info))
    cmd.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_vectors(ns: argparse.Namespace) -> int:
    from vae_core.data.vectors.bundled import read_vectors

    read = read_vectors(ns.vectors, seed=ns.seed, test_share=ns.test_share)
    out = json.dumps(_record(read)) if ns.json else "\n".join(_lines(read))
    sys.stdout.write(out + "\n")
    return 0


def _record(read: VectorLoad) -> dict[str, Any]:
    r = read.report
    return {"summary": read.summary(), "source": r.source, "header": r.header, "split_by": r.split_by,
            "rows_read": r.rows_read, "rows_kept": r.rows_kept, "train": len(read.train), "test": len(read.test),
            "features": list(read.train.feature_names), "labels": read.label_counts(),
            "ranges": dataclasses.asdict(read.train.ranges()), "skip_counts": r.skip_counts(),
            "refusal_counts": r.refusal_counts(),
            "skipped": [dataclasses.asdict(s) for s in r.skipped],
            "refused": [dataclasses.asdict(c) for c in r.refused]}


def _lines(read: VectorLoad) -> list[str]:
    r = read.report
    lines = [read.summary(), f"source: {r.source}" + (", with a header" if r.header else "")]
    lines += [f"  {name:<24} train {c['train']:>7,}  test {c['test']:>6,}" for name, c in read.label_counts().items()]
    lines += _range_lines(read.train.ranges())
    lines += [f"refused column {c.name!r}: {c.detail}" for c in r.refused]
    lines += [f"skipped {s.detail}" for s in r.skipped[:SHOWN_SKIPS]]
    if len(r.skipped) > SHOWN_SKIPS:
        lines.append(f"… and {len(r.skipped) - SHOWN_SKIPS:,} more skipped rows (--json lists them all)")
    return lines


def _range_lines(ranges: FeatureRanges) -> list[str]:
    width = min(NAME_WIDTH, max(len("feature"), *(len(n) for n in ranges.names)))
    lines = ["per feature (training split, raw values):",
             f"  {'feature':<{width}} " + " ".join(f"{h:>12}" for h in ("min", "max", "mean", "std"))]
    for row in zip(ranges.names, ranges.min, ranges.max, ranges.mean, ranges.std):
        lines.append(f"  {row[0][:width]:<{width}} " + " ".join(f"{v:>12.5g}" for v in row[1:]))
    return lines
