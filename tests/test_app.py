"""The Streamlit app, headless (AppTest): every page renders, the sidebar switches models, and a short
training driven through the Train page's widgets ends as the loaded model."""
import base64
import json
import time
from pathlib import Path

from types import SimpleNamespace

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import ui.jobs
from tests.helpers import save_activation_family
from ui.state import DEFAULT_BUNDLED
from vae_core.runs.folders import bundled_models_dir, load_run

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["app_pages/reconstructions.py", "app_pages/latent.py", "app_pages/train.py"]


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    if page != PAGES[0]:
        at.switch_page(page).run()
    return at


def figure_json(at: AppTest, key: str) -> dict:
    """The Plotly figure a chart element holds (what the browser would draw)."""
    chart = next(c for c in at.get("plotly_chart") if c.proto.id and key in c.proto.id)
    return json.loads(chart.proto.spec)


def values(array) -> np.ndarray:
    """Plotly's JSON holds arrays as lists or as base64 typed arrays ({"dtype", "bdata"})."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
    return np.asarray(array)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_the_bundled_model(page):
    at = open_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) >= 1
    assert at.session_state["run_path"].endswith(DEFAULT_BUNDLED)


def test_reconstruction_page_shows_inputs_recons_and_metrics():
    at = open_page(PAGES[0])
    grid = figure_json(at, "recon_grid")
    assert grid["data"][0]["type"] == "image" and grid["data"][0]["source"].startswith("data:image/png;base64,")
    labels = [m.label for m in at.metric]
    assert "ELBO" in labels and "Active units" in labels
    at.slider(key="recon_n").set_value(6).run()
    assert not at.exception


def test_traversal_slider_changes_the_traversal():
    at = open_page(PAGES[1])
    before = figure_json(at, "traversal_chart")["data"][0]["source"]
    at.slider(key="traverse_range").set_value(1.0).run()
    after = figure_json(at, "traversal_chart")
    assert after["data"][0]["source"] != before
    assert "+1σ" in after["layout"]["xaxis"]["ticktext"]
    assert not at.exception


def test_sidebar_switches_to_another_bundled_model():
    at = open_page(PAGES[0])  # AppTest drops app.py's sidebar after switch_page; a browser keeps it
    box = at.sidebar.selectbox(key="model_choice")
    tanh = next(label for label in box.options if "tanh" in label)
    assert tanh.startswith("★ tanh/")  # bundled: activation/normalization/likelihood
    box.set_value(str(bundled_models_dir() / "sprites-tanh-symmetric-gaussian_learned")).run()
    assert "tanh" in at.session_state["run_path"]
    assert not at.exception and len(at.get("plotly_chart")) >= 1
    at.switch_page(PAGES[1]).run()
    assert "tanh" in at.session_state["run_path"] and not at.exception


def test_a_refused_combination_disables_start_and_says_why():
    at = open_page(PAGES[2])
    at.selectbox(key="cfg_normalization").select("symmetric").run()
    assert any("Refused" in e.value and "[0, 1]" in e.value for e in at.error)
    assert at.button(key="train_start").disabled


def test_a_mismatched_combination_warns_but_may_train():
    at = open_page(PAGES[2])
    at.selectbox(key="cfg_likelihood").select("gaussian").run()
    at.selectbox(key="cfg_normalization").select("zscore").run()
    at.selectbox(key="cfg_output_activation").select("tanh").run()
    assert any("Mismatched" in w.value and "never be reconstructed" in w.value for w in at.warning)
    assert not at.button(key="train_start").disabled


def test_a_short_training_through_the_ui_becomes_the_loaded_model(runs_dir):
    at = open_page(PAGES[2])
    at.number_input(key="cfg_n_train").set_value(256)
    at.number_input(key="cfg_width").set_value(8)
    at.number_input(key="cfg_epochs").set_value(2)
    at.number_input(key="cfg_time_budget").set_value(0).run()  # Start's callback takes the form as drawn
    at.button(key="train_start").click().run()
    deadline = time.monotonic() + 120
    while not any("is now the loaded model" in s.value for s in at.success):  # AppTest fires no run_every timers
        assert time.monotonic() < deadline, "training did not finish in 120 s"
        time.sleep(0.5)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    run_dirs = list(runs_dir.iterdir())
    assert len(run_dirs) == 1 and at.session_state["run_path"] == str(run_dirs[0])
    assert any("finished" in s.value for s in at.success)
    curves = figure_json(at, "train_curves")
    assert values(curves["data"][0]["x"]).tolist() == list(range(1, 9))  # 2 epochs x 256/64 steps
    at.switch_page(PAGES[0]).run()
    assert not at.exception and at.session_state["run_path"] == str(run_dirs[0])
    assert len(at.get("plotly_chart")) >= 3


def test_diagnostics_page_measures_range_iwae_and_posterior():
    at = open_page("app_pages/diagnostics.py")
    assert not at.exception, [e.value for e in at.exception]
    labels = {m.label: m.value for m in at.metric}
    assert "Targets out of the output's reach" in labels and labels["Targets out of the output's reach"].endswith("%")
    iwae = next(v for k, v in labels.items() if k.startswith("IWAE bound"))
    elbo_card = next(m for m in at.metric if m.label == "ELBO")
    elbo, elbo_se = elbo_card.value.replace(",", ""), elbo_card.delta.split()[1]  # "± 0.28 Monte-Carlo"
    assert float(iwae.replace(",", "")) >= float(elbo) and float(elbo_se) > 0  # the IWAE bound is never below the ELBO
    assert "Active units" in labels
    assert figure_json(at, "range_hist")["data"][0]["type"] == "bar"


def test_the_form_shows_the_equivalent_beta_of_its_reductions():
    at = open_page(PAGES[2])
    at.selectbox(key="cfg_likelihood").select("gaussian").run()
    at.number_input(key="cfg_sigma").set_value(0.707).run()
    at.number_input(key="cfg_beta").set_value(100.0).run()
    at.selectbox(key="cfg_kl_reduction").select("mean").run()
    # sum of squared errors + 100 x the KL averaged over 10 dimensions = the ELBO with beta 10
    info = next(i.value for i in at.info if "Equivalent β" in i.value)
    assert "Equivalent β of the proper ELBO: 10**" in info and "σ = 2.236" in info
    # the seed loss: mse_loss(reduction="sum") over the batch too, KL averaged: beta 100 / (64 * 10) = 0.1562
    at.selectbox(key="cfg_recon_batch_reduction").select("sum").run()
    info = next(i.value for i in at.info if "Equivalent β" in i.value)
    assert "Equivalent β of the proper ELBO: 0.1562**" in info and "then summed over the batch of 64" in info
    code = at.get("code")[0].proto.code_text
    assert 'recon = F.mse_loss(x_hat, x, reduction="sum")' in code and "kl = kl.mean()" in code
    assert "beta = 0.1562" in code


def test_zscore_tanh_says_what_share_of_targets_is_out_of_reach():
    at = open_page(PAGES[2])
    at.selectbox(key="cfg_likelihood").select("gaussian").run()
    at.selectbox(key="cfg_normalization").select("zscore").run()
    at.selectbox(key="cfg_output_activation").select("tanh").run()
    warning = next(w.value for w in at.warning if "Mismatched" in w.value)
    share = float(warning.split("**")[3].split("%")[0])  # "... **4.9% of the normalized target values lie outside"
    assert 1 < share < 20
    assert "never be reconstructed" in warning


def test_a_run_whose_dataset_is_missing_is_shown_on_the_test_images_it_carries(runs_dir, tmp_path):
    import torch

    from vae_core.config import DataConfig, LossConfig, ModelConfig, TrainConfig
    from vae_core.data.base import ImageDataset
    from vae_core.model.vae import build_model
    from vae_core.data.normalize import fit_normalizer
    from vae_core.runs.folders import RunRecord, save_run
    from vae_core.training.trainer import make_run_config

    empty = tmp_path / "no-data"
    empty.mkdir()
    config = make_run_config(DataConfig(dataset="mnist", data_dir=str(empty)), ModelConfig(arch="mlp", hidden_dim=16),
                             LossConfig(), TrainConfig())
    samples = torch.randint(0, 256, (12, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    model = build_model(config.model, "bernoulli", seed=0).eval()
    carried = ImageDataset("mnist", samples, torch.arange(12) % 10, tuple("0123456789"))
    save_run(runs_dir / "mnist-run", model, config, fit_normalizer("unit", samples), RunRecord("finished").to_dict(),
             carried)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = "mnist-run"
    at.run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert any("the 12 test images the run carries" in c.value for c in at.caption)
    assert len(at.get("plotly_chart")) >= 1


def url_value(at: AppTest, key: str) -> str | None:
    """One query parameter as the browser's address holds it (AppTest may keep a list)."""
    value = at.query_params.get(key)
    return value[-1] if isinstance(value, list) else value


def test_the_loaded_run_stays_in_the_address_across_a_page_change():
    at = open_page(PAGES[0])
    at.sidebar.button_group(key="toggle_model_output_activation").set_value("tanh").run()
    assert url_value(at, "run") == "sprites-tanh-unit-gaussian"
    at.query_params.clear()  # what a browser sends on a sidebar page change: Streamlit keeps none of them
    at.switch_page(PAGES[1]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert url_value(at, "run") == "sprites-tanh-unit-gaussian"  # so a reload, or a copied link, shows it
    at.sidebar.button_group(key="toggle_model_output_activation").set_value("sigmoid").run()
    assert "run" not in at.query_params  # the default leaves the address clean


def sweep_job(runs: list[Path]) -> SimpleNamespace:
    """A finished sweep as the scheduler would report it: one saved run per variant."""
    variants = tuple(SimpleNamespace(run_dir=r, status="finished") for r in runs)
    return SimpleNamespace(token="sweep-token", done=True, status="finished", message="",
                           config=load_run(runs[0]).config, sweep=SimpleNamespace(field="model.output_activation"),
                           snapshot=SimpleNamespace(variants=variants, run_dir=runs[0]))


def test_a_sweep_finished_on_train_opens_compare_on_its_own_runs(runs_dir, monkeypatch):
    family = save_activation_family(runs_dir)
    at = open_page("app_pages/compare.py")  # this session compared other runs before
    assert [Path(p).name for p in at.multiselect(key="compare_pick").value] != ["tiny-sigmoid", "tiny-tanh"]
    at.query_params.clear()
    at.switch_page(PAGES[2]).run()
    monkeypatch.setattr(ui.jobs, "my_job", lambda: sweep_job([family["sigmoid"], family["tanh"]]))
    at.run()  # the Train page settles the sweep and switches to Compare, which drops what it is not given
    assert not at.exception, [e.value for e in at.exception]
    assert [Path(p).name for p in at.multiselect(key="compare_pick").value] == ["tiny-sigmoid", "tiny-tanh"]
    assert url_value(at, "compare") == "tiny-sigmoid,tiny-tanh" and url_value(at, "run") == "tiny-sigmoid"


def test_a_sweep_finished_elsewhere_is_what_compare_shows_next(runs_dir, monkeypatch):
    family = save_activation_family(runs_dir)
    at = open_page("app_pages/compare.py")
    at.query_params.clear()
    at.switch_page(PAGES[1]).run()
    monkeypatch.setattr(ui.jobs, "my_job", lambda: sweep_job([family["sigmoid"], family["tanh"]]))
    at.run()  # settled on Latent space: no switch, the notice says Compare shows them
    at.query_params.clear()
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [Path(p).name for p in at.multiselect(key="compare_pick").value] == ["tiny-sigmoid", "tiny-tanh"]
