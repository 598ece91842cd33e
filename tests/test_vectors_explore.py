"""The Reconstructions and Latent space pages of a run on vectors (AppTest): they draw a run on the bundled vectors and
one on a person's CSV without an exception, their address-bound widgets change what is drawn, the numbers they show
are the model's (computed again here from the run's weights and rows), and a person's run keeps its figures in its
own session."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import torch

from tests.helpers import open_app
from vae_core.cli.main import main as cli
from vae_core.data.datasets import load_dataset
from vae_core.runs.folders import load_run

RECON, LATENT = "app_pages/reconstructions.py", "app_pages/latent.py"
VIEWS = ("private_views_vector_scatter", "private_views_vector_traversal", "private_views_vector_map")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run on the bundled vectors (latent 5, a learned σ) and one on a CSV of a person's (latent 2, σ per feature)."""
    root = tmp_path_factory.mktemp("runs")
    assert cli(["train", "--dataset", "vectors", "--epochs", "1", "--out", str(root / "bundled")]) == 0
    csv = _write_csv(tmp_path_factory.mktemp("upload") / "mine.csv")
    assert cli(["train", "--dataset", "vectors", "--vectors", str(csv), "--epochs", "1", "--latent-dim", "2",
                "--likelihood", "gaussian_feature", "--out", str(root / "mine")]) == 0
    return root


def _write_csv(path, rows: int = 300):
    """Three features on very different scales and a label column."""
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, rows)
    z = rng.normal(size=rows) + 2 * label
    x = np.stack([z, 1000 * z + rng.normal(size=rows), 0.01 * z ** 2 + 0.001 * rng.normal(size=rows)], 1)
    lines = ["a,b,c,label"] + [f"{r[0]:.6f},{r[1]:.6f},{r[2]:.6f},{'ab'[k]}" for r, k in zip(x, label)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def app(runs, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(runs))
    return lambda page, run: open_app(page, run=run)


def _figure(at, key: str) -> dict:
    """The plotly figure the page drew under that chart key."""
    charts = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert len(charts) == 1, [c.proto.id for c in at.get("plotly_chart")]
    return json.loads(charts[0].proto.spec)


def _array(value) -> np.ndarray:
    """A figure's numbers: Plotly writes a numpy array as base64 ({"dtype", "bdata", "shape"}), a list as it is."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        return flat.reshape([int(n) for n in value["shape"].split(",")]) if "shape" in value else flat
    return np.asarray(value)


def _legend(at) -> list[str]:
    """The map's legend: its labels (the click targets under the points have none)."""
    return [d["name"] for d in _figure(at, "vmap_chart")["data"] if d["name"] != "click"]


def _model_rows(path):
    run = load_run(path)
    return run, load_dataset(run.config.data, "test")


def _decoded(run, z: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return run.normalizer.inverse(run.model.eval().decode(z).double()).numpy()


def test_the_reconstructions_page_shows_each_features_rmse_as_the_model_makes_it(app, runs):
    at = app(RECON, "bundled")
    assert not at.error, [e.value for e in at.error]
    run, rows = _model_rows(runs / "bundled")
    with torch.no_grad():
        mu = run.model.eval().encode(run.normalizer.forward(rows.x))[0]
    rmse = np.sqrt(((_decoded(run, mu) - rows.x.double().numpy()) ** 2).mean(0))
    table = at.dataframe[0].value
    assert list(table["feature"]) == list(rows.feature_names)
    np.testing.assert_allclose(table["RMSE (raw)"], rmse, rtol=1e-4)
    np.testing.assert_allclose(table["RMSE (raw)"], run.metrics["test"]["feature_rmse"], rtol=1e-4)
    np.testing.assert_allclose(table["RMSE / std"], rmse / rows.x.double().numpy().std(0), rtol=1e-4)
    sigma = run.model.log_sigma.exp().item() * np.array(run.normalizer.scale)  # one learned σ, in raw units
    np.testing.assert_allclose(table["decoder σ (raw)"], sigma, rtol=1e-4)


def test_the_reconstructions_test_metrics_are_nats_per_raw_row_without_bits_per_dim(app, runs):
    at = app(RECON, "bundled")
    cards = {m.label: m.value for m in at.metric}
    test = load_run(runs / "bundled").metrics["test"]
    assert cards["ELBO"] == f"{test['elbo_nats']:.1f}" and cards["Log-Jacobian"] == f"{test['log_jacobian_nats']:.1f}"
    assert "Bits/dim" not in cards and "PSNR" not in cards
    assert any("Bits/dim is not reported for vectors: there are no 8-bit bins" in c.value for c in at.caption)


def test_the_reconstructions_widgets_change_the_view(app):
    at = app(RECON, "bundled")
    assert len(_array(_figure(at, "vrecon_scatter")["data"][1]["x"])) == 500  # the first panel's dots: a test row each
    at.slider(key="vrecon_n").set_value(50).run()
    assert len(_array(_figure(at, "vrecon_scatter")["data"][1]["x"])) == 50
    assert len(_figure(at, "vrecon_profiles")["data"]) == 6  # three rows, x and x̂ each
    at.slider(key="vrecon_rows").set_value(5).run()
    assert [d["name"] for d in _figure(at, "vrecon_profiles")["data"]][-2:] == ["#4 x", "#4 x̂"]
    first = _array(_figure(at, "vsamples_chart")["data"][2]["y"])
    at.number_input(key="vsamples_seed").set_value(7).run()
    assert not np.allclose(_array(_figure(at, "vsamples_chart")["data"][2]["y"]), first)  # another draw z ~ q(z|x)
    assert not at.exception


def test_the_traversal_heatmap_is_each_dimensions_change_as_the_model_decodes_it(app, runs):
    at = app(LATENT, "bundled")
    assert not at.error, [e.value for e in at.error]
    run, rows = _model_rows(runs / "bundled")
    heat = _figure(at, "vtraverse_heat")["data"][0]
    top = int(re.match(r"z(\d+)", heat["y"][0]).group(1))  # the dimension with the most KL first
    assert top == int(np.argmax(run.metrics["test"]["kl_per_dim"]))
    with torch.no_grad():
        z = run.model.eval().encode(run.normalizer.forward(rows.x[:1]))[0].repeat(2, 1)
    z[:, top] = torch.tensor([-3.0, 3.0])  # the default range, ±3 prior std
    ends = _decoded(run, z)
    np.testing.assert_allclose(_array(heat["z"])[0], (ends[1] - ends[0]) / rows.x.double().numpy().std(0), rtol=1e-3,
                               atol=1e-6)


def test_the_latent_widgets_change_the_view(app):
    at = app(LATENT, "bundled")
    dim = at.selectbox(key="vtraverse_dim").options[1]  # "z2": the second most KL
    at.selectbox(key="vtraverse_dim").set_value(int(dim[1:])).run()
    assert all(d["name"].startswith(f"{dim} = ") for d in _figure(at, "vtraverse_lines")["data"])
    prior = _figure(at, "vprior_chart")["data"][0]["text"]
    at.number_input(key="vprior_seed").set_value(3).run()
    assert _figure(at, "vprior_chart")["data"][0]["text"] != prior
    assert _figure(at, "vmap_chart")["layout"]["xaxis"]["title"]["text"].startswith("PC1")
    at.button_group(key="vmap_axes").set_value("kl").run()
    assert re.fullmatch(r"z\d", _figure(at, "vmap_chart")["layout"]["xaxis"]["title"]["text"])
    assert not at.exception


def test_the_map_says_each_dimensions_range_of_mu_as_evaluated_and_colours_by_label(app, runs):
    at = app(LATENT, "bundled")
    test = load_run(runs / "bundled").metrics["test"]
    note = next(c.value for c in at.caption if "μ over the test rows, per dimension" in c.value)
    for d, (lo, hi) in enumerate(zip(test["posterior_mu_min"], test["posterior_mu_max"])):
        assert f"z{d} {lo:.2f} to {hi:.2f}" in note
    assert _legend(at) == ["cluster 1", "cluster 2", "cluster 3", "cluster 4"]


def test_a_persons_vectors_draw_both_pages_and_keep_their_figures_in_the_session(app, runs):
    run = load_run(runs / "mine")
    with torch.no_grad():  # one σ per feature, whatever z is
        sigma = run.model.eval().decode_log_sigma(torch.zeros(1, 2)).exp().double().numpy()
    np.testing.assert_allclose(app(RECON, "mine").dataframe[0].value["decoder σ (raw)"],
                               sigma * np.array(run.normalizer.scale), rtol=1e-4)
    for page in (RECON, LATENT):
        at = app(page, "mine")
        assert not at.error, [e.value for e in at.error]
        assert "private_rows" in at.session_state
        kept = [k for k in VIEWS if k in at.session_state]
        assert kept == ([VIEWS[0]] if page == RECON else list(VIEWS))  # the app opens on Reconstructions first
    assert _legend(at) == ["a", "b"]
    assert "vmap_axes" not in at.query_params  # two dimensions: the map draws them as they are


def test_a_run_on_public_vectors_keeps_no_figure_in_the_session(app):
    at = app(LATENT, "bundled")
    assert not [k for k in VIEWS if k in at.session_state]
