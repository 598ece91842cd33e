"""A run's training previews (runs/previews.py) as pictures: an animation of its test images over their
reconstructions, a frame a kept step, each captioned with its step; a still of a few steps, one row each."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vae_core.export.encode import MIN_FRAMES, ExportError
from vae_core.export.frames import GAP_GREY, GAP_PX, mosaic
from vae_core.runs.folders import read_previews
from vae_core.runs.previews import TrainingPreviews

HOLD_FRAMES = 4  # the last step stays this many frames (a second) before the loop starts again
STILL_STEPS = 5  # rows of reconstructions in the still: evenly chosen kept steps, the first and the last
CAPTION_PX = 22  # the strip under a frame, or the column left of the still, that names the step
FONT_PX = 14
LABEL_PX = 120  # the still's label column
BAR_PX = 3  # a frame's progress bar, along the bottom of its caption
INK, BAR = (235, 235, 235), (90, 160, 230)


def training_previews(run_dir: Path) -> TrainingPreviews:
    """The run's previews; ExportError saying what to do where it kept none, RunLoadError where they are bad."""
    previews = read_previews(run_dir)
    if previews is None:
        raise ExportError(f"{run_dir.name} has no training previews: runs trained before VAE Lab kept them (the "
                          "bundled ones among them) have none. Train it again in this version, or resume it where it has "
                          "train_state.safetensors (python -m vae_core train --resume RUN_DIR), and its previews "
                          "are saved with it.")
    return previews


def training_frames(previews: TrainingPreviews) -> list[np.ndarray]:
    """A frame a kept step (inputs over reconstructions, captioned), the last held HOLD_FRAMES more.

    Fewer kept steps than MIN_FRAMES: each step is repeated, as evenly as whole frames allow, to reach MIN_FRAMES.
    The bar under each frame is the animation's playhead, so no two frames are alike: a GIF encoder merges
    identical neighbours into one longer frame, and the file would then hold fewer frames than it plays.
    """
    order = list(range(len(previews))) + [len(previews) - 1] * HOLD_FRAMES
    if len(order) < MIN_FRAMES:
        order = [order[i * len(order) // MIN_FRAMES] for i in range(MIN_FRAMES)]
    last = int(previews.steps[-1])
    return [_captioned(mosaic(np.stack([previews.inputs, previews.recons[k]]) / 255),
                       f"step {int(previews.steps[k]):,} of {last:,}", (i + 1) / len(order))
            for i, k in enumerate(order)]


def training_still(previews: TrainingPreviews) -> np.ndarray:
    """For a slide: the inputs, then their reconstructions at up to STILL_STEPS kept steps, a row each, labelled."""
    kept = np.unique(np.linspace(0, len(previews) - 1, STILL_STEPS).round().astype(int))
    grid = mosaic(np.stack([previews.inputs, *previews.recons[kept]]) / 255)
    labels = ["input", *(f"step {int(previews.steps[i]):,}" for i in kept)]
    row_px = (grid.shape[0] + GAP_PX) // len(labels)  # a tile and its gap
    column = Image.new("RGB", (LABEL_PX, grid.shape[0]), (GAP_GREY,) * 3)
    draw = ImageDraw.Draw(column)
    for r, label in enumerate(labels):
        draw.text((6, r * row_px + (row_px - FONT_PX) // 2), label, fill=INK, font=_font())
    return np.concatenate([np.asarray(column), grid], axis=1)


def _captioned(image: np.ndarray, text: str, progress: float) -> np.ndarray:
    """The image over a strip that says `text`, with a bar along its bottom `progress` (0 to 1) of the width."""
    strip = Image.new("RGB", (image.shape[1], CAPTION_PX), (GAP_GREY,) * 3)
    draw = ImageDraw.Draw(strip)
    draw.text((6, (CAPTION_PX - BAR_PX - FONT_PX) // 2), text, fill=INK, font=_font())
    draw.rectangle((0, CAPTION_PX - BAR_PX, round(progress * (image.shape[1] - 1)), CAPTION_PX - 1), fill=BAR)
    return np.concatenate([image, np.asarray(strip)])


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's own font (no font file): scalable where Pillow has FreeType, else its small bitmap font."""
    try:
        return ImageFont.load_default(size=FONT_PX)
    except (TypeError, ImportError):  # Pillow before 10.1 takes no size
        return ImageFont.load_default()
