"""Normalizations of vectors as per-feature affine maps of raw values v: x = (v - shift) / scale.

none:   shift 0,    scale 1
zscore: shift mean, scale std (per feature, from the training split; population std, ddof 0)

scale is divided by data_scale, as for images. Densities change with the map: log p(v) = log p(x) - log_det, with
log_det = sum_d log scale_d (its log-Jacobian, nats per row), which evaluation adds back so that the ELBO and IWAE
of the raw rows compare across normalizations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vae_core.config import VectorNormalization

# The smallest decoder sigma, as a share of each feature's training std: a sigma below it would let the density
# on a feature the decoder all but copies grow without bound (images floor theirs at a quarter grey level).
SIGMA_FLOOR_STD = 1e-3


@dataclass(frozen=True)
class VectorNormalizer:
    kind: VectorNormalization
    shift: tuple[float, ...]  # (D,) raw units
    scale: tuple[float, ...]  # (D,) raw units; > 0
    spread: tuple[float, ...]  # (D,) each feature's training std, raw units (> 0: constant columns are refused)
    low: tuple[float, ...]  # (D,) each feature's training minimum, raw units
    high: tuple[float, ...]  # (D,) and maximum

    def _params(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shift = torch.tensor(self.shift, dtype=like.dtype, device=like.device)
        return shift, torch.tensor(self.scale, dtype=like.dtype, device=like.device)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Raw rows (..., D) -> normalized x."""
        shift, scale = self._params(v)
        return (v - shift) / scale

    def from_stored(self, v: torch.Tensor) -> torch.Tensor:
        """Stored rows (float32, raw) -> normalized x: the trainer's batch read, as images' from_grey_levels."""
        return self.forward(v.to(torch.float32))

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Normalized x -> raw units."""
        shift, scale = self._params(x)
        return x * scale + shift

    def log_det(self) -> float:
        """sum_d log scale_d, nats per row: log p(raw row) = log p(normalized row) - log_det."""
        return math.fsum(math.log(s) for s in self.scale)

    def sigma_floor(self) -> torch.Tensor:
        """(D,) SIGMA_FLOOR_STD of each feature's training std, in normalized units."""
        return torch.tensor([SIGMA_FLOOR_STD * d / s for d, s in zip(self.spread, self.scale)])

    def reachable_range(self) -> tuple[tuple[float, float], ...]:
        """Per feature, the interval its training values map to."""
        return tuple(((lo - m) / s, (hi - m) / s) for lo, hi, m, s in zip(self.low, self.high, self.shift, self.scale))

    def value_range(self) -> tuple[float, float]:
        """The smallest and largest normalized training value, over all features."""
        ranges = self.reachable_range()
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "shift": list(self.shift), "scale": list(self.scale), "spread": list(self.spread),
                "low": list(self.low), "high": list(self.high)}

    @classmethod
    def from_dict(cls, d: dict, features: int) -> "VectorNormalizer":
        """Checked against the run's feature count (config.json is untrusted)."""
        lists = [d.get(k) for k in ("shift", "scale", "spread", "low", "high")]
        ok = (d.get("kind") in ("none", "zscore") and all(isinstance(v, list) and len(v) == features for v in lists)
              and all(isinstance(x, (int, float)) and math.isfinite(x) for v in lists for x in v)
              and all(x > 0 for x in lists[1] + lists[2]))
        if not ok:
            raise ValueError(f"normalization in config.json is malformed: expected kind 'none' or 'zscore' and "
                             f"shift, positive scale and spread, low and high lists of {features} numbers.")
        return cls(d["kind"], *(tuple(float(x) for x in v) for v in lists))


def fit_vector_normalizer(kind: VectorNormalization, rows: torch.Tensor, data_scale: float = 1.0) -> VectorNormalizer:
    """The normalizer of raw training rows (N, D); zscore takes each feature's mean and population std (ddof 0)."""
    x = rows.double()
    mean, std = x.mean(0), x.std(0, correction=0)
    shift = mean if kind == "zscore" else torch.zeros_like(mean)
    scale = std if kind == "zscore" else torch.ones_like(std)
    as_tuple = lambda t: tuple(t.tolist())  # noqa: E731
    return VectorNormalizer(kind, as_tuple(shift), as_tuple(scale / data_scale), as_tuple(std), as_tuple(x.amin(0)),
                            as_tuple(x.amax(0)))
