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
REACHABLE_FILL, REACHABLE_EDGE = "rgba(44, 160, 44, 0.15)", "rgb(44, 160, 44)"


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
    """One bar per feature from its smallest to its largest value, first feature on top: blue where the
    activation reaches (shaded; None: no band), red beyond it."""
    keep = shown_features(lo, hi, activation)
    low, high = np.asarray(lo, float)[keep], np.asarray(hi, float)[keep]
    a_lo, a_hi = ACTIVATION_RANGE[activation] if activation else (-math.inf, math.inf)
    label = [str(names[d]) for d in keep]
    parts = (("reached", np.maximum(low, a_lo), np.minimum(high, a_hi), figures.ACCENT),
             ("below its range", low, np.minimum(high, a_lo), figures.TEST_COLOR),
             ("above its range", np.maximum(low, a_hi), high, figures.TEST_COLOR))
    bars = [_segment(label, start, stop, color, what, low, high) for what, start, stop, color in parts]
    outside = len(features_outside(lo, hi, activation)) if activation else 0
    shown = "" if len(keep) == len(names) else f"{len(keep)} of {len(names)} features, farthest outside first; "
    layout = dict(yaxis=dict(autorange="reversed", type="category", title=None),
                  xaxis=dict(title=units, zeroline=True), bargap=0.35, barmode="overlay",
                  shapes=_band(activation), annotations=_band_label(activation, outside, len(names), shown))
    return figures._figure(bars, layout, None, FRAME_HEIGHT + BAR_HEIGHT * len(keep), top=30)


def _segment(label: list[str], start: np.ndarray, stop: np.ndarray, color: str, what: str, low: np.ndarray,
             high: np.ndarray) -> go.Bar:
    """The part of each bar from start to stop (none where stop <= start), hovering the whole range."""
    width = np.where(np.isfinite(start) & np.isfinite(stop), np.clip(stop - start, 0, None), 0.0)
    return go.Bar(y=label, x=width, base=np.where(width > 0, start, 0.0), orientation="h", marker_color=color,
                  name=what, showlegend=False, customdata=np.stack([low, high], 1),
                  hovertemplate=f"%{{y}}: %{{customdata[0]:.4g}} to %{{customdata[1]:.4g}} ({what})<extra></extra>")


def _band(activation: str | None) -> list[dict]:
    a_lo, a_hi = ACTIVATION_RANGE[activation] if activation else (-math.inf, math.inf)
    if not math.isfinite(a_lo):
        return []
    return [dict(type="rect", xref="x", yref="paper", x0=a_lo, x1=a_hi, y0=0, y1=1, fillcolor=REACHABLE_FILL,
                 line=dict(width=1.5, color=REACHABLE_EDGE, dash="dash"), layer="below")]


def _band_label(activation: str | None, outside: int, total: int, shown: str) -> list[dict]:
    if not activation:
        return [dict(text=shown, xref="paper", yref="paper", x=0, y=1, yanchor="bottom", showarrow=False)] \
            if shown else []
    a_lo, a_hi = ACTIVATION_RANGE[activation]
    reach = f"({a_lo:g}, {a_hi:g})" if math.isfinite(a_lo) else "any value"
    text = f"{shown}shaded: what a {activation} output reaches, {reach}; red: past it ({outside} of {total} features)"
    return [dict(text=text, xref="paper", yref="paper", x=0, y=1, yanchor="bottom", showarrow=False,
                 font=dict(size=figures.TICK_FONT_SIZE))]


def activation_words(activation: str) -> str:
    """'(0, 1)', '(−∞, ∞)': what an output activation produces, as a count line says it."""
    a_lo, a_hi = ACTIVATION_RANGE[activation]
    return f"({a_lo:g}, {a_hi:g})" if math.isfinite(a_lo) else "(−∞, ∞)"
