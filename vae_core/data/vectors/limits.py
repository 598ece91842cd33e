"""What a file of vectors may hold, the one error a refused file raises, and the words every summary counts by.

Each limit lives in LIMIT_ROWS once: the dataclass's defaults, the messages that enforce a limit and the
README's table (limits_table) all read it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vae_core.host import MB

RowReason = Literal["blank", "ragged", "missing", "text", "nan", "inf", "overflow", "split"]
# How a summary counts each skipped row: (one row, several rows).
ROW_WORDS: dict[RowReason, tuple[str, str]] = {
    "blank": ("blank", "blank"),
    "ragged": ("with the wrong number of cells", "with the wrong number of cells"),
    "missing": ("with an empty cell", "with empty cells"),
    "text": ("with text in a numeric column", "with text in a numeric column"),
    "nan": ("with NaN", "with NaN"),
    "inf": ("with an infinity", "with infinities"),
    "overflow": ("beyond float32's range", "beyond float32's range"),
    "split": ("with a split neither train nor test", "with a split neither train nor test"),
}
ColumnReason = Literal["not_numeric", "constant", "too_many_labels"]
COLUMN_WORDS: dict[ColumnReason, tuple[str, str]] = {
    "not_numeric": ("not numeric", "not numeric"),
    "constant": ("constant (z-scoring it would divide by zero)", "constant (z-scoring them would divide by zero)"),
    "too_many_labels": ("a label column with too many labels", "label columns with too many labels"),
}


@dataclass(frozen=True)
class LimitRow:
    """One limit: its VectorLimits field, its default, what it bounds and what happens past it."""
    name: str
    default: int
    what: str
    past: str


LIMIT_ROWS: tuple[LimitRow, ...] = (
    LimitRow("file_bytes", 32 * MB, "the file", "refused before it is read"),
    LimitRow("rows", 200_000, "rows (a header not counted)", "refused when a row past it is read (a .npy: from its "
             "header)"),
    LimitRow("columns", 1_000, "columns (label and split included)", "refused, from the first row or the "
             ".npy header"),
    LimitRow("cells", 4_000_000, "rows × feature columns", "refused when a row past it is read (a .npy: from its "
             "header)"),
    LimitRow("labels", 256, "distinct labels", "the label column is refused; the features are kept"),
    LimitRow("fewest_rows", 3, "usable rows, at least", "refused: two to train on (a spread needs two), one to test"),
)
_DEFAULTS = {row.name: row.default for row in LIMIT_ROWS}


@dataclass(frozen=True)
class VectorLimits:
    """What one file of vectors may hold; each limit is named in the message that enforces it (LIMIT_ROWS)."""
    file_bytes: int = _DEFAULTS["file_bytes"]
    rows: int = _DEFAULTS["rows"]
    columns: int = _DEFAULTS["columns"]
    cells: int = _DEFAULTS["cells"]
    labels: int = _DEFAULTS["labels"]
    fewest_rows: int = _DEFAULTS["fewest_rows"]


class VectorDataError(ValueError):
    """The whole file cannot be used; the message says what was wrong and what to do."""


def limits_table() -> str:
    """The README's table of the limits (Markdown)."""
    rows = [f"| {row.what} | {amount(row.name, row.default)} | {row.past} |" for row in LIMIT_ROWS]
    return "\n".join(["| limit (one file) | value | past it |", "|---|---|---|", *rows])


def amount(name: str, n: int) -> str:
    """'32 MB', '32.01 MB' (a size past a limit never reads as the limit), '900 bytes', '200,000'."""
    if name != "file_bytes":
        return f"{n:,}"
    if n < MB:
        return f"{n:,} bytes"
    return f"{n // MB:,} MB" if n % MB == 0 else f"{n / MB:,.2f} MB"


def counted(counts: dict, words: dict) -> str:
    """'6 with NaN, 1 blank': counts (reason -> n, most first) in a summary's words."""
    ordered = sorted(counts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{n:,} {words[reason][n != 1]}" for reason, n in ordered)
