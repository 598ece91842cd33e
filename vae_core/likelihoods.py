"""Decoder likelihoods p(x|z): elementwise log-densities in nats with every constant, and the rules
saying which output activation / normalization / likelihood combinations make sense.

Each log_prob returns a tensor shaped like x; the objective sums it over (C, H, W) to get nats/image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from .config import LikelihoodName, Normalization, OutputActivation

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
LOG_SIGMA_MIN = math.log(1e-3)  # sigma below 1e-3 (a quarter of a grey level) only chases noise
BOUNDED = ("bernoulli", "continuous_bernoulli")  # likelihoods of data in [0, 1]
LEARNS_SIGMA = {"gaussian_learned": "a learned shared σ", "gaussian_optimal": "the batch's optimal σ",
                "gaussian_pixel": "a per-pixel σ from the decoder"}
DESCRIPTIONS: dict[str, str] = {
    "bernoulli": "BCE: Bernoulli, computed from the logits",
    "continuous_bernoulli": "continuous Bernoulli: BCE plus its normalizing constant (Loaiza-Ganem & Cunningham 2019)",
    "gaussian": "Gaussian with a fixed σ: MSE/(2σ²) plus constants",
    "gaussian_learned": "Gaussian with one learned σ (σ-VAE, Rybkin et al. 2021)",
    "gaussian_optimal": "Gaussian with the analytic optimal σ = RMSE of each training batch (σ-VAE); evaluated with the last one",
    "gaussian_pixel": "Gaussian with a σ per pixel, predicted by the decoder",
    "laplace": "Laplace with a fixed scale b: L1/b plus constants",
}

ACTIVATION_RANGE: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "linear": (-math.inf, math.inf)}
# Per-channel [lo, hi] of normalized targets; zscore depends on the data (see compatibility()).
NORMALIZED_RANGE: dict[str, tuple[float, float]] = {"unit": (0.0, 1.0), "symmetric": (-1.0, 1.0)}


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, sigma^2) = -0.5 log(2 pi) - log sigma - (x - mean)^2 / (2 sigma^2)."""
    return -HALF_LOG_2PI - log_sigma - 0.5 * ((x - mean) * torch.exp(-log_sigma)) ** 2


def laplace_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log Laplace(x; mean, b) = -log(2b) - |x - mean| / b."""
    return -math.log(2) - log_scale - (x - mean).abs() * torch.exp(-log_scale)


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bern(x; sigmoid(logits)) for x in [0, 1], computed stably from the logits (as BCEWithLogits)."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none")


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda), C = 2 atanh(1 - 2 lambda) / (1 - 2 lambda) (Loaiza-Ganem & Cunningham 2019, eq. 7).

    With l the logits, 2 atanh(1 - 2 lambda) = -l and 1 - 2 lambda = -tanh(l / 2), so
    log C = log|l| - log|tanh(l / 2)|, which keeps float32 precise. Near lambda = 0.5 that is 0/0: a
    Taylor expansion in d = lambda - 0.5 takes over.
    """
    lam = torch.sigmoid(logits)
    near = (lam - 0.5).abs() < 1e-2
    safe = torch.where(near, torch.ones_like(logits), logits)  # keeps the unused branch finite
    far = torch.log(safe.abs()) - torch.log(torch.tanh(safe / 2).abs())
    d2 = (lam - 0.5) ** 2
    taylor = math.log(2) + 4 / 3 * d2 + 104 / 45 * d2**2
    return torch.where(near, taylor, far)


def continuous_bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    return bernoulli_log_prob(x, logits) + continuous_bernoulli_log_norm(logits)


def continuous_bernoulli_mean(logits: torch.Tensor) -> torch.Tensor:
    """E[x] = lambda / (2 lambda - 1) + 1 / (2 atanh(1 - 2 lambda)) = -1 / expm1(-l) - 1 / l.

    The expm1 form avoids subtracting two numbers near 25 that float32 gets wrong; near lambda = 0.5
    the Taylor series 0.5 + d/3 + 16/45 d^3 takes over.
    """
    lam = torch.sigmoid(logits)
    near = (lam - 0.5).abs() < 1e-2
    safe = torch.where(near, torch.ones_like(logits), logits)
    far = -1 / torch.expm1(-safe) - 1 / safe
    d = lam - 0.5
    return torch.where(near, 0.5 + d / 3 + 16 / 45 * d**3, far)


def optimal_log_sigma(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
    """The shared sigma minimizing the Gaussian NLL of the batch: sigma* = sqrt(mean squared error)."""
    mse = (x - mean).pow(2).mean().detach()  # at the optimum d/dsigma = 0, so detaching changes no gradient
    return (0.5 * torch.log(mse)).clamp_min(LOG_SIGMA_MIN)


def log_prob(likelihood: LikelihoodName, x: torch.Tensor, x_hat: torch.Tensor, logits: torch.Tensor,
             log_sigma: torch.Tensor | None) -> torch.Tensor:
    """Elementwise log p(x|z); x_hat is the decoder's location output, logits its pre-activation."""
    if likelihood == "bernoulli":
        return bernoulli_log_prob(x, logits)
    if likelihood == "continuous_bernoulli":
        return continuous_bernoulli_log_prob(x, logits)
    if likelihood == "gaussian_optimal" and log_sigma is None:  # training: this batch's sigma*
        return gaussian_log_prob(x, x_hat, optimal_log_sigma(x, x_hat))
    if log_sigma is None:
        raise ValueError(f"likelihood {likelihood!r} needs a log_sigma tensor.")
    if likelihood == "laplace":
        return laplace_log_prob(x, x_hat, log_sigma)
    return gaussian_log_prob(x, x_hat, log_sigma)


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
    name = "Bernoulli (BCE)" if likelihood == "bernoulli" else "continuous Bernoulli"
    if likelihood in BOUNDED:
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
