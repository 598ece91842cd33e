"""Sprites: coloured shapes rendered in code from known factors (shape, scale, rotation, position, hue), so the
app works offline at first start and a latent traversal can be read against the factors."""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

from vae_core.data.base import ImageDataset

SPRITE_SHAPES = ("square", "ellipse", "triangle", "star")


SPRITE_FACTORS = ("shape", "scale", "rotation", "x", "y", "hue")


SPRITES_TRAIN, SPRITES_TEST = 20_000, 2_000


SCALE_RANGE = (0.3, 0.55)  # diameter of the shape's enclosing circle, as a fraction of the image width


EDGE_MARGIN = 0.03  # extra gap (image fraction) between the enclosing circle and the border: room for the soft edge


ELLIPSE_MINOR = 0.55  # ellipse minor/major axis ratio: elongated enough that rotation shows


STAR_INNER = 0.45  # star: inner/outer radius ratio of IQ's sdStar5 construction


_CHUNK = 2048  # images rendered at once: keeps the float temporaries to a few MB each


def _hsv_to_rgb(hue: torch.Tensor) -> torch.Tensor:
    """Fully saturated, full-value colours for hues in [0, 1): (N,) -> (N, 3)."""
    h6 = hue[:, None] * 6 - torch.tensor([3.0, 2.0, 4.0])  # (N, 3)
    rgb = torch.stack([h6[:, 0].abs() - 1, 2 - h6[:, 1].abs(), 2 - h6[:, 2].abs()], dim=1)
    return rgb.clamp(0, 1)


def _sd_square(px: torch.Tensor, py: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance to a square whose corners touch the circle of radius r (Quilez's sdBox)."""
    half = r / math.sqrt(2)
    qx, qy = px.abs() - half, py.abs() - half
    outside = torch.hypot(qx.clamp(min=0), qy.clamp(min=0))
    return outside + torch.maximum(qx, qy).clamp(max=0)


def _sd_ellipse(px: torch.Tensor, py: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Approximate signed distance to an ellipse with semi-axes r and ELLIPSE_MINOR*r (Quilez's gradient fix)."""
    a, b = r, r * ELLIPSE_MINOR
    k0 = torch.hypot(px / a, py / b)
    k1 = torch.hypot(px / (a * a), py / (b * b))
    # the formula is 0/0 at the exact centre, which is deep inside: say so explicitly
    return torch.where(k1 > 0, k0 * (k0 - 1) / k1.clamp(min=1e-12), -b)


def _sd_triangle(px: torch.Tensor, py: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance to an equilateral triangle, apex up, circumradius r (Quilez's sdEquilateralTriangle)."""
    k = math.sqrt(3.0)
    half_side = r * k / 2
    x, y = px.abs() - half_side, py + half_side / k
    fold = x + k * y > 0  # fold the point onto the nearest edge's frame
    x, y = torch.where(fold, (x - k * y) / 2, x), torch.where(fold, (-k * x - y) / 2, y)
    x = x - torch.minimum(torch.maximum(x, -2 * half_side), torch.zeros_like(x))
    return -torch.hypot(x, y) * torch.sign(y)


def _sd_star(px: torch.Tensor, py: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Signed distance to a 5-pointed star, a point up, outer radius r (Quilez's sdStar5)."""
    k1x, k1y = 0.809016994375, -0.587785252292  # (cos 36°, -sin 36°): the mirror lines of the 5-fold symmetry
    x = px.abs()
    y = py
    for kx in (k1x, -k1x):
        dot = (kx * x + k1y * y).clamp(min=0)
        x, y = x - 2 * dot * kx, y - 2 * dot * k1y
    x, y = x.abs(), y - r
    bax, bay = -STAR_INNER * k1y, STAR_INNER * k1x - 1  # the edge from the tip towards the inner corner
    h = ((x * bax + y * bay) / (bax * bax + bay * bay)).clamp(min=0)
    h = torch.minimum(h, r)
    return torch.hypot(x - bax * h, y - bay * h) * torch.sign(y * bax - x * bay)


_SDFS = (_sd_square, _sd_ellipse, _sd_triangle, _sd_star)  # indexed like SPRITE_SHAPES


def _draw_factors(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 6) factors; one row of uniforms per image, so the first k images don't depend on n."""
    u = rng.random((n, 6))  # (n, 6) float64
    shape = np.floor(u[:, 0] * len(SPRITE_SHAPES))
    scale = SCALE_RANGE[0] + (SCALE_RANGE[1] - SCALE_RANGE[0]) * u[:, 1]
    rotation = 2 * np.pi * u[:, 2]
    margin = scale / 2 + EDGE_MARGIN  # keeps the whole enclosing circle (and its soft edge) inside
    x = margin + (1 - 2 * margin) * u[:, 3]
    y = margin + (1 - 2 * margin) * u[:, 4]
    return np.stack([shape, scale, rotation, x, y, u[:, 5]], axis=1)


def _render(factors: torch.Tensor, size: int) -> torch.Tensor:
    """Anti-aliased sprites on black: (B, 6) float64 factors -> (B, 3, size, size) uint8."""
    shape, scale, rot, cx, cy, hue = factors.unbind(1)  # each (B,)
    # draw only a window around each shape: it holds the enclosing circle and its soft edge, and it is
    # 2-3x fewer pixels than the whole image
    win = min(size, math.ceil(SCALE_RANGE[1] * size) + 3)
    step = torch.arange(win)
    ox = (cx * size - win / 2).floor().long().clamp(0, size - win)  # (B,) window's left column
    oy = (cy * size - win / 2).floor().long().clamp(0, size - win)  # (B,) window's top row
    dx = ((ox[:, None] + step + 0.5) - cx[:, None] * size).float()[:, None, :]  # (B, 1, W) pixel centres
    dy = ((oy[:, None] + step + 0.5) - cy[:, None] * size).float()[:, :, None]  # (B, W, 1)
    cos = torch.cos(rot).float()[:, None, None]
    sin = torch.sin(rot).float()[:, None, None]
    px = cos * dx + sin * dy  # (B, W, W) shape-frame coordinates, in pixels
    py = sin * dx - cos * dy  # y flipped so that rotation 0 means "pointing up" on screen
    radius = (scale * size / 2).float()[:, None, None]  # (B, 1, 1)
    dist = torch.empty_like(px)  # (B, W, W)
    for k, sdf in enumerate(_SDFS):  # each shape's SDF only on its own images
        idx = (shape == k).nonzero().squeeze(1)
        if len(idx):
            dist[idx] = sdf(px[idx], py[idx], radius[idx])
    coverage = (0.5 - dist).clamp(0, 1)  # (B, W, W) fraction of the pixel inside the shape
    colour = _hsv_to_rgb(hue.float())  # (B, 3)
    patch = (coverage[..., None] * colour[:, None, None, :]).mul(255).round().to(torch.uint8)  # (B, W, W, 3)
    images = torch.zeros(len(factors), 3, size, size, dtype=torch.uint8)  # (B, 3, S, S)
    rows, cols = oy[:, None] + step, ox[:, None] + step  # (B, W) each
    b = torch.arange(len(factors))[:, None, None]
    images[b, :, rows[:, :, None], cols[:, None, :]] = patch  # advanced indices first: (B, W, W, 3)
    return images


@functools.lru_cache(maxsize=4)  # a train and a test split at two sizes; 64 px train is ~250 MB
def sprite_split(n: int, size: int, seed: int, stream: int) -> ImageDataset:
    """n sprites from the random stream (seed, stream); cached, so a second call is instant."""
    rng = np.random.default_rng([seed, stream])
    factors = torch.from_numpy(_draw_factors(rng, n))  # (n, 6) float64
    images = torch.empty(n, 3, size, size, dtype=torch.uint8)  # (N, 3, S, S)
    for start in range(0, n, _CHUNK):
        images[start:start + _CHUNK] = _render(factors[start:start + _CHUNK], size)
    return ImageDataset(name="sprites", images=images, labels=factors[:, 0].long(), label_names=SPRITE_SHAPES,
                        factors=factors.float(), factor_names=SPRITE_FACTORS)


def make_sprites(n: int, size: int = 32, seed: int = 0) -> ImageDataset:
    """n coloured, anti-aliased shapes on black at size x size; the same arguments give the same bytes."""
    if n < 1 or size < 8:
        raise ValueError(f"make_sprites needs n >= 1 and size >= 8; got n={n}, size={size}.")
    return sprite_split(n, size, seed, 0)  # stream 0 = the train split, so this equals load_dataset's train
