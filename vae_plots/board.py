"""The class board's views: the class's runs, each with the name its owner shows and what made it (a lab, a
sweep), filtered; grouped by the test images (or test rows) they are measured on; ranked by bits/dim (runs on
vectors, which have no bits: by the ELBO in nats per raw row), each with its paired difference to the best over
those same images or rows; and the rows of a gallery. Owners' secrets never reach here."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
import torch

from vae_core.config import DataConfig, DataKind, images_only
from vae_core.model.evaluate import EvalMetrics
from vae_core.model.evaluate_vectors import VectorEvalMetrics
from vae_core.model.paired import DISTINGUISHABLE_SE, Better, PairedDifference, paired_difference
from vae_core.runs.folders import run_tag
from vae_core.runs.listing import RunInfo

from .vector_diagnostics import vectors_words
from .views import dataset_words

BOARD_IMAGES = 200  # test images every run of a group is measured on: the same images, so their values pair
RANKED_STATUSES = ("finished", "stopped")  # what they learned is saved: a Stop keeps it
MIN_STEPS = 1  # a run saved before its first optimizer step has learned nothing to rank
ALL = "all"  # a filter's value that lets every run through
NOT_SETTLED = "not settled"
NO_BITS = "no bits/dim: see below"  # a Bernoulli's; the run's evaluation says why, under the table
Facet = Literal["dataset", "lab", "sweep", "who"]
FACETS: tuple[Facet, ...] = ("dataset", "lab", "sweep", "who")


@dataclass(frozen=True)
class BoardRun:
    """A run as the board shows it: `who` is its owner's display name, never the owner's secret."""
    info: RunInfo
    who: str
    yours: bool  # trained in the browser looking at the board
    lab: str | None  # the lab whose family it belongs to ("zscore-tanh")
    sweep: str | None  # the sweep (or lab family) it is a variant of: the sweep's id

    @property
    def dataset(self) -> str:
        return self.info.dataset or "unreadable"

    @property
    def label(self) -> str:
        """"tanh/zscore/gaussian #ab12": what it is, then the folder's random part (no two runs read the same); an
        unreadable run's folder name, which is all that is known of it."""
        i = self.info
        if i.config is None:
            return f"folder {i.name}"
        return f"{i.output_activation}/{i.normalization}/{i.likelihood} #{run_tag(i.name)}"

    def facet(self, facet: Facet) -> str | None:
        return {"dataset": self.dataset, "lab": self.lab, "sweep": self.sweep, "who": self.who}[facet]


@dataclass(frozen=True)
class Filters:
    dataset: str = ALL
    lab: str = ALL
    sweep: str = ALL
    who: str = ALL

    def keeps(self, run: BoardRun) -> bool:
        return all(getattr(self, f) in (ALL, run.facet(f)) for f in FACETS)


def facet_options(runs: Iterable[BoardRun], facet: Facet) -> list[str]:
    """ALL, then each value the runs have for this facet, sorted."""
    return [ALL, *sorted({v for r in runs if (v := r.facet(facet)) is not None})]


def board_data(data: DataConfig) -> DataConfig:
    """The test images the board measures a run of this data on: BOARD_IMAGES of its test split, chosen with the
    default seed, so every run of one dataset and image size meets the same images, whatever seed it trained on.
    Vectors: every test row (a few thousand at most, a few ms a run), whose split the data seed makes."""
    if data.kind == "vectors":
        return images_only(dataclasses.replace(data, n_test=None, download=False))
    return images_only(dataclasses.replace(data, n_test=BOARD_IMAGES, seed=DataConfig().seed, download=False))


Metrics = EvalMetrics | VectorEvalMetrics


@dataclass(frozen=True)
class Score:
    """What a group is ranked by: its column, which way is better, and each run's value, Monte-Carlo SE and
    values item by item (the paired difference's)."""
    column: str
    better: Better
    value: Callable[[Metrics], float | None]
    mc_se: Callable[[Metrics], float | None]
    per_item: Callable[[Metrics], torch.Tensor | None]
    items: str  # what the values pair over: "test images", "test rows"

    def sort_key(self, m: Metrics) -> float:
        """Best first."""
        value = self.value(m)
        return value if self.better == "lower" else -value


SCORES: dict[DataKind, Score] = {
    "images": Score("bits/dim", "lower", lambda m: m.bits_per_dim, lambda m: m.bits_per_dim_mc_se,
                    lambda m: m.per_image.bits if m.per_image is not None else None, "test images"),
    # nats per raw row: the normalization's log-Jacobian included, so runs of any normalization rank together
    "vectors": Score("ELBO, nats/row", "higher", lambda m: m.elbo_nats, lambda m: m.elbo_mc_se,
                     lambda m: m.per_row.elbo if m.per_row is not None else None, "test rows"),
}


@dataclass(frozen=True)
class Group:
    data: DataConfig | None  # the test images (board_data); None for runs whose config cannot be read
    runs: tuple[BoardRun, ...]

    @property
    def score(self) -> Score:
        return SCORES["images" if self.data is None else self.data.kind]

    @property
    def title(self) -> str:
        if self.data is None:
            return "Unreadable runs"
        if self.data.kind == "vectors":
            return f"Vectors: {vectors_words(self.data)}"
        size = "" if self.data.dataset in ("mnist", "fashion_mnist", "cifar10") else f", {self.data.image_size} px"
        return f"{dataset_words(self.data.dataset).capitalize()}{size}"


def groups(runs: Sequence[BoardRun]) -> list[Group]:
    """The runs by the test images they are measured on (runs on different images cannot be paired), in the order
    of their newest run; unreadable runs last."""
    keyed: dict[DataConfig | None, list[BoardRun]] = {}
    for run in runs:
        keyed.setdefault(board_data(run.info.config.data) if run.info.config else None, []).append(run)
    return sorted((Group(data, tuple(members)) for data, members in keyed.items()), key=lambda g: g.data is None)


@dataclass(frozen=True)
class Measured:
    """A run measured on its group's test images, or why it was not."""
    metrics: Metrics | None
    error: str = ""


@dataclass(frozen=True)
class Standing:
    run: BoardRun
    rank: int | None  # 1 for the best score; None: listed, not ranked
    value: float | None  # the group's score (bits/dim, or nats per raw row)
    mc_se: float | None  # its Monte-Carlo standard error
    vs_best: PairedDifference | None  # value - the best's, paired over the same images or rows; None for the best
    why_unranked: str = ""

    @property
    def settled(self) -> bool:
        return self.vs_best is None or self.vs_best.distinguishable


def rankable(info: RunInfo) -> str:
    """Why the board does not rank this run, or "" when it does."""
    if info.status == "running":
        return "still training: ranked when it ends"
    if info.status not in RANKED_STATUSES:
        return f"{info.status}: not ranked"
    if (info.steps or 0) < MIN_STEPS:
        return "too short to evaluate: saved before its first training step"
    return ""


def leaderboard(runs: Sequence[BoardRun], measured: dict[str, Measured], score: Score = SCORES["images"]
                ) -> list[Standing]:
    """The ranked runs by score (best first), each paired with the best; then the others with the reason."""
    scored, others = [], []
    for run in runs:
        m = measured.get(str(run.info.path))
        why = rankable(run.info) or (m.error if m else "not measured") or _no_score(m.metrics, score)
        (others if why else scored).append((run, m.metrics if m else None, why))
    scored.sort(key=lambda s: score.sort_key(s[1]))
    best = scored[0][1] if scored else None
    ranked = [Standing(run, i + 1, score.value(m), score.mc_se(m), _versus(m, best, score) if i else None)
              for i, (run, m, _) in enumerate(scored)]
    return ranked + [Standing(run, None, None, None, None, why) for run, _, why in others]


def _no_score(m: Metrics | None, score: Score) -> str:
    if m is None:
        return "not measured"
    return "" if score.value(m) is not None else NO_BITS


def _versus(m: Metrics, best: Metrics, score: Score) -> PairedDifference | None:
    """m's score minus the best's, item by item over the group's test images or rows (vae_core.model.paired)."""
    a, b = score.per_item(m), score.per_item(best)
    return paired_difference(a.cpu(), b.cpu()) if a is not None and b is not None else None


def versus_text(standing: Standing) -> str:
    """"best", "+0.012 ± 0.004" or "+0.002 ± 0.004, not settled" (within DISTINGUISHABLE_SE of the best)."""
    if standing.rank is None:
        return ""
    if standing.vs_best is None:
        return "best" if standing.rank == 1 else "no paired values"
    return standing.vs_best.text(3) + ("" if standing.settled else f", {NOT_SETTLED}")


def standings_frame(standings: Sequence[Standing], score: Score = SCORES["images"]) -> pd.DataFrame:
    """One row per run: rank, who, what (with its steps, how it ended and when it started), the score ± its
    Monte-Carlo SE, and the paired difference to the best or why it is not ranked. Five columns: a sixth pushed the
    last past a 1024-pixel projector's page."""
    return pd.DataFrame({
        "rank": [str(s.rank) if s.rank else "–" for s in standings],
        "who": [s.run.who + (" (you)" if s.run.yours else "") for s in standings],
        "run": [f"{s.run.label} · {_when(s.run.info)}" for s in standings],
        score.column: [f"{s.value:.3f} ± {s.mc_se or 0:.3f}" if s.value is not None else "—" for s in standings],
        "vs best (paired)": [versus_text(s) or s.why_unranked for s in standings],
    })


def _when(info: RunInfo) -> str:
    """"1,200 steps, 14:05"; a run that did not finish says how it stands ("1,200 steps, stopped, 14:05")."""
    steps = f"{info.steps:,}" if info.steps is not None else "?"
    status = "" if info.status == "finished" else f", {info.status}"
    return f"{steps} steps{status}, {time.strftime('%H:%M', time.localtime(info.created))}"


def settled_words(score: Score = SCORES["images"], n: int = BOARD_IMAGES) -> str:
    return (f"“{NOT_SETTLED}”: within {DISTINGUISHABLE_SE:g} standard errors of the best, over the same "
            f"{n:,} {score.items} (the paired difference one by one, which holds each run's Monte-Carlo noise too).")
