"""Each feature's range against the output activation's: the one figure of whether a decoder can reach rows of
numbers (Your data, before training; Diagnostics, after)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from vae_core.model.compatibility import ACTIVATION_RANGE, features_outside

from . import figures

MOST_FEATURES = 40  # bars a projector shows legibly; past it, those farthest outside the output's range
BAR_HEIGHT, FRAME_HEIGHT = 24, 110  # pixels per feature, and for the axis and legend
REACHABLE_FILL = "rgba(44, 160, 44, 0.15)"


def shown_features(lo: Sequence[float], hi: Sequence[float], activation: str | None,
                   most: int = MOST_FEATURES) -> list[int]:
    """Which features the figure draws, in their order: all, or the `most` farthest outside the output's range
    (the widest where the output is unbounded)."""
    if len(lo) <= most:
        return list(range(len(lo)))
    a_lo, a_hi = ACTIVATION_RANGE[activation] if activation else (-math.inf, math.inf)
    excess = [max(a_lo - low, high - a_hi, 0.0) if math.isfinite(a_hi) else high - low for low, high in zip(lo, hi)]
    return sorted(sorted(range(len(lo)), key=lambda d: -excess[d])[:most])


def feature_ranges_figure(names: Sequence[str], lo: Sequence[float], hi: Sequence[float],
                          activation: str | None, *, units: str = "normalized value") -> go.Figure:
    """One bar per feature from its smallest to its largest value, red where it leaves the activation's range
    (shaded; None: no band), first feature on top."""
    keep = shown_features(lo, hi, activation)
    outside = set(features_outside(lo, hi, activation)) if activation else set()
    low, high = np.asarray(lo, float)[keep], np.asarray(hi, float)[keep]
    label = [str(names[d]) for d in keep]
    colors = [figures.TEST_COLOR if d in outside else figures.ACCENT for d in keep]
    bar = go.Bar(y=label, x=high - low, base=low, orientation="h", marker_color=colors, showlegend=False,
                 customdata=np.stack([low, high], 1),
                 hovertemplate="%{y}: %{customdata[0]:.4g} to %{customdata[1]:.4g}<extra></extra>")
    layout = dict(yaxis=dict(autorange="reversed", type="category", title=None),
                  xaxis=dict(title=units, zeroline=True), bargap=0.35,
                  shapes=_band(activation), annotations=_band_label(activation, len(outside), len(names)))
    shown = "" if len(keep) == len(names) else f" ({len(keep)} of {len(names)}, farthest outside first)"
    return figures._figure([bar], layout, None, FRAME_HEIGHT + BAR_HEIGHT * len(keep), top=30) \
        .update_layout(title=dict(text=f"Feature ranges{shown}", x=0.01, xanchor="left"))


def _band(activation: str | None) -> list[dict]:
    a_lo, a_hi = ACTIVATION_RANGE[activation] if activation else (-math.inf, math.inf)
    if not math.isfinite(a_lo):
        return []
    return [dict(type="rect", xref="x", yref="paper", x0=a_lo, x1=a_hi, y0=0, y1=1, fillcolor=REACHABLE_FILL,
                 line=dict(width=0), layer="below")]


def _band_label(activation: str | None, outside: int, total: int) -> list[dict]:
    if not activation:
        return []
    a_lo, a_hi = ACTIVATION_RANGE[activation]
    reach = f"({a_lo:g}, {a_hi:g})" if math.isfinite(a_lo) else "any value"
    text = f"shaded: what a {activation} output reaches, {reach}; red: {outside} of {total} features leave it"
    return [dict(text=text, xref="paper", yref="paper", x=0, y=1, yanchor="bottom", showarrow=False,
                 font=dict(size=figures.TICK_FONT_SIZE))]


def activation_words(activation: str) -> str:
    """'(0, 1)', '(−∞, ∞)': what an output activation produces, as a count line says it."""
    a_lo, a_hi = ACTIVATION_RANGE[activation]
    return f"({a_lo:g}, {a_hi:g})" if math.isfinite(a_lo) else "(−∞, ∞)"
