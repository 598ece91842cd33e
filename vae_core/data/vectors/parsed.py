"""A source's rows as parsed, before they are checked and split: what the CSV and .npy readers both hand the loader."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from vae_core.data.vectors.dataset import ColumnRefusal, RowSkip, SourceKind

FLOAT32_MAX = float(np.finfo(np.float32).max)  # a larger value would become an infinity in the float32 dataset


@dataclass(frozen=True)
class Parsed:
    """Usable rows so far: their values, their places in the source, and the text of their labels and splits."""
    source: SourceKind
    values: np.ndarray  # (N, D) float64
    rows: np.ndarray  # (N,) int64, 1-based places in the source
    feature_names: tuple[str, ...]
    rows_read: int
    header: bool
    labels: tuple[str, ...] | None = None  # (N,) the label column's cells; None: no label column
    splits: tuple[str, ...] | None = None  # (N,) "train" or "test"; None: no split column
    skipped: tuple[RowSkip, ...] = ()
    refused: tuple[ColumnRefusal, ...] = ()
    label_column: str = "label"  # the label column's name as the source spells it

    def place(self, row: int) -> str:
        """'line 7' (a CSV's line, header included) or 'row 7' (a .npy's, from 1), as a person finds it."""
        return f"{'line' if self.source == 'csv' else 'row'} {row:,}"

    def keep(self, mask: np.ndarray, skips: list[RowSkip]) -> Parsed:
        """These rows only (mask: (N,) bool), the others reported as skips."""
        pick = lambda cells: None if cells is None else tuple(c for c, k in zip(cells, mask) if k)  # noqa: E731
        return dataclasses.replace(self, values=self.values[mask], rows=self.rows[mask], labels=pick(self.labels),
                                   splits=pick(self.splits),
                                   skipped=tuple(sorted(self.skipped + tuple(skips), key=lambda s: s.row)))

    def without_columns(self, columns: list[int], refusals: list[ColumnRefusal]) -> Parsed:
        """These feature columns removed, reported as refused."""
        kept = [j for j in range(len(self.feature_names)) if j not in set(columns)]
        return dataclasses.replace(self, values=self.values[:, kept],
                                   feature_names=tuple(self.feature_names[j] for j in kept),
                                   refused=self.refused + tuple(refusals))


def default_name(column: int) -> str:
    """A feature's name where the source has no header: x1, x2, … (column from 0)."""
    return f"x{column + 1}"


def drop_unfinite(parsed: Parsed) -> Parsed:
    """Rows with NaN, an infinity or a value past float32's range skipped, each with its first such cell."""
    v = parsed.values
    bad = ~np.isfinite(v) | (np.abs(np.nan_to_num(v)) > FLOAT32_MAX)
    rows = np.flatnonzero(bad.any(axis=1))
    skips = [_unfinite_skip(parsed, i, int(np.argmax(bad[i]))) for i in rows]
    return parsed.keep(~bad.any(axis=1), skips) if skips else parsed


def _unfinite_skip(parsed: Parsed, i: int, j: int) -> RowSkip:
    value, row, name = float(parsed.values[i, j]), int(parsed.rows[i]), parsed.feature_names[j]
    where = f"{parsed.place(row)}, column {name!r}"
    if np.isnan(value):
        return RowSkip(row, "nan", f"{where} is NaN")
    if np.isinf(value):
        return RowSkip(row, "inf", f"{where} is {value}")
    return RowSkip(row, "overflow", f"{where} is {value:g}, past float32's largest ({FLOAT32_MAX:.4g})")
