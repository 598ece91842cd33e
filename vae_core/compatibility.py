"""The one table of output ranges and the compatibility rules: which output activation x normalization x
likelihood combinations work, are mismatched (they train, but cannot fit), or are refused.

Every range of an output activation is read from ACTIVATION_RANGE here: the rules, the range
diagnostics (evaluate.range_fractions), the Train page's verdicts and the Diagnostics page.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

from .config import LikelihoodName, Normalization, OutputActivation
from .likelihoods import likelihood_spec

ACTIVATION_RANGE: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "linear": (-math.inf, math.inf)}
# Per-channel [lo, hi] of normalized targets; zscore depends on the data (see compatibility()).
NORMALIZED_RANGE: dict[str, tuple[float, float]] = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}


@dataclass(frozen=True)
class Verdict:
    status: Literal["works", "mismatched", "refused"]
    reason: str  # one or two sentences a person can act on; empty when it simply works


def compatibility(activation: OutputActivation, normalization: Normalization, likelihood: LikelihoodName,
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
        return Verdict("mismatched", f"The {activation} output can only produce values in "
                       f"({a_lo:g}, {a_hi:g}), but the {normalization}-normalized targets span "
                       f"[{lo:.2f}, {hi:.2f}]: targets outside the output's range can never be "
                       "reconstructed. It trains; see how far off it ends. A linear output, or a "
                       "normalization inside the range, fixes it.")
    return Verdict("works", "")


def compatibility_matrix(target_ranges: dict[str, tuple[float, float]]) -> dict[str, dict[tuple[str, str], Verdict]]:
    """Every likelihood x (activation, normalization) verdict, given each normalization's target range."""
    return {lik: {(act, norm): compatibility(act, norm, lik, target_ranges.get(norm))
                  for act in get_args(OutputActivation) for norm in get_args(Normalization)}
            for lik in get_args(LikelihoodName)}
