"""Two to four runs side by side: (runs, the same uint8 test images) -> figures and a table, one colour per run.

A run keeps its colour (its place in the selection) on every figure of the Compare page. Images and errors are
compared in pixel space, where runs with different normalizations meet; nats only where they mean the same.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from pandas.io.formats.style import Styler

from vae_core.model.compatibility import ACTIVATION_RANGE, Verdict, degeneracy
from vae_core.data.base import pixels
from vae_core.model.evaluate import EvalMetrics, PerImage
from vae_core.config import field_value
from vae_core.runs.families import TOGGLE_FIELDS, differences
from vae_core.model.latent import embed, reconstruct
from vae_core.model.likelihoods import likelihood_spec
from vae_core.model.paired import PairedDifference, better_by, paired_difference, unpaired_difference
from vae_core.runs.folders import LoadedRun, run_tag

from . import figures, views

MIN_RUNS, MAX_RUNS = 2, 4
RUN_COLORS: tuple[str, ...] = tuple(figures.CATEGORICAL[:MAX_RUNS])  # run i's colour on every figure
CURVE_KEYS = ("recon_nats", "kl_nats", "elbo_nats")  # metrics.json history columns, in figures.CURVE_TITLES order
BEST_MARK = "\u00a0★"  # a no-break space: the star stays beside its number in a narrow column
BEST_STYLE = "font-weight: bold; background-color: rgba(44, 160, 44, 0.18)"


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


# --------------------------------------------------------------------------- reconstructions


@dataclass(frozen=True)
class CompareReconstructions:
    grid: go.Figure  # the inputs on top, then a row of reconstructions per run
    errors: go.Figure  # a row of squared-error maps per run, on one colour scale
    zmax: float  # the top of that shared scale (pixel units squared)


def _pixel_reconstruction(run: LoadedRun, p: torch.Tensor) -> np.ndarray:
    """Pixels (N, C, H, W) in [0, 1] -> the run's reconstructions from the posterior mean, in pixels."""
    return views._to_pixels(run, reconstruct(run.model, run.normalizer.forward(p)))


def reconstructions(runs: Sequence[LoadedRun], images: torch.Tensor, labels: Sequence[str]) -> CompareReconstructions:
    """The same inputs reconstructed by each run; errors in pixel space, so normalizations compare."""
    p = pixels(images)  # (N, C, H, W)
    outs = np.stack([_pixel_reconstruction(run, p) for run in runs])  # (R, N, C, H, W)
    rows = colored(labels)
    grid = figures.image_grid(np.concatenate([p.numpy()[None], outs]), len(images), row_labels=["input", *rows])
    errors = ((outs - p.numpy()[None]) ** 2).mean(2)  # (R, N, H, W)
    # One heatmap for every run: one trace, so one colour scale, and the worst run sets its top.
    fig = figures.error_heatmap(errors.reshape(-1, *errors.shape[2:]), len(images), row_labels=rows,
                                colorbar_title="squared error (pixels in [0, 1])")
    return CompareReconstructions(grid, fig, float(fig.data[0].zmax))


# --------------------------------------------------------------------------- metrics


Better = Literal["higher", "lower", "neither"]


@dataclass(frozen=True)
class MetricColumn:
    title: str
    better: Better
    value: Callable[[EvalMetrics], float | None]
    text: Callable[[float], str]
    nats: bool = False  # compares only between runs that model the same space (see nats_comparable)
    # A Monte-Carlo estimate: its Monte-Carlo standard error (shown as ±), its values image by image (for the
    # paired difference that decides its best) and its standard error over the images (where images differ).
    mc_se: Callable[[EvalMetrics], float | None] | None = None
    per_image: Callable[[PerImage], torch.Tensor | None] | None = None
    spread_se: Callable[[EvalMetrics], float | None] | None = None

    @property
    def estimated(self) -> bool:
        """Whether its values carry noise, so that a best must beat the others by more than that noise."""
        return self.per_image is not None


def _percent(v: float) -> str:
    return f"{v:.2%}"


ESTIMATED_COLUMNS = 4  # the first COLUMNS, each measured image by image: the first of the page's two tables
COLUMNS: tuple[MetricColumn, ...] = (
    MetricColumn("ELBO (nats)", "higher", lambda m: m.elbo_nats, lambda v: figures.format_number(v, 1), nats=True,
                 mc_se=lambda m: m.elbo_mc_se, per_image=lambda p: p.elbo, spread_se=lambda m: m.elbo_se),
    MetricColumn("IWAE (nats)", "higher", lambda m: m.iwae_nats, lambda v: figures.format_number(v, 1), nats=True,
                 mc_se=lambda m: m.iwae_mc_se, per_image=lambda p: p.iwae, spread_se=lambda m: m.iwae_se),
    MetricColumn("bits/dim", "lower", lambda m: m.bits_per_dim, lambda v: figures.format_number(v, 3),
                 mc_se=lambda m: m.bits_per_dim_mc_se, per_image=lambda p: p.bits, spread_se=lambda m: m.bits_per_dim_se),
    # The mean of each image's PSNR (EvalMetrics.psnr_db), not the PSNR of the pooled MSE.
    MetricColumn("PSNR (dB)", "higher", lambda m: m.psnr_db, lambda v: figures.format_number(v, 2),
                 per_image=lambda p: p.psnr),
    MetricColumn("targets out of reach", "lower", lambda m: m.frac_targets_unreachable, _percent),
    # Fewer saturated outputs is not better in itself (a sigmoid that reaches black saturates there), so no best.
    MetricColumn("outputs saturated", "neither", lambda m: m.frac_outputs_saturated, _percent),
    MetricColumn("active units", "higher", lambda m: m.active_units, lambda v: f"{v:.0f}"),
    # A choice made before training, not an outcome: no value of it is better.
    MetricColumn("equivalent β", "neither", lambda m: m.effective_beta, lambda v: f"{v:.4g}"),
)


def nats_comparable(runs: Sequence[LoadedRun]) -> bool:
    """Whether nats/image mean the same for all runs: one normalization (a density of the same x), and
    either one likelihood or only densities of 8-bit data (a Bernoulli's nats are not log p(x) of grey levels)."""
    scales = {(r.normalizer.kind, r.normalizer.shift, r.normalizer.scale) for r in runs}
    liks = {r.config.loss.likelihood for r in runs}
    return len(scales) == 1 and (len(liks) == 1 or all(likelihood_spec(n).discrete_bits for n in liks))


def best_rows(values: Sequence[float | None], better: Better) -> frozenset[int]:
    """Rows holding the column's best finite value; none when no value is better or all are equal."""
    finite = {i: float(v) for i, v in enumerate(values) if v is not None and math.isfinite(v)}
    if better == "neither" or len(set(finite.values())) < 2:
        return frozenset()
    top = (max if better == "higher" else min)(finite.values())
    return frozenset(i for i, v in finite.items() if v == top)


@dataclass(frozen=True)
class Best:
    rows: frozenset[int]  # the rows marked best
    note: str  # why an estimated column has no best, or ""


def best_estimate(column: MetricColumn, metrics: Sequence[EvalMetrics | None], labels: Sequence[str],
                  same_images: bool) -> Best:
    """The best row of a Monte-Carlo column, only where it beats every other by more than 2 standard errors of
    their difference (paired on the same images); else no best, and the note says which two it cannot tell apart."""
    values = [_value(column, m) for m in metrics]
    leaders = best_rows(values, column.better)
    if len(leaders) != 1:
        return Best(frozenset(), "")
    top = next(iter(leaders))
    for i, m in enumerate(metrics):
        if i == top or values[i] is None or not math.isfinite(values[i]):
            continue
        diff = _difference(column, metrics[top], m, same_images)
        if diff is None or better_by(diff, column.better) <= 0 or not diff.distinguishable:
            return Best(frozenset(), _undecided(column, labels[top], labels[i], diff))
    return Best(leaders, "")


def _difference(column: MetricColumn, a: EvalMetrics, b: EvalMetrics, same_images: bool) -> PairedDifference | None:
    """a - b: paired image by image where both kept their values on the same images, else from each one's SE."""
    if same_images and a.per_image is not None and b.per_image is not None:
        pa, pb = column.per_image(a.per_image), column.per_image(b.per_image)
        if pa is not None and pb is not None and pa.shape == pb.shape and len(pa) >= 2:
            return paired_difference(pa.cpu(), pb.cpu())
    se_a, se_b = (column.spread_se(m) if column.spread_se else None for m in (a, b))
    if se_a is None or se_b is None:
        return None
    return unpaired_difference(column.value(a), se_a, column.value(b), se_b)


def _undecided(column: MetricColumn, top: str, other: str, diff: PairedDifference | None) -> str:
    if diff is None:
        return f"{column.title}: no standard error is known for {top} or {other}, so no best is marked."
    how = f"paired over {diff.n} images" if diff.n else "unpaired: different test images"
    return (f"{column.title}: {top} and {other} are not distinguishable (difference "
            f"{column.text(diff.mean)} ± {column.text(diff.se)}, {how}; within 2 SE), so no best is marked.")


@dataclass(frozen=True)
class MetricsTable:
    rows: tuple[str, ...]  # run labels
    columns: tuple[MetricColumn, ...]
    cells: tuple[tuple[str, ...], ...]  # formatted, row by row; the best marked with BEST_MARK
    best: tuple[frozenset[int], ...]  # per column, the rows holding its best value
    note: str  # why a column has no best mark, or ""

    def frame(self, columns: range | None = None) -> pd.DataFrame:
        """One row per run: its label, then the formatted values (of `columns`, by index; default all)."""
        picked = range(len(self.columns)) if columns is None else columns
        data = {"run": list(self.rows), **{self.columns[j].title: [row[j] for row in self.cells] for j in picked}}
        return pd.DataFrame(data)

    def styled(self, columns: range | None = None) -> Styler:
        """The frame with each run's label in its colour and the best cell of each column highlighted."""
        colors = run_colors(len(self.rows))
        return self.frame(columns).style.apply(self._styles, axis=None, colors=colors)

    def parts(self) -> list[Styler]:
        """Two tables, the estimates and then the rest: side by side in one they overflow a 1024-pixel projector."""
        return [self.styled(range(ESTIMATED_COLUMNS)), self.styled(range(ESTIMATED_COLUMNS, len(self.columns)))]

    def _styles(self, frame: pd.DataFrame, colors: list[str]) -> pd.DataFrame:
        styles = pd.DataFrame("", index=frame.index, columns=frame.columns)
        # a long label ("sigmoid/unit/continuous_bernoulli") may wrap anywhere rather than widen the table
        styles["run"] = [f"color: {c}; font-weight: bold; overflow-wrap: anywhere" for c in colors]
        for column, best in zip(self.columns, self.best):
            for i in best:
                if column.title in styles.columns:
                    styles.loc[i, column.title] = BEST_STYLE
        return styles


def metrics_table(runs: Sequence[LoadedRun], metrics: Sequence[EvalMetrics | None],
                  labels: Sequence[str]) -> MetricsTable:
    """Each run's test metrics (None: not evaluated), the best of each column marked in that column's direction:
    a Monte-Carlo estimate's best only where its paired difference to every other run exceeds 2 SE."""
    comparable, paired = nats_comparable(runs), same_images(runs)
    ranked = [None if _degenerate(run, m) else m for run, m in zip(runs, metrics)]  # its nats win nothing
    bests = tuple(Best(frozenset(), "") if c.nats and not comparable else
                  best_estimate(c, ranked if c.nats else metrics, labels, paired) if c.estimated else
                  Best(best_rows([_value(c, m) for m in metrics], c.better), "") for c in COLUMNS)
    best = tuple(b.rows for b in bests)
    cells = tuple(tuple(_cell(c, m, i in b) for c, b in zip(COLUMNS, best)) for i, m in enumerate(metrics))
    notes = [b.note for b in bests if b.note] + _degenerate_notes(runs, metrics, labels)
    if not comparable:
        notes.insert(0, "ELBO and IWAE are in nats of each run's own normalized data (and a Bernoulli's are not a "
                        "likelihood of grey levels): they do not compare across these runs, so no best is marked. "
                        "Bits/dim does compare.")
    return MetricsTable(tuple(labels), COLUMNS, cells, best, " ".join(notes))


def _degenerate_notes(runs: Sequence[LoadedRun], metrics: Sequence[EvalMetrics | None],
                      labels: Sequence[str]) -> list[str]:
    """A note for each degenerate run (compatibility.degeneracy): its ELBO is no measure of its images."""
    return [f"⚠ {label} is degenerate, so its nats are ranked with no other run's: {v.reason}"
            for run, m, label in zip(runs, metrics, labels) if (v := _degenerate(run, m)) is not None]


def _degenerate(run: LoadedRun, m: EvalMetrics | None) -> Verdict | None:
    return degeneracy(run.config.loss.likelihood, m.frac_pixels_at_edges if m is not None else None)


def _value(column: MetricColumn, m: EvalMetrics | None) -> float | None:
    return None if m is None else column.value(m)


def _cell(column: MetricColumn, m: EvalMetrics | None, best: bool) -> str:
    """The value, ± its Monte-Carlo standard error where it is an estimate; the best marked."""
    value = _value(column, m)
    se = column.mc_se(m) if column.mc_se is not None and m is not None else None
    text = "—" if value is None else column.text(value) if se is None else f"{column.text(value)} ± {column.text(se)}"
    return text + BEST_MARK if best else text


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
    layout = figures._curve_axes()
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
        dims = views.informative_dims(run, n_dims)
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


# --------------------------------------------------------------------------- the selection in a URL


@dataclass(frozen=True)
class Selection:
    names: tuple[str, ...]  # run folder names, in the order asked for
    dropped: tuple[str, ...]  # asked for but unknown, or beyond MAX_RUNS
    notice: str  # one short sentence saying what was dropped and what is shown instead, or ""


def parse_selection(text: str, known: Sequence[str], fallback: Sequence[str]) -> Selection:
    """The runs a URL's comma-separated folder names ask for; unknown or extra ones dropped, with a notice.

    Fewer than MIN_RUNS left over: `fallback` instead (the loaded run's family, or a default).
    """
    asked = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))  # in order, once each
    have = set(known)
    unknown, found = [n for n in asked if n not in have], [n for n in asked if n in have]
    names, extra = found[:MAX_RUNS], found[MAX_RUNS:]
    said = []
    if unknown:
        said.append(f"No run here is named {_names(unknown)}")
    if extra:
        said.append(f"At most {MAX_RUNS} runs compare at once: {_names(extra)} left out")
    if len(names) < MIN_RUNS:
        said.append(f"The link names fewer than {MIN_RUNS} runs this server has: showing the default comparison")
        names = list(fallback)
    return Selection(tuple(names), tuple(unknown + extra), ". ".join(said) + "." if said else "")


def _names(names: Sequence[str], most: int = 3, limit: int = 60) -> str:
    """Names from a URL, quoted and cut short: a notice stays short whatever the link holds."""
    quoted = [f"“{n[:limit]}…”" if len(n) > limit else f"“{n}”" for n in names[:most]]
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(quoted) + more
