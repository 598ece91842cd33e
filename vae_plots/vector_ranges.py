"""Each feature's range of a file of vectors against the range an output activation can produce."""
from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go

from vae_core.model.compatibility import ACTIVATION_RANGE

from . import figures

INSIDE, OUTSIDE = "#5b7fb5", figures.TEST_COLOR  # a feature the activation reaches, and one it cannot
BAND = "#3a9d5d"
ROW_PX, FRAME_PX = 26, 110  # one bar's height, and the title and axis around the bars


def activation_words(activation: str) -> str:
    """'(0, 1)', '(−∞, ∞)': the range an output activation produces."""
    lo, hi = ACTIVATION_RANGE[activation]
    return "(−∞, ∞)" if not math.isfinite(lo) else f"({lo:g}, {hi:g})"


def leaves(lo: Sequence[float], hi: Sequence[float], activation: str) -> list[bool]:
    """Per feature: whether its values [lo, hi] leave what the activation produces (evaluate_vectors' rule)."""
    a_lo, a_hi = ACTIVATION_RANGE[activation]
    return [low < a_lo or high > a_hi for low, high in zip(lo, hi)]


def feature_ranges_figure(names: Sequence[str], lo: Sequence[float], hi: Sequence[float],
                          activation: str | None) -> go.Figure:
    """One horizontal bar per feature from its (normalized) min to max; the activation's range shaded, and the
    features that leave it in red (activation None: the bars alone)."""
    out = leaves(lo, hi, activation) if activation else [False] * len(names)
    bars = go.Bar(y=list(names), x=[h - l for l, h in zip(lo, hi)], base=list(lo), orientation="h",
                  marker_color=[OUTSIDE if o else INSIDE for o in out], customdata=list(zip(lo, hi)),
                  hovertemplate="%{y}: [%{customdata[0]:.3g}, %{customdata[1]:.3g}]<extra></extra>")
    title = "Each feature's range" + (f" against {activation} {activation_words(activation)}: "
                                      f"{sum(out)} of {len(names)} leave it" if activation else "")
    fig = figures._figure([bars], dict(showlegend=False, xaxis_title="value (normalized)",
                                       yaxis=dict(autorange="reversed", type="category")),
                          title, FRAME_PX + ROW_PX * len(names))
    if activation and math.isfinite(ACTIVATION_RANGE[activation][0]):
        a_lo, a_hi = ACTIVATION_RANGE[activation]
        fig.add_vrect(x0=a_lo, x1=a_hi, fillcolor=BAND, opacity=0.18, line_width=0, layer="below")
    return fig
