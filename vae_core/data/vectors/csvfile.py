"""A CSV's bytes -> Parsed: one row a sample, numeric columns the features, an optional header and optional
`label` and `split` columns. Rows are read one at a time, each limit checked as it is passed.

Which columns are numeric is judged on the rows after the first (SAMPLE_ROWS of them); the first row is a header
where it has a cell that is not a number in a numeric column. Blank lines are ignored.
"""
from __future__ import annotations

import csv
import io
import itertools
from array import array
from dataclasses import dataclass
from typing import Iterator

import numpy as np

from vae_core.data.images.dataset import TEST_NAMES, TRAIN_NAMES
from vae_core.data.vectors.dataset import ColumnRefusal, RowSkip
from vae_core.data.vectors.limits import VectorDataError, VectorLimits, amount
from vae_core.data.vectors.parsed import Parsed, default_name

SAMPLE_ROWS = 1_000  # rows after the first that decide which columns are numeric, and so whether the first is a header
NUMERIC_SHARE = 0.5  # a column is numeric where at least this share of its sampled non-empty cells are numbers
LABEL, SPLIT = "label", "split"  # the header names (any case) of the optional columns
Line = tuple[int, list[str]]  # a row's line in the file (1-based) and its cells
EMPTY_FILE = ("The file is empty. Give a CSV with one row per sample and a numeric column per feature, or a 2-D "
              ".npy array.")
Row = tuple[list[float], str, str]  # a kept row's features, label and split ("train" or "test")


@dataclass(frozen=True)
class Columns:
    """What each column is: names, the feature columns, the label and split columns, the refused ones."""
    names: tuple[str, ...]
    features: tuple[int, ...]
    label: int | None
    split: int | None
    refused: tuple[ColumnRefusal, ...]


def parse_csv(data: bytes, limits: VectorLimits) -> Parsed:
    """The rows of a CSV (or tab-separated) file; raises VectorDataError where none can be used, saying why."""
    text = _text(data)
    lines = _lines(text)
    first = next(lines, None)
    if first is None:
        raise VectorDataError(EMPTY_FILE)
    if len(first[1]) > limits.columns:
        raise VectorDataError(f"The first row has {len(first[1]):,} columns; the limit is "
                              f"{amount('columns', limits.columns)}. Keep fewer columns.")
    sample = list(itertools.islice(lines, SAMPLE_ROWS))
    numeric = _numeric_columns(first[1], [cells for _, cells in sample])
    header = _is_header(first[1], numeric, bool(sample))
    if header and not sample:
        raise VectorDataError("The file holds a header and no rows. Give one row per sample under the header.")
    columns = _columns(first[1], numeric, header)
    body = itertools.chain(sample, lines) if header else itertools.chain([first], sample, lines)
    return _read_body(body, columns, header, limits)


def _text(data: bytes) -> str:
    if b"\x00" in data:
        raise VectorDataError("The file holds NUL bytes: it is binary, not CSV text (a spreadsheet saved as UTF-16 "
                              "is one). Save it as CSV, UTF-8.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise VectorDataError(f"The file is not UTF-8 text (byte {data[e.start]:#04x} at offset {e.start:,}). "
                              "Save it as CSV, UTF-8.") from None


def _lines(text: str) -> Iterator[Line]:
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:  # a field past csv's own limit (131,072 characters), an unclosed quote at the end
            raise VectorDataError(f"Line {reader.line_num:,} cannot be read as CSV ({e}). Check its quotes.") from None
        if cells:
            yield reader.line_num, cells


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _numeric_columns(first: list[str], sample: list[list[str]]) -> list[bool]:
    """Per column of the first row: numeric by the sampled rows' cells (by the first row's, with no other row)."""
    rows = [cells for cells in sample if len(cells) == len(first)] or [first]
    return [_mostly_numbers([cells[j].strip() for cells in rows]) for j in range(len(first))]


def _mostly_numbers(cells: list[str]) -> bool:
    filled = [c for c in cells if c]
    return bool(filled) and sum(_number(c) is not None for c in filled) >= NUMERIC_SHARE * len(filled)


def _is_header(first: list[str], numeric: list[bool], has_rows: bool) -> bool:
    if not has_rows:  # one row: a header only where it is not all numbers
        return not all(numeric)
    return any(is_num and _number(cell) is None for cell, is_num in zip(first, numeric))


def _columns(first: list[str], numeric: list[bool], header: bool) -> Columns:
    names = tuple(c.strip() or f"column {j + 1}" for j, c in enumerate(first)) if header \
        else tuple(default_name(j) for j in range(len(first)))
    _no_duplicates(names)
    roles = {name.lower(): j for j, name in enumerate(names) if header and name.lower() in (LABEL, SPLIT)}
    label, split = roles.get(LABEL), roles.get(SPLIT)
    others = [j for j in range(len(names)) if j not in (label, split)]
    refused = tuple(ColumnRefusal(names[j], "not_numeric", f"column {names[j]!r} is mostly not numbers")
                    for j in others if not numeric[j])
    features = tuple(j for j in others if numeric[j])
    if not features:
        raise VectorDataError(f"No numeric column among the {len(names):,} columns ({_listed(names)}). Give a CSV with "
                              "a column of numbers per feature" + (" (its header names them)." if header else "."))
    return Columns(names, features, label, split, refused)


def _no_duplicates(names: tuple[str, ...]) -> None:
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        if name.lower() in seen:
            raise VectorDataError(f"Columns {seen[name.lower()] + 1} and {j + 1} are both named {name!r}. Give each "
                                  "column its own name.")
        seen[name.lower()] = j


def _listed(names: tuple[str, ...], most: int = 8) -> str:
    shown = ", ".join(repr(n[:40]) for n in names[:most])
    return shown + (f", … ({len(names) - most:,} more)" if len(names) > most else "")


def _read_body(body: Iterator[Line], columns: Columns, header: bool, limits: VectorLimits) -> Parsed:
    values, places, labels, splits, skips = array("d"), array("q"), [], [], []
    read = 0
    for line, cells in body:
        read += 1
        _check_size(read, len(columns.features), limits)
        row = _row(line, cells, columns)
        if isinstance(row, RowSkip):
            skips.append(row)
            continue
        values.extend(row[0])
        places.append(line)
        labels.append(row[1])
        splits.append(row[2])
    return _parsed(values, places, labels, splits, skips, read, columns, header)


def _check_size(read: int, features: int, limits: VectorLimits) -> None:
    if read > limits.rows:
        raise VectorDataError(f"The file has more than {amount('rows', limits.rows)} rows, the limit. Keep fewer rows "
                              "(a random sample of them).")
    if read * features > limits.cells:
        raise VectorDataError(f"The file has more than {amount('cells', limits.cells)} numbers (rows × {features:,} "
                              "feature columns), the limit. Keep fewer rows or columns.")


def _row(line: int, cells: list[str], columns: Columns) -> Row | RowSkip:
    """One row's features, label and split, or why it is skipped."""
    if len(cells) != len(columns.names):
        return RowSkip(line, "ragged", f"line {line:,} has {len(cells):,} cells; the first row has "
                                       f"{len(columns.names):,}")
    numbers = []
    for j in columns.features:
        cell = cells[j].strip()
        number = _number(cell) if cell else None
        if number is None:
            return _cell_skip(line, columns.names[j], cell)
        numbers.append(number)
    return _tagged(line, cells, columns, numbers)


def _cell_skip(line: int, name: str, cell: str) -> RowSkip:
    if not cell:
        return RowSkip(line, "missing", f"line {line:,}, column {name!r} is empty")
    return RowSkip(line, "text", f"line {line:,}, column {name!r} holds {cell[:24]!r}, not a number")


def _tagged(line: int, cells: list[str], columns: Columns, numbers: list[float]) -> Row | RowSkip:
    label = cells[columns.label].strip() if columns.label is not None else ""
    if columns.label is not None and not label:
        return RowSkip(line, "missing", f"line {line:,}, column {columns.names[columns.label]!r} is empty")
    split = cells[columns.split].strip().lower() if columns.split is not None else "train"
    if split not in TRAIN_NAMES + TEST_NAMES:
        return RowSkip(line, "split", f"line {line:,}, column {columns.names[columns.split]!r} holds "
                                      f"{split[:24]!r}; write train or test")
    return numbers, label, "train" if split in TRAIN_NAMES else "test"


def _parsed(values: array, places: array, labels: list[str], splits: list[str], skips: list[RowSkip], read: int,
            columns: Columns, header: bool) -> Parsed:
    d = len(columns.features)
    return Parsed("csv", np.frombuffer(values, dtype=np.float64).reshape(-1, d).copy(),
                  np.frombuffer(places, dtype=np.int64).copy(), tuple(columns.names[j] for j in columns.features),
                  read, header, tuple(labels) if columns.label is not None else None,
                  tuple(splits) if columns.split is not None else None, tuple(skips), columns.refused,
                  columns.names[columns.label] if columns.label is not None else "")
