"""Diagnostics, Compare and the class board on runs on vectors, headless (AppTest): the numbers the pages show are
those of evaluate_vectors and vae_core.model.paired on the same test rows, computed here again."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.helpers import open_app
from ui.parts.vectors.diagnostics import row_choices
from vae_core.cli.main import main as cli
from vae_core.data.datasets import load_dataset
from vae_core.model.evaluate_vectors import VECTORS_BPD_NOTE, evaluate_vectors
from vae_core.model.paired import paired_difference
from vae_core.runs.evaluations import COMPARE, DIAGNOSTICS_DENSITY
from vae_core.runs.folders import load_run
from vae_plots.views import run_steps

# Three runs on the bundled vectors, 1 epoch each (~3 s): the loss of the linear one, a tanh decoder on the same
# z-scored rows (unbounded: features out of its reach), a linear one on z-scores halved (another normalization),
# and one whose test rows differ (another data seed splits the rows).
RUNS = {"vec-linear": [], "vec-tanh": ["--output-activation", "tanh"], "vec-half": ["--data-scale", "0.5"],
        "vec-seed3": ["--data-seed", "3"]}
SAME_ROWS = ("vec-linear", "vec-tanh", "vec-half")


@pytest.fixture(scope="module")
def vector_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, flags in RUNS.items():
        assert cli(["train", "--dataset", "vectors", "--epochs", "1", "--quiet", "--out", str(root / name),
                    *flags]) == 0
    return root


@pytest.fixture(autouse=True)
def runs_here(vector_runs, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(vector_runs))


def evaluated(root, name, k):
    """evaluate_vectors on every test row of the run, as the pages call it."""
    run = load_run(root / name)
    rows = load_dataset(dataclasses.replace(run.config.data, n_test=None), "test")
    return evaluate_vectors(run.model, run.normalizer, rows.x, rows.feature_names, config=run.config,
                            steps=run_steps(run) or 0, iwae_k=k)


def metric(at, label):
    return next(m for m in at.metric if m.label == label)


def test_diagnostics_shows_evaluate_vectors_numbers_per_raw_row(vector_runs):
    at = open_app("app_pages/diagnostics.py", run="vec-linear")
    assert not at.error, [e.value for e in at.error]
    k = DIAGNOSTICS_DENSITY.iwae_k
    m = evaluated(vector_runs, "vec-linear", k)
    assert at.select_slider(key="rows_n").value == m.n_test == 1100  # every test row of the bundled vectors
    assert metric(at, "ELBO").value == f"{m.elbo_nats:.2f}"
    assert metric(at, "ELBO").delta == f"± {m.elbo_mc_se:.2f} Monte-Carlo"
    assert metric(at, f"IWAE bound, k = {k}").value == f"{m.iwae_nats:.2f}"
    assert metric(at, "−log p(row|z)").value == f"{m.recon_nats:.2f}"
    assert metric(at, "Log-Jacobian").value == f"{m.log_jacobian_nats:.2f}"
    assert metric(at, "Bits/dim").value == "—"
    captions = " ".join(c.value for c in at.caption)
    assert VECTORS_BPD_NOTE in captions and f"ELBO ± {m.elbo_se:.2f}" in captions
    assert "β = 1 on 12 features" in captions
    assert metric(at, "Active units").value == f"{m.active_units} / 5"
    assert not any("leave" in w.value for w in at.warning)  # a linear output reaches every value


def test_diagnostics_k_and_rows_come_from_the_link(vector_runs):
    at = open_app("app_pages/diagnostics.py", run="vec-linear", iwae_k="100", rows_n="500")
    run = load_run(vector_runs / "vec-linear")
    rows = load_dataset(dataclasses.replace(run.config.data, n_test=None), "test")
    m = evaluate_vectors(run.model, run.normalizer, rows.x[:500], rows.feature_names, config=run.config,
                         steps=run_steps(run) or 0, iwae_k=100)  # the first 500 test rows
    assert at.select_slider(key="rows_n").value == 500
    assert metric(at, "IWAE bound, k = 100").value == f"{m.iwae_nats:.2f}"
    assert metric(at, "ELBO").value == f"{m.elbo_nats:.2f}"


def test_a_tanh_decoder_on_zscored_rows_names_the_features_out_of_reach(vector_runs):
    at = open_app("app_pages/diagnostics.py", run="vec-tanh")
    m = evaluated(vector_runs, "vec-tanh", 0)
    assert m.features_out_of_reach
    assert metric(at, "Targets out of the output's reach").value == f"{m.frac_targets_unreachable:.2%}"
    warning = next(w.value for w in at.warning if "leave (-1, 1)" in w.value)
    assert f"“{m.features_out_of_reach[0]}”" in warning and "tanh output can never reproduce" in warning


def test_row_choices_end_with_every_row():
    assert row_choices(1100) == [100, 200, 500, 1000, 1100]
    assert row_choices(40) == [40]


def test_compare_pairs_the_elbo_row_by_row_across_normalizations(vector_runs):
    at = open_app("app_pages/compare.py", run="vec-linear", compare="vec-linear,vec-half")
    assert not at.error, [e.value for e in at.error]
    a, b = (evaluated(vector_runs, n, COMPARE.iwae_k) for n in ("vec-linear", "vec-half"))
    best, other = (a, b) if a.elbo_nats > b.elbo_nats else (b, a)
    elbo = paired_difference(other.per_row.elbo, best.per_row.elbo)
    iwae = paired_difference(other.per_row.iwae, best.per_row.iwae)
    bounds = at.table[0].value
    shown = bounds["ELBO vs best (paired)"].tolist()
    assert "best" in shown and any(cell.startswith(elbo.text(3)) for cell in shown)
    assert any(cell.startswith(iwae.text(3)) for cell in bounds["IWAE vs best (paired)"])
    terms = at.table[1].value
    assert sorted(terms["log-Jacobian"]) == sorted(f"{m.log_jacobian_nats:.3f}" for m in (a, b))
    assert a.log_jacobian_nats != b.log_jacobian_nats  # two normalizations, one comparison in nats per raw row
    assert [c.key for c in at.get("plotly_chart")] == ["compare_profiles", "compare_rmse"]


def test_a_difference_within_two_standard_errors_is_not_settled(vector_runs):
    at = open_app("app_pages/compare.py", run="vec-linear", compare="vec-linear,vec-tanh")
    a, b = (evaluated(vector_runs, n, COMPARE.iwae_k) for n in ("vec-linear", "vec-tanh"))
    d = paired_difference(b.per_row.elbo, a.per_row.elbo) if a.elbo_nats > b.elbo_nats else \
        paired_difference(a.per_row.elbo, b.per_row.elbo)
    verdict = next(m.value for m in at.markdown if m.value.startswith("Highest ELBO"))
    assert ("not settled" in verdict) == (not d.distinguishable)


def test_runs_on_images_and_on_vectors_are_refused_with_the_reason(vector_runs):
    at = open_app("app_pages/compare.py", run="vec-linear", compare="vec-linear,sprites-sigmoid-unit-gaussian")
    message = " ".join(e.value for e in at.error)
    assert "Runs on images (sprites-sigmoid-unit-gaussian) and runs on vectors (vec-linear) cannot be compared" \
        in message and "Pick runs of one kind" in message
    assert not at.table and not at.get("plotly_chart")


def test_runs_on_different_vectors_are_refused(vector_runs):
    at = open_app("app_pages/compare.py", run="vec-linear", compare="vec-linear,vec-seed3")
    message = " ".join(e.value for e in at.error)
    assert "read different vectors" in message and "seed 3" in message and "Pick runs trained on the same" in message


def test_compare_opens_on_runs_on_the_same_vectors(vector_runs):
    at = open_app("app_pages/compare.py", run="vec-half")
    assert not at.error
    picked = [Path(p).name for p in at.multiselect(key="compare_pick").value]
    assert "vec-half" in picked and len(picked) >= 2 and set(picked) <= set(SAME_ROWS)  # its family: the same rows


def test_the_board_ranks_vector_runs_by_nats_per_raw_row(vector_runs):
    at = open_app("app_pages/board.py")
    titles = [h.value for h in at.subheader]
    assert len(titles) == 2 and any("seed 3" in t for t in titles)  # other test rows: a leaderboard of their own
    table = at.table[next(i for i, t in enumerate(titles) if "seed 0" in t)].value
    assert len(table) == len(SAME_ROWS)
    values = {n: evaluated(vector_runs, n, 0) for n in SAME_ROWS}
    best = max(values, key=lambda n: values[n].elbo_nats)
    assert table["ELBO, nats/row"].iloc[0] == f"{values[best].elbo_nats:.3f} ± {values[best].elbo_mc_se:.3f}"
    for name, m in values.items():
        if name != best:
            d = paired_difference(m.per_row.elbo, values[best].per_row.elbo)
            assert any(cell.startswith(d.text(3)) for cell in table["vs best (paired)"])
