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
class Plane:
    """A plane through latent space: z = centre + coords @ axes. The PCA plane of posterior means, or the first two
    dimensions as they are (the other dimensions held at the points' mean)."""
    centre: torch.Tensor  # (L,)
    axes: torch.Tensor  # (2, L), orthonormal rows (for L = 1, the second row is zero: a line)
    axis_names: tuple[str, str]  # "z0"/"z1", or "PC1 (43% of variance)"...
    explained: tuple[float, float] | None  # PCA: fraction of variance along each axis

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """(N, L) latent points -> (N, 2) plane coordinates."""
        return (z - self.centre) @ self.axes.T

    def lift(self, coords: torch.Tensor) -> torch.Tensor:
        """(N, 2) plane coordinates -> (N, L) latent points on the plane."""
        return self.centre + coords.to(self.centre.dtype) @ self.axes


@dataclass(frozen=True)
class Projection:
    points: torch.Tensor  # (N, 2)
    axis_names: tuple[str, str]  # "z0"/"z1", or "PC1 (43%)"...
    explained: tuple[float, float] | None  # PCA: fraction of variance along each axis


def _as_they_are(mu: torch.Tensor, names: tuple[str, str]) -> Plane:
    """The first two dimensions (one, for L = 1) as axes; the others held at the mean (0 where it is not finite)."""
    dim = mu.shape[1]
    centre = mu.mean(0) if len(mu) and torch.isfinite(mu).all() else torch.zeros(dim)
    centre[:2] = 0
    return Plane(centre, torch.eye(2, dim), names, None)


def fit_plane(mu: torch.Tensor) -> Plane:
    """The plane the latent map draws posterior means (N, L) on: their first two principal components, or the
    dimensions as they are when L <= 2 or there is nothing for a PCA to find (one point, all alike, NaN)."""
    if mu.shape[1] == 1:
        return _as_they_are(mu, ("z0", "—"))
    if mu.shape[1] == 2 or len(mu) < 2 or not torch.isfinite(mu).all():
        return _as_they_are(mu, ("z0", "z1"))  # as they are: too few points (or NaN) for a PCA
    mean = mu.mean(0)
    _, s, vh = torch.linalg.svd(mu - mean, full_matrices=False)
    if (s**2).sum() == 0:  # every point alike: no direction explains anything
        return _as_they_are(mu, ("z0", "z1"))
    frac = (s**2 / (s**2).sum()).tolist()
    names = (f"PC1 ({frac[0]:.0%} of variance)", f"PC2 ({frac[1]:.0%} of variance)")
    return Plane(mean, vh[:2].clone(), names, (frac[0], frac[1]))


def project_2d(mu: torch.Tensor) -> Projection:
    """Posterior means (N, L) on the two axes of their fit_plane."""
    plane = fit_plane(mu)
    return Projection(plane.project(mu), plane.axis_names, plane.explained)
