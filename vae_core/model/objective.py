"""The ELBO's terms per image in nats, and the training loss built from them.

ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)), estimated with S samples of z
(Kingma & Welling 2014, eq. 10). The reported terms never depend on how the training loss reduces
or weighs them; that is a separate, visible choice (LossConfig), summarized by effective_beta().
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vae_core.config import LossConfig
from vae_core.model.likelihoods import log_prob
from vae_core.model.vae import VAE, BatchShare, VAEOutput


@dataclass(frozen=True)
class LossTerms:
    loss: torch.Tensor  # () what backward() sees: reduced, weighted, scheduled, free bits applied
    recon_nats: torch.Tensor  # (B,) -log p(x|z) per image, nats, averaged over the z samples
    kl_nats: torch.Tensor  # (B,) KL(q(z|x) || N(0, I)) per image, nats
    kl_per_dim: torch.Tensor  # (L,) KL per latent dimension, batch mean, nats
    beta: float  # the KL coefficient in effect (after the schedule)
    out: VAEOutput  # the forward pass of the first z sample

    @property
    def elbo_nats(self) -> torch.Tensor:
        """(B,) the evidence lower bound per image: -(recon + KL), nats; higher is better."""
        return -(self.recon_nats + self.kl_nats)


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(B, L) KL(N(mu, sigma^2) || N(0, 1)) per dimension, in closed form.

    Kingma & Welling 2014, Appendix B: -0.5 * (1 + log sigma^2 - mu^2 - sigma^2).
    """
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def reconstruction_nats(out: VAEOutput, x: torch.Tensor, likelihood: str) -> torch.Tensor:
    """(B,) -log p(x|z) per image, summed over every pixel and channel."""
    return -log_prob(likelihood, x, out.x_hat, out.logits, out.log_sigma).flatten(1).sum(1)


def kl_weight(cfg: LossConfig, step: int) -> float:
    """The schedule's multiplier on beta at a step (0-based): constant 1, a linear warm-up, or
    cyclical annealing (Fu et al. 2019: ramp over the first kl_ramp_fraction of each cycle, then hold)."""
    if cfg.kl_schedule == "linear":
        return min(1.0, step / cfg.kl_warmup_steps)
    if cfg.kl_schedule == "cyclical":
        phase = (step % cfg.kl_warmup_steps) / cfg.kl_warmup_steps
        return min(1.0, phase / cfg.kl_ramp_fraction)
    return 1.0


@dataclass(frozen=True)
class ReductionFactors:
    """What the training loss multiplies each term's per-image batch mean by (coefficients aside)."""
    recon: float  # 1 or 1/pixels (over pixels) x 1 or B (over the batch)
    kl: float  # 1 or 1/L (over latent dimensions) x 1 or B (over the batch)


def reduction_factors(cfg: LossConfig, n_pixels: int, latent_dim: int, batch_size: int) -> ReductionFactors:
    """A sum over the batch is B times its mean: the per-image term weighs B times more than under a mean."""
    recon = (1.0 if cfg.recon_reduction == "sum" else 1.0 / n_pixels) * (
        batch_size if cfg.recon_batch_reduction == "sum" else 1.0)
    kl = (1.0 if cfg.kl_reduction == "sum" else 1.0 / latent_dim) * (
        batch_size if cfg.kl_batch_reduction == "sum" else 1.0)
    return ReductionFactors(recon, kl)


def effective_beta(cfg: LossConfig, n_pixels: int, latent_dim: int, batch_size: int) -> float:
    """The beta of a proper ELBO (per image: recon summed, KL summed, recon coefficient 1) that the training
    loss amounts to: beta * f_kl / (recon_coef * f_recon). E.g. mse_loss(reduction="sum") + 100 *
    kl_divergence(q, p).mean() at B = 64, L = 8 is 100 * (1/8) / 64 = 0.195."""
    f = reduction_factors(cfg, n_pixels, latent_dim, batch_size)
    return cfg.beta * f.kl / (cfg.recon_coef * f.recon)


def implied_sigma(cfg: LossConfig, n_pixels: int, latent_dim: int, batch_size: int) -> float | None:
    """For a fixed-sigma Gaussian: the sigma of the proper ELBO (beta = 1) that the loss equals.

    loss ∝ SSE / (2 sigma^2) + beta_eff * KL  =  beta_eff * (SSE / (2 sigma^2 beta_eff) + KL),
    so sigma' = sigma * sqrt(beta_eff). (mse_loss(reduction="sum") is sigma = 1/sqrt(2).)
    """
    if cfg.likelihood != "gaussian":
        return None
    beta_eff = effective_beta(cfg, n_pixels, latent_dim, batch_size)
    return cfg.sigma * math.sqrt(beta_eff) if beta_eff > 0 else math.inf


@dataclass(frozen=True)
class EquivalentBeta:
    """The proper-ELBO beta a run's training loss amounted to at a step, schedule and free bits included."""
    value: float  # on the latent dimensions still under KL pressure, at the step
    reductions: float  # what the reductions and coefficients alone amount to (effective_beta)
    schedule_weight: float  # the KL schedule's multiplier at the step
    free_dims: int  # k: dimensions whose KL is under the free bits: no KL pressure (beta 0) on them
    latent_dim: int  # L
    free_bits: float = 0.0  # nats per dimension; 0: none
    kl_known: bool = True  # False: no KL per dimension was given, so free_dims counts nothing yet

    def words(self) -> str:
        """β as a person reads it: where free bits hold, β is 0 on those dimensions, the value on the others."""
        beta = f"β = {self.value:.4g}"
        if self.free_bits <= 0:
            return beta
        if not self.kl_known:
            return f"{beta}; {free_bits_words(self.free_bits)}"
        floor = f"the free bits' {self.free_bits:g} nats"
        if self.free_dims == 0:
            return f"{beta} on all {self.latent_dim} dimensions (each one's KL is over {floor})"
        zero = f"β = 0 on {self.free_dims} of {self.latent_dim} dimensions (KL under {floor}: no gradient)"
        others = self.latent_dim - self.free_dims
        return f"{zero}, {beta} on the other {others}" if others else zero


def free_bits_words(free_bits: float) -> str:
    """What free bits do to β before any KL is known; "" without free bits."""
    if free_bits <= 0:
        return ""
    return f"free bits of {free_bits:g} nats make β = 0 on any dimension whose KL is under {free_bits:g} nats"


def equivalent_beta(cfg: LossConfig, n_pixels: int, latent_dim: int, batch_size: int, step: int,
                    kl_per_dim: Sequence[float] = ()) -> EquivalentBeta:
    """At the last step (step = optimizer steps taken) with the KL per dimension measured then, nats
    (none given: free_dims is 0 and kl_known False)."""
    reductions = effective_beta(cfg, n_pixels, latent_dim, batch_size)
    weight = kl_weight(cfg, max(step - 1, 0))  # the step that was taken last
    free = sum(k < cfg.free_bits for k in kl_per_dim) if cfg.free_bits > 0 else 0
    return EquivalentBeta(reductions * weight, reductions, weight, free, latent_dim, cfg.free_bits, len(kl_per_dim) > 0)


def training_loss(recon: torch.Tensor, kl_dims: torch.Tensor, cfg: LossConfig, beta: float,
                  n_pixels: int, share: BatchShare | None = None) -> torch.Tensor:
    """The scalar the optimizer minimizes, from per-image recon (B,) and per-dimension KL (B, L), nats.

    share: this process's part of a batch split across processes, whose gradients DistributedDataParallel
    averages. Each batch mean is then this part's sum x world / whole, so the average over the processes is the
    whole batch's loss (a sum over the batch too: its factor counts the whole batch)."""
    if share is None:
        batch, recon_mean, kl = len(recon), recon.mean(), kl_dims.mean(0)  # kl: (L,) batch mean per dimension
    else:
        scale = share.world / share.whole
        batch, recon_mean, kl = share.whole, recon.sum() * scale, kl_dims.sum(0) * scale
    if cfg.free_bits > 0:  # Kingma et al. 2016: no pressure on a dimension below lambda nats
        kl = _free_bits(kl, kl_dims, cfg.free_bits, share)
    f = reduction_factors(cfg, n_pixels, kl_dims.shape[1], batch)
    return cfg.recon_coef * f.recon * recon_mean + beta * f.kl * kl.sum()


def _free_bits(kl: torch.Tensor, kl_dims: torch.Tensor, free_bits: float, share: BatchShare | None) -> torch.Tensor:
    """max(KL_d, lambda) per dimension: lambda (no gradient) where the whole batch's mean KL_d is below it."""
    if share is None:
        return kl.clamp_min(free_bits)
    whole_mean = share.total(kl_dims.detach().sum(0)) / share.whole  # (L,)
    return torch.where(whole_mean > free_bits, kl, torch.full_like(kl, free_bits))


def _float32(out: VAEOutput) -> VAEOutput:
    """The outputs of a network run in bfloat16 (autocast), as float32: the terms are computed in float32."""
    if out.logits.dtype == torch.float32:
        return out
    return VAEOutput(**{f.name: None if (t := getattr(out, f.name)) is None else t.float()
                        for f in dataclasses.fields(out)})


def loss_terms(model: VAE, x: torch.Tensor, cfg: LossConfig, step: int = 0,
               generator: torch.Generator | None = None, share: BatchShare | None = None) -> LossTerms:
    """One forward pass (S samples of z, drawn from `generator`), the ELBO's terms, and the training loss.
    share: x is this process's part of a larger batch (see BatchShare); the terms are this part's."""
    first = _float32(model(x, generator, share))
    recon = reconstruction_nats(first, x, model.likelihood)  # (B,)
    for _ in range(cfg.z_samples - 1):  # more samples of q(z|x) for the same encoder output
        more = _float32(model.with_batch_sigma(model.sample_output(first.mu, first.logvar, generator, share), x, share))
        recon = recon + reconstruction_nats(more, x, model.likelihood)
    recon = recon / cfg.z_samples
    kl_dims = kl_per_dimension(first.mu, first.logvar)  # (B, L)
    beta = cfg.beta * kl_weight(cfg, step)
    loss = training_loss(recon, kl_dims, cfg, beta, x[0].numel(), share)
    return LossTerms(loss, recon, kl_dims.sum(1), kl_dims.mean(0), beta, first)
