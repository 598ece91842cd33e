"""A training loss as the PyTorch a person would write for it, and its reductions in words.

The Train page shows both beside the equivalent beta, so that "I sum the MSE but average the KL" can be
read off as settings, and the settings read back as the code someone has in their own project.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .config import LossConfig
from .objective import effective_beta, implied_sigma

MSE_SIGMA = 1 / math.sqrt(2)  # mse_loss(reduction="sum") is the Gaussian NLL with this sigma, constants aside
# The expression of each likelihood's per-value NLL, (B, C, H, W), "+ constants" where a fixed sigma has them.
ELEMENTWISE = {
    "bernoulli": "F.binary_cross_entropy_with_logits(logits, x, reduction={r})",
    "continuous_bernoulli": "-ContinuousBernoulli(logits=logits).log_prob(x)",
    "gaussian_learned": "-Normal(x_hat, log_sigma.exp()).log_prob(x)  # log_sigma: one nn.Parameter",
    "gaussian_optimal": "-Normal(x_hat, (x - x_hat).pow(2).mean().sqrt().detach()).log_prob(x)",
    "gaussian_pixel": "-Normal(x_hat, sigma_per_pixel).log_prob(x)  # the decoder predicts sigma",
    "laplace": "F.l1_loss(x_hat, x, reduction={r}) / {sigma:g}  # + constants",
}
_WHOLE_CALL = ("bernoulli", "gaussian", "laplace")  # functions whose own reduction= can do both reductions at once


@dataclass(frozen=True)
class LossCode:
    code: str  # a few lines of PyTorch
    recon_words: str  # "summed over the 784 values of an image, then summed over the batch of 64"
    kl_words: str


def _pixel_call(cfg: LossConfig, reduction: str) -> str:
    """The per-value NLL expression, with `reduction` passed to F.* where the likelihood is one call."""
    if cfg.likelihood == "gaussian":
        if math.isclose(cfg.sigma, MSE_SIGMA, rel_tol=1e-3):
            return f"F.mse_loss(x_hat, x, reduction={reduction})"
        return f"F.mse_loss(x_hat, x, reduction={reduction}) / (2 * {cfg.sigma:g}**2)  # + constants"
    return ELEMENTWISE[cfg.likelihood].format(r=reduction, sigma=cfg.sigma)


def _reduce(over_values: str, over_batch: str, dims: str) -> str:
    """The tail that reduces a (B, ...) tensor: per image over `dims`, then over the batch."""
    return f".{over_values}({dims}).{over_batch}()"


def recon_line(cfg: LossConfig) -> str:
    pixel, batch = cfg.recon_reduction, cfg.recon_batch_reduction
    if pixel == batch and cfg.likelihood in _WHOLE_CALL:
        return "recon = " + _pixel_call(cfg, f'"{pixel}"')
    expression, comment = _pixel_call(cfg, '"none"'), ""
    if "  #" in expression:
        expression, comment = expression.split("  #", 1)
        comment = f"  #{comment}"
    if expression.startswith("-"):
        expression = f"({expression})"
    return f"recon = {expression}.flatten(1){_reduce(pixel, batch, '1')}{comment}"


def kl_lines(cfg: LossConfig) -> list[str]:
    """KL(q(z|x) || N(0, I)) per latent dimension (Kingma & Welling 2014, Appendix B), reduced as configured."""
    lines = ["kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0, 1))  # (B, L)"]
    dims, batch = cfg.kl_reduction, cfg.kl_batch_reduction
    if cfg.free_bits > 0:  # the clamp acts on each dimension's batch mean
        lines.append(f"kl = kl.mean(0).clamp_min({cfg.free_bits:g})  # free bits, per dimension")
        lines.append(f"kl = kl.{dims}()" + (" * B" if batch == "sum" else ""))
    elif dims == batch:
        lines.append(f"kl = kl.{dims}()")
    else:
        lines.append(f"kl = kl{_reduce(dims, batch, '1')}")
    return lines


def beta_line(cfg: LossConfig) -> str:
    if cfg.kl_schedule == "linear":
        return f"beta = {cfg.beta:g} * min(1, step / {cfg.kl_warmup_steps})"
    if cfg.kl_schedule == "cyclical":
        ramp = cfg.kl_warmup_steps * cfg.kl_ramp_fraction
        return f"beta = {cfg.beta:g} * min(1, (step % {cfg.kl_warmup_steps}) / {ramp:g})"
    return f"beta = {cfg.beta:g}"


def loss_code(cfg: LossConfig, n_pixels: int, latent_dim: int, batch_size: int) -> LossCode:
    """The loss as code, with what it amounts to as a comment; n_pixels = C*H*W values per image."""
    coef = "" if cfg.recon_coef == 1 else f"{cfg.recon_coef:g} * "
    lines = [recon_line(cfg), *kl_lines(cfg), beta_line(cfg), f"loss = {coef}recon + beta * kl"]
    lines += _amounts_to(cfg, n_pixels, latent_dim, batch_size)
    return LossCode("\n".join(lines), _words(cfg.recon_reduction, cfg.recon_batch_reduction, n_pixels, "values",
                                             batch_size),
                    _words(cfg.kl_reduction, cfg.kl_batch_reduction, latent_dim, "latent dimensions", batch_size))


def _amounts_to(cfg: LossConfig, n_pixels: int, latent_dim: int, batch_size: int) -> list[str]:
    """What the loss amounts to, as comment lines."""
    beta = effective_beta(cfg, n_pixels, latent_dim, batch_size)
    lines = [f"# = a constant times the per-image beta-ELBO with beta = {beta:.4g}"]
    sigma = implied_sigma(cfg, n_pixels, latent_dim, batch_size)
    if sigma is not None and math.isfinite(sigma):
        lines.append(f"#   (or the proper ELBO, beta = 1, of a Gaussian with sigma = {sigma:.4g})")
    return lines + (["#   once the schedule reaches 1"] if cfg.kl_schedule != "constant" else [])


def _words(over_values: str, over_batch: str, n: int, what: str, batch_size: int) -> str:
    values = f"summed over the {n:,} {what} of an image" if over_values == "sum" else \
        f"averaged over the {n:,} {what} of an image"
    batch = f"summed over the batch of {batch_size}" if over_batch == "sum" else "averaged over the batch"
    return f"{values}, then {batch}"

