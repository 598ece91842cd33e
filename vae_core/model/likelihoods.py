"""Decoder likelihoods p(x|z): elementwise log-densities in nats with every constant.

Which output activation / normalization / likelihood combinations make sense: see compatibility.py.

Each log_prob returns a tensor shaped like x; the objective sums it over (C, H, W) to get nats/image.
discrete_log_prob is the likelihood of 8-bit data instead: the mass of each pixel's grey-level bin.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch

from vae_core.config import LikelihoodName
from vae_core.data.normalize import SIGMA_FLOOR_PIXELS

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
# The sigma floor is a fact about pixels (normalize.SIGMA_FLOOR_PIXELS); the model holds it in its own
# normalized units (VAE.log_sigma_floor, from Normalizer.sigma_floor). A caller without a model (the extra z
# samples of a gaussian_optimal training step) floors at the unit normalization's value.
UNIT_LOG_SIGMA_FLOOR = math.log(SIGMA_FLOOR_PIXELS)
# -log N(x; x_hat, 1/2) = squared error + const: F.mse_loss(reduction="sum") is the Gaussian NLL with this sigma
MSE_SIGMA = 1 / math.sqrt(2)


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, sigma^2) = -0.5 log(2 pi) - log sigma - (x - mean)^2 / (2 sigma^2)."""
    return -HALF_LOG_2PI - log_sigma - 0.5 * ((x - mean) * torch.exp(-log_sigma)) ** 2


def laplace_log_prob(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log Laplace(x; mean, b) = -log(2b) - |x - mean| / b."""
    return -math.log(2) - log_scale - (x - mean).abs() * torch.exp(-log_scale)


class _BernoulliNLL(torch.autograd.Function):
    """-log Bern(x; sigmoid(l)) = max(l, 0) - x l + log(1 + exp(-|l|)), and its gradient sigmoid(l) - x.

    What F.binary_cross_entropy_with_logits computes, to float rounding (its absolute error, 1e-6 at |l| = 20,
    is also this one's), in a few vectorized passes: torch's CPU log1p and log_sigmoid are scalar loops, 2 to 3 ms
    of a 30 ms training step of the default conv VAE on one core. log(1 + u) rounds 1 + u, an absolute error under
    6e-8 nats a pixel; the gradient is exact.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, x)
        return torch.exp(-logits.abs()).add_(1).log_().add_(logits.clamp_min(0)).sub_(x * logits)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        logits, x = ctx.saved_tensors
        d_logits = (torch.sigmoid(logits) - x) * grad if ctx.needs_input_grad[0] else None
        return d_logits, -logits * grad if ctx.needs_input_grad[1] else None


def bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bern(x; sigmoid(logits)) for x in [0, 1], computed stably from the logits (as BCEWithLogits)."""
    logits, x = torch.broadcast_tensors(logits, x)
    return -_BernoulliNLL.apply(logits, x)


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


def optimal_log_sigma(x: torch.Tensor, mean: torch.Tensor, log_floor: torch.Tensor | float = UNIT_LOG_SIGMA_FLOOR,
                      total: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """The shared sigma minimizing the Gaussian NLL of the batch: sigma* = sqrt(mean squared error), floored.
    total: sums over the processes that share the batch (torchrun), so each fits the whole batch's sigma*."""
    sq = (x - mean).pow(2).detach()  # at the optimum d/dsigma = 0, so detaching changes no gradient
    if total is None:
        return log_sigma_of_mse(sq.mean(), log_floor)
    pooled = total(torch.stack([sq.sum().double(), torch.tensor(sq.numel(), dtype=torch.float64, device=sq.device)]))
    return log_sigma_of_mse((pooled[0] / pooled[1]).to(sq.dtype), log_floor)


def log_sigma_of_mse(mse: torch.Tensor, log_floor: torch.Tensor | float) -> torch.Tensor:
    """() log sqrt(mse), held above the floor; a per-channel floor (C, 1, 1) counts by its largest value, since
    one sigma serves every channel."""
    floor = torch.as_tensor(log_floor, dtype=mse.dtype, device=mse.device).max()
    return torch.maximum(0.5 * torch.log(mse), floor)


SigmaKind = Literal["none", "fixed", "learned", "optimal", "per_pixel", "per_feature"]


@dataclass(frozen=True)
class Likelihood:
    """What the rest of VAE Lab needs to know about one p(x|z), in one place."""
    name: LikelihoodName
    description: str  # one line for the form's help
    density: Literal["bernoulli", "continuous_bernoulli", "gaussian", "laplace"]
    domain: Literal["unit", "real"]  # unit: a density of data in [0, 1] only, parameterized by the logits
    sigma: SigmaKind  # where the decoder's σ (Laplace: the scale b) comes from
    sigma_label: str = ""  # the form's label for LossConfig.sigma, where this likelihood reads it
    discrete_bits: bool = True  # False: bits/dim of 8-bit data is not defined (see evaluate.BERNOULLI_BPD_NOTE)
    title: str = ""  # its name in a sentence, where that differs from `name`

    @property
    def display(self) -> str:
        return self.title or self.name

    @property
    def reads_sigma(self) -> bool:
        """Whether LossConfig.sigma is used (a fixed σ or scale, or a learned σ's start)."""
        return bool(self.sigma_label)

    @property
    def shared_sigma(self) -> bool:
        """Whether the model holds one σ for every pixel (a buffer or a parameter)."""
        return self.sigma in ("fixed", "learned", "optimal")


LIKELIHOODS: dict[str, Likelihood] = {lik.name: lik for lik in (
    Likelihood("bernoulli", "BCE: Bernoulli, computed from the logits", "bernoulli", "unit", "none", discrete_bits=False,
               title="Bernoulli (BCE)"),
    Likelihood("continuous_bernoulli", "continuous Bernoulli: BCE plus its normalizing constant "
               "(Loaiza-Ganem & Cunningham 2019)", "continuous_bernoulli", "unit", "none",
               title="continuous Bernoulli"),
    Likelihood("gaussian", "Gaussian with a fixed σ: MSE/(2σ²) plus constants", "gaussian", "real", "fixed",
               "Gaussian σ (fixed; 0.707 = mse_loss with sum)"),
    # The learned σ is a free parameter: nothing floors it (gaussian_optimal and gaussian_pixel hold theirs above
    # SIGMA_FLOOR_PIXELS); the help says so rather than change what the bundled runs trained with.
    Likelihood("gaussian_learned", "Gaussian with one learned σ (σ-VAE, Rybkin et al. 2021); the learned σ is not "
               "floored, unlike gaussian_optimal's and gaussian_pixel's (a quarter grey level)", "gaussian", "real",
               "learned", "Gaussian σ (initial; learned, not floored)"),
    Likelihood("gaussian_optimal", "Gaussian with the analytic optimal σ = RMSE of each training batch (σ-VAE); "
               "evaluated with the RMSE of the whole training set", "gaussian", "real", "optimal"),
    Likelihood("gaussian_pixel", "Gaussian with a σ per pixel, predicted by the decoder", "gaussian", "real", "per_pixel"),
    Likelihood("gaussian_feature", "Gaussian with one learned σ per feature (for images, per pixel) whatever z is, "
               "floored as gaussian_pixel's", "gaussian", "real", "per_feature",
               "Gaussian σ (initial, of every feature; learned)", title="Gaussian with a σ per feature"),
    Likelihood("laplace", "Laplace with a fixed scale b: L1/b plus constants", "laplace", "real", "fixed",
               "Laplace scale b (fixed)"),
)}


def likelihood_spec(name: str) -> Likelihood:
    """The registry's entry for a likelihood name (ValueError naming the options if unknown)."""
    try:
        return LIKELIHOODS[name]
    except KeyError:
        raise ValueError(f"unknown likelihood {name!r}; pick one of {', '.join(LIKELIHOODS)}.") from None


_FROM_LOGITS = {"bernoulli": bernoulli_log_prob, "continuous_bernoulli": continuous_bernoulli_log_prob}
_FROM_LOCATION = {"gaussian": gaussian_log_prob, "laplace": laplace_log_prob}


def log_prob(likelihood: LikelihoodName, x: torch.Tensor, x_hat: torch.Tensor, logits: torch.Tensor,
             log_sigma: torch.Tensor | None) -> torch.Tensor:
    """Elementwise log p(x|z); x_hat is the decoder's location output, logits its pre-activation."""
    lik = likelihood_spec(likelihood)
    if lik.domain == "unit":  # from the logits, stably, as BCEWithLogitsLoss
        return _FROM_LOGITS[lik.density](x, logits)
    if log_sigma is None and lik.sigma == "optimal":  # training, a z sample without the model's sigma*
        log_sigma = optimal_log_sigma(x, x_hat)
    if log_sigma is None:
        raise ValueError(f"likelihood {likelihood!r} needs a log_sigma tensor.")
    return _FROM_LOCATION[lik.density](x, x_hat, log_sigma)


# ----------------------------------------------------------------------------- grey-level bin masses
# The likelihood of 8-bit data is a probability mass: log P(k|z) = log of the decoder's mass on the pixel's
# bin [lo, hi] (Normalizer.grey_level_bins). Computed in float64: far in a tail a bin's mass is a difference
# of two nearly equal CDF values, and the logs below keep it finite for every sigma above the floor.


def log1mexp(t: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(t)) for t <= 0, to an absolute 1e-16: expm1 keeps it exact near 0 (Maechler 2012, "Accurately
    computing log(1 - exp(-|a|))"); far below 0 his log1p branch would add relative accuracy to a value
    under 1e-16, which a sum of log-masses cannot see, at twice the cost."""
    return torch.log(-torch.expm1(t))


def laplace_log_cdf(u: torch.Tensor) -> torch.Tensor:
    """log F(u) of the standard Laplace: F(u) = exp(u) / 2 for u < 0, 1 - exp(-u) / 2 above."""
    return torch.where(u < 0, u - math.log(2), torch.log1p(-0.5 * torch.exp(-u.clamp_min(0))))


def symmetric_log_mass(lo: torch.Tensor, hi: torch.Tensor, log_cdf: Callable[[torch.Tensor], torch.Tensor]
                       ) -> torch.Tensor:
    """log(F(hi) - F(lo)) for lo < hi, standardized, under a distribution symmetric about 0 (F(-u) = 1 - F(u)).

    An interval above 0 is mirrored below it, where F is small and log F exact, so the difference is
    log F(b) + log(1 - F(a) / F(b)); above 0 it would cancel (Phi(10) - Phi(9) rounds to 0 in float64).
    """
    upper = lo + hi > 0  # never inf - inf: only grey level 0 is open below and only 255 above
    a, b = torch.where(upper, -hi, lo), torch.where(upper, -lo, hi)
    log_fb = log_cdf(b)
    return log_fb + log1mexp(log_cdf(a) - log_fb)


def _log_abs_expm1(y: torch.Tensor) -> torch.Tensor:
    """log |exp(y) - 1|, without overflow for large y: max(y, 0) + log(1 - exp(-|y|))."""
    return y.clamp_min(0) + torch.log(-torch.expm1(-y.abs()))


def continuous_bernoulli_log_mass(lo: torch.Tensor, hi: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log(F(hi) - F(lo)) under the continuous Bernoulli, its support [0, 1] clipping the interval.

    F(x) = (lambda^x (1 - lambda)^(1 - x) + lambda - 1) / (2 lambda - 1) (Loaiza-Ganem & Cunningham 2019),
    which with l the logits is expm1(x l) / expm1(l); so F(b) - F(a) = exp(a l) expm1(w l) / expm1(l) with
    w = b - a. At l = 0 (lambda = 1/2, the uniform) the ratio is 0/0 with limit w; within 1e-6 of it the
    first-order expansion log(expm1(w l) / expm1(l)) = log w + (w - 1) l / 2 (error below l^2 / 24) takes over.
    """
    a, b = lo.clamp(0, 1), hi.clamp(0, 1)
    w = b - a
    near = logits.abs() < 1e-6
    l = torch.where(near, torch.ones_like(logits), logits)  # keeps the unused branch finite
    log_ratio = torch.where(near, torch.log(w) + (w - 1) * logits / 2, _log_abs_expm1(w * l) - _log_abs_expm1(l))
    return a * logits + log_ratio


def discrete_log_prob(likelihood: LikelihoodName, lo: torch.Tensor, hi: torch.Tensor, x_hat: torch.Tensor,
                      logits: torch.Tensor, log_sigma: torch.Tensor | None) -> torch.Tensor:
    """Elementwise log P(k|z) in float64: the decoder's mass on each pixel's grey-level bin [lo, hi]
    (normalized space, open at the ends: Normalizer.grey_level_bins); x_hat, logits, log_sigma as in log_prob."""
    lik = likelihood_spec(likelihood)
    if not lik.discrete_bits:
        raise ValueError(f"likelihood {likelihood!r} is not a distribution over grey levels: it has no bin masses.")
    if lik.density == "continuous_bernoulli":
        log_mass = continuous_bernoulli_log_mass(lo, hi, logits.double())
    elif log_sigma is None:
        raise ValueError(f"likelihood {likelihood!r} needs a log_sigma tensor (gaussian_optimal: the model's "
                         "kept one).")
    else:
        mean, sigma = x_hat.double(), log_sigma.double().exp()
        log_mass = symmetric_log_mass((lo - mean) / sigma, (hi - mean) / sigma, _STANDARD_LOG_CDF[lik.density])
    return log_mass.clamp_max(0.0)  # a mass is at most 1; rounding can leave its log a hair above 0


_STANDARD_LOG_CDF: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gaussian": torch.special.log_ndtr, "laplace": laplace_log_cdf}
