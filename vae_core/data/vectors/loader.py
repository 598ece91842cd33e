"""load_vectors: a CSV or .npy (a path or its bytes) -> a VectorLoad, its train and test splits and the report.

The steps, each reporting what it leaves out: read with a bound -> parse (csvfile, npyfile) -> rows with NaN,
infinities or values past float32 skipped -> labels indexed -> split (the file's split column, else a seeded
share) -> constant columns refused, judged on the training split that a z-score's statistics come from.
"""
from __future__ import annotations

import os
import stat
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from vae_core.config import DataConfig, check_field, fields_info
from vae_core.data.vectors.csvfile import EMPTY_FILE, parse_csv
from vae_core.data.vectors.dataset import DATASET_NAME, ColumnRefusal, SplitBy, VectorDataset, VectorLoad, VectorReport
from vae_core.data.vectors.limits import ROW_WORDS, VectorDataError, VectorLimits, amount, counted
from vae_core.data.vectors.npyfile import NPY_MAGIC, parse_npy
from vae_core.data.vectors.parsed import Parsed, drop_unfinite

DEFAULT_TEST_SHARE = fields_info(DataConfig)["test_share"].default  # images and vectors hold out the same share


def load_vectors(source: str | Path | bytes, name: str = "", *, seed: int = 0, test_share: float = DEFAULT_TEST_SHARE,
                 limits: VectorLimits = VectorLimits()) -> VectorLoad:
    """The rows of a CSV or .npy file (a path, or bytes with the file's name), split into train and test.

    Raises VectorDataError (a ValueError) where nothing can be used, saying why and what to do; a row or a column
    that cannot be used is skipped or refused, and the report says which and why.
    """
    data = source if isinstance(source, bytes) else _read(Path(source), limits)
    name = name or ("" if isinstance(source, bytes) else str(source))
    return split_rows(_parse(data, name, limits), seed, test_share, limits)


def _read(path: Path, limits: VectorLimits) -> bytes:
    """At most the limit + 1 bytes; O_NONBLOCK: a pipe or a device swapped in is not waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as e:
        raise VectorDataError(f"{path} cannot be opened ({e.strerror}). Give the path of a .csv or .npy "
                              "file.") from None
    try:
        size = _regular_size(path, fd, limits)
    except VectorDataError:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        return f.read(size + 1)  # +1 sees a file that grew since it was measured


def _regular_size(path: Path, fd: int, limits: VectorLimits) -> int:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise VectorDataError(f"{path} is not a regular file. Give the path of a .csv or .npy file.")
    if info.st_size > limits.file_bytes:
        raise VectorDataError(_too_large(info.st_size, limits))
    return info.st_size


def _too_large(size: int, limits: VectorLimits) -> str:
    return (f"The file is {amount('file_bytes', size)}; the limit is {amount('file_bytes', limits.file_bytes)}. "
            "Keep fewer rows (a random sample of them).")


def _parse(data: bytes, name: str, limits: VectorLimits) -> Parsed:
    if len(data) > limits.file_bytes:
        raise VectorDataError(_too_large(len(data), limits))
    if not data.strip():
        raise VectorDataError(EMPTY_FILE)
    if data.startswith(NPY_MAGIC) or name.lower().endswith((".npy", ".npz")):
        return drop_unfinite(parse_npy(data, limits))
    if data.startswith(b"PK\x03\x04"):
        raise VectorDataError("The file is a zip archive (an .xlsx workbook is one), not CSV text. Save the sheet as "
                              "CSV, UTF-8.")
    return drop_unfinite(parse_csv(data, limits))


def split_rows(parsed: Parsed, seed: int, test_share: float, limits: VectorLimits) -> VectorLoad:
    """Parsed rows as a VectorLoad: labels indexed, split, constant columns refused (each step reported)."""
    problem = check_field(DataConfig, "test_share", test_share)
    if problem:
        raise VectorDataError(problem)
    labels, label_names, parsed = _labels(parsed, limits)
    is_test, split_by = _split(parsed, seed, test_share, limits)
    parsed = _without_constants(parsed, is_test)
    x, rows = torch.from_numpy(parsed.values.astype(np.float32)), torch.from_numpy(parsed.rows)

    def part(split: str, mask: np.ndarray) -> VectorDataset:
        idx = torch.from_numpy(np.flatnonzero(mask))
        return VectorDataset(DATASET_NAME, split, x[idx], parsed.feature_names, rows[idx],
                             None if labels is None else labels[idx], label_names)

    report = VectorReport(parsed.source, parsed.rows_read, len(parsed.rows), parsed.header, split_by,
                          parsed.skipped, parsed.refused)
    return VectorLoad(part("train", ~is_test), part("test", is_test), report)


def _labels(parsed: Parsed, limits: VectorLimits) -> tuple[torch.Tensor | None, tuple[str, ...], Parsed]:
    """(N,) int64 label indices and their names: integers sorted as numbers, else text sorted as text."""
    if parsed.labels is None:
        return None, (), parsed
    names = sorted(set(parsed.labels))
    if len(names) > limits.labels:
        name = parsed.label_column
        refusal = ColumnRefusal(name, "too_many_labels", f"column {name!r} has {len(names):,} distinct labels; "
                                f"the limit is {amount('labels', limits.labels)}")
        return None, (), parsed.without_columns([], [refusal])
    if all(_is_int(n) for n in names):
        names = sorted(names, key=int)
    index = {n: k for k, n in enumerate(names)}
    return torch.tensor([index[n] for n in parsed.labels], dtype=torch.int64), tuple(names), parsed


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _split(parsed: Parsed, seed: int, test_share: float, limits: VectorLimits) -> tuple[np.ndarray, SplitBy]:
    """(N,) bool, True for a test row: the split column's, else a seeded share of test_share."""
    n = len(parsed.rows)
    if n < limits.fewest_rows:
        raise VectorDataError(_too_few(parsed, n, limits))
    if parsed.splits is not None:
        return _split_column(parsed, limits), "column"
    n_test = min(n - _fewest_train(limits), max(1, round(test_share * n)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    is_test = np.zeros(n, dtype=bool)
    is_test[order[:n_test]] = True
    return is_test, "seed"


def _fewest_train(limits: VectorLimits) -> int:
    """Training rows a split needs: all but the one test row of the fewest usable rows."""
    return limits.fewest_rows - 1


def _split_column(parsed: Parsed, limits: VectorLimits) -> np.ndarray:
    is_test = np.array([s == "test" for s in parsed.splits], dtype=bool)
    counts = (("train", int((~is_test).sum()), _fewest_train(limits)), ("test", int(is_test.sum()), 1))
    for split, count, least in counts:
        if count < least:
            raise VectorDataError(f"The split column puts {count:,} usable {'row' if count == 1 else 'rows'} in "
                                  f"{split}; at least {least:,} {'is' if least == 1 else 'are'} needed. Mark more rows "
                                  f"{split}, or leave out the split column for a seeded share.")
    return is_test


def _too_few(parsed: Parsed, n: int, limits: VectorLimits) -> str:
    skipped = parsed.skipped
    reasons = counted(Counter(s.reason for s in skipped), ROW_WORDS)
    why = f" ({len(skipped):,} skipped: {reasons}; e.g. {skipped[0].detail})" if skipped else ""
    return (f"{n:,} usable {'row' if n == 1 else 'rows'} of {parsed.rows_read:,}{why}; at least "
            f"{amount('fewest_rows', limits.fewest_rows)} are needed: {_fewest_train(limits):,} to train on (a spread "
            "needs two) and one to test. Give more rows.")


def _without_constants(parsed: Parsed, is_test: np.ndarray) -> Parsed:
    """Features with one value in every training row refused; raises where none is left."""
    train = parsed.values[~is_test]
    constant = [j for j in range(train.shape[1]) if np.all(train[:, j].astype(np.float32) == np.float32(train[0, j]))]
    if not constant:
        return parsed
    if len(constant) == train.shape[1]:
        raise VectorDataError(f"Every feature column is constant over the {len(train):,} training rows "
                              f"({', '.join(repr(n) for n in parsed.feature_names[:8])}): there is nothing to "
                              "learn, and z-scoring would divide by zero. Give columns whose values vary.")
    refusals = [ColumnRefusal(parsed.feature_names[j], "constant", f"column {parsed.feature_names[j]!r} is "
                              f"{train[0, j]:g} in every training row") for j in constant]
    return parsed.without_columns(constant, refusals)
