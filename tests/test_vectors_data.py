"""Vectors from a CSV or .npy: a corpus of hostile files, each refused with its reason or loaded with its rows skipped
and counted by reason; the header, label and split columns; the seeded share; the limits (small ones injected)."""
from __future__ import annotations

import io
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from vae_core.data.vectors.limits import VectorDataError, VectorLimits
from vae_core.data.vectors.loader import load_vectors


def npy(array: np.ndarray, allow_pickle: bool = False) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=allow_pickle)
    return out.getvalue()


@dataclass(frozen=True)
class Loaded:
    """The file loads, keeping `kept` rows, with these rows skipped per reason and these columns refused per reason."""
    kept: int
    skipped: dict
    refused: dict = None


GOOD = "a,b\n" + "".join(f"{k},{k * k - 3}\n" for k in range(6))  # six usable rows under a header
CSV_CORPUS = {
    "plain": (GOOD, Loaded(6, {})),
    "nan cell": (GOOD + "7,nan\n8,NaN\n", Loaded(6, {"nan": 2})),
    "infinities": (GOOD + "inf,1\n2,-Infinity\n", Loaded(6, {"inf": 2})),
    "past float32": (GOOD + "1e39,2\n", Loaded(6, {"overflow": 1})),
    "text cell": (GOOD + "7,seven\n", Loaded(6, {"text": 1})),
    "empty cell": (GOOD + "7,\n", Loaded(6, {"missing": 1})),
    "ragged rows": (GOOD + "7\n8,9,10\n", Loaded(6, {"ragged": 2})),
    "every reason": (GOOD + "7,nan\n8,inf\n9,x\n10,\n11\n", Loaded(6, {"nan": 1, "inf": 1, "text": 1, "missing": 1,
                                                                       "ragged": 1})),
    "blank lines ignored": ("a,b\n\n1,2\n\n3,5\n4,4\n\n", Loaded(3, {})),
    "a text column": ("id,a,b\n" + "".join(f"r{k},{k},{k % 3}\n" for k in range(5)),
                      Loaded(5, {}, {"not_numeric": 1})),
    "a constant column": ("a,b,c\n" + "".join(f"{k},7,{-k}\n" for k in range(5)), Loaded(5, {}, {"constant": 1})),
    "empty": ("", r"The file is empty"),
    "whitespace only": ("  \n\n \n", r"The file is empty"),
    "a byte order mark only": ("\ufeff", r"The file is empty"),
    "header only": ("a,b,label\n", r"a header and no rows"),
    "no numeric column": ("name,city\nann,oslo\nbo,rome\n", r"No numeric column among the 2 columns"),
    "every column constant": ("a,b\n1,2\n1,2\n1,2\n", r"Every feature column is constant.*divide by zero"),
    "one row": ("1,2\n", r"1 usable row of 1; at least 3 are needed"),
    "too few once skipped": ("a,b\n1,2\n3,nan\n4,x\n", r"1 usable row of 3 \(2 skipped: .*e\.g\. line 3, column 'b'"),
    "duplicate names": ("a,b,A\n1,2,3\n4,5,6\n", r"Columns 1 and 3 are both named 'A'"),
    "not utf-8": (b"a,b\n1,\xe9\n", r"not UTF-8 text \(byte 0xe9 at offset 6\)"),
    "utf-16": ("a,b\n1,2\n".encode("utf-16"), r"NUL bytes: it is binary"),
    "a zip (xlsx)": (b"PK\x03\x04" + b"\x00" * 40, r"zip archive \(an \.xlsx"),
    "a field past csv's limit": ("a,b\n1,\"" + "9" * 200_000 + "\"\n", r"Line 2 cannot be read as CSV"),
}


def _bytes(data: str | bytes) -> bytes:
    return data.encode() if isinstance(data, str) else data


@pytest.mark.parametrize("data, expected", CSV_CORPUS.values(), ids=CSV_CORPUS.keys())
def test_each_hostile_csv_is_refused_with_its_reason_or_loaded_with_its_rows_counted(tmp_path, data, expected):
    path = tmp_path / "rows.csv"
    path.write_bytes(_bytes(data))
    if isinstance(expected, str):
        with pytest.raises(VectorDataError, match=expected):
            load_vectors(path)
        return
    read = load_vectors(path)
    assert (read.report.rows_kept, len(read.train) + len(read.test)) == (expected.kept, expected.kept)
    assert read.report.skip_counts() == expected.skipped
    assert read.report.refusal_counts() == (expected.refused or {})
    assert torch.isfinite(read.train.x).all() and read.train.x.dtype == torch.float32


def test_a_skipped_row_says_where_it_is_and_why_and_the_summary_counts_it():
    read = load_vectors((GOOD + "7,nan\n8,seven\n9\n").encode(), "rows.csv")
    assert [(s.row, s.reason) for s in read.report.skipped] == [(8, "nan"), (9, "text"), (10, "ragged")]
    assert read.report.skipped[1].detail == "line 9, column 'b' holds 'seven', not a number"
    assert read.summary().endswith("3 rows skipped: 1 with NaN, 1 with text in a numeric column, "
                                   "1 with the wrong number of cells.")
    assert read.report.rows_read == 9 and read.report.rows_kept == 6


def test_a_header_is_a_first_row_with_words_over_numeric_columns():
    named = load_vectors(b"height,weight\n1.5,60\n1.7,72\n1.8,80\n", "a.csv")
    assert named.report.header and named.train.feature_names == ("height", "weight")
    bare = load_vectors(b"1.5,60\n1.7,72\n1.8,80\n", "a.csv")
    assert not bare.report.header and bare.train.feature_names == ("x1", "x2") and bare.report.rows_kept == 3
    # numbers as names are data: the rule can only see words
    assert not load_vectors(b"2020,2021\n1,2\n3,4\n5,7\n", "a.csv").report.header
    blank_name = load_vectors(b"a,\n1,2\n3,5\n4,4\n", "a.csv")
    assert blank_name.train.feature_names == ("a", "column 2")


def test_tab_separated_rows_and_a_byte_order_mark_are_read():
    read = load_vectors("\ufeffa\tb\n1\t2\n3\t5\n4\t4\n".encode(), "a.tsv")
    assert read.train.feature_names == ("a", "b") and read.report.rows_kept == 3


def test_a_text_label_column_is_indexed_in_name_order_and_kept_with_each_row():
    rows = "".join(f"{k},{k % 4},{'cat' if k % 2 else 'dog'}\n" for k in range(20))
    read = load_vectors(f"a,b,Label\n{rows}".encode(), "a.csv", seed=3)
    assert read.train.feature_names == ("a", "b") and read.train.label_names == ("cat", "dog")
    for part in (read.train, read.test):
        odd = part.x[:, 0].long() % 2 == 1
        assert torch.equal(part.labels, torch.where(odd, 0, 1))
    counts = read.label_counts()
    assert {name: c["train"] + c["test"] for name, c in counts.items()} == {"cat": 10, "dog": 10}
    assert sum(c["test"] for c in counts.values()) == len(read.test) == 2


def test_integer_labels_sort_as_numbers_and_too_many_labels_refuse_only_the_label_column():
    rows = "".join(f"{k},{k * 2 % 7},{k % 11}\n" for k in range(30))
    read = load_vectors(f"a,b,LABEL\n{rows}".encode(), "a.csv")
    assert read.train.label_names == tuple(str(k) for k in range(11))
    few = load_vectors(f"a,b,LABEL\n{rows}".encode(), "a.csv", limits=VectorLimits(labels=10))
    assert few.train.labels is None and few.report.refusal_counts() == {"too_many_labels": 1}
    assert few.report.refused[0].detail == "column 'LABEL' has 11 distinct labels; the limit is 10"


def test_a_split_column_decides_the_split_and_a_bad_split_skips_its_row():
    csv = b"a,b,split\n1,2,train\n2,5,Train\n3,1,test\n4,4,val\n5,3,later\n6,0,train\n"
    read = load_vectors(csv, "a.csv")
    assert read.report.split_by == "column"
    assert read.train.rows.tolist() == [2, 3, 7] and read.test.rows.tolist() == [4, 5]
    assert read.report.skipped[0].detail == "line 6, column 'split' holds 'later'; write train or test"
    with pytest.raises(VectorDataError, match="puts 0 usable rows in test; at least 1 is needed"):
        load_vectors(b"a,b,split\n1,2,train\n2,5,train\n3,1,train\n", "a.csv")


def test_the_seeded_test_share_is_the_same_for_a_seed_and_keeps_the_files_order():
    rows = "a,b\n" + "".join(f"{k},{k % 9}\n" for k in range(200))
    first, again = (load_vectors(rows.encode(), "a.csv", seed=5, test_share=0.2) for _ in range(2))
    other = load_vectors(rows.encode(), "a.csv", seed=6, test_share=0.2)
    assert (len(first.train), len(first.test)) == (160, 40) and first.report.split_by == "seed"
    assert torch.equal(first.test.rows, again.test.rows) and not torch.equal(first.test.rows, other.test.rows)
    assert bool((first.test.rows.diff() > 0).all())
    assert sorted(first.train.rows.tolist() + first.test.rows.tolist()) == list(range(2, 202))
    assert torch.equal(first.test.x[:, 0], (first.test.rows - 2).float())  # each row kept with its own values
    with pytest.raises(VectorDataError, match="test_share=0.9 is out of range"):
        load_vectors(rows.encode(), "a.csv", test_share=0.9)


def test_the_ranges_are_the_training_splits_per_feature():
    read = load_vectors(b"a,b\n-9,100\n8,300\n0,200\n1,1\n", "a.csv", test_share=0.25, seed=0)
    ranges, x = read.train.ranges(), read.train.x.double()
    assert ranges.names == ("a", "b") and ranges.min == tuple(x.amin(0).tolist())
    assert ranges.std == pytest.approx(x.std(0, correction=0).tolist())


NPY_CORPUS = {
    "float32 (N, D)": (npy(np.arange(24, dtype=np.float32).reshape(8, 3) ** 1.5), Loaded(8, {})),
    "integers": (npy(np.arange(10).reshape(5, 2) * 3), Loaded(5, {})),
    "fortran order, big-endian": (npy(np.asfortranarray(np.arange(12.0).reshape(6, 2)).astype(">f8")), Loaded(6, {})),
    "nan and inf rows": (npy(np.array([[1, 2], [np.nan, 3], [4, 5], [6, np.inf], [7, 1], [3, 3.5]])),
                         Loaded(4, {"nan": 1, "inf": 1})),
    "a constant column": (npy(np.stack([np.arange(5.0), np.full(5, 2.0)], 1)), Loaded(5, {}, {"constant": 1})),
    "1-D": (npy(np.arange(5.0)), r"1-D, shape \(5,\).*x\.reshape\(-1, 1\)"),
    "3-D": (npy(np.zeros((2, 2, 2))), r"3-D, shape \(2, 2, 2\)"),
    "object dtype": (npy(np.array([[1, "a"]], dtype=object), allow_pickle=True), r"Python objects.*never done"),
    "a pickle": (pickle.dumps([[1.0, 2.0], [3.0, 4.0]]), r"a Python pickle, not a \.npy"),
    "an npz": (b"PK\x03\x04" + b"\x00" * 30, r"a zip archive \(an \.npz is one\)"),
    "text named .npy": (b"1,2\n3,4\n", r"not a \.npy \(it does not begin with numpy's magic"),
    "strings": (npy(np.array([["a", "b"]])), r"dtype <U1 is not a plain number type"),
    "complex": (npy(np.ones((3, 2), complex)), r"complex128 is not a plain number type"),
    "structured": (npy(np.zeros(3, dtype=[("a", "f4"), ("b", "f4")])), r"is not a plain number type"),
    "no rows": (npy(np.zeros((0, 3))), r"empty, shape \(0, 3\)"),
    "truncated": (npy(np.ones((100, 3)))[:200], r"truncated or damaged"),
    "a damaged header": (b"\x93NUMPY\x01\x00\x10\x00{'descr': <f8'}    \n", r"header cannot be read"),
}


@pytest.mark.parametrize("data, expected", NPY_CORPUS.values(), ids=NPY_CORPUS.keys())
def test_each_npy_is_refused_with_its_reason_or_loaded_with_its_rows_counted(tmp_path, data, expected):
    path = tmp_path / "rows.npy"
    path.write_bytes(data)
    if isinstance(expected, str):
        with pytest.raises(VectorDataError, match=expected):
            load_vectors(path)
        return
    read = load_vectors(path)
    assert read.report.rows_kept == expected.kept and read.report.skip_counts() == expected.skipped
    assert read.report.refusal_counts() == (expected.refused or {}) and read.report.source == "npy"


def test_an_npy_keeps_its_values_and_says_which_row_was_skipped():
    x = np.array([[1.5, -2e6], [3.25, 7.0], [np.nan, 1.0], [-4.0, 1e-3], [0.0, 5.0]])
    read = load_vectors(npy(x), "mine.npy", test_share=0.2)
    assert read.report.skipped[0].detail == "row 3, column 'x1' is NaN"
    both = torch.cat([read.train.x, read.test.x])[torch.cat([read.train.rows, read.test.rows]).argsort()]
    assert torch.equal(both, torch.from_numpy(x[[0, 1, 3, 4]].astype(np.float32)))


LIMIT_CASES = {
    "bytes": (VectorLimits(file_bytes=100), GOOD * 5, r"The file is 160 bytes; the limit is 100 bytes"),
    "rows": (VectorLimits(rows=4), GOOD, r"more than 4 rows, the limit"),
    "columns": (VectorLimits(columns=3), "a,b,c,d\n1,2,3,4\n", r"4 columns; the limit is 3"),
    "cells": (VectorLimits(cells=7), GOOD, r"more than 7 numbers \(rows × 2 feature columns\)"),
    "fewest rows": (VectorLimits(fewest_rows=10), GOOD, r"6 usable rows of 6; at least 10 are needed"),
    "npy rows": (VectorLimits(rows=4), npy(np.ones((5, 2))), r"5 rows, shape \(5, 2\); the limit is 4"),
    "npy columns": (VectorLimits(columns=3), npy(np.ones((2, 5))), r"5 columns, shape \(2, 5\); the limit is 3"),
    "npy cells": (VectorLimits(cells=9), npy(np.ones((5, 2))), r"10 cells, shape \(5, 2\); the limit is 9"),
}


@pytest.mark.parametrize("limits, data, message", LIMIT_CASES.values(), ids=LIMIT_CASES.keys())
def test_each_limit_refuses_the_file_stating_the_limit(tmp_path, limits, data, message):
    path = tmp_path / ("rows.npy" if isinstance(data, bytes) else "rows.csv")
    path.write_bytes(_bytes(data))
    with pytest.raises(VectorDataError, match=message):
        load_vectors(path, limits=limits)
    with pytest.raises(VectorDataError, match=message):
        load_vectors(_bytes(data), path.name, limits=limits)  # bytes, as an upload hands them over


def test_a_path_that_is_not_a_readable_file_is_refused(tmp_path):
    with pytest.raises(VectorDataError, match="cannot be opened"):
        load_vectors(tmp_path / "missing.csv")
    with pytest.raises(VectorDataError, match="is not a regular file"):
        load_vectors(tmp_path)


def test_damaged_files_load_or_are_refused_never_anything_else():
    """Seeded damage (bytes changed, cut, repeated) to a CSV and a .npy: each loads or raises VectorDataError."""
    rng = np.random.default_rng(0)
    sources = [(GOOD + "7,8\n9,1.5e3\n").encode(), npy(np.arange(40.0).reshape(10, 4) ** 2)]
    outcomes = set()
    for k in range(300):
        data = bytearray(sources[k % 2])
        for _ in range(rng.integers(1, 4)):
            at = int(rng.integers(0, len(data)))
            data[at:at + int(rng.integers(0, 3))] = bytes(rng.integers(0, 256, int(rng.integers(0, 3)), dtype=np.uint8))
        try:
            load_vectors(bytes(data), ("a.csv", "a.npy")[k % 2])
            outcomes.add("loaded")
        except VectorDataError:
            outcomes.add("refused")
    assert outcomes == {"loaded", "refused"}
