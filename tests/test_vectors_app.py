"""Until the pages for rows of numbers exist, the app stays an image app: a run on vectors in the runs folder is
left out of every list (a link naming it gets the notice any unknown run gets), no page breaks on it, and the
Train form offers only the image datasets and their normalizations."""
from __future__ import annotations

import pytest

from tests.helpers import open_app
from vae_core.cli.main import main as cli
from vae_core.config import DataConfig, images_only

PAGES = ("app_pages/latent.py", "app_pages/diagnostics.py", "app_pages/compare.py", "app_pages/board.py",
         "app_pages/train.py", "app_pages/labs.py", "app_pages/images.py")


@pytest.fixture(scope="module")
def vector_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    assert cli(["train", "--dataset", "vectors", "--epochs", "1", "--out", str(runs / "vector-run")]) == 0
    return runs


@pytest.mark.parametrize("page", PAGES)
def test_a_vector_run_in_the_runs_folder_breaks_no_page(vector_runs, monkeypatch, page):
    monkeypatch.setenv("VAE_LAB_RUNS", str(vector_runs))
    at = open_app(page, run="vector-run")  # asserts no exception
    assert not at.error, [e.value for e in at.error]


def test_a_link_to_a_vector_run_gets_the_unknown_run_notice_and_the_default_model(vector_runs, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(vector_runs))
    at = open_app(run="vector-run")
    assert any("“vector-run”, that this server does not have" in w.value for w in at.warning)
    assert not any("vector-run" in str(o) for o in at.sidebar.selectbox[0].options)


def test_the_train_form_offers_the_image_datasets_and_their_normalizations(monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path))
    at = open_app("app_pages/train.py")
    assert "vectors" not in at.selectbox(key="cfg_dataset").options
    assert at.selectbox(key="cfg_normalization").options == ["unit", "symmetric", "zscore"]


def test_the_test_rows_of_vectors_are_keyed_without_their_normalization():
    assert images_only(DataConfig(dataset="vectors", normalization="zscore")).normalization == "none"
    assert images_only(DataConfig(normalization="zscore")).normalization == "unit"
