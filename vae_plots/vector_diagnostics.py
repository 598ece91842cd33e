"""Diagnostics of a VAE on vectors: which test rows a run meets (runs on the same rows pair), and each latent
dimension's posterior means and standard deviations, from the smallest to the largest over the test rows (a mean far
outside the prior's reach is what "μ in [−9, 8]" looks like)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vae_core.config import DataConfig, images_only

from . import figures

PRIOR_BAND = 2.0  # the μ panel shades ±2, where 95% of the prior N(0, 1) lies
PRIOR_FILL = "rgba(44, 160, 44, 0.15)"
ROW_HEIGHT, FRAME_HEIGHT = 30, 130  # pixels per latent dimension, and for the titles and axes


def vectors_key(data: DataConfig) -> DataConfig:
    """What decides a run's test rows (its vectors, test share and seed; not the normalization, which the
    log-Jacobian undoes): runs with one key meet the same rows, so their per-row values pair."""
    return images_only(data)


def vectors_words(data: DataConfig) -> str:
    """“the bundled vectors” or “rows.csv”, with the split that makes its test rows."""
    source = f"“{str(data.vectors).rsplit('/', 1)[-1]}”" if data.vectors else "the bundled vectors"
    return f"{source} (test share {data.test_share:g}, seed {data.seed})"


def _range_bars(lo: Sequence[float], hi: Sequence[float], names: list[str], color: str, unit: str) -> go.Bar:
    low, high = np.asarray(lo, float), np.asarray(hi, float)
    return go.Bar(y=names, x=high - low, base=low, orientation="h", marker_color=color, showlegend=False,
                  customdata=np.stack([low, high], 1),
                  hovertemplate=f"%{{y}}: {unit} from %{{customdata[0]:.4g}} to %{{customdata[1]:.4g}}<extra></extra>")


def posterior_ranges_figure(mu_min: Sequence[float], mu_max: Sequence[float], sigma_min: Sequence[float],
                            sigma_max: Sequence[float], active: Sequence[bool]) -> go.Figure:
    """Two panels, a bar per latent dimension from its smallest to its largest value over the test rows: the
    posterior mean μ (the prior's ±PRIOR_BAND shaded) and the posterior σ (the prior's σ = 1 dashed); bars of
    active units in the accent colour, the others muted."""
    names = [f"z{i}" for i in range(len(mu_min))]
    colors = [figures.ACCENT if a else figures.MUTED for a in active]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=("posterior μ", "posterior σ"))
    fig.add_trace(_range_bars(mu_min, mu_max, names, colors, "μ"), row=1, col=1)
    fig.add_trace(_range_bars(sigma_min, sigma_max, names, colors, "σ"), row=1, col=2)
    fig.add_vrect(x0=-PRIOR_BAND, x1=PRIOR_BAND, fillcolor=PRIOR_FILL, line_width=0, layer="below", row=1, col=1)
    fig.add_vline(x=1.0, line=dict(dash="dash", color="#555", width=1.5), row=1, col=2)
    fig.update_yaxes(autorange="reversed", type="category", row=1, col=1)
    fig.update_xaxes(title_text=f"shaded: the prior's ±{PRIOR_BAND:g}", row=1, col=1)
    fig.update_xaxes(title_text="dashed: the prior's σ = 1", rangemode="tozero", row=1, col=2)
    fig.update_layout(font=dict(size=figures.FONT_SIZE), bargap=0.35, height=FRAME_HEIGHT + ROW_HEIGHT * len(names),
                      margin=dict(l=10, r=10, t=40, b=10))
    figures._apply_template(fig)
    return fig
