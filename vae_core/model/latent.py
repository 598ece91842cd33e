"""What a UI asks of a trained VAE: reconstruct, embed, traverse, interpolate, sample, project.

Inputs and outputs are normalized tensors unless a name says pixels; callers map back with the
normalizer before showing anything to a person.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from vae_core.config import ReconMode
from vae_core.model.vae import VAE


@torch.no_grad()
def embed(model: VAE, x: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior parameters (mu, logvar), each (N, L), for normalized x (N, C, H, W)."""
    model.eval()
    parts = [model.encode(chunk) for chunk in x.split(batch_size)]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])


@torch.no_grad()
def reconstruct(model: VAE, x: torch.Tensor, mode: ReconMode = "mean", n_samples: int = 1,
                seed: int = 0) -> torch.Tensor:
    """Decoder means for x: (N, C, H, W) from the posterior mean, or (S, N, C, H, W) from z ~ q(z|x)."""
    model.eval()
    mu, logvar = model.encode(x)
    if mode == "mean":
        return model.decode(mu)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((n_samples, *mu.shape), generator=g)  # (S, N, L)
    z = mu + eps * torch.exp(0.5 * logvar)
    return model.decode(z.flatten(0, 1)).unflatten(0, (n_samples, len(x)))


@torch.no_grad()
def traverse(model: VAE, z0: torch.Tensor, dims: Sequence[int], values: Sequence[float]) -> torch.Tensor:
    """Decode z0 (L,) with dimension d set to each value: (len(dims), len(values), C, H, W).

    Values are absolute coordinates; the prior is N(0, 1), so they read as prior standard deviations.
    """
    model.eval()
    v = torch.tensor(values, dtype=z0.dtype)
    z = z0.repeat(len(dims), len(values), 1)  # (D, V, L)
    for i, d in enumerate(dims):
        z[i, :, d] = v
    return model.decode(z.flatten(0, 1)).unflatten(0, (len(dims), len(values)))


@torch.no_grad()
def interpolate(model: VAE, x_a: torch.Tensor, x_b: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """Decode straight-line interpolations between the posterior means of x_a and x_b (C, H, W): (steps, C, H, W)."""
    model.eval()
    mu, _ = model.encode(torch.stack([x_a, x_b]))
    t = torch.linspace(0, 1, steps).unsqueeze(1)  # (steps, 1)
    return model.decode((1 - t) * mu[0] + t * mu[1])


@torch.no_grad()
def sample_prior(model: VAE, n: int, seed: int = 0) -> torch.Tensor:
    """Decoder means of z ~ N(0, I): (n, C, H, W)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    return model.decode(torch.randn((n, model.cfg.latent_dim), generator=g))


@dataclass(frozen=True)
class Projection:
    points: torch.Tensor  # (N, 2)
    axis_names: tuple[str, str]  # "z0"/"z1", or "PC1 (43%)"...
    explained: tuple[float, float] | None  # PCA: fraction of variance along each axis


def project_2d(mu: torch.Tensor) -> Projection:
    """Posterior means (N, L) on two axes: their first two principal components, or as they are when L <= 2
    or there is nothing for a PCA to find (one point, all alike, NaN)."""
    if mu.shape[1] == 1:
        return Projection(torch.cat([mu, torch.zeros_like(mu)], 1), ("z0", "—"), None)
    if mu.shape[1] == 2 or len(mu) < 2 or not torch.isfinite(mu).all():
        return Projection(mu[:, :2], ("z0", "z1"), None)  # as they are: too few points (or NaN) for a PCA
    centred = mu - mu.mean(0)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    if (s**2).sum() == 0:  # every point alike: no direction explains anything
        return Projection(mu[:, :2], ("z0", "z1"), None)
    frac = (s**2 / (s**2).sum()).tolist()
    names = (f"PC1 ({frac[0]:.0%} of variance)", f"PC2 ({frac[1]:.0%} of variance)")
    return Projection(centred @ vh[:2].T, names, (frac[0], frac[1]))
