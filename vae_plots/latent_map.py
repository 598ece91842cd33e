"""The latent map: every test image's posterior mean on a plane (latent 2 as it is, else its PCA plane), a click
anywhere decoded, the nearest test images to a point, and the images a box or lasso selects.

One plane (vae_core.model.latent.fit_plane) serves the drawing and the decoding: a point's coordinates lifted back
to z = centre + coords · axes are what the decoder sees.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
import torch

from vae_core.data.base import ImageDataset, pixels
from vae_core.export.frames import to_pixels
from vae_core.model.latent import Plane, embed, fit_plane
from vae_core.runs.folders import LoadedRun

from . import figures

CLICK_GRID = 64  # invisible click targets a side: a click on empty space lands on one, a few pixels away
GRID_MARGIN = 0.05  # the targets reach this share of the points' range beyond them
NEAREST = 5  # test images listed beside a decoded point
GRID_CURVE = 0  # the click targets are the figure's first trace, under the points
MAP_HEIGHT = 460


@dataclass(frozen=True)
class EncodedMap:
    """The test images' posterior means and the plane the map draws them on."""
    mu: torch.Tensor  # (N, L)
    plane: Plane
    points: np.ndarray  # (N, 2) float64, the plane's coordinates of mu

    @property
    def latent_dim(self) -> int:
        return self.mu.shape[1]


@dataclass(frozen=True)
class LatentMap:
    figure: go.Figure
    note: str  # what the axes are, and what a click decodes


def encode_map(run: LoadedRun, data: ImageDataset) -> EncodedMap:
    """Every image's posterior mean, the plane fitted once to them, and their coordinates on it."""
    mu, _ = embed(run.model, run.normalizer.forward(pixels(data.images)))
    plane = fit_plane(mu)
    return EncodedMap(mu, plane, plane.project(mu).double().numpy())


def map_colors(data: ImageDataset, color_by: str) -> tuple[np.ndarray, bool, tuple[str, ...] | None]:
    """(N,) values to colour by, whether they are categories, and the categories' names."""
    if color_by == "label":
        return data.labels.numpy(), True, data.label_names
    values = data.factors[:, data.factor_names.index(color_by)].numpy()
    return values, color_by == "shape", data.label_names if color_by == "shape" else None


def latent_map(encoded: EncodedMap, data: ImageDataset, color_by: str = "label") -> LatentMap:
    """The map of every image, coloured by label or a sprite factor, over a grid of invisible click targets."""
    color, categorical, names = map_colors(data, color_by)
    fig = figures.latent_scatter(encoded.points, color, color_name=color_by, categorical=categorical,
                                 category_names=names, axis_titles=encoded.plane.axis_names)
    fig.add_traces([click_grid(encoded.points)])
    fig.data = (fig.data[-1], *fig.data[:-1])  # first (GRID_CURVE): under the points
    fig.update_traces(selector=lambda t: t.name != "click", unselected=dict(marker=dict(opacity=0.75)),
                      selected=dict(marker=dict(opacity=1.0)))  # a click selects a target: the points stay as they are
    # Narrow beside the decoded point at 1024 pixels: the legend goes under the plot, the height follows the width
    fig.update_layout(dragmode="pan", uirevision="map", height=MAP_HEIGHT, margin=dict(l=50, r=10, t=30, b=10),
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))  # uirevision: zoom survives a click
    return LatentMap(fig, map_note(encoded))


def click_grid(points: np.ndarray, n: int = CLICK_GRID) -> go.Scattergl:
    """n × n transparent markers over the points' range: Plotly reports a click only on a point."""
    lo, hi = _extent(points)
    xs, ys = (np.linspace(lo[i], hi[i], n) for i in (0, 1))
    gx, gy = np.meshgrid(xs, ys)
    return go.Scattergl(x=gx.ravel(), y=gy.ravel(), mode="markers", name="click", showlegend=False,
                        marker=dict(size=6, opacity=0, color="#000"), selected=dict(marker=dict(opacity=0)),
                        unselected=dict(marker=dict(opacity=0)),
                        hovertemplate="click to decode (%{x:.2f}, %{y:.2f})<extra></extra>")


def _extent(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    finite = points[np.isfinite(points).all(1)]
    if not len(finite):
        return np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    lo, hi = finite.min(0), finite.max(0)
    pad = np.maximum(hi - lo, 1e-3) * GRID_MARGIN
    return lo - pad, hi + pad


def map_note(encoded: EncodedMap) -> str:
    """What the axes are and what a click decodes."""
    if encoded.latent_dim == 1:
        return "Posterior means μ(x) of the one latent dimension, on a line; a click decodes z = x."
    if encoded.plane.explained is None:
        held = "" if encoded.latent_dim == 2 else " (the other dimensions held at the mean of the test images)"
        return f"Posterior means μ(x); a click decodes z at the point{held}."
    return ("Posterior means μ(x) on their first two principal components; a click decodes z = mean + x·PC1 + "
            "y·PC2, every other direction held at the mean of the test images.")


def decode_at(run: LoadedRun, plane: Plane, xy: tuple[float, float]) -> np.ndarray:
    """The decoder's mean at the plane's point (x, y): (C, H, W) pixels in [0, 1]."""
    z = plane.lift(torch.tensor([xy], dtype=torch.float32))
    with torch.no_grad():
        return to_pixels(run, run.model.eval().decode(z))[0]


def nearest(points: np.ndarray, xy: tuple[float, float], k: int = NEAREST) -> np.ndarray:
    """Indices of the k points nearest (x, y) on the plane, nearest first."""
    d = np.nan_to_num(((points - np.asarray(xy)) ** 2).sum(1), nan=np.inf)
    k = min(k, len(points))
    part = np.argpartition(d, k - 1)[:k] if k < len(points) else np.arange(len(points))
    return part[np.argsort(d[part], kind="stable")]


EventKind = Literal["none", "click", "region"]


@dataclass(frozen=True)
class MapEvent:
    """What a click or a selection on the map asked for."""
    kind: EventKind
    clicked: tuple[float, float] | None = None  # a click: the plane's point
    selected: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))  # a region's test images


def read_event(selection: dict[str, Any], curve_images: list[np.ndarray]) -> MapEvent:
    """A Plotly selection event (Streamlit's dict) -> what it asked; curve_images[c] maps a trace's point index to
    a test image's index (the click grid's trace maps to none)."""
    points = selection.get("points") or []
    if selection.get("box") or selection.get("lasso"):
        picked = [i for i in (_image_of(p, curve_images) for p in points) if i is not None]
        return MapEvent("region", selected=np.unique(np.array(picked, dtype=np.int64)))
    if points:  # a click selects the one point under it (a test image's or a click target's)
        return MapEvent("click", (float(points[0]["x"]), float(points[0]["y"])))
    return MapEvent("none")


def _image_of(point: dict[str, Any], curve_images: list[np.ndarray]) -> int | None:
    """The test image a selected point is; None for a click target, or a point of a figure drawn before (a stale
    selection after the colouring changed)."""
    curve, index = point.get("curve_number", GRID_CURVE), point.get("point_index", -1)
    if curve == GRID_CURVE or not 0 <= curve < len(curve_images) or not 0 <= index < len(curve_images[curve]):
        return None
    return int(curve_images[curve][index])


def curve_images(data: ImageDataset, color_by: str) -> list[np.ndarray]:
    """For each trace of latent_map's figure, the test image index of each of its points (as latent_scatter
    splits them: one trace a category, in sorted order; one trace for values)."""
    color, categorical, _ = map_colors(data, color_by)
    empty = np.array([], dtype=np.int64)
    if not categorical:
        return [empty, np.arange(len(color))]
    return [empty, *(np.flatnonzero(color == v) for v in np.unique(color))]
