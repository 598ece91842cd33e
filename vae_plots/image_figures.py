"""A person's images before training: a preview by class, and where each normalization puts their values."""
from __future__ import annotations

import math

import plotly.graph_objects as go
import torch

from vae_core.model.compatibility import ACTIVATION_RANGE
from vae_core.data.base import ImageDataset, pixels
from vae_core.data.normalize import Normalizer

from . import figures

PREVIEW_CLASSES, PREVIEW_PER_CLASS = 10, 10  # rows and columns of the preview grid
HISTOGRAM_VALUES = 200_000  # a seeded sample of values is enough for a histogram


def preview(data: ImageDataset) -> go.Figure:
    """The first images of each class (a row per class, up to PREVIEW_CLASSES rows)."""
    rows, names = [], []
    for k, name in enumerate(data.label_names[:PREVIEW_CLASSES]):
        idx = (data.labels == k).nonzero().squeeze(1)[:PREVIEW_PER_CLASS]
        if len(idx):
            row = torch.zeros(PREVIEW_PER_CLASS, *data.images.shape[1:], dtype=torch.uint8)
            row[:len(idx)] = data.images[idx]
            rows.append(row)
            names.append(f"{name[:18]} ")
    grid = pixels(torch.stack(rows)).numpy()  # (R, K, C, H, W)
    return figures.image_grid(grid, PREVIEW_PER_CLASS, row_labels=names)


def values_histogram(images: torch.Tensor, normalizer: Normalizer, activation: str) -> go.Figure:
    """Normalized values of uint8 images, with the range the output activation can produce shaded."""
    x = normalizer.forward(pixels(images)).flatten()
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:HISTOGRAM_VALUES]
    values = x[pick].numpy()
    lo, hi = ACTIVATION_RANGE[activation]
    outside = float(((x < lo) | (x > hi)).double().mean())
    fig = go.Figure(go.Histogram(x=values, nbinsx=120, marker_color="#5b7fb5", name="values"))
    if math.isfinite(lo):
        fig.add_vrect(x0=lo, x1=hi, fillcolor="#3a9d5d", opacity=0.15, line_width=0,
                      annotation_text=f"{activation} reaches ({lo:g}, {hi:g})", annotation_position="top left")
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=40, b=30), showlegend=False,
                      title=f"{normalizer.kind}: {outside:.1%} of the values lie outside what {activation} can produce",
                      xaxis_title="normalized value", yaxis_title="count (sample)")
    return fig


def reach_rows(outside: dict[str, dict[str, float]],
               value_range: dict[str, tuple[float, float]]) -> list[dict[str, str]]:
    """One row per normalization: its value range and the share each activation cannot reach, as text."""
    return [{"normalization": norm, "values span": f"[{value_range[norm][0]:.2f}, {value_range[norm][1]:.2f}]",
             **{f"{act} {_range(act)}": f"{share:.1%}" for act, share in shares.items()}}
            for norm, shares in outside.items()]


def _range(activation: str) -> str:
    lo, hi = ACTIVATION_RANGE[activation]
    return "(−∞, ∞)" if not math.isfinite(lo) else f"({lo:g}, {hi:g})"
