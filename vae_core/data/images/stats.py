"""What each normalization does to a person's images, before any training: per-channel mean and std,
and for every normalization the share of values each output activation cannot produce."""
from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import torch

from vae_core.model.compatibility import ACTIVATION_RANGE
from vae_core.config import Normalization, OutputActivation
from vae_core.data.base import pixels
from vae_core.data.normalize import fit_normalizer

_CHUNK = 1024  # images normalized at once: a float copy of them all could be hundreds of MB


@dataclass(frozen=True)
class ImageStats:
    mean: tuple[float, ...]  # per channel, pixel values in [0, 1]
    std: tuple[float, ...]
    value_range: dict[Normalization, tuple[float, float]]  # normalized [min, max] over channels
    outside: dict[Normalization, dict[OutputActivation, float]]  # share of values out of the activation's reach


def image_stats(images: torch.Tensor) -> ImageStats:
    """Stats of uint8 images (N, C, H, W), as training would normalize them (z-score fitted on these)."""
    normalizers = {kind: fit_normalizer(kind, images) for kind in get_args(Normalization)}
    outside = {kind: _outside_shares(norm, images) for kind, norm in normalizers.items()}
    z = normalizers["zscore"]
    return ImageStats(z.shift, z.scale, {k: n.value_range() for k, n in normalizers.items()}, outside)


def _outside_shares(normalizer, images: torch.Tensor) -> dict[OutputActivation, float]:
    """Share of normalized values strictly outside each activation's range (as evaluate.range_fractions counts)."""
    counts = dict.fromkeys(ACTIVATION_RANGE, 0)
    for chunk in images.split(_CHUNK):
        x = normalizer.forward(pixels(chunk))  # (n, C, H, W)
        for act, (lo, hi) in ACTIVATION_RANGE.items():
            counts[act] += int(((x < lo) | (x > hi)).sum())
    return {act: n / images.numel() for act, n in counts.items()}
