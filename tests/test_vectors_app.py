"""Runs on rows of numbers in the app: the bundled vectors' zoo is in the picker, every page opens a vector run
(bundled, or trained on a person's CSV) without an error, and the family toggle flips among vector runs only."""
from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import open_app
from vae_core.cli.main import main as cli
from vae_core.config import DataConfig, images_only
from vae_core.zoo import zoo_configs

PAGES = ("app_pages/reconstructions.py", "app_pages/latent.py", "app_pages/diagnostics.py", "app_pages/compare.py",
         "app_pages/board.py", "app_pages/train.py", "app_pages/labs.py", "app_pages/images.py")
BUNDLED = "vectors-linear-zscore-gaussian_learned"


@pytest.fixture(scope="module")
def csv_run(tmp_path_factory):
    """A run on a person's CSV: unbounded columns, a label column (its file is theirs: private, never shared)."""
    root = tmp_path_factory.mktemp("csv")
    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 2))
    x = np.c_[z @ rng.normal(size=(2, 4)) * [1, 10, 100, 1000] + [0, -50, 400, 9000], z[:, 0] > 0]
    np.savetxt(root / "rows.csv", x, delimiter=",", header="a,b,c,d,label", comments="", fmt="%.6g")
    assert cli(["train", "--dataset", "vectors", "--vectors", str(root / "rows.csv"), "--epochs", "2",
                "--out", str(root / "runs" / "csv-run")]) == 0
    return root / "runs"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_opens_a_bundled_vector_run(page):
    at = open_app(page, run=BUNDLED)  # asserts no exception
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("page", PAGES[:4])
def test_every_page_that_shows_a_run_opens_one_on_a_persons_csv(csv_run, monkeypatch, page):
    monkeypatch.setenv("VAE_LAB_RUNS", str(csv_run))
    at = open_app(page, run="csv-run")
    assert not at.error, [e.value for e in at.error]
    assert at.session_state["run_path"] == str(csv_run / "csv-run")


def test_the_picker_offers_the_bundled_vectors_zoo_by_name():
    at = open_app(run=BUNDLED)
    labels = [str(o) for o in at.sidebar.selectbox[0].options]
    for entry in zoo_configs("vectors"):
        key = entry.key
        assert f"★ vectors {key.output_activation}/{key.normalization}/{key.likelihood}" in labels


def test_the_family_toggle_flips_among_vector_runs_only():
    at = open_app(run=BUNDLED)
    at.sidebar.button_group(key="toggle_model_output_activation").set_value("tanh").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["run_path"].endswith("vectors-tanh-zscore-gaussian_learned")
    likelihoods = at.sidebar.button_group(key="toggle_loss_likelihood").options
    assert "bernoulli" not in " ".join(map(str, likelihoods))  # a density on [0, 1] is no sibling of a vector run
    at.sidebar.button_group(key="toggle_data_normalization").set_value("none").run()
    assert at.session_state["run_path"].endswith("vectors-tanh-zscore-gaussian_learned")  # none is not bundled
    assert "sweep" in " ".join(i.value for i in at.sidebar.info)


def test_the_test_rows_of_vectors_are_keyed_without_their_normalization():
    assert images_only(DataConfig(dataset="vectors", normalization="zscore")).normalization == "none"
    assert images_only(DataConfig(normalization="zscore")).normalization == "unit"
