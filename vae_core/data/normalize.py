"""Input normalizations as per-channel affine maps of pixel values p in [0, 1]: x = (p - shift) / scale.

unit:      shift 0,    scale 1    -> x in [0, 1]
symmetric: shift 0.5,  scale 0.5  -> x in [-1, 1]
zscore:    shift mean, scale std  (per channel, from the training split)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vae_core.config import DataConfig, Normalization
from vae_core.data.vector_normalize import VectorNormalizer, fit_vector_normalizer

GREY_LEVELS = 255  # pixels are k / 255 for k in 0..255 (torchvision's ToTensor convention)
# The smallest decoder sigma, in pixel units ([0, 1]): a quarter of a grey level. A sigma below it only chases
# the 8-bit rounding. Normalizer.sigma_floor puts it in each channel's normalized units.
SIGMA_FLOOR_PIXELS = 0.25 / GREY_LEVELS


@dataclass(frozen=True)
class Normalizer:
    kind: Normalization
    shift: tuple[float, ...]  # per channel, pixel units
    scale: tuple[float, ...]  # per channel, pixel units; > 0

    def _params(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (-1, 1, 1)  # broadcast over (..., C, H, W)
        shift = torch.tensor(self.shift, dtype=like.dtype, device=like.device).view(shape)
        scale = torch.tensor(self.scale, dtype=like.dtype, device=like.device).view(shape)
        return shift, scale

    def forward(self, p: torch.Tensor) -> torch.Tensor:
        """Pixels in [0, 1], (..., C, H, W) -> normalized x."""
        shift, scale = self._params(p)
        return (p - shift) / scale

    def from_grey_levels(self, k: torch.Tensor) -> torch.Tensor:
        """uint8 images (..., C, H, W) -> normalized x in one fused multiply-add (the training hot path)."""
        shift, scale = self._params(torch.empty(0))
        gain, offset = 1 / (GREY_LEVELS * scale), -shift / scale
        return torch.addcmul(offset, k.to(torch.float32), gain)

    def from_stored(self, k: torch.Tensor) -> torch.Tensor:
        """Stored data -> normalized x: what the trainer reads a batch with (vectors: VectorNormalizer's)."""
        return self.from_grey_levels(k)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized x -> pixel values (not clipped: a decoder can leave [0, 1])."""
        shift, scale = self._params(x)
        return x * scale + shift

    def sigma_floor(self) -> torch.Tensor:
        """(C, 1, 1) SIGMA_FLOOR_PIXELS in each channel's normalized units (x = (p - shift) / scale)."""
        return torch.tensor([SIGMA_FLOOR_PIXELS / c for c in self.scale]).view(-1, 1, 1)

    def reachable_range(self) -> tuple[tuple[float, float], ...]:
        """Per channel, the interval that pixels in [0, 1] map to."""
        return tuple(((0 - s) / c, (1 - s) / c) for s, c in zip(self.shift, self.scale))

    def value_range(self) -> tuple[float, float]:
        """The smallest and largest normalized value any pixel can take, over all channels."""
        ranges = self.reachable_range()
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    def grey_level_bins(self, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 images (..., C, H, W) -> each pixel's bin [k - 1/2, k + 1/2] / 255 in normalized space,
        (lower edges, upper edges) in float64; the edge bins are open: grey level 0 reaches down to -inf,
        255 up to +inf, so the 256 bins tile the line and their masses under any distribution sum to 1."""
        grey = k.to(torch.float64)
        lo, hi = self.forward((grey - 0.5) / GREY_LEVELS), self.forward((grey + 0.5) / GREY_LEVELS)
        return lo.masked_fill(k == 0, -math.inf), hi.masked_fill(k == GREY_LEVELS, math.inf)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shift": list(self.shift), "scale": list(self.scale)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        kind, shift, scale = d.get("kind"), d.get("shift"), d.get("scale")
        ok = (kind in ("unit", "symmetric", "zscore") and isinstance(shift, list) and isinstance(scale, list)
              and len(shift) == len(scale) and len(shift) in (1, 3)
              and all(isinstance(v, (int, float)) and math.isfinite(v) for v in shift + scale)
              and all(c > 0 for c in scale))
        if not ok:
            raise ValueError("normalization in config.json is malformed: expected kind, and per-channel "
                             "shift and positive scale lists of length 1 or 3.")
        return cls(kind, tuple(float(v) for v in shift), tuple(float(v) for v in scale))


def fit_normalizer(kind: Normalization, images: torch.Tensor, data_scale: float = 1.0) -> Normalizer:
    """Build the normalizer; zscore takes per-channel mean/std of uint8 `images` (N, C, H, W) as pixels.

    data_scale multiplies the normalized values (x = data_scale * (p - shift) / scale).
    """
    channels = images.shape[1]
    if kind == "unit":
        shift, scale = (0.0,) * channels, (1.0,) * channels
    elif kind == "symmetric":
        shift, scale = (0.5,) * channels, (0.5,) * channels
    else:
        shift, scale = _channel_stats(images)
    return Normalizer(kind, shift, tuple(c / data_scale for c in scale))


def run_normalizer(data: DataConfig, train: torch.Tensor) -> Normalizer | VectorNormalizer:
    """The normalizer a run with this data section fits on its training split as stored (uint8 images, or raw
    rows of vectors): the one way runs fit it."""
    if data.kind == "vectors":
        return fit_vector_normalizer(data.normalization, train, data.data_scale)
    return fit_normalizer(data.normalization, train, data.data_scale)


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, C, H, W), as pixel values in [0, 1]."""
    channels = images.shape[1]
    total = torch.zeros(channels, dtype=torch.float64)
    total_sq = torch.zeros(channels, dtype=torch.float64)
    for chunk in images.split(4096):  # chunks: a float64 copy of all of MNIST would take 380 MB
        k = chunk.to(torch.float64).transpose(0, 1).flatten(1)  # (C, n*H*W) grey levels
        total += k.sum(1)
        total_sq += k.pow(2).sum(1)
    n = images.numel() // channels
    mean = total / n
    std = ((total_sq / n - mean.pow(2)).clamp_min(0) * n / max(n - 1, 1)).sqrt()
    mean, std = mean / GREY_LEVELS, (std / GREY_LEVELS).clamp_min(1e-6)
    return tuple(mean.tolist()), tuple(std.tolist())
