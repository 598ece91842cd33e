"""Figures of rows of numbers: x against x̂ a panel per feature, feature profiles (a line per row), per-feature
errors, heatmaps of rows and of a traversal's change. Arrays in, figures out."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from vae_core.data.vectors.dataset import VectorDataset
from vae_plots.figures import (ACCENT, CATEGORICAL, MUTED, SEQUENTIAL, TEST_COLOR, _apply_template, _figure,
                               latent_scatter)
from vae_plots.latent_map import LatentMap, click_grid
from vae_plots.vector_views import FeatureErrors, MuMap, Reconstruction

SCATTER_COLUMNS = 3  # panels a row: at 1024 pixels each is ~230 pixels wide, room for "-10,000" ticks
PANEL_HEIGHT = 200
SMALL_FONT = 11  # a panel's ticks and title
DIVERGING = "RdBu_r"  # a change or a standard value: blue below, red above, white at 0
INPUT_COLOR = "#222222"
Dash = Literal["solid", "dash", "dot"]


def scatter_columns(n_features: int) -> int:
    return min(SCATTER_COLUMNS, n_features)


def feature_scatter(rec: Reconstruction, names: Sequence[str]) -> go.Figure:
    """A panel per feature: each row's x̂ against its x, raw units, over the identity line x̂ = x."""
    cols = scatter_columns(len(names))
    rows = math.ceil(len(names) / cols)
    fig = make_subplots(rows, cols, subplot_titles=list(names), horizontal_spacing=0.1,
                        vertical_spacing=min(0.12, 0.4 / rows))
    for d, name in enumerate(names):
        r, c = d // cols + 1, d % cols + 1
        lo, hi = _extent(rec.x[:, d], rec.x_hat[:, d])
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color=MUTED, width=1.5),
                                 hoverinfo="skip", showlegend=False), r, c)
        fig.add_trace(go.Scattergl(x=rec.x[:, d], y=rec.x_hat[:, d], mode="markers", showlegend=False,
                                   marker=dict(size=3, color=ACCENT, opacity=0.5),
                                   hovertemplate=f"{name}<br>x %{{x:.4g}}<br>x̂ %{{y:.4g}}<extra></extra>"), r, c)
    fig.update_xaxes(tickfont=dict(size=SMALL_FONT), nticks=4, title=dict(text="x", font=dict(size=SMALL_FONT),
                                                                           standoff=2))
    fig.update_yaxes(tickfont=dict(size=SMALL_FONT), nticks=4)  # x̂: said by the caption (a title hit the ticks)
    fig.update_annotations(font=dict(size=SMALL_FONT + 2))
    fig.update_layout(height=PANEL_HEIGHT * rows + 40, margin=dict(l=10, r=10, t=30, b=10), font=dict(size=SMALL_FONT))
    _apply_template(fig)
    return fig


def _extent(*values: np.ndarray) -> tuple[float, float]:
    """The finite range of both, for the identity line."""
    v = np.concatenate(values)
    v = v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if len(v) else (0.0, 1.0)


@dataclass(frozen=True)
class Profile:
    """One row drawn as a line over the features."""
    name: str
    values: np.ndarray  # (D,)
    color: str
    dash: Dash = "solid"
    width: float = 2.0
    legend: bool = True
    group: str | None = None  # legend entries that toggle together
    raw: np.ndarray | None = None  # (D,) the row in raw units, for the hover


def profiles(lines: Sequence[Profile], names: Sequence[str], y_title: str, height: int = 380) -> go.Figure:
    """Rows as lines over the features: a parallel-coordinates plot whose features share one axis."""
    data = [go.Scatter(x=list(names), y=p.values, mode="lines+markers", name=p.name, legendgroup=p.group,
                       showlegend=p.legend, line=dict(color=p.color, dash=p.dash, width=p.width), marker=dict(size=5),
                       customdata=p.raw, hovertemplate=f"{p.name}<br>%{{x}}: %{{y:.3g}}"
                       + ("<br>raw %{customdata:.4g}" if p.raw is not None else "") + "<extra></extra>")
            for p in lines]
    layout = dict(yaxis=dict(title=y_title, zeroline=True, zerolinecolor=MUTED),
                  xaxis=dict(type="category", tickangle=-45 if len(names) > 12 else 0),
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return _figure(data, layout, None, height, top=30)


def reconstruction_profiles(x: np.ndarray, x_hat: np.ndarray, labels: Sequence[str], names: Sequence[str],
                            y_title: str, raw: tuple[np.ndarray, np.ndarray]) -> go.Figure:
    """A few rows, x solid and x̂ dashed in the row's colour; raw: (x, x̂) in raw units for the hover."""
    lines = []
    for i, label in enumerate(labels):
        color = CATEGORICAL[i % len(CATEGORICAL)]
        lines += [Profile(f"{label} x", x[i], color, group=label, raw=raw[0][i]),
                  Profile(f"{label} x̂", x_hat[i], color, "dash", group=label, raw=raw[1][i])]
    return profiles(lines, names, y_title)


def draws_profiles(x: np.ndarray, decoded: np.ndarray, names: Sequence[str], y_title: str,
                   raw: tuple[np.ndarray, np.ndarray]) -> go.Figure:
    """One row x, the decoder mean at μ(x) (decoded[0]) and at draws z ~ q(z|x) (decoded[1:])."""
    lines = [Profile("x", x, INPUT_COLOR, width=3, raw=raw[0]),
             Profile("x̂ at μ(x)", decoded[0], TEST_COLOR, width=3, raw=raw[1][0])]
    lines += [Profile("x̂ at z ~ q(z|x)", d, ACCENT, "dash", 1.2, legend=i == 0, group="draws", raw=r)
              for i, (d, r) in enumerate(zip(decoded[1:], raw[1][1:]))]
    return profiles(lines, names, y_title)


def value_colors(n: int) -> list[str]:
    """n colours along the sequential scale: a traversal's values, an interpolation's steps."""
    return sample_colorscale(SEQUENTIAL, list(np.linspace(0, 1, n))) if n > 1 else [ACCENT]


def sweep_profiles(decoded: np.ndarray, steps: Sequence[str], names: Sequence[str], y_title: str,
                   raw: np.ndarray, ends: Sequence[Profile] = ()) -> go.Figure:
    """Decodes along a sweep (a traversal's values, an interpolation's steps) coloured in order, raw: (steps, D)
    the same in raw units; ends: lines drawn over them (the two rows interpolated)."""
    lines = [Profile(s, d, c, width=1.8, raw=r) for s, d, c, r in zip(steps, decoded, value_colors(len(decoded)), raw)]
    return profiles([*lines, *ends], names, y_title, height=420)


def error_bars(errors: FeatureErrors, sigma_label: str) -> go.Figure:
    """Each feature's RMSE as a share of its std (raw RMSE on hover), and the decoder's σ on the same scale (its
    legend entry: sigma_label)."""
    data = [go.Bar(x=list(errors.names), y=errors.relative, name="RMSE / std", marker_color=ACCENT,
                   customdata=errors.rmse, hovertemplate="%{x}<br>RMSE %{customdata:.4g} raw<br>%{y:.3f} of its std"
                   "<extra></extra>")]
    if errors.sigma is not None:
        data.append(go.Scatter(x=list(errors.names), y=errors.sigma / errors.std,
                               mode="markers", name=sigma_label, customdata=errors.sigma,
                               marker=dict(symbol="diamond", size=11, color=TEST_COLOR),
                               hovertemplate="%{x}<br>σ %{customdata:.4g} raw<br>%{y:.3f} of its std<extra></extra>"))
    layout = dict(yaxis=dict(title="share of the feature's std", rangemode="tozero"), xaxis=dict(type="category"),
                  legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0), bargap=0.3)
    return _figure(data, layout, None, 340, top=30)


def change_heatmap(change: np.ndarray, dim_labels: Sequence[str], names: Sequence[str]) -> go.Figure:
    """(dims, D) change of each feature (standard units) as each dimension sweeps its range."""
    bound = float(np.nanmax(np.abs(change))) if np.isfinite(change).any() else 1.0
    data = [go.Heatmap(z=change, x=list(names), y=list(dim_labels), colorscale=DIVERGING, zmid=0, zmin=-bound,
                       zmax=bound, texttemplate="%{z:.2f}", textfont=dict(size=SMALL_FONT),
                       colorbar=dict(title=dict(text="change<br>(std)"), thickness=14),
                       hovertemplate="%{y} → %{x}: %{z:.3f} std<extra></extra>")]
    layout = dict(yaxis=dict(autorange="reversed", type="category"), xaxis=dict(type="category", side="top"))
    return _figure(data, layout, None, 60 + 34 * len(dim_labels), top=20)


def rows_heatmap(standard: np.ndarray, raw: np.ndarray, names: Sequence[str]) -> go.Figure:
    """Rows (N, D): colour in standard units (features of any scale on one scale), the raw value written in each."""
    text = [[_short(v) for v in row] for row in raw]
    data = [go.Heatmap(z=standard, x=list(names), y=[f"#{i}" for i in range(len(raw))], colorscale=DIVERGING, zmid=0,
                       text=text, texttemplate="%{text}", textfont=dict(size=SMALL_FONT - 1),
                       colorbar=dict(title=dict(text="std"), thickness=14),
                       hovertemplate="sample %{y}, %{x}<br>raw %{text}<br>%{z:.2f} std<extra></extra>")]
    layout = dict(yaxis=dict(autorange="reversed", type="category"), xaxis=dict(type="category", side="top"))
    return _figure(data, layout, None, 60 + 26 * len(raw), top=20)


SHORT_UNITS = ((1e9, "G"), (1e6, "M"), (1e3, "k"))


def _short(v: float) -> str:
    """Three significant digits, short enough for a cell a twelfth of a projector wide: -30,312 -> "-30.3k"."""
    if not math.isfinite(v):
        return str(v)
    for size, suffix in SHORT_UNITS:
        if abs(v) >= size:
            return f"{v / size:.3g}{suffix}"
    return f"{v:.3g}"


def mu_map_figure(encoded: MuMap, data: VectorDataset) -> LatentMap:
    """The test rows' μ on the map's plane, coloured by the file's label where it has one, and a note saying the axes
    and each dimension's range of μ."""
    labelled = data.labels is not None
    color = data.labels.numpy() if labelled else np.zeros(len(data), dtype=np.int64)
    fig = latent_scatter(encoded.points, color, color_name="label" if labelled else "rows", categorical=True,
                         category_names=data.label_names if labelled else ("test rows",),
                         axis_titles=encoded.plane.axis_names)
    fig.add_traces([click_grid(encoded.points)])
    fig.data = (fig.data[-1], *fig.data[:-1])  # first (latent_map.GRID_CURVE): under the points, as the image map
    fig.update_traces(selector=lambda t: t.name != "click", unselected=dict(marker=dict(opacity=0.75)),
                      selected=dict(marker=dict(opacity=1.0)))  # a click selects a target: the points stay as they are
    fig.update_layout(height=460, dragmode="pan", uirevision="map")  # uirevision: a zoom survives a click
    ranges = " · ".join(f"z{d} {lo:.2f} to {hi:.2f}" for d, (lo, hi) in enumerate(encoded.ranges()))
    return LatentMap(fig, f"Posterior means μ(x) of all {len(data):,} test rows, {_plane_words(encoded)}"
                          + (", coloured by the file's label" if labelled else "; the file has no label column")
                          + f". μ over the test rows, per dimension: {ranges}. The prior N(0, 1) puts 99.7 % of its "
                          "mass within ±3. Click anywhere to decode that point.")


def _plane_words(encoded: MuMap) -> str:
    if encoded.plane.explained is not None:
        return "on their first two principal components"
    if encoded.mu.shape[1] <= 2:
        return "as they are"
    return f"on {' and '.join(encoded.plane.axis_names)}, the two dimensions carrying the most KL (the others at " \
           "their mean)"


def decoded_point(decoded: Profile, nearest: Profile, names: Sequence[str]) -> go.Figure:
    """A point of the map decoded, dashed, over the test row nearest it on the map."""
    return profiles([nearest, decoded], names, "standard units", height=340)
