"""The Compare page's table of test metrics: one row per run, each column's best marked in its direction, a
Monte-Carlo estimate's best only where it beats every other run by more than its noise."""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import torch
from pandas.io.formats.style import Styler

from vae_core.model.compatibility import Verdict, degeneracy
from vae_core.model.evaluate import EvalMetrics, PerImage
from vae_core.model.paired import PairedDifference, better_by, paired_difference, unpaired_difference
from vae_core.runs.folders import LoadedRun

from . import figures
from .compare_views import nats_comparable, run_colors, same_images

BEST_MARK = "\u00a0★"  # a no-break space: the star stays beside its number in a narrow column
BEST_STYLE = "font-weight: bold; background-color: rgba(44, 160, 44, 0.18)"


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


def metrics_csv(runs: Sequence[LoadedRun], metrics: Sequence[EvalMetrics | None], labels: Sequence[str]) -> str:
    """The table as CSV with every number whole: a row a run (its label and folder), a column a metric, and beside
    each Monte-Carlo estimate its Monte-Carlo standard error; empty where a run has no value."""
    header = ["run", "folder"] + [t for c in COLUMNS for t in (c.title, f"{c.title} MC SE")[:1 + bool(c.mc_se)]]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for run, m, label in zip(runs, metrics, labels):
        cells = [(_value(c, m), *((c.mc_se(m) if m is not None else None,) if c.mc_se else ())) for c in COLUMNS]
        writer.writerow([label, run.path.name, *("" if v is None else repr(float(v)) for cs in cells for v in cs)])
    return out.getvalue()


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
