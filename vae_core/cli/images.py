"""python -m vae_core images PATH: what VAE Lab makes of a folder or a .zip of images, before training:
what it loaded and skipped (and why), the classes per split, the per-channel stats, and for every
normalization the share of values each output activation cannot reach."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

from vae_core.config import DataConfig, fields_info
from vae_core.data.images.dataset import IMAGE_OPTIONS

SHOWN_SKIPS = 20  # skipped files listed one per line; the rest are counted in the summary


def add_images_parser(sub: Any) -> None:
    from vae_core.cli.options import arg_type, option_flag, option_help

    cmd = sub.add_parser("images", help="check a folder or a .zip of your images before training on it")
    cmd.add_argument("images", help="a folder or a .zip of PNG, JPEG, BMP, WebP, GIF or TIFF images")
    for name in (*IMAGE_OPTIONS, "seed"):
        info = fields_info(DataConfig)[name]
        cmd.add_argument(option_flag("data", name), dest=name, default=info.default, help=option_help(info),
                         **arg_type(info))
    cmd.add_argument("--json", action="store_true", help="print one JSON object")


def data_config(ns: argparse.Namespace) -> DataConfig:
    return DataConfig(dataset="images", images=str(ns.images), **{f: getattr(ns, f) for f in (*IMAGE_OPTIONS, "seed")})


def cmd_images(ns: argparse.Namespace) -> int:
    from vae_core.data.images.dataset import read_images
    from vae_core.model.reach import image_stats

    read = read_images(ns.images, data_config(ns))
    stats = image_stats(read.train.images)
    if ns.json:
        sys.stdout.write(json.dumps(_record(read, stats)) + "\n")
        return 0
    sys.stdout.write("\n".join(_lines(read, stats)) + "\n")
    return 0


def _record(read, stats) -> dict[str, Any]:
    return {"summary": read.summary(), "layout": read.layout, "split_by": read.split_by, "color": read.color,
            "train": len(read.train), "test": len(read.test), "classes": read.class_counts(),
            "stats": dataclasses.asdict(stats),
            "skipped": [{"name": o.name, "reason": o.skip, "detail": o.detail} for o in read.skipped]}


def _lines(read, stats) -> list[str]:
    lines = [read.summary(), f"layout: {read.layout} (split by {read.split_by}); the images are {read.color}"]
    lines += [f"  {name:<24} train {c['train']:>7,}  test {c['test']:>6,}" for name, c in read.class_counts().items()]
    lines.append("per channel (training split, pixels in [0, 1]): mean " + ", ".join(f"{m:.4f}" for m in stats.mean)
                 + "; std " + ", ".join(f"{s:.4f}" for s in stats.std))
    lines.append("share of values each output activation cannot reach:")
    for norm, shares in stats.outside.items():
        lo, hi = stats.value_range[norm]
        cells = "  ".join(f"{act} {share:6.1%}" for act, share in shares.items())
        lines.append(f"  {norm:<9} values in [{lo:6.2f}, {hi:5.2f}]   {cells}")
    lines += [f"skipped {o.name}: {o.detail}" for o in read.skipped[:SHOWN_SKIPS]]
    return lines
