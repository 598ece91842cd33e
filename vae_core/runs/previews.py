"""A run's training previews (previews.safetensors): reconstructions of the run's same few test images at steps
through training, saved with every checkpoint, so a run keeps how it learned after its job is gone.

uint8 pixels and int64 steps as tensors: no pickles. A file that is not one of ours is refused with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vae_core.config import RunConfig

PREVIEWS = "previews.safetensors"
MAX_PREVIEW_FRAMES = 60  # steps a run keeps, thinned evenly as it trains: 15 s of animation at 4 frames a second
MAX_PREVIEW_IMAGES = 16  # test images a frame shows at most
MAX_PREVIEWS_BYTES = 16 * 2**20  # 60 frames of 8 RGB images of 64 x 64 are 5.9 MB
FORMAT = "vae-lab-previews/1"


class PreviewsError(ValueError):
    """previews.safetensors is not one of ours; the message says what is wrong with it."""


@dataclass(frozen=True)
class TrainingPreviews:
    """The same test images reconstructed at each kept step."""
    steps: np.ndarray  # (F,) int64, increasing
    inputs: np.ndarray  # (N, C, H, W) uint8
    recons: np.ndarray  # (F, N, C, H, W) uint8

    def __len__(self) -> int:
        return len(self.steps)


def write_previews(path: Path, previews: TrainingPreviews) -> None:
    tensors = {"steps": torch.from_numpy(np.ascontiguousarray(previews.steps, dtype=np.int64)),
               "inputs": torch.from_numpy(np.ascontiguousarray(previews.inputs)),
               "recons": torch.from_numpy(np.ascontiguousarray(previews.recons))}
    save_file(tensors, str(path), metadata={"format": FORMAT})


def read_previews_file(path: Path, config: RunConfig) -> TrainingPreviews:
    """The previews, checked against the run's image shape and the bounds above; PreviewsError says what is wrong."""
    if path.stat().st_size > MAX_PREVIEWS_BYTES:
        raise PreviewsError(f"{path} is larger than {MAX_PREVIEWS_BYTES // 2**20} MB: not a VAE Lab previews file. "
                            "Delete it: the run loads without it.")
    try:
        with safe_open(str(path), "pt") as f:
            tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise PreviewsError(f"{path} is not a readable safetensors file ({e}). Delete it: the run loads without "
                            "it.") from None
    if meta.get("format") != FORMAT:
        raise PreviewsError(f"{path} is not a VAE Lab previews file (expected format {FORMAT!r}). Delete it: the "
                            "run loads without it.")
    return _checked(tensors, config, path)


def _checked(tensors: dict[str, torch.Tensor], config: RunConfig, path: Path) -> TrainingPreviews:
    steps, inputs, recons = (tensors.get(k) for k in ("steps", "inputs", "recons"))
    m = config.model
    image = (m.channels, m.image_size, m.image_size)
    ok = (steps is not None and inputs is not None and recons is not None
          and steps.dtype == torch.int64 and steps.dim() == 1 and 1 <= len(steps) <= MAX_PREVIEW_FRAMES
          and bool((steps >= 0).all()) and bool((steps[1:] > steps[:-1]).all())
          and inputs.dtype == recons.dtype == torch.uint8 and inputs.dim() == 4
          and 1 <= len(inputs) <= MAX_PREVIEW_IMAGES and tuple(inputs.shape[1:]) == image
          and tuple(recons.shape) == (len(steps), *inputs.shape))
    if not ok:
        raise PreviewsError(f"{path} does not hold this run's previews: up to {MAX_PREVIEW_FRAMES} increasing steps, "
                            f"up to {MAX_PREVIEW_IMAGES} uint8 test images of shape {image} and their "
                            "reconstructions at each step. Delete it: the run loads without it.")
    return TrainingPreviews(steps.numpy(), inputs.numpy(), recons.numpy())
