"""The one table of output ranges and the compatibility rules: which output activation x normalization x
likelihood combinations work, are mismatched (they train, but cannot fit), or are refused; and, once the data is
known, which are degenerate (a density that grows without bound on the data's exact 0 or 1 pixels).

Every range of an output activation is read from ACTIVATION_RANGE here: the rules, the range
diagnostics (evaluate.range_fractions), the Train page's verdicts and the Diagnostics page.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, get_args

from vae_core.config import LikelihoodName, Normalization, NormalizationName, OutputActivation
from vae_core.model.likelihoods import likelihood_spec

if TYPE_CHECKING:
    import torch

ACTIVATION_RANGE: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "linear": (-math.inf, math.inf)}
# Per-channel [lo, hi] of normalized targets; zscore depends on the data (see compatibility()).
NORMALIZED_RANGE: dict[str, tuple[float, float]] = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}


def features_outside(lo: Sequence[float], hi: Sequence[float], activation: str) -> list[int]:
    """The features whose normalized [lo, hi] leaves the activation's range: values it can never output."""
    a_lo, a_hi = ACTIVATION_RANGE[activation]
    return [d for d, (low, high) in enumerate(zip(lo, hi)) if low < a_lo or high > a_hi]


@dataclass(frozen=True)
class Verdict:
    status: Literal["works", "mismatched", "refused", "degenerate"]
    reason: str  # one or two sentences a person can act on; empty when it simply works


# A continuous Bernoulli's density at x = 0 is C(λ)(1 - λ), and C(λ) = 2 artanh(1 - 2λ) / (1 - 2λ) grows without
# bound as λ -> 0 (Loaiza-Ganem & Cunningham 2019): on exact-black pixels the ELBO can climb for ever by pushing λ
# to 0, and a background of them dominates the objective. Beyond this share of pixels at exactly 0 or 255, a run
# of such a likelihood is degenerate: its ELBO measures how black the black is, not the images.
UNBOUNDED_AT_EDGES = frozenset({"continuous_bernoulli"})
DEGENERATE_EDGE_SHARE = 0.05


def edge_share(images: "torch.Tensor") -> float:
    """The share of uint8 pixel values (N, C, H, W) at exactly 0 or 255."""
    return ((images == 0) | (images == 255)).double().mean().item()


def degeneracy(likelihood: LikelihoodName, share_at_edges: float | None) -> Verdict | None:
    """A "degenerate" verdict where the likelihood's density is unbounded on the data's many exact 0/1 pixels."""
    if likelihood not in UNBOUNDED_AT_EDGES or share_at_edges is None or share_at_edges <= DEGENERATE_EDGE_SHARE:
        return None
    name = likelihood_spec(likelihood).display
    return Verdict("degenerate", f"{share_at_edges:.0%} of these pixels are exactly 0 or 255, where a {name}'s "
                   "density grows without bound: training pushes their λ to 0 or 1, the ELBO climbs (it can be "
                   "large and positive) while the rest of the image turns to colourless blobs. Use a Bernoulli "
                   "(BCE) or a Gaussian with a learned σ, and compare runs by bits/dim.")


def compatibility(activation: OutputActivation, normalization: NormalizationName, likelihood: LikelihoodName,
                  target_range: tuple[float, float] | None = None) -> Verdict:
    """Whether the combination is sound, merely mismatched (trains, but cannot fit), or forbidden.

    target_range: [min, max] of the normalized data when known (zscore needs it; a data scale moves it).
    """
    lo, hi = target_range or NORMALIZED_RANGE.get(normalization, (-math.inf, math.inf))
    lik = likelihood_spec(likelihood)
    name = lik.display
    if lik.domain == "unit":
        if lo < 0 or hi > 1:
            return Verdict("refused", f"A {name} likelihood needs targets in [0, 1], but these "
                           f"{normalization}-normalized targets span [{lo:.2f}, {hi:.2f}], where it is not a "
                           "log-likelihood. Pick unit normalization (scale 1), or a Gaussian or Laplace likelihood.")
        if activation != "sigmoid":
            return Verdict("refused", f"A {name} likelihood needs the decoder to output probabilities; a "
                           f"{activation} output is not one. Pick the sigmoid output (VAE Lab computes the loss "
                           "from the logits before it, as BCEWithLogitsLoss does), or a Gaussian likelihood.")
        return Verdict("works", "")
    a_lo, a_hi = ACTIVATION_RANGE[activation]
    if lo < a_lo or hi > a_hi:
        targets = "raw targets" if normalization == "none" else f"{normalization}-normalized targets"  # none: vectors
        return Verdict("mismatched", f"The {activation} output can only produce values in "
                       f"({a_lo:g}, {a_hi:g}), but the {targets} span "
                       f"[{lo:.2f}, {hi:.2f}]: targets outside the output's range can never be "
                       "reconstructed. It trains; see how far off it ends. A linear output, or a "
                       "normalization inside the range, fixes it.")
    return Verdict("works", "")


def compatibility_matrix(target_ranges: dict[str, tuple[float, float]]) -> dict[str, dict[tuple[str, str], Verdict]]:
    """Every likelihood x (activation, normalization) verdict, given each normalization's target range."""
    return {lik: {(act, norm): compatibility(act, norm, lik, target_ranges.get(norm))
                  for act in get_args(OutputActivation) for norm in get_args(Normalization)}
            for lik in get_args(LikelihoodName)}
