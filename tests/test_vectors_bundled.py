"""The bundled vectors (seeded, generated in code), `python -m vae_core vectors [FILE]`, the README's limits table."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from vae_core.cli.main import main
from vae_core.data.vectors.bundled import CLUSTERS, FEATURES, ROWS, bundled_vectors, generated_rows, read_vectors
from vae_core.data.vectors.limits import limits_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_the_bundled_vectors_are_the_same_bytes_for_a_seed_and_new_rows_for_another():
    first, again, other = bundled_vectors(0), bundled_vectors(0), bundled_vectors(1)
    assert first.train.x.numpy().tobytes() == again.train.x.numpy().tobytes()
    assert torch.equal(first.test.labels, again.test.labels) and torch.equal(first.test.rows, again.test.rows)
    assert not torch.equal(first.train.x[:100], other.train.x[:100])
    assert (len(first.train), len(first.test), first.train.features) == (9_900, 1_100, FEATURES) and ROWS == 11_000
    assert first.train.label_names == tuple(f"cluster {c + 1}" for c in range(CLUSTERS))
    assert first.report.source == "generated" and first.report.skipped == () and first.report.refused == ()


def test_the_bundled_vectors_are_unbounded_and_lie_near_a_three_dimensional_surface():
    ranges = bundled_vectors(0).train.ranges()
    std, mean = np.array(ranges.std), np.array(ranges.mean)
    assert std.max() / std.min() > 1e4  # scales span orders of magnitude
    assert (np.abs(mean) > 3 * std).all()  # every offset far from 0 in its own scale
    x = generated_rows(0).values
    z = (x - x.mean(0)) / x.std(0)
    share = np.linalg.eigvalsh(np.cov(z.T))[::-1] / FEATURES
    assert share[:3].sum() > 0.9 and share[2] > 0.05  # three directions carry it, the third one too


def test_the_bundled_clusters_are_labels_the_features_can_tell_apart():
    read = bundled_vectors(0)
    x, labels = read.train.x.double(), read.train.labels
    z = (x - x.mean(0)) / x.std(0)
    centres = torch.stack([z[labels == c].mean(0) for c in range(CLUSTERS)])
    nearest = torch.cdist((read.test.x.double() - x.mean(0)) / x.std(0), centres).argmin(1)
    assert (nearest == read.test.labels).double().mean() > 0.8


def test_read_vectors_reads_a_file_or_with_none_the_bundled_vectors(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("a,b\n1,2\n3,5\n4,4\n")
    read = read_vectors(path)
    assert read.train.feature_names == ("a", "b") and read.part("test") is read.test
    assert read.part("train").split == "train"
    assert read_vectors(None, seed=2).train.x.numpy().tobytes() == bundled_vectors(2).train.x.numpy().tobytes()


def test_the_readme_shows_the_limits_table():
    assert limits_table() in README.read_text()


def test_the_vectors_command_says_what_it_loaded_skipped_and_refused(tmp_path, capsys):
    rows = "".join(f"{k},{(k * 7) % 10 - 4.5},c,{'ab'[k % 2]}\n" for k in range(30))
    path = tmp_path / "mine.csv"
    path.write_text(f"a,b,const,label\n{rows}9,nan,c,a\n10,11\n12,x,c,b\n")
    assert main(["vectors", str(path), "--data-seed", "3", "--test-share", "0.2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("30 rows kept of 33 (24 train, 6 test, split by a seeded share), 2 features, 2 labels; "
                      "3 rows skipped: 1 with NaN, 1 with the wrong number of cells, 1 with text in a numeric column; "
                      "1 column refused: 1 not numeric.")
    assert out[1] == "source: csv, with a header"
    assert [line.split()[0] for line in out if line.startswith("  ")] == ["a", "b", "feature", "a", "b"]
    assert "refused column 'const': column 'const' is mostly not numbers" in out
    assert out[-3:] == ["skipped line 32, column 'b' is NaN", "skipped line 33 has 2 cells; the first row has 4",
                        "skipped line 34, column 'b' holds 'x', not a number"]
    feature_a = next(line for line in out if line.startswith("  a ") and "train" not in line).split()
    r = read_vectors(path, seed=3, test_share=0.2).train.ranges()
    assert feature_a[1:] == [f"{v:.5g}" for v in (r.min[0], r.max[0], r.mean[0], r.std[0])]  # the training split's


def test_the_vectors_command_prints_one_json_object_and_with_no_file_the_bundled_summary(capsys, tmp_path):
    assert main(["vectors", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["source"], record["train"], record["test"], record["rows_read"]) == ("generated", 9_900, 1_100,
                                                                                        11_000)
    assert len(record["ranges"]["min"]) == FEATURES and record["skipped"] == [] and len(record["labels"]) == CLUSTERS
    path = tmp_path / "mine.npy"
    np.save(path, np.array([[1.0, 2.0], [np.inf, 1.0], [3.0, 5.0], [4.0, 4.0]]))
    assert main(["vectors", str(path), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["skip_counts"] == {"inf": 1} and record["labels"] == {} and record["features"] == ["x1", "x2"]
    assert record["skipped"] == [{"row": 2, "reason": "inf", "detail": "row 2, column 'x1' is inf"}]


def test_a_refused_file_is_one_line_and_status_2(tmp_path, capsys):
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros((2, 2, 2)))
    assert main(["vectors", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m vae_core: error: The .npy array is 3-D") and err.count("\n") == 1
