"""A run's pictures as uint8 RGB arrays (H, W, 3): the grids a page shows and the frames of their animations.

Tiles are enlarged by whole pixels (nearest neighbour) to at least TILE_PX, so a 32-pixel sprite stays sharp on a
slide; a thin dark gap separates them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from vae_core.data.base import pixels
from vae_core.model.latent import embed, interpolate, reconstruct, sample_prior, traverse
from vae_core.runs.folders import LoadedRun

TILE_PX = 96  # a tile is enlarged to at least this many pixels
GAP_PX = 2
GAP_GREY = 40
# The Latent space page's traversal, whose defaults the command line shares
TRAVERSAL_MAX_DIMS = 16  # rows of a traversal: beyond this the tiles shrink below what a projector shows
TRAVERSAL_DIMS = 10  # dimensions shown, the ones carrying the most KL first
TRAVERSAL_SPAN = 3.0  # prior standard deviations either side of the anchor's posterior mean
TRAVERSAL_SPAN_RANGE = (0.5, 5.0)
TRAVERSAL_VALUES = 9  # columns of the grid; frames of the animation
INTERPOLATION_STEPS = 10
PRIOR_SAMPLES, PRIOR_COLUMNS = 32, 16
PRIOR_FRAMES = 8  # draws in a prior-samples animation


def informative_dims(run: LoadedRun, limit: int = TRAVERSAL_DIMS) -> list[int]:
    """Up to `limit` latent dimensions, the ones carrying the most KL on the test set first (as measured)."""
    kl = (run.metrics.get("test") or {}).get("kl_per_dim") or []
    order = sorted(range(len(kl)), key=lambda d: -kl[d]) if len(kl) == run.config.model.latent_dim else \
        list(range(run.config.model.latent_dim))
    return order[:min(limit, TRAVERSAL_MAX_DIMS)]


def to_pixels(run: LoadedRun, x: torch.Tensor) -> np.ndarray:
    """Normalized decoder outputs (..., C, H, W) -> pixels in [0, 1], same shape."""
    return run.normalizer.inverse(x).clamp(0, 1).numpy()


def traversal_grid(run: LoadedRun, image: torch.Tensor, dims: Sequence[int], span: float = TRAVERSAL_SPAN,
                   n_values: int = TRAVERSAL_VALUES) -> np.ndarray:
    """(D, V, C, H, W) pixels: the uint8 image's (C, H, W) posterior mean, dimension d of row d set to each of
    n_values values from -span to span."""
    mu, _ = embed(run.model, run.normalizer.from_grey_levels(image[None]))
    return to_pixels(run, traverse(run.model, mu[0], dims, np.linspace(-span, span, n_values).tolist()))


def interpolation_row(run: LoadedRun, image_a: torch.Tensor, image_b: torch.Tensor,
                      steps: int = INTERPOLATION_STEPS) -> np.ndarray:
    """(steps + 2, C, H, W) pixels: input A, the decoded straight line between the posterior means, input B."""
    x = run.normalizer.from_grey_levels(torch.stack([image_a, image_b]))
    path = to_pixels(run, interpolate(run.model, x[0], x[1], steps))
    ends = pixels(torch.stack([image_a, image_b])).numpy()
    return np.concatenate([ends[:1], path, ends[1:]])


def prior_grid(run: LoadedRun, n: int = PRIOR_SAMPLES, seed: int = 0) -> np.ndarray:
    """(n, C, H, W) pixels: decoder means at z ~ N(0, I), seeded."""
    return to_pixels(run, sample_prior(run.model, n, seed))


def mosaic(tiles: np.ndarray, columns: int | None = None) -> np.ndarray:
    """Tiles (N, C, H, W) or (R, K, C, H, W) in [0, 1] -> one uint8 (H', W', 3) image, rows of `columns` tiles."""
    if tiles.ndim == 5:
        columns, tiles = tiles.shape[1], tiles.reshape(-1, *tiles.shape[2:])
    columns = columns or len(tiles)
    zoom = max(1, -(-TILE_PX // tiles.shape[-1]))  # whole pixels: nearest neighbour stays sharp
    rgb = np.repeat(tiles, 3, axis=1) if tiles.shape[1] == 1 else tiles  # grey drawn as RGB
    big = (rgb.transpose(0, 2, 3, 1).repeat(zoom, 1).repeat(zoom, 2) * 255).round().astype(np.uint8)  # (N, h, w, 3)
    rows = -(-len(big) // columns)
    h, w = big.shape[1:3]
    out = np.full((rows * (h + GAP_PX) - GAP_PX, columns * (w + GAP_PX) - GAP_PX, 3), GAP_GREY, np.uint8)
    for i, tile in enumerate(big):
        r, c = divmod(i, columns)
        out[r * (h + GAP_PX):r * (h + GAP_PX) + h, c * (w + GAP_PX):c * (w + GAP_PX) + w] = tile
    return out


def traversal_frames(grid: np.ndarray) -> list[np.ndarray]:
    """A traversal grid (D, V, C, H, W) as V frames, each every row's tile at one value, there and back (2V - 2)."""
    frames = [mosaic(grid[:, v]) for v in range(grid.shape[1])]
    return frames + frames[-2:0:-1]


def interpolation_frames(row: np.ndarray) -> list[np.ndarray]:
    """An interpolation row (A, steps..., B) as frames: A, the moving decoding, B side by side, there and back."""
    frames = [mosaic(np.stack([row[0], tile, row[-1]])) for tile in row[1:-1]]
    return frames + frames[-2:0:-1]


def prior_frames(run: LoadedRun, n: int = PRIOR_SAMPLES, seed: int = 0,
                 n_frames: int = PRIOR_FRAMES) -> list[np.ndarray]:
    """One grid of prior samples a frame, each from the next seed."""
    return [mosaic(prior_grid(run, n, seed + i), PRIOR_COLUMNS) for i in range(n_frames)]


def reconstruction_rows(run: LoadedRun, images: torch.Tensor) -> np.ndarray:
    """(2, N, C, H, W) pixels: uint8 test images (N, C, H, W) over their reconstructions from the posterior mean."""
    return compare_rows([run], images)


def error_maps(rows: np.ndarray) -> np.ndarray:
    """(N, H, W) per-pixel squared error in pixel space, the mean over channels, of reconstruction_rows."""
    return ((rows[1] - rows[0]) ** 2).mean(1)


# Plotly's Viridis, whose ten stops the page's error maps use: a download shows the page's colours.
VIRIDIS = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in (
    "#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725")],
    dtype=np.float64) / 255


def heat(errors: np.ndarray) -> np.ndarray:
    """(N, H, W) non-negative values -> (N, 3, H, W) Viridis colours in [0, 1], one scale from 0 to their max."""
    top = float(errors.max()) if errors.size and errors.max() > 0 else 1.0
    t = np.clip(errors / top, 0, 1) * (len(VIRIDIS) - 1)
    lo = np.floor(t).astype(int).clip(0, len(VIRIDIS) - 2)
    mix = (t - lo)[..., None]
    return (VIRIDIS[lo] * (1 - mix) + VIRIDIS[lo + 1] * mix).transpose(0, 3, 1, 2)


def compare_rows(runs: Sequence[LoadedRun], images: torch.Tensor) -> np.ndarray:
    """(1 + R, N, C, H, W) pixels: the uint8 test images, then each run's reconstructions of them."""
    p = pixels(images)
    outs = [to_pixels(run, reconstruct(run.model, run.normalizer.forward(p))) for run in runs]
    return np.stack([p.numpy(), *outs])
