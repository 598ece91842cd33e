"""Two to four runs side by side: (runs, the same uint8 test images) -> figures, one colour per run.

A run keeps its colour (its place in the selection) on every figure of the Compare page. Images and errors are
compared in pixel space, where runs with different normalizations meet; nats only where they mean the same.
The page's table of test metrics is compare_table.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import plotly.graph_objects as go
import torch

from vae_core.config import field_value
from vae_core.data.base import pixels
from vae_core.export.frames import compare_rows, informative_dims
from vae_core.model.compatibility import ACTIVATION_RANGE
from vae_core.model.latent import embed
from vae_core.model.likelihoods import likelihood_spec
from vae_core.runs.families import TOGGLE_FIELDS, differences
from vae_core.runs.folders import LoadedRun, run_tag

from . import figures, views

# Run i's colour on every figure: four that stay apart on a projector (the Compare page takes as many runs).
RUN_COLORS: tuple[str, ...] = tuple(figures.CATEGORICAL[:4])
CURVE_KEYS = ("recon_nats", "kl_nats", "elbo_nats")  # metrics.json history columns, in figures.CURVE_TITLES order


def run_colors(n: int) -> list[str]:
    """The colours of the first n runs of a selection."""
    return [RUN_COLORS[i % len(RUN_COLORS)] for i in range(n)]


def _base_label(run: LoadedRun) -> str:
    c = run.config
    return f"{c.model.output_activation}/{c.data.normalization}/{c.loss.likelihood}"


def _varying_fields(runs: Sequence[LoadedRun]) -> list[str]:
    """Config fields (beyond the three in every label) in which the runs differ, in a stable order."""
    varying: set[str] = set()
    for run in runs[1:]:
        varying |= differences(runs[0].config, run.config)
    return sorted(varying - {*TOGGLE_FIELDS, "data.dataset"})  # the dataset goes in front, where it differs


def _field_text(run: LoadedRun, path: str) -> str:
    name, value = path.split(".")[1], field_value(run.config, path)
    return f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"


def run_labels(runs: Sequence[LoadedRun]) -> list[str]:
    """Short, distinct labels: "tanh/zscore/gaussian", the value of any other field that differs, else a suffix."""
    fields = _varying_fields(runs)
    datasets = {r.config.data.dataset for r in runs}
    labels = []
    for run in runs:
        parts = [_base_label(run), *(_field_text(run, f) for f in fields)]
        prefix = f"{run.config.data.dataset} " if len(datasets) > 1 else ""
        labels.append(prefix + " · ".join(parts))
    # Runs identical in every compared field (the same config saved twice) still need telling apart.
    return [f"{label} #{run_tag(run.name)}" if labels.count(label) > 1 else label for label, run in zip(labels, runs)]


def colored(labels: Sequence[str]) -> list[str]:
    """Labels in their runs' colours, for Plotly text (tick labels, titles)."""
    return [f'<span style="color:{c}">{label}</span>' for label, c in zip(labels, run_colors(len(labels)))]


def same_images(runs: Sequence[LoadedRun]) -> bool:
    """Whether the runs read images of one dataset and shape, so one set of test inputs serves them all."""
    keys = {(r.config.data.dataset, r.config.model.channels, r.config.model.image_size) for r in runs}
    return len(keys) == 1


def nats_comparable(runs: Sequence[LoadedRun]) -> bool:
    """Whether nats/image mean the same for all runs: one normalization (a density of the same x), and
    either one likelihood or only densities of 8-bit data (a Bernoulli's nats are not log p(x) of grey levels)."""
    scales = {(r.normalizer.kind, r.normalizer.shift, r.normalizer.scale) for r in runs}
    liks = {r.config.loss.likelihood for r in runs}
    return len(scales) == 1 and (len(liks) == 1 or all(likelihood_spec(n).discrete_bits for n in liks))


# --------------------------------------------------------------------------- reconstructions


@dataclass(frozen=True)
class CompareReconstructions:
    grid: go.Figure  # the inputs on top, then a row of reconstructions per run
    errors: go.Figure  # a row of squared-error maps per run, on one colour scale
    zmax: float  # the top of that shared scale (pixel units squared)


def reconstructions(runs: Sequence[LoadedRun], images: torch.Tensor, labels: Sequence[str]) -> CompareReconstructions:
    """The same inputs reconstructed by each run (as their download); errors in pixel space, so normalizations
    compare."""
    rows = compare_rows(runs, images)  # (1 + R, N, C, H, W)
    labelled = colored(labels)
    grid = figures.image_grid(rows, len(images), row_labels=["input", *labelled])
    errors = ((rows[1:] - rows[:1]) ** 2).mean(2)  # (R, N, H, W)
    # One heatmap for every run: one trace, so one colour scale, and the worst run sets its top.
    fig = figures.error_heatmap(errors.reshape(-1, *errors.shape[2:]), len(images), row_labels=labelled,
                                colorbar_title="squared error (pixels in [0, 1])")
    return CompareReconstructions(grid, fig, float(fig.data[0].zmax))


# --------------------------------------------------------------------------- training curves


def _history(run: LoadedRun) -> dict | None:
    h = run.metrics.get("history")
    return h if isinstance(h, dict) and h.get("step") and all(h.get(k) for k in CURVE_KEYS) else None


def has_history(runs: Sequence[LoadedRun]) -> bool:
    """Whether any of the runs saved its training curves."""
    return any(_history(run) is not None for run in runs)


CurveScale = Literal["per run", "shared"]
CURVE_SCALES: tuple[CurveScale, ...] = ("per run", "shared")
# The hover keeps the nats a curve drew from: a run rescaled to its own range still says what it measured.
_SCALED_HOVER = "step %{x}<br>%{customdata:.4g} nats<extra>%{fullData.name}</extra>"


def training_curves(runs: Sequence[LoadedRun], labels: Sequence[str], scale: CurveScale = "shared") -> go.Figure:
    """Reconstruction, KL and ELBO during training, one colour per run (runs without a history are left out).
    "per run" draws each run's curve over its own range (0 its lowest, 1 its highest), so a run whose nats are
    thousands of times another's does not flatten it; the hover shows the nats."""
    data = []
    for run, label, color in zip(runs, labels, run_colors(len(runs))):
        if (h := _history(run)) is None:
            continue
        mode = "lines" if len(h["step"]) > 1 else "markers"
        data += [go.Scatter(x=h["step"], y=_scaled(h[key], scale), customdata=h[key], mode=mode, name=label,
                            legendgroup=label, showlegend=suffix == "", line=dict(color=color, width=2),
                            marker=dict(color=color, size=8), xaxis="x" + suffix, yaxis="y" + suffix,
                            hovertemplate=_SCALED_HOVER)
                 for key, suffix in zip(CURVE_KEYS, ("", "2", "3"))]
    layout = figures._curve_axes(figures.TRAINING_PER[runs[0].config.data.kind if runs else "images"])
    if scale == "per run":
        for suffix in ("", "2", "3"):
            layout[f"yaxis{suffix}"].update(range=[-0.05, 1.05], tickvals=[0, 1], ticktext=["its lowest", "its highest"])
    # Runs named once, under the panels: above the ELBO panel (the single-run place) they would cover the curves.
    layout["legend"] = dict(orientation="h", x=0, xanchor="left", y=-0.08, yanchor="top")
    return figures._figure(data, dict(layout, hovermode="x"), None, 680, top=20)


def _scaled(values: Sequence[float], scale: CurveScale) -> list[float]:
    """The values, or ("per run") mapped onto [0, 1] between their own finite lowest and highest."""
    if scale == "shared":
        return list(values)
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    if finite.size == 0 or finite.min() == finite.max():
        return [0.5] * len(v)
    return ((v - finite.min()) / (finite.max() - finite.min())).tolist()


def default_curve_scale(runs: Sequence[LoadedRun]) -> CurveScale:
    """Shared where the runs' nats compare and their ranges are alike; per run where one would flatten another."""
    histories = [h for r in runs if (h := _history(r)) is not None]
    if not nats_comparable(runs):
        return "per run"
    for key in CURVE_KEYS:
        spans = [_span(h[key]) for h in histories]
        if spans and max(spans) > CURVE_SPAN_RATIO * max(min(spans), 1e-12):
            return "per run"
    return "shared"


CURVE_SPAN_RATIO = 5  # one run's range of a term this many times another's flattens it on a shared axis


def _span(values: Sequence[float]) -> float:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.max() - v.min()) if v.size else 0.0


# --------------------------------------------------------------------------- traversals


TRAVERSALS_PX = 880  # the main column's width beside the sidebar on a 1400-pixel screen, shared by traversals
ROW_LABELS_PX = 110  # a traversal's row labels: "z3 (12.5 nats)"


def traversals_per_row(n_runs: int) -> int:
    """Two to a row: three side by side leave a 1024-pixel projector tiles of 15 pixels and cut the row labels."""
    return min(n_runs, 2)


def _traversal_height(n_runs: int, n_dims: int, n_values: int) -> int:
    """A height that fits a traversal's tiles to its share of the page's width (no band of white above it)."""
    tile = max(TRAVERSALS_PX / traversals_per_row(n_runs) - ROW_LABELS_PX, 70) / n_values
    return int(n_dims * tile) + 90  # + the title and the column labels


def traversals(runs: Sequence[LoadedRun], image: torch.Tensor, labels: Sequence[str], n_dims: int = 5,
               span: float = 3.0, n_values: int = 7) -> list[go.Figure]:
    """One traversal of the same anchor image per run, each over its own n_dims most informative dimensions."""
    figs = []
    for run, label, color in zip(runs, labels, run_colors(len(runs))):
        dims = informative_dims(run, n_dims)
        fig = views.traversal(run, image, dims, span, n_values)
        # A line per part of the label: a Plotly title does not wrap, and a column is narrow.
        lines = [f'<span style="color:{color}">{part}</span>' for part in re.split(r" · |/", label)]
        fig.update_layout(title=dict(text="<br>".join(lines), x=0.01, xanchor="left"), margin_t=30 + 22 * len(lines),
                          height=_traversal_height(len(runs), len(dims), n_values) + 22 * (len(lines) - 1))
        figs.append(fig)
    return figs


# --------------------------------------------------------------------------- output ranges


HISTOGRAM_PX = (-1.0, 2.0)  # pixel values beyond are counted in the edge bins: one far outlier would squeeze the rest


def _outputs_in_pixels(run: LoadedRun, p: torch.Tensor) -> np.ndarray:
    """The decoder's finite outputs at the posterior mean, in pixel units, unclipped (they may leave [0, 1])."""
    mu, _ = embed(run.model, run.normalizer.forward(p))
    with torch.no_grad():
        out = run.model.out_act(run.model.decode_logits(mu))  # (N, C, H, W), normalized
    values = run.normalizer.inverse(out).flatten().numpy()
    return values[np.isfinite(values)]  # a diverged run's NaNs have no place on an axis


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of values in each bin, values beyond the edges counted in the outermost bins."""
    return np.histogram(np.clip(values, edges[0], edges[-1]), edges)[0] / max(values.size, 1)


def reach_in_pixels(run: LoadedRun) -> tuple[float, float] | None:
    """What the run's output activation can reach, in pixel units (the widest over channels); None if unbounded."""
    lo, hi = ACTIVATION_RANGE[run.config.model.output_activation]
    if math.isinf(lo) and math.isinf(hi):
        return None
    n = run.normalizer
    return min(lo * c + s for s, c in zip(n.shift, n.scale)), max(hi * c + s for s, c in zip(n.shift, n.scale))


def range_histograms(runs: Sequence[LoadedRun], images: torch.Tensor, labels: Sequence[str],
                     bins: int = 80) -> go.Figure:
    """Where each run's outputs land in pixel units, over the targets (the same for all), each run's reach dashed."""
    p = pixels(images)
    outputs = [_outputs_in_pixels(run, p) for run in runs]
    targets = p.flatten().numpy()
    lo = max(HISTOGRAM_PX[0], min(float(v.min()) for v in (targets, *outputs) if v.size))
    hi = min(HISTOGRAM_PX[1], max(float(v.max()) for v in (targets, *outputs) if v.size))
    edges = np.linspace(lo, hi + 1e-9, bins + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    data = [go.Bar(x=centres, y=_shares(targets, edges), width=width, name="targets",
                   marker_color=figures.MUTED, hovertemplate="%{x:.3g}: %{y:.2%}<extra>targets</extra>")]
    shapes = []
    for out, label, color, run in zip(outputs, labels, run_colors(len(runs)), runs):
        data.append(go.Scatter(x=centres, y=_shares(out, edges), mode="lines", name=label,
                               line=dict(color=color, width=2, shape="hvh"),
                               hovertemplate="%{x:.3g}: %{y:.2%}<extra>" + label + "</extra>"))
        shapes += [dict(type="line", xref="x", yref="paper", x0=b, x1=b, y0=0, y1=1,
                        line=dict(color=color, dash="dash", width=2)) for b in reach_in_pixels(run) or ()]
    layout = dict(barmode="overlay", bargap=0, shapes=shapes,
                  xaxis=dict(title="pixel value (dashed: the edges of what each run's output can reach)"),
                  # Log scale: the background's spike at 0 would flatten every other bin to nothing.
                  yaxis=dict(title="share of values", type="log", tickformat="~%"),
                  legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"))
    return figures._figure(data, layout, None, 400, top=30)
