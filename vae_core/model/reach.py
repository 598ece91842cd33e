"""Reach: the share of targets an output activation cannot produce, counted in one place (outside_share), for a
run's data before training (the Train page's verdicts, `python -m vae_core images`: what each normalization does
to a person's images) and for a trained model's targets and outputs (evaluate.range_fractions)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import torch

from vae_core.config import DataConfig, Normalization, OutputActivation
from vae_core.data.base import pixels
from vae_core.data.datasets import load_splits
from vae_core.data.normalize import Normalizer, fit_normalizer, run_normalizer
from vae_core.model.compatibility import ACTIVATION_RANGE

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
    outside = {kind: outside_shares(norm, images) for kind, norm in normalizers.items()}
    z = normalizers["zscore"]
    return ImageStats(z.shift, z.scale, {k: n.value_range() for k, n in normalizers.items()}, outside)


def outside_share(x: torch.Tensor, activation: OutputActivation) -> float:
    """The share of values x strictly outside the activation's range: targets it cannot reach."""
    lo, hi = ACTIVATION_RANGE[activation]
    return ((x < lo) | (x > hi)).double().mean().item()


def outside_shares(normalizer: Normalizer, images: torch.Tensor) -> dict[OutputActivation, float]:
    """Each activation's outside_share of uint8 images (N, C, H, W) under a normalizer, a chunk at a time."""
    counts = dict.fromkeys(ACTIVATION_RANGE, 0.0)
    for chunk in images.split(_CHUNK):
        x = normalizer.forward(pixels(chunk))  # (n, C, H, W)
        for act in ACTIVATION_RANGE:
            counts[act] += outside_share(x, act) * x.numel()
    return {act: n / images.numel() for act, n in counts.items()}


@dataclass(frozen=True)
class TargetRange:
    normalizer: Normalizer  # as training would fit it
    lo: float  # smallest normalized value a pixel can take (over channels)
    hi: float
    frac_outside: dict[str, float]  # per output activation: share of normalized test values out of its reach


def target_range(data: DataConfig) -> TargetRange:
    """What the chosen normalization (and data scale) does to this data, before any training."""
    train, test = load_splits(data)
    return target_range_of(run_normalizer(data, train.images), test.images)


def target_range_of(normalizer: Normalizer, test_images: torch.Tensor) -> TargetRange:
    """The normalized range and each activation's unreachable share of uint8 test images, under a normalizer."""
    return TargetRange(normalizer, *normalizer.value_range(), outside_shares(normalizer, test_images))
