"""python -m vae_core export RUN --what traversal|interpolation|samples|training --out FILE.gif|.mp4|.png: a run's
pictures as files for slides, with the Latent space page's defaults. A .png is the page's whole grid; a .gif or .mp4
animates it (a traversal's values, an interpolation's steps, there and back; prior samples, a new draw a frame).
`training`: the run's previews, its test images reconstructed as it trained (export/training.py)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Literal, get_args

from vae_core.export.frames import (INTERPOLATION_STEPS, PRIOR_SAMPLES, TRAVERSAL_DIMS, TRAVERSAL_MAX_DIMS,
                                    TRAVERSAL_SPAN, TRAVERSAL_SPAN_RANGE, TRAVERSAL_VALUES)

What = Literal["traversal", "interpolation", "samples", "training"]
FORMATS = {".png": "png", ".gif": "gif", ".mp4": "mp4"}
MAX_VALUES, MAX_STEPS, MAX_SAMPLES = 33, 64, 256  # frames and tiles a file stays a few MB under


def add_export_parser(sub: Any) -> None:
    cmd = sub.add_parser("export", help="a run's traversal, interpolation, prior samples or training previews as a "
                         "PNG, GIF or MP4")
    cmd.add_argument("run_dir", type=Path)
    cmd.add_argument("--what", choices=get_args(What), default="traversal")
    cmd.add_argument("--out", type=Path, required=True, help="FILE.png (the grid), FILE.gif or FILE.mp4 (animated)")
    cmd.add_argument("--image", type=int, default=0, help="the test image a traversal starts from (default 0)")
    cmd.add_argument("--dims", type=int, default=TRAVERSAL_DIMS, help=f"dimensions traversed, the most KL first "
                     f"(1 to {TRAVERSAL_MAX_DIMS}; default {TRAVERSAL_DIMS})")
    cmd.add_argument("--span", type=float, default=TRAVERSAL_SPAN, help="range either side, in prior standard "
                     f"deviations ({TRAVERSAL_SPAN_RANGE[0]:g} to {TRAVERSAL_SPAN_RANGE[1]:g}; default "
                     f"{TRAVERSAL_SPAN:g})")
    cmd.add_argument("--values", type=int, default=TRAVERSAL_VALUES, help=f"values per dimension (default "
                     f"{TRAVERSAL_VALUES})")
    cmd.add_argument("--a", type=int, default=0, help="an interpolation's first test image (default 0)")
    cmd.add_argument("--b", type=int, default=1, help="and its last (default 1)")
    cmd.add_argument("--steps", type=int, default=INTERPOLATION_STEPS, help="decoded points between them")
    cmd.add_argument("--n", type=int, default=PRIOR_SAMPLES, help="prior samples per grid")
    cmd.add_argument("--seed", type=int, default=0, help="the prior samples' seed")


def cmd_export(ns: argparse.Namespace) -> int:
    from vae_core.export.encode import animation_bytes, png_bytes
    from vae_core.runs.folders import load_run

    fmt = _format(ns.out)
    _check(ns)
    start, run = time.monotonic(), load_run(ns.run_dir)
    frames = _frames(ns, run, fmt)
    data = png_bytes(frames[0]) if fmt == "png" else animation_bytes(frames, fmt)
    ns.out.write_bytes(data)
    sys.stderr.write(f"{ns.what}: {len(frames)} frame{'s' if len(frames) > 1 else ''}, {len(data):,} bytes in "
                     f"{time.monotonic() - start:.1f} s\n")
    sys.stdout.write(f"{ns.out}\n")
    return 0


def _format(out: Path) -> str:
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"--out {out} should end in .png, .gif or .mp4.")
    return fmt


def _check(ns: argparse.Namespace) -> None:
    """Each flag within its range, before the run is loaded (ValueError: one line, status 2)."""
    lo, hi = TRAVERSAL_SPAN_RANGE
    for ok, what in ((1 <= ns.dims <= TRAVERSAL_MAX_DIMS, f"--dims from 1 to {TRAVERSAL_MAX_DIMS}"),
                     (lo <= ns.span <= hi, f"--span from {lo:g} to {hi:g}"),
                     (2 <= ns.values <= MAX_VALUES, f"--values from 2 to {MAX_VALUES}"),
                     (2 <= ns.steps <= MAX_STEPS, f"--steps from 2 to {MAX_STEPS}"),
                     (1 <= ns.n <= MAX_SAMPLES, f"--n from 1 to {MAX_SAMPLES}"),
                     (min(ns.image, ns.a, ns.b, ns.seed) >= 0, "--image, --a, --b and --seed from 0")):
        if not ok:
            raise ValueError(f"{what}, please.")


def _frames(ns: argparse.Namespace, run: Any, fmt: str) -> list:
    from vae_core.export import frames as f

    if ns.what == "training":
        return _training(run, fmt)
    if ns.what == "samples":
        if fmt == "png":
            return [f.mosaic(f.prior_grid(run, ns.n, ns.seed), f.PRIOR_COLUMNS)]
        return f.prior_frames(run, ns.n, ns.seed)
    images = _images(run, max(ns.image, ns.a, ns.b) + 1)
    if ns.what == "traversal":
        grid = f.traversal_grid(run, images[ns.image], f.informative_dims(run, ns.dims), ns.span, ns.values)
        return [f.mosaic(grid)] if fmt == "png" else f.traversal_frames(grid)
    row = f.interpolation_row(run, images[ns.a], images[ns.b], ns.steps)
    return [f.mosaic(row)] if fmt == "png" else f.interpolation_frames(row)


def _training(run: Any, fmt: str) -> list:
    from vae_core.export import training as t

    previews = t.training_previews(run.path)
    return [t.training_still(previews)] if fmt == "png" else t.training_frames(previews)


def _images(run: Any, needed: int):
    from vae_core.runs.test_images import test_images

    images = test_images(run, needed)
    if len(images) < needed:
        raise ValueError(f"This run's test images number {len(images)}; pick a test image below {len(images)}.")
    return images
