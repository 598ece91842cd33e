"""Two to four runs on the same vectors side by side: their estimates paired row by row over the same test rows
(vae_core.model.paired), each run's reconstruction profiles of a few rows, and each feature's error.

Rows are drawn in the test rows' own standard units ((value − mean) / std of each feature over the test rows),
the same for every run whatever its normalization: raw features can differ by orders of magnitude."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from vae_core.model.evaluate_vectors import VectorEvalMetrics
from vae_core.model.paired import DISTINGUISHABLE_SE, PairedDifference, paired_difference
from vae_core.runs.folders import LoadedRun

from . import figures
from .board import NOT_SETTLED
from .compare_views import run_colors

PROFILE_HEIGHT, LEGEND_HEIGHT = 190, 90  # pixels per row's profile, and above them for a legend of up to 5 entries
SE_WORDS = f"{DISTINGUISHABLE_SE:g} standard errors of their paired difference over the same test rows"


@torch.no_grad()
def reconstruct(run: LoadedRun, raw: torch.Tensor) -> torch.Tensor:
    """Raw rows (N, D) -> the run's reconstructions from the posterior mean, in raw units (N, D)."""
    mu, _ = run.model.eval().encode(run.normalizer.forward(raw))
    return run.normalizer.inverse(run.model.decode(mu))


@dataclass(frozen=True)
class Versus:
    """One run's estimate against the best run's, paired over the same test rows; None for the best itself."""
    elbo: PairedDifference | None
    iwae: PairedDifference | None


def best_index(metrics: Sequence[VectorEvalMetrics]) -> int:
    """The run with the highest ELBO per raw row."""
    return max(range(len(metrics)), key=lambda i: metrics[i].elbo_nats)


def versus_best(metrics: Sequence[VectorEvalMetrics]) -> list[Versus]:
    """Each run minus the best, ELBO and IWAE, row by row (negative: worse than the best)."""
    best = metrics[best_index(metrics)]
    return [Versus(None, None) if m is best else Versus(_pair(m, best, "elbo"), _pair(m, best, "iwae"))
            for m in metrics]


def _pair(m: VectorEvalMetrics, best: VectorEvalMetrics, which: str) -> PairedDifference | None:
    a, b = (getattr(x.per_row, which) if x.per_row is not None else None for x in (m, best))
    return paired_difference(a.cpu(), b.cpu()) if a is not None and b is not None else None


def difference_text(d: PairedDifference | None, is_best: bool) -> str:
    """"best", "−0.412 ± 0.031" or "−0.012 ± 0.031, not settled" (within DISTINGUISHABLE_SE of the best)."""
    if d is None:
        return "best" if is_best else "—"
    return d.text(3) + ("" if d.distinguishable else f", {NOT_SETTLED}")


def metrics_frames(metrics: Sequence[VectorEvalMetrics], labels: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two tables (each fits a 1024-pixel projector): the bounds with their paired differences to the best, then
    the terms, the log-Jacobian and what the posterior and the output do."""
    vs, best = versus_best(metrics), best_index(metrics)
    k = metrics[0].iwae_k
    bounds = pd.DataFrame({
        "run": list(labels),
        "ELBO": [f"{m.elbo_nats:.3f} ± {m.elbo_mc_se or 0:.3f}" for m in metrics],
        "ELBO vs best (paired)": [difference_text(v.elbo, i == best) for i, v in enumerate(vs)],
        f"IWAE, k = {k}": [f"{m.iwae_nats:.3f} ± {m.iwae_mc_se or 0:.3f}" if m.iwae_nats is not None else "—"
                           for m in metrics],
        "IWAE vs best (paired)": [difference_text(v.iwae, i == best) for i, v in enumerate(vs)],
    })
    terms = pd.DataFrame({
        "run": list(labels),
        "−log p(row|z)": [f"{m.recon_nats:.3f}" for m in metrics],
        "KL": [f"{m.kl_nats:.3f}" for m in metrics],
        "log-Jacobian": [f"{m.log_jacobian_nats:.3f}" for m in metrics],
        "active units": [f"{m.active_units} / {len(m.kl_per_dim)}" for m in metrics],
        "out of reach": [f"{m.frac_targets_unreachable:.1%}" for m in metrics],
    })
    return bounds, terms


def verdict_words(metrics: Sequence[VectorEvalMetrics], labels: Sequence[str]) -> str:
    """Which run's ELBO is best and whether every other run is beyond 2 standard errors of it, in one sentence."""
    vs, best = versus_best(metrics), best_index(metrics)
    close = [labels[i] for i, v in enumerate(vs) if v.elbo is not None and not v.elbo.distinguishable]
    head = f"Highest ELBO: {labels[best]}"
    if not close:
        return f"{head}, beyond {SE_WORDS} from every other run: settled."
    return f"{head}, but {NOT_SETTLED} against {', '.join(close)}: within {SE_WORDS}."


def _standard(raw: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> np.ndarray:
    return ((raw.double() - mean) / std).numpy()


def profiles_figure(inputs: torch.Tensor, recons: Sequence[torch.Tensor], names: Sequence[str], labels: Sequence[str],
                    row_numbers: Sequence[int], mean: torch.Tensor, std: torch.Tensor) -> go.Figure:
    """A panel per test row: its features (black) and each run's reconstruction of them (its colour), in the test
    rows' standard units."""
    fig = make_subplots(rows=len(inputs), cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=[f"test row {r}" for r in row_numbers])
    x = [str(n) for n in names]
    for i in range(len(inputs)):
        fig.add_trace(go.Scatter(x=x, y=_standard(inputs[i], mean, std), name="input", legendgroup="input",
                                 showlegend=i == 0, mode="lines+markers", line=dict(color="black", width=3)),
                      row=i + 1, col=1)
        for recon, label, color in zip(recons, labels, run_colors(len(labels))):
            fig.add_trace(go.Scatter(x=x, y=_standard(recon[i], mean, std), name=label, legendgroup=label,
                                     showlegend=i == 0, mode="lines+markers", line=dict(color=color, width=2)),
                          row=i + 1, col=1)
    fig.update_yaxes(title_text="std units")
    fig.update_layout(font=dict(size=figures.FONT_SIZE), height=LEGEND_HEIGHT + PROFILE_HEIGHT * len(inputs),
                      margin=dict(l=10, r=10, t=LEGEND_HEIGHT, b=10),
                      legend=dict(orientation="h", yref="container", y=1, yanchor="top", x=0, xanchor="left"))
    fig.update_annotations(font_size=figures.TICK_FONT_SIZE, yshift=-4)
    figures._apply_template(fig)
    return fig


def feature_rmse_figure(metrics: Sequence[VectorEvalMetrics], labels: Sequence[str], std: torch.Tensor) -> go.Figure:
    """Each feature's RMSE of each run's reconstructions (from the posterior mean), in the feature's test std (the
    hover gives raw units): 1 is no better than the feature's mean."""
    names = [str(n) for n in metrics[0].feature_names]
    s = std.numpy()
    data = [go.Bar(x=names, y=np.asarray(m.feature_rmse) / s, name=label, marker_color=color,
                   customdata=np.asarray(m.feature_rmse),
                   hovertemplate="%{x}: %{y:.3g} std (%{customdata:.4g} raw)<extra>" + label + "</extra>")
            for m, label, color in zip(metrics, labels, run_colors(len(labels)))]
    top = max([1.0, *(float(np.max(np.asarray(m.feature_rmse) / s)) for m in metrics)]) * 1.1  # the dashed 1 shows
    layout = dict(barmode="group", yaxis=dict(title="RMSE / test std", range=[0, top]),
                  legend=dict(orientation="h", x=0, y=1.02, yanchor="bottom"),
                  shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=1, y1=1,
                               line=dict(dash="dash", color="#555", width=1.5))])
    return figures._figure(data, layout, None, 360, top=30)
