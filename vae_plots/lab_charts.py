"""Each lab's own chart, drawn from the measurements its conclusion reads (vae_core.labs); None where a lab
has none or its variants are missing."""
from __future__ import annotations

from collections.abc import Callable

import plotly.graph_objects as go

from vae_core.labs import grey_sigmoid, not_unit, not_unit_vectors, zscore_tanh
from vae_core.labs.vector_findings import PRIOR_REACH
from vae_core.labs.run import LabOutcome

from .figures import CATEGORICAL, _figure

CHART_HEIGHT = 380


def scale_chart(outcome: LabOutcome) -> go.Figure | None:
    """zscore-tanh: the same posterior's KL and the same reconstruction's squared-error term at each scale,
    beside the KL the models settled at when trained at that scale (log axis: they span decades)."""
    m = outcome.measured
    probe = m.get(zscore_tanh.PROBED)
    trained = [m.get(f"fixed_x{c:g}") for c in zscore_tanh.SCALES]
    if probe is None or "probe_kl" not in probe.extras or None in trained:
        return None
    x = [f"data ×{c:g}" for c in zscore_tanh.SCALES]
    bars = [go.Bar(name="KL of the same posterior", x=x, y=[probe.extras["probe_kl"]] * len(x),
                   marker_color=CATEGORICAL[0]),
            go.Bar(name="c²·SSE / (2σ²) of the same reconstruction", x=x,
                   y=[probe.extras[f"probe_sse_x{c:g}"] for c in zscore_tanh.SCALES], marker_color=CATEGORICAL[1]),
            go.Bar(name="KL after training at this scale", x=x, y=[t.metrics.kl_nats for t in trained],
                   marker_color=CATEGORICAL[2])]
    return _figure(bars, dict(barmode="group", yaxis=dict(type="log", title="nats per image"),
                              legend=dict(orientation="h", y=-0.15)),
                   "The KL does not see the data's scale; the reconstruction term does", CHART_HEIGHT)


def sigma_chart(outcome: LabOutcome) -> go.Figure | None:
    """not-unit: the sigma each variant trained with (or amounted to), against the one the data asked for."""
    m = outcome.measured
    if "optimal" not in m:
        return None
    labels = [v.label for v in outcome.variants if v.key in m]
    sigmas = [m[v.key].extras["sigma"] for v in outcome.variants if v.key in m]
    fig = _figure([go.Bar(x=labels, y=sigmas, marker_color=CATEGORICAL[0], name="σ in effect")],
                  dict(yaxis=dict(title="σ (z-scored units)"), showlegend=False),
                  "σ of each loss, against the σ the data asked for (dashed: σ* = RMSE)", CHART_HEIGHT)
    fig.add_hline(y=not_unit.asked_sigma(m), line_dash="dash", line_color=CATEGORICAL[3])
    return fig


def background_chart(outcome: LabOutcome) -> go.Figure | None:
    """grey-sigmoid: how grey each variant leaves the black background, in grey levels (0 = black)."""
    m = outcome.measured
    shown = [v for v in outcome.variants if v.key in m and grey_sigmoid.BACKGROUND in m[v.key].extras]
    if not shown:
        return None
    levels = [m[v.key].extras[grey_sigmoid.BACKGROUND] for v in shown]
    return _figure([go.Bar(x=[v.label for v in shown], y=levels, marker_color=CATEGORICAL[0])],
                   dict(yaxis=dict(title="grey level (0 = black)", rangemode="tozero"), showlegend=False),
                   "The reconstructed background, where the input is black", CHART_HEIGHT)


def mu_range_chart(outcome: LabOutcome) -> go.Figure | None:
    """not-unit-vectors: how far each variant's posterior means go (smallest to largest over the test rows and the
    code), against the prior's ±PRIOR_REACH (shaded): the asker's symptom, and its cause, the σ in effect."""
    m = outcome.measured
    shown = [v for v in outcome.variants if v.key in m and "mu_min" in m[v.key].extras]
    if not shown:
        return None
    labels = [f"{v.label} (σ {m[v.key].extras['sigma']:.2g})" for v in shown]
    low = [m[v.key].extras["mu_min"] for v in shown]
    width = [m[v.key].extras["mu_max"] - lo for v, lo in zip(shown, low)]
    fig = _figure([go.Bar(y=labels, x=width, base=low, orientation="h", marker_color=CATEGORICAL[0],
                          hovertemplate="μ from %{base:.3g} to %{x:.3g} wide<extra></extra>")],
                  dict(xaxis=dict(title="posterior mean μ (over the test rows and the code)"), showlegend=False,
                       yaxis=dict(autorange="reversed")),
                  f"How far the codes go; shaded: the prior's ±{PRIOR_REACH:g}", CHART_HEIGHT)
    fig.add_vrect(x0=-PRIOR_REACH, x1=PRIOR_REACH, fillcolor=CATEGORICAL[2], opacity=0.15, line_width=0)
    return fig


CHARTS: dict[str, Callable[[LabOutcome], go.Figure | None]] = {
    zscore_tanh.LAB.id: scale_chart, not_unit.LAB.id: sigma_chart, grey_sigmoid.LAB.id: background_chart,
    not_unit_vectors.LAB.id: mu_range_chart}


def lab_chart(outcome: LabOutcome) -> go.Figure | None:
    chart = CHARTS.get(outcome.lab.id)
    return chart(outcome) if chart else None
