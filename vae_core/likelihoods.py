"""Decoder likelihoods p(x|z): elementwise log-densities in nats with every constant, and the rules
saying which output activation / normalization / likelihood combinations make sense.

Each log_prob returns a tensor shaped like x; the objective sums it over (C, H, W) to get nats/image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from .config import LikelihoodName, Normalization, OutputActivation

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)

ACTIVATION_RANGE: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "linear": (-math.inf, math.inf)}

# Per channel [lo, hi] of the normalized targets; zscore depends on the data, so it is checked on
# the fitted normalizer (see compatibility()).
NORMALIZED_RANGE: dict[str, tuple[float, float]] = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, sigma^2) = -0.5 log(2 pi) - log sigma - (x - mean)^2 / (2 sigma^2)."""
    return -HALF_LOG_2PI - log_sigma - 0.5 * ((x - mean) * torch.exp(-log_sigma)) ** 2


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bern(x; sigmoid(logits)) for x in [0, 1], computed stably from the logits (as BCEWithLogits)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none")


def log_prob(likelihood: LikelihoodName, x: torch.Tensor, x_hat: torch.Tensor, logits: torch.Tensor,
             log_sigma: torch.Tensor | None) -> torch.Tensor:
    """Elementwise log p(x|z) for the chosen family; x_hat is the decoder mean, logits its pre-activation."""
    if likelihood == "bernoulli":
        return bernoulli_log_prob(x, logits)
    if log_sigma is None:
        raise ValueError(f"likelihood {likelihood!r} needs a log_sigma tensor.")
    return gaussian_log_prob(x, x_hat, log_sigma)


@dataclass(frozen=True)
class Verdict:
    status: Literal["works", "mismatched", "refused"]
    reason: str  # one or two sentences a person can act on; empty when it simply works


def compatibility(activation: OutputActivation, normalization: Normalization, likelihood: LikelihoodName,
                  target_range: tuple[float, float] | None = None) -> Verdict:
    """Whether the combination is sound, merely mismatched (trains, but cannot fit), or forbidden.

    target_range: the [min, max] of the normalized data, when known (needed for zscore).
    """
    lo, hi = target_range or NORMALIZED_RANGE.get(normalization, (-math.inf, math.inf))
    if likelihood == "bernoulli":
        if normalization != "unit":
            return Verdict("refused", f"A Bernoulli likelihood (BCE) needs targets in [0, 1], but "
                           f"{normalization} normalization gives values outside it, so BCE is not a "
                           "log-likelihood there. Pick unit normalization, or a Gaussian likelihood.")
        if activation != "sigmoid":
            return Verdict("refused", f"A Bernoulli likelihood needs the decoder to output probabilities; "
                           f"a {activation} output is not one. Pick the sigmoid output (VAE Lab computes BCE "
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
