"""Two runs measured on the same test images: the paired difference and its standard error.

An image that is hard for one run is hard for the other, so the per-image values of two runs move together and
the standard error of their difference, std(a_i - b_i) / sqrt(N), is far smaller than either run's spread over
the images. The per-image values hold the Monte-Carlo noise of each run's z too, so this one standard error
covers both. A difference within DISTINGUISHABLE_SE standard errors of zero is not distinguishable: no winner.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

DISTINGUISHABLE_SE = 2.0  # a difference is called only beyond this many standard errors (about 95%)
Better = Literal["higher", "lower"]


@dataclass(frozen=True)
class PairedDifference:
    mean: float  # mean over images of a_i - b_i (or a - b of the means where the images differ)
    se: float  # its standard error
    n: int  # images paired; 0 where the two were not measured on the same images (se from each run's own)

    @property
    def distinguishable(self) -> bool:
        return abs(self.mean) > DISTINGUISHABLE_SE * self.se

    def text(self, decimals: int = 3) -> str:
        """e.g. "+0.0125 ± 0.0150"."""
        return f"{self.mean:+.{decimals}f} ± {self.se:.{decimals}f}"


def paired_difference(a: torch.Tensor, b: torch.Tensor) -> PairedDifference:
    """a - b over the same N images, (N,) each in the same order: the mean and std(ddof=1) / sqrt(N)."""
    if a.shape != b.shape or len(a) < 2:
        raise ValueError(f"a paired difference needs two equal-length series of at least 2 values, not "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    d = a.double() - b.double()
    return PairedDifference(d.mean().item(), (d.std(correction=1) / math.sqrt(len(d))).item(), len(d))


def unpaired_difference(a: float, se_a: float, b: float, se_b: float) -> PairedDifference:
    """a - b of two means on different images, each with its own standard error: sqrt(se_a^2 + se_b^2)."""
    return PairedDifference(a - b, math.hypot(se_a, se_b), 0)


def pooled(differences: Sequence[PairedDifference]) -> PairedDifference:
    """The mean of independent differences (one per seed) and its standard error: sqrt(sum se^2) / n."""
    if not differences:
        raise ValueError("nothing to pool: no differences were measured")
    n = len(differences)
    return PairedDifference(sum(d.mean for d in differences) / n, math.sqrt(sum(d.se ** 2 for d in differences)) / n,
                            sum(d.n for d in differences))


def better_by(difference: PairedDifference, better: Better) -> float:
    """The difference signed so that positive means the first is better."""
    return difference.mean if better == "higher" else -difference.mean
