"""What the Reconstructions and Latent space pages show of a run on vectors, as numbers: (loaded run, raw test rows,
choices) -> raw rows decoded, per-feature errors, the decoder's σ per feature, profiles, the map of μ.

Raw units are the file's own; a model reads and writes normalized rows (run.normalizer maps between them).
Profiles of features with very different scales share an axis in standard units (FeatureScale).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import torch

from vae_core.data.vectors.dataset import VectorDataset
from vae_core.export.frames import INTERPOLATION_STEPS, TRAVERSAL_VALUES, informative_dims
from vae_core.model.latent import Plane, embed, fit_plane, interpolate, reconstruct, sample_prior, traverse
from vae_core.runs.folders import LoadedRun

STANDARD_UNITS = "standard units: (value − the feature's mean) / its std, over the test rows"
MapAxes = Literal["pca", "kl"]  # the map's plane: the PCA plane of μ, or the two dimensions carrying the most KL


@dataclass(frozen=True)
class FeatureScale:
    """Each feature's mean and std over the test rows, raw units: what puts features on one axis."""
    mean: np.ndarray  # (D,)
    std: np.ndarray  # (D,) > 0

    def standardize(self, raw: np.ndarray) -> np.ndarray:
        """Raw rows (..., D) -> standard units."""
        return (raw - self.mean) / self.std


def feature_scale(run: LoadedRun, data: VectorDataset) -> FeatureScale:
    """The test rows' per-feature mean and std; a feature constant on the test rows (a whole file's constant columns
    are refused) keeps its training std, so it draws flat at 0 rather than dividing by zero."""
    ranges = data.ranges()
    std = np.array(ranges.std)
    return FeatureScale(np.array(ranges.mean), np.where(std > 0, std, np.array(run.normalizer.spread)))


def _normalized(run: LoadedRun, raw: torch.Tensor) -> torch.Tensor:
    return run.normalizer.forward(raw.to(torch.float32))


def to_raw(run: LoadedRun, x: torch.Tensor) -> np.ndarray:
    """Normalized decoder means (..., D) -> raw units, float64."""
    return run.normalizer.inverse(x.double()).numpy()


def posterior_means(run: LoadedRun, raw: torch.Tensor) -> torch.Tensor:
    """μ(x) of raw rows (N, D): (N, L)."""
    return embed(run.model, _normalized(run, raw))[0]


@dataclass(frozen=True)
class Reconstruction:
    x: np.ndarray  # (N, D) raw test rows
    x_hat: np.ndarray  # (N, D) raw: the decoder mean at μ(x)


def reconstruct_rows(run: LoadedRun, raw: torch.Tensor) -> Reconstruction:
    """Rows and their reconstructions from the posterior mean, raw units."""
    with torch.no_grad():
        x_hat = reconstruct(run.model, _normalized(run, raw))
    return Reconstruction(raw.double().numpy(), to_raw(run, x_hat))


@dataclass(frozen=True)
class FeatureErrors:
    """Each feature's reconstruction error over the test rows, and the decoder's σ where it has one."""
    names: tuple[str, ...]
    rmse: np.ndarray  # (D,) raw units, from the posterior mean
    std: np.ndarray  # (D,) each feature's std over the test rows (FeatureScale), raw units
    relative: np.ndarray  # (D,) rmse / the feature's std over the test rows: 1 is no better than its mean
    sigma: np.ndarray | None  # (D,) the decoder's σ (Laplace: its scale), raw units; None: it has none


def feature_errors(run: LoadedRun, data: VectorDataset) -> FeatureErrors:
    """Per-feature RMSE of every test row's reconstruction, raw and relative, and the decoder's σ."""
    rec = reconstruct_rows(run, data.x)
    rmse = np.sqrt(((rec.x_hat - rec.x) ** 2).mean(0))
    std = feature_scale(run, data).std
    return FeatureErrors(data.feature_names, rmse, std, rmse / std, decoder_sigma(run, data.x))


@torch.no_grad()
def decoder_sigma(run: LoadedRun, raw: torch.Tensor) -> np.ndarray | None:
    """The decoder's σ per feature in raw units (σ in normalized units × the feature's scale), the mean over the rows
    where the decoder predicts one per row; None for a decoder without one."""
    model = run.model.eval()  # gaussian_optimal keeps its σ* only in eval mode
    log_sigma = model.decode_log_sigma(posterior_means(run, raw))
    if log_sigma is None:
        return None
    shape = (len(raw), len(run.normalizer.scale))  # shared (), per feature (D,), per row (N, D)
    sigma = torch.broadcast_to(log_sigma.double().exp(), shape).mean(0)
    return (sigma * torch.tensor(run.normalizer.scale, dtype=torch.float64)).numpy()


SIGMA_WORDS = {"fixed": "fixed", "learned": "learned, one for all features", "optimal": "the optimal σ*, one for all "
               "features", "per_feature": "learned per feature", "per_pixel": "predicted per row: the mean over the "
               "test rows"}  # by Likelihood.sigma; every shared σ is one number in normalized units


def posterior_draws(run: LoadedRun, raw_row: torch.Tensor, n: int, seed: int) -> np.ndarray:
    """(1 + n, D) raw: the decoder mean at μ(x), then at n draws z ~ q(z|x) from a generator seeded with seed."""
    x = _normalized(run, raw_row[None])
    with torch.no_grad():
        at_mu = reconstruct(run.model, x)
        drawn = reconstruct(run.model, x, "sample", n, seed)[:, 0]
    return to_raw(run, torch.cat([at_mu, drawn]))


def traversal_values(span: float, n: int = TRAVERSAL_VALUES) -> np.ndarray:
    """The values a traversed dimension takes: prior standard deviations (the prior is N(0, 1))."""
    return np.linspace(-span, span, n)


def traversal_profiles(run: LoadedRun, raw_row: torch.Tensor, dims: Sequence[int], span: float) -> np.ndarray:
    """(len(dims), TRAVERSAL_VALUES, D) raw: μ(row) decoded with each dimension set to each traversal value."""
    z0 = posterior_means(run, raw_row[None])[0]
    with torch.no_grad():
        return to_raw(run, traverse(run.model, z0, dims, traversal_values(span).tolist()))


def interpolation_profiles(run: LoadedRun, raw_a: torch.Tensor, raw_b: torch.Tensor,
                           steps: int = INTERPOLATION_STEPS) -> np.ndarray:
    """(steps, D) raw: decodes along the straight line from μ(a) to μ(b)."""
    with torch.no_grad():
        return to_raw(run, interpolate(run.model, _normalized(run, raw_a), _normalized(run, raw_b), steps))


def prior_rows(run: LoadedRun, n: int, seed: int) -> np.ndarray:
    """(n, D) raw: decoder means at z ~ N(0, I)."""
    with torch.no_grad():
        return to_raw(run, sample_prior(run.model, n, seed))


@dataclass(frozen=True)
class MuMap:
    """The test rows' posterior means, the plane they are drawn on, and each dimension's range."""
    mu: torch.Tensor  # (N, L)
    plane: Plane
    points: np.ndarray  # (N, 2) the plane's coordinates

    def ranges(self) -> list[tuple[float, float]]:
        """Per latent dimension, the smallest and largest μ over the test rows."""
        return list(zip(self.mu.amin(0).tolist(), self.mu.amax(0).tolist()))


def mu_map(run: LoadedRun, data: VectorDataset, axes: MapAxes) -> MuMap:
    """Every test row's μ on the PCA plane (as the image map), or on the two dimensions with the most KL."""
    mu = posterior_means(run, data.x)
    plane = fit_plane(mu) if axes == "pca" or mu.shape[1] <= 2 else kl_plane(run, mu)
    return MuMap(mu, plane, plane.project(mu).double().numpy())


def decode_point(run: LoadedRun, plane: Plane, xy: tuple[float, float]) -> np.ndarray:
    """(D,) raw: the decoder's mean at the plane's point (x, y)."""
    z = plane.lift(torch.tensor([xy], dtype=torch.float32))
    with torch.no_grad():
        return to_raw(run, run.model.eval().decode(z))[0]


def kl_plane(run: LoadedRun, mu: torch.Tensor) -> Plane:
    """The plane of the two dimensions carrying the most KL on the test rows, the others held at their mean."""
    dims = informative_dims(run, 2)
    axes = torch.zeros(2, mu.shape[1])
    axes[0, dims[0]], axes[1, dims[1]] = 1.0, 1.0
    centre = mu.mean(0)
    centre[dims] = 0
    return Plane(centre, axes, (f"z{dims[0]}", f"z{dims[1]}"), None)
