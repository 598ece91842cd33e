"""A training loss as the PyTorch a person would write for it, and its reductions in words.

The Train page shows both beside the equivalent beta, so that "I sum the MSE but average the KL" can be
read off as settings, and the settings read back as the code someone has in their own project.
"""
from __future__ import annotations

import math
from typing import Literal
from dataclasses import dataclass

from vae_core.config import LossConfig
from vae_core.model.likelihoods import MSE_SIGMA
from vae_core.model.objective import effective_beta, implied_sigma

# Each likelihood's NLL: {r} is the reduction= of an F.* call (where it has one), {tail} the reductions applied
# to the per-value tensor (B, C, H, W) right after the call: appended after "/ sigma" it would bind to the number.
NLL = {
    "bernoulli": "F.binary_cross_entropy_with_logits(logits, x, reduction={r}){tail}",
    "continuous_bernoulli": "-ContinuousBernoulli(logits=logits).log_prob(x){tail}",
    "gaussian": "F.mse_loss(x_hat, x, reduction={r}){tail} / (2 * {sigma}**2)  # + constants",
    "gaussian_learned": "-Normal(x_hat, log_sigma.exp()).log_prob(x){tail}  # log_sigma: one nn.Parameter",
    "gaussian_optimal": "-Normal(x_hat, sigma).log_prob(x){tail}",
    "gaussian_pixel": "-Normal(x_hat, log_sigma.exp()).log_prob(x){tail}  # log_sigma: (B, C, H, W), from the decoder",
    "gaussian_feature": "-Normal(x_hat, log_sigma.exp()).log_prob(x){tail}  # log_sigma: nn.Parameter, one a feature",
    "laplace": "F.l1_loss(x_hat, x, reduction={r}){tail} / {sigma}  # + constants",
}
MSE_NLL = "F.mse_loss(x_hat, x, reduction={r}){tail}  # + constants: the NLL of sigma = 1/sqrt(2)"
# What an NLL needs computed first; training fits sigma* without a gradient and floors it (likelihoods.py).
SETUP = {
    "gaussian_optimal": "sigma = (x - x_hat).pow(2).mean().sqrt().detach().clamp_min(sigma_floor)  "
                        "# sigma* = the batch's RMSE, floored at 1/4 grey level",
}


@dataclass(frozen=True)
class LossCode:
    code: str  # a few lines of PyTorch
    recon_words: str  # "summed over the 784 values of an image, then summed over the batch of 64"
    kl_words: str


def _literal(x: float) -> str:
    """x as a Python literal: short where %g is exact, else every digit, so the code computes what training does."""
    short = f"{x:g}"
    return short if float(short) == x else repr(float(x))


def _nll_template(cfg: LossConfig) -> str:
    """The NLL's template; a sigma of 0.707, as the form's help writes it, is shown as mse_loss."""
    if cfg.likelihood == "gaussian" and math.isclose(cfg.sigma, MSE_SIGMA, rel_tol=1e-3):
        return MSE_NLL
    return NLL[cfg.likelihood]


def _reduce(over_values: str, over_batch: str, flatten: str = "") -> str:
    """The tail that reduces a (B, ...) tensor: per image over its values, then over the batch."""
    if over_values == over_batch:  # every image has as many values: the mean of means is the mean of all
        return f".{over_values}()"
    return f"{flatten}.{over_values}(1).{over_batch}()"


def recon_lines(cfg: LossConfig) -> list[str]:
    """The reconstruction term, reduced over pixels and the batch as configured."""
    pixel, batch, template = cfg.recon_reduction, cfg.recon_batch_reduction, _nll_template(cfg)
    if pixel == batch and "{r}" in template:  # the call's own reduction= does both at once
        reduction, tail = f'"{pixel}"', ""
    else:
        reduction, tail = '"none"', _reduce(pixel, batch, ".flatten(1)")
    setup = [SETUP[cfg.likelihood]] if cfg.likelihood in SETUP else []
    return setup + ["recon = " + template.format(r=reduction, tail=tail, sigma=_literal(cfg.sigma))]


def kl_lines(cfg: LossConfig) -> list[str]:
    """KL(q(z|x) || N(0, I)) per latent dimension (Kingma & Welling 2014, Appendix B), reduced as configured."""
    lines = ["kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0, 1))  # (B, L)"]
    dims, batch = cfg.kl_reduction, cfg.kl_batch_reduction
    if cfg.free_bits > 0:  # the clamp acts on each dimension's batch mean
        lines.append(f"kl = kl.mean(0).clamp_min({_literal(cfg.free_bits)})  # free bits, per dimension")
        lines.append(f"kl = kl.{dims}()" + (" * len(mu)  # a sum over the batch: B times its mean"
                                            if batch == "sum" else ""))
    else:
        lines.append(f"kl = kl{_reduce(dims, batch)}")
    return lines


def beta_line(cfg: LossConfig) -> str:
    if cfg.kl_schedule == "linear":
        return f"beta = {_literal(cfg.beta)} * min(1, step / {cfg.kl_warmup_steps})"
    if cfg.kl_schedule == "cyclical":
        ramp = cfg.kl_warmup_steps * cfg.kl_ramp_fraction
        return f"beta = {_literal(cfg.beta)} * min(1, (step % {cfg.kl_warmup_steps}) / {_literal(ramp)})"
    return f"beta = {_literal(cfg.beta)}"


Sample = Literal["image", "row"]  # what one sample is: an image's pixels, or a row's features
A_SAMPLE: dict[Sample, str] = {"image": "an image", "row": "a row"}


def loss_code(cfg: LossConfig, n_pixels: int, latent_dim: int, batch_size: int,
              sample: Sample = "image") -> LossCode:
    """The loss as code, with what it amounts to as a comment; n_pixels = C*H*W values per image (a row's D
    features where the sample is a row)."""
    coef = "" if cfg.recon_coef == 1 else f"{_literal(cfg.recon_coef)} * "
    lines = [*recon_lines(cfg), *kl_lines(cfg), beta_line(cfg), f"loss = {coef}recon + beta * kl"]
    lines += _amounts_to(cfg, n_pixels, latent_dim, batch_size, sample)
    of = A_SAMPLE[sample]
    return LossCode("\n".join(lines), _words(cfg.recon_reduction, cfg.recon_batch_reduction, n_pixels,
                                             f"values of {of}", batch_size),
                    _words(cfg.kl_reduction, cfg.kl_batch_reduction, latent_dim, f"latent dimensions of {of}",
                           batch_size))


def _amounts_to(cfg: LossConfig, n_pixels: int, latent_dim: int, batch_size: int, sample: Sample) -> list[str]:
    """What the loss amounts to, as comment lines."""
    beta = effective_beta(cfg, n_pixels, latent_dim, batch_size)
    lines = [f"# = a constant times the per-{sample} beta-ELBO with beta = {beta:.4g}"]
    sigma = implied_sigma(cfg, n_pixels, latent_dim, batch_size)
    if sigma is not None and math.isfinite(sigma):
        lines.append(f"#   (or the proper ELBO, beta = 1, of a Gaussian with sigma = {sigma:.4g})")
    return lines + (["#   once the schedule reaches 1"] if cfg.kl_schedule != "constant" else [])


def _words(over_values: str, over_batch: str, n: int, what: str, batch_size: int) -> str:
    values = f"summed over the {n:,} {what}" if over_values == "sum" else f"averaged over the {n:,} {what}"
    batch = f"summed over the batch of {batch_size}" if over_batch == "sum" else "averaged over the batch"
    return f"{values}, then {batch}"
