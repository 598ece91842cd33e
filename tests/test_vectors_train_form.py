"""The Train form on rows of numbers (AppTest): the bundled vectors and this browser's own, a dense VAE with only the
options the config takes for vectors, and a real (tiny) job on each that finishes and is listed."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.test_vectors_upload import DATA_PAGE, browser, hostile_csv, texts, upload
from vae_core.config import NORMALIZATIONS

TRAIN_PAGE = "app_pages/train.py"


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_LAB_UPLOADS", str(tmp_path / "uploads"))
    monkeypatch.setenv("VAE_LAB_JOB_TIME_CAP_S", "2")
    return tmp_path


def train_page(at: AppTest) -> AppTest:
    at.switch_page(TRAIN_PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def on_vectors(at: AppTest, dataset: str = "vectors") -> AppTest:
    at.selectbox(key="cfg_dataset").set_value(dataset).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def finished_run(at: AppTest, runs: Path, timeout_s: float = 90) -> str:
    """Start, then rerun until the job has ended; the name of the run it saved."""
    at.button(key="train_start").click().run()
    assert not at.error, [e.value for e in at.error]
    deadline = time.monotonic() + timeout_s
    while not any("is now the loaded model" in s.value for s in at.success):
        assert time.monotonic() < deadline and not at.exception, [e.value for e in [*at.exception, *at.error]]
        time.sleep(0.3)
        at.run()
    names = [c.parent.name for c in runs.glob("*/config.json")]
    assert len(names) == 1, names
    return names[0]


def test_the_form_offers_the_bundled_vectors_with_their_defaults_and_options(server):
    at = on_vectors(train_page(browser("ann-token")))
    assert "your vectors" not in at.selectbox(key="cfg_dataset").options  # nothing uploaded yet
    assert tuple(at.selectbox(key="cfg_normalization").options) == NORMALIZATIONS["vectors"]
    assert at.selectbox(key="cfg_normalization").value == "zscore"
    assert at.selectbox(key="cfg_arch").options == ["mlp"]
    likelihoods = at.selectbox(key="cfg_likelihood").options
    assert "bernoulli" not in likelihoods and "continuous_bernoulli" not in likelihoods and "laplace" in likelihoods
    assert at.selectbox(key="cfg_likelihood").value == "gaussian_learned"
    assert at.number_input(key="cfg_latent_dim").value == 5 and at.number_input(key="cfg_hidden_dim").value == 64
    keys = {w.key for w in at.number_input} | {w.key for w in at.radio}
    assert "cfg_width" not in keys and "cfg_depth" not in keys and "cfg_image_size" not in keys  # image-only
    assert "**Works:** linear output · zscore data" in texts(at)
    at.selectbox(key="cfg_output_activation").set_value("tanh").run()
    assert "**Mismatched:** tanh output · zscore data" in texts(at)  # the bundled vectors leave (-1, 1)


def test_a_tiny_job_on_the_bundled_vectors_finishes_and_is_listed(server):
    at = on_vectors(train_page(browser("ann-token")))
    at.number_input(key="cfg_epochs").set_value(1)
    at.number_input(key="cfg_n_train").set_value(500).run()
    name = finished_run(at, server / "runs")
    at.sidebar.checkbox(key="show_short_runs").check().run()
    picker = at.sidebar.selectbox[0]
    assert picker.value.endswith(name) and any(o.startswith("you") and "vectors" in o for o in picker.options)
    assert "nats per normalized row" in texts(at)


def test_a_job_on_an_uploaded_csv_trains_in_the_private_space(server):
    at = upload(browser("bea-token"), "mine.csv", hostile_csv())
    at.button(key="vectors_train").click().run()
    at = train_page(at)  # AppTest does not follow st.switch_page
    assert at.selectbox(key="cfg_dataset").value == "your vectors"
    assert "**Your vectors:** 40 rows kept of 45" in texts(at)
    assert at.selectbox(key="cfg_output_activation").value == "linear"  # the vectors' defaults came with it
    assert at.number_input(key="cfg_n_train").value is None and "**Works:**" in texts(at)
    at.number_input(key="cfg_epochs").set_value(2).run()
    private = next((server / "uploads").iterdir()) / "runs"
    name = finished_run(at, private)
    assert not (server / "runs").exists() or not list((server / "runs").glob("*/config.json"))  # nothing public
    at.sidebar.checkbox(key="show_short_runs").check().run()
    picker = at.sidebar.selectbox[0]
    assert picker.value.endswith(name) and any(o.startswith("you, private") for o in picker.options)
    at.switch_page(DATA_PAGE).run()
    assert f"`{name}`" in texts(at)  # listed among this browser's private runs


def test_a_sweep_of_the_output_activation_on_vectors_starts(server):
    at = on_vectors(train_page(browser("cy-token")))
    at.number_input(key="cfg_n_train").set_value(300)
    at.number_input(key="cfg_epochs").set_value(1).run()
    at.selectbox(key="cfg_sweep_field").set_value("model.output_activation").run()
    assert not at.exception
    at.button(key="train_start").click().run()
    deadline = time.monotonic() + 90
    while "compare" not in at.query_params:
        assert time.monotonic() < deadline and not at.exception, [e.value for e in at.exception]
        time.sleep(0.5)
        at.run()
    assert len(list((server / "runs").glob("*/config.json"))) == 3
