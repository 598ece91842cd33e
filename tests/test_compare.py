"""The Compare page: its figures and table (vae_plots.compare_views, compare_table), its URL (ui.compare_url)
and the page itself, headless (AppTest)."""
from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from tests.helpers import save_activation_family
from ui import compare_url
from vae_core.data.datasets import load_dataset
from vae_core.model.evaluate import EvalMetrics, PerImage
from vae_core.model.paired import paired_difference, unpaired_difference
from vae_core.runs.folders import bundled_models_dir, load_run
from vae_plots import compare_table
from vae_plots import compare_views as compare

ROOT = Path(__file__).resolve().parents[1]
# A family of the zoo: z-scored sprites, fixed-σ Gaussian, the three output activations.
THREE = ("sprites-sigmoid-zscore-gaussian", "sprites-tanh-zscore-gaussian", "sprites-linear-zscore-gaussian")


@pytest.fixture(scope="module")
def runs():
    return [load_run(bundled_models_dir() / name) for name in THREE]


@pytest.fixture(scope="module")
def images(runs):
    data = dataclasses.replace(runs[0].config.data, n_test=8, download=False)
    return load_dataset(data, "test").images  # (8, 3, 32, 32) uint8


def metrics(**values) -> EvalMetrics:
    """An EvalMetrics with neutral numbers, then `values`."""
    base = dict(dataset="sprites", n_test=10, elbo_nats=-100.0, recon_nats=90.0, kl_nats=10.0, iwae_nats=-99.0,
                iwae_k=10, bits_per_dim=2.0, bits_per_dim_note="", mse=0.01, psnr_db=20.0, active_units=5,
                kl_per_dim=[1.0], posterior_var=[1.0], posterior_sigma=[0.5], posterior_collapse=False,
                frac_targets_unreachable=0.0, frac_outputs_saturated=0.0, effective_beta=1.0)
    return EvalMetrics(**{**base, **values})


def with_loss(run, **changes):
    return dataclasses.replace(run, config=dataclasses.replace(
        run.config, loss=dataclasses.replace(run.config.loss, **changes)))


# --------------------------------------------------------------------------- figures


def test_error_maps_share_one_colour_scale(runs, images):
    labels = compare.run_labels(runs)
    result = compare.reconstructions(runs, images[:4], labels)
    heatmaps = [t for t in result.errors.data if t.type == "heatmap"]
    assert {(t.zmin, t.zmax) for t in heatmaps} == {(0.0, result.zmax)}
    alone = [compare.reconstructions([r], images[:4], [label]).zmax for r, label in zip(runs, labels)]
    assert result.zmax == pytest.approx(max(alone)) and min(alone) < result.zmax  # one scale, set by the worst
    assert len(result.errors.layout.yaxis.ticktext) == 3  # a row per run
    assert len(result.grid.layout.yaxis.ticktext) == 4  # the inputs on top


def per_image(elbo, bits, psnr=None) -> PerImage:
    """Per-image values of one run, as evaluate keeps them."""
    elbo, bits = torch.tensor(elbo, dtype=torch.float64), torch.tensor(bits, dtype=torch.float64)
    psnr = torch.full_like(elbo, 20.0) if psnr is None else torch.tensor(psnr, dtype=torch.float64)
    return PerImage(elbo, None, bits, None, psnr)


def measured(p: PerImage, **values) -> EvalMetrics:
    """EvalMetrics whose means are those of the per-image values."""
    return metrics(elbo_nats=p.elbo.mean().item(), bits_per_dim=p.bits.mean().item(), psnr_db=p.psnr.mean().item(),
                   iwae_nats=None, per_image=p, **values)


HARD_AND_EASY = [-120.0, -80.0, -130.0, -70.0, -110.0, -90.0]  # images of very different difficulty


def test_best_is_marked_in_each_columns_direction(runs):
    two = [runs[1], with_loss(runs[1], beta=2.0)]  # one normalization, one likelihood: nats compare
    a = per_image([v + 5 for v in HARD_AND_EASY], [3.0, 3.1, 2.9, 3.0, 3.05, 2.95])
    b = per_image(HARD_AND_EASY, [1.5, 1.6, 1.4, 1.5, 1.55, 1.45])
    table = compare_table.metrics_table(two, [measured(a, frac_outputs_saturated=0.2, effective_beta=2.0),
                                              measured(b, frac_outputs_saturated=0.1)], ["a", "b"])
    best = {c.title: b for c, b in zip(table.columns, table.best)}
    assert best["ELBO (nats)"] == {0} and best["bits/dim"] == {1}
    assert best["outputs saturated"] == frozenset()  # fewer saturated outputs is not better in itself
    assert best["equivalent β"] == frozenset()  # a choice, not a result
    assert best["PSNR (dB)"] == frozenset()  # equal values: no best
    assert (table.cells[0][0].endswith(compare_table.BEST_MARK)
            and not table.cells[1][0].endswith(compare_table.BEST_MARK))
    assert table.note == ""
    assert compare_table.best_rows([None, float("nan"), 3.0, 1.0], "higher") == {2}


def test_a_difference_within_two_paired_standard_errors_has_no_winner(runs):
    two = [runs[1], with_loss(runs[1], beta=2.0)]
    noisy = [v + d for v, d in zip(HARD_AND_EASY, (3.0, -2.0, 2.5, -1.5, 2.0, -2.5))]  # +0.25 on average, ± 0.9
    table = compare_table.metrics_table(two, [measured(per_image(noisy, [2.0] * 6)),
                                              measured(per_image(HARD_AND_EASY, [2.0] * 6))], ["a", "b"])
    assert table.best[0] == frozenset()
    assert "not distinguishable" in table.note and "paired over 6 images" in table.note
    # Far apart in spread over images, yet 5 nats apart on every image: the paired difference settles it.
    shifted = [v + 5 for v in HARD_AND_EASY]
    diff = paired_difference(torch.tensor(shifted), torch.tensor(HARD_AND_EASY))
    assert diff.mean == pytest.approx(5.0) and diff.se == pytest.approx(0.0, abs=1e-6) and diff.distinguishable
    spread = statistics.stdev(HARD_AND_EASY) / math.sqrt(6)
    assert not unpaired_difference(-95.0, spread, -100.0, spread).distinguishable


def test_a_column_without_an_uncertainty_marks_no_best(runs):
    two = [runs[1], with_loss(runs[1], beta=2.0)]
    table = compare_table.metrics_table(two, [metrics(elbo_nats=-90.0), metrics(elbo_nats=-95.0)], ["a", "b"])
    assert table.best[0] == frozenset() and "no standard error is known" in table.note


def test_nats_are_not_ranked_across_normalizations(runs):
    bernoulli = load_run(bundled_models_dir() / "sprites-sigmoid-unit-bernoulli")  # unit data, no bits/dim
    table = compare_table.metrics_table([bernoulli, runs[1]], [metrics(elbo_nats=-90.0, bits_per_dim=None),
                                                   metrics(elbo_nats=-95.0)], ["a", "b"])
    assert table.best[0] == frozenset() and "normalized" in table.note
    assert table.cells[0][2] == "—"  # a Bernoulli has no bits/dim
    styled = table.styled().to_html()
    assert compare.RUN_COLORS[0].lower() in styled.lower()


def test_one_colour_per_run_on_every_figure(runs, images):
    labels = compare.run_labels(runs)
    expected = dict(zip(labels, compare.RUN_COLORS))
    curves = compare.training_curves(runs, labels)
    assert {t.name: t.line.color for t in curves.data} == expected
    assert len(curves.data) == 3 * len(runs)
    ranges = compare.range_histograms(runs, images, labels)
    assert {t.name: t.line.color for t in ranges.data if t.type == "scatter"} == expected
    for fig, label in zip(compare.traversals(runs, images[0], labels), labels):
        assert expected[label] in fig.layout.title.text
    rows = compare.reconstructions(runs, images[:2], labels).errors.layout.yaxis.ticktext
    assert all(color in row for row, color in zip(rows, compare.RUN_COLORS))


def test_labels_are_short_and_distinct(runs):
    tanh = runs[1]
    sigmoid = dataclasses.replace(tanh, config=dataclasses.replace(
        tanh.config, model=dataclasses.replace(tanh.config.model, output_activation="sigmoid")))
    assert compare.run_labels([tanh, sigmoid]) == ["tanh/zscore/gaussian", "sigmoid/zscore/gaussian"]
    assert compare.run_labels([tanh, with_loss(tanh, beta=2.0)]) == ["tanh/zscore/gaussian · beta=1",
                                                                     "tanh/zscore/gaussian · beta=2"]
    twin = dataclasses.replace(tanh, path=tanh.path.with_name("copy-abcd"))
    assert compare.run_labels([tanh, twin])[1].endswith("#abcd")


def test_a_links_selection_is_checked():
    known, fallback = ["a", "b", "c", "d", "e"], ("a", "b")
    assert compare_url.parse_selection("a, c,a", known, fallback) == compare_url.Selection(("a", "c"), (), "")
    too_many = compare_url.parse_selection("a,b,c,d,e", known, fallback)
    assert too_many.names == ("a", "b", "c", "d") and "“e”" in too_many.notice
    bogus = compare_url.parse_selection("x" * 500 + ",b", known, fallback)
    assert bogus.names == fallback and "default" in bogus.notice and len(bogus.notice) < 300


# --------------------------------------------------------------------------- the page


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def open_compare(**params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page("app_pages/compare.py")
    return at.run()


def chart_json(at: AppTest, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id and key in c.proto.id)
    return json.loads(chart.proto.spec)


def picked(at: AppTest) -> list[str]:
    return [Path(p).name for p in at.multiselect(key="compare_pick").value]


def test_a_link_opens_three_runs_side_by_side(runs_dir):
    at = open_compare(compare=",".join(THREE))
    assert not at.exception, [e.value for e in at.exception]
    assert picked(at) == list(THREE) and not at.warning
    assert len(chart_json(at, "compare_errors")["layout"]["yaxis"]["ticktext"]) == 3
    assert len(chart_json(at, "compare_curves")["data"]) == 9
    assert len(at.table[0].value) == 3
    assert sum("compare_traversal" in c.proto.id for c in at.get("plotly_chart")) == 3


def test_a_bogus_name_gets_a_notice_and_the_page_still_renders(runs_dir):
    at = open_compare(compare=f"no-such-run,{THREE[0]},{THREE[1]}")
    assert not at.exception, [e.value for e in at.exception]
    assert any("no-such-run" in w.value for w in at.warning)
    assert picked(at) == list(THREE[:2])
    assert at.query_params["compare"] in (f"{THREE[0]},{THREE[1]}", [f"{THREE[0]},{THREE[1]}"])  # the link, fixed
    assert len(at.get("plotly_chart")) >= 4


@pytest.fixture
def family(runs_dir) -> dict[str, Path]:
    return save_activation_family(runs_dir)


def test_the_family_button_selects_the_loaded_runs_family(family):
    at = open_compare(run="tiny-tanh", compare=",".join(THREE[:2]))
    at.button(key="compare_family").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert picked(at) == ["tiny-sigmoid", "tiny-tanh"]
    assert at.query_params["compare"] in ("tiny-sigmoid,tiny-tanh", ["tiny-sigmoid,tiny-tanh"])
    assert any("saved its training curves" in c.value for c in at.caption)  # untrained: no curves to overlay


def test_curves_can_be_read_for_every_run(runs):
    """A run whose nats are thousands of times another's would flatten it on one axis: per run, each fills it."""
    bernoulli = load_run(bundled_models_dir() / "sprites-sigmoid-unit-continuous_bernoulli")
    mixed = [bernoulli, runs[0]]
    assert compare.default_curve_scale(mixed) == "per run"
    fig = compare.training_curves(mixed, ["cb", "z"], "per run")
    for trace in fig.data:
        y = [v for v in trace.y if math.isfinite(v)]
        assert min(y) == pytest.approx(0.0) and max(y) == pytest.approx(1.0)  # each run spans its own range
        assert "%{customdata" in trace.hovertemplate  # the hover keeps its nats
    elbo = next(t for t in fig.data if t.yaxis == "y3" and t.name == "cb")
    assert list(elbo.customdata) == bernoulli.metrics["history"]["elbo_nats"]
    shared = compare.training_curves(mixed, ["cb", "z"], "shared")
    assert list(next(t for t in shared.data if t.yaxis == "y3" and t.name == "cb").y) == list(elbo.customdata)
