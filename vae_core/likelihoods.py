"""Decoder likelihoods p(x|z): elementwise log-densities in nats with every constant.

Which output activation / normalization / likelihood combinations make sense: see compatibility.py.

Each log_prob returns a tensor shaped like x; the objective sums it over (C, H, W) to get nats/image.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import LikelihoodName

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
LOG_SIGMA_MIN = math.log(1e-3)  # sigma below 1e-3 (a quarter of a grey level) only chases noise
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
