"""Vectors as a dataset: a split's rows as float32 (N, D), the features' names and ranges, optional labels, and the
report of what was read, kept, skipped and refused (and why)."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import torch

from vae_core.data.base import Split
from vae_core.data.vectors.limits import COLUMN_WORDS, ROW_WORDS, ColumnReason, RowReason, counted

DATASET_NAME = "vectors"  # the bundled dataset's name, and the name of every dataset of rows of numbers
SourceKind = Literal["csv", "npy", "generated"]
SplitBy = Literal["column", "seed"]  # the file's split column, or a seeded share of the rows


@dataclass(frozen=True)
class FeatureRanges:
    """Per feature of one split, in raw units: smallest, largest, mean and standard deviation (population, ddof 0)."""
    names: tuple[str, ...]
    min: tuple[float, ...]
    max: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class VectorDataset:
    """A split of rows of numbers; x is shared, so treat it as read-only."""
    name: str
    split: Split
    x: torch.Tensor  # (N, D) float32, raw values (not normalized)
    feature_names: tuple[str, ...]  # (D,)
    rows: torch.Tensor  # (N,) int64: each row's place in its source, 1-based (a CSV's line, a .npy's row)
    labels: torch.Tensor | None = None  # (N,) int64 indices into label_names; None: the source has no label column
    label_names: tuple[str, ...] = ()

    def __len__(self) -> int:
        """Number of rows."""
        return self.x.shape[0]

    @property
    def stored(self) -> torch.Tensor:
        """What a trainer batches: the raw rows (images: ImageDataset.stored, the uint8 images)."""
        return self.x

    @property
    def features(self) -> int:
        """D, the number of features."""
        return self.x.shape[1]

    def ranges(self) -> FeatureRanges:
        """Each feature's min, max, mean and std over this split (computed in float64)."""
        x = self.x.double()
        as_tuple = lambda t: tuple(t.tolist())  # noqa: E731
        return FeatureRanges(self.feature_names, as_tuple(x.amin(0)), as_tuple(x.amax(0)), as_tuple(x.mean(0)),
                             as_tuple(x.std(0, correction=0)))


@dataclass(frozen=True)
class RowSkip:
    """One row left out: where it is in the source (1-based), why, and the sentence for its line."""
    row: int
    reason: RowReason
    detail: str


@dataclass(frozen=True)
class ColumnRefusal:
    """One column not used as a feature (or as the labels): its name, why, and the sentence for its line."""
    name: str
    reason: ColumnReason
    detail: str


@dataclass(frozen=True)
class VectorReport:
    """What the loader made of a source: rows read and kept, each skipped row and refused column with its reason."""
    source: SourceKind
    rows_read: int  # data rows (a header not counted)
    rows_kept: int
    header: bool
    split_by: SplitBy
    skipped: tuple[RowSkip, ...] = ()
    refused: tuple[ColumnRefusal, ...] = ()

    def skip_counts(self) -> dict[RowReason, int]:
        """reason -> skipped rows, most first."""
        return dict(Counter(s.reason for s in self.skipped).most_common())

    def refusal_counts(self) -> dict[ColumnReason, int]:
        """reason -> refused columns, most first."""
        return dict(Counter(r.reason for r in self.refused).most_common())


@dataclass(frozen=True)
class VectorLoad:
    """A source of vectors read: its train and test splits and the report of how."""
    train: VectorDataset
    test: VectorDataset
    report: VectorReport

    def part(self, split: Split) -> VectorDataset:
        """The train or the test split."""
        return self.train if split == "train" else self.test

    def label_counts(self) -> dict[str, dict[str, int]]:
        """label name -> {"train": n, "test": n}; empty where the source has no label column."""
        if self.train.labels is None:
            return {}
        names = self.train.label_names
        counts = {ds.split: torch.bincount(ds.labels, minlength=len(names)).tolist() for ds in (self.train, self.test)}
        return {name: {split: counts[split][k] for split in counts} for k, name in enumerate(names)}

    def summary(self) -> str:
        """'990 rows kept of 1,000 (891 train, 99 test), 12 features, 3 labels; 10 rows skipped: 6 with NaN, …'."""
        r, labels = self.report, len(self.train.label_names)
        head = (f"{r.rows_kept:,} rows kept of {r.rows_read:,} ({len(self.train):,} train, {len(self.test):,} test, "
                f"split by {'its split column' if r.split_by == 'column' else 'a seeded share'}), "
                f"{self.train.features:,} {'feature' if self.train.features == 1 else 'features'}"
                + (f", {labels:,} {'label' if labels == 1 else 'labels'}" if self.train.labels is not None else ""))
        if r.skipped:
            head += f"; {len(r.skipped):,} {'row' if len(r.skipped) == 1 else 'rows'} skipped: " \
                    + counted(r.skip_counts(), ROW_WORDS)
        if r.refused:
            head += f"; {len(r.refused):,} {'column' if len(r.refused) == 1 else 'columns'} refused: " \
                    + counted(r.refusal_counts(), COLUMN_WORDS)
        return head + "."
