"""Plotly builders for the diagnostics: output range histograms and per-dimension posterior bars."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from .figures import ACCENT, MUTED, TEST_COLOR, _figure

BOUND_FILL = "rgba(44, 160, 44, 0.12)"


def range_histogram(targets: np.ndarray, outputs: np.ndarray, bounds: tuple[float, float], *,
                    activation: str, frac_unreachable: float, frac_saturated: float, bins: int = 80) -> go.Figure:
    """Histograms of normalized targets and decoder outputs, with the activation's range shaded."""
    targets, outputs = np.asarray(targets).ravel(), np.asarray(outputs).ravel()
    lo_all = float(min(targets.min(), outputs.min()))
    hi_all = float(max(targets.max(), outputs.max()))
    edges = np.linspace(lo_all, hi_all + 1e-9, bins + 1)
    centres, width = (edges[:-1] + edges[1:]) / 2, edges[1] - edges[0]
    data = []
    for values, name, color in ((targets, f"targets ({frac_unreachable:.1%} out of reach)", MUTED),
                                (outputs, f"outputs ({frac_saturated:.1%} saturated)", ACCENT)):
        share = np.histogram(values, edges)[0] / max(len(values), 1)
        data.append(go.Bar(x=centres, y=share, width=width, name=name, marker_color=color, opacity=0.75,
                           hovertemplate="%{x:.3g}: %{y:.2%}<extra></extra>"))
    shapes = []
    lo, hi = bounds
    if not (math.isinf(lo) and math.isinf(hi)):
        x0, x1 = max(lo, lo_all - width), min(hi, hi_all + width)
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=1, fillcolor=BOUND_FILL,
                           line=dict(width=0), layer="below"))
        for b in bounds:
            if lo_all - width <= b <= hi_all + width:
                shapes.append(dict(type="line", xref="x", yref="paper", x0=b, x1=b, y0=0, y1=1,
                                   line=dict(color=TEST_COLOR, dash="dash", width=2)))
    layout = dict(barmode="overlay", shapes=shapes, bargap=0,
                  xaxis=dict(title=f"normalized value (shaded: what a {activation} output can reach)"),
                  yaxis=dict(title="share of values", tickformat=".0%", rangemode="tozero"),
                  legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"))
    return _figure(data, layout, None, 360, top=30)


def per_dim_bars(values: Sequence[float], *, axis_title: str, reference: float | None = None,
                 reference_name: str = "", highlight: Sequence[bool] | None = None) -> go.Figure:
    """One bar per latent dimension z0..z{L-1}; an optional dashed reference line (e.g. the prior's sigma 1)."""
    v = np.asarray(values, dtype=np.float64)
    names = [f"z{i}" for i in range(v.size)]
    colors = [ACCENT if h else MUTED for h in highlight] if highlight is not None else ACCENT
    data = [go.Bar(x=names, y=v, marker_color=colors, showlegend=False,
                   hovertemplate="%{x}: %{y:.4g}<extra></extra>")]
    shapes, annotations = [], []
    if reference is not None:
        shapes.append(dict(type="line", xref="paper", x0=0, x1=1, y0=reference, y1=reference,
                           line=dict(dash="dash", color="#555", width=1.5)))
        annotations.append(dict(xref="paper", x=1, y=reference, yanchor="bottom", xanchor="right",
                                text=reference_name, showarrow=False, font=dict(color="#555")))
    layout = dict(xaxis=dict(title="latent dimension"), yaxis=dict(title=axis_title, rangemode="tozero"),
                  shapes=shapes, annotations=annotations)
    return _figure(data, layout, None, 320)
