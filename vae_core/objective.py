"""The ELBO's terms per image in nats, and the training loss built from them.

ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z)), estimated with one sample of z
(Kingma & Welling 2014, eq. 10). The reported terms never depend on how the loss is weighted.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .config import LossConfig
from .likelihoods import log_prob
from .models import VAEOutput


@dataclass(frozen=True)
class LossTerms:
    loss: torch.Tensor  # () what backward() sees: mean over the batch of recon + beta * KL
    recon_nats: torch.Tensor  # (B,) -log p(x|z) per image, nats (negative is possible for densities)
    kl_nats: torch.Tensor  # (B,) KL(q(z|x) || N(0, I)) per image, nats
    kl_per_dim: torch.Tensor  # (L,) KL per latent dimension, batch mean, nats

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


def loss_terms(out: VAEOutput, x: torch.Tensor, cfg: LossConfig) -> LossTerms:
    """The ELBO's terms for a batch and the beta-weighted training loss (beta=1: the negative ELBO)."""
    recon = reconstruction_nats(out, x, cfg.likelihood)  # (B,)
    kl_dims = kl_per_dimension(out.mu, out.logvar)  # (B, L)
    kl = kl_dims.sum(1)  # (B,)
    loss = (recon + cfg.beta * kl).mean()
    return LossTerms(loss, recon, kl, kl_dims.mean(0))
