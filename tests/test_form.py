"""The Train form, headless (AppTest): a value out of range is refused next to its field and keeps
Start disabled with the reason; settings survive page changes and reloads (the browser's token finds this
browser's record on the server); the data folder and downloads are the host's, not the form's."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.form_fields import FORM_FIELDS, start_value
from ui.session import load_client_registry
from ui.state import DEFAULT_BUNDLED
from vae_core.config import LossConfig, TrainConfig, check_field
from vae_core.runs.folders import load_run

ROOT = Path(__file__).resolve().parents[1]
TRAIN, OTHER = "app_pages/train.py", "app_pages/latent.py"
BUNDLED = ROOT / "models" / DEFAULT_BUNDLED


@pytest.fixture(autouse=True)
def host(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("VAE_LAB_ALLOW_DOWNLOAD", "0")
    return tmp_path


def open_train(token: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if token:
        at.session_state["client_token"] = token  # ui.session.TOKEN_KEY: be that browser
    at.run()
    at.switch_page(TRAIN).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def column_of(at: AppTest, key: str):
    """The column that holds the widget with this key: where its refusal must show."""
    return next(c for c in at.columns if any(w.key == key for w in c.number_input))


def start_reason(at: AppTest) -> str | None:
    return next((w.value for w in at.warning if w.value.startswith("Start is disabled")), None)


@pytest.mark.parametrize("key,name,value,bounds", [
    ("cfg_lr", "lr", 5.0, "a number from 1e-07 to 1"),
    ("cfg_epochs", "epochs", -3, "an integer from 1 to 10000"),
])
def test_a_value_out_of_range_is_refused_next_to_its_field_and_start_says_why(key, name, value, bounds):
    at = open_train()
    assert not at.button(key="train_start").disabled and start_reason(at) is None
    at.number_input(key=key).set_value(value).run()
    message = check_field(TrainConfig, name, value)
    assert message == f"{name}={value!r} is out of range; it must be {bounds}."
    assert at.number_input(key=key).value == value  # kept as typed, not clamped to the last valid value
    assert [e.value for e in column_of(at, key).error] == [message]
    assert at.button(key="train_start").disabled
    reason = start_reason(at)
    assert reason and message in reason and at.number_input(key=key).label in reason
    at.number_input(key=key).set_value(3 if name == "epochs" else 1e-3).run()
    assert not at.error and start_reason(at) is None
    assert not at.button(key="train_start").disabled


def test_an_empty_box_means_none_for_optional_fields_and_is_refused_for_required_ones():
    at = open_train()
    at.number_input(key="cfg_time_budget").set_value(None).run()
    at.number_input(key="cfg_n_train").set_value(0).run()  # "0 = all", as before
    assert not at.error and not at.button(key="train_start").disabled
    at.number_input(key="cfg_batch_size").set_value(None).run()  # comes back as None or as 0: both refused
    assert "is out of range; it must be an integer from 1 to 8192" in column_of(at, "cfg_batch_size").error[0].value
    assert at.button(key="train_start").disabled


def test_a_refused_value_in_a_greyed_out_field_stays_editable():
    at = open_train()  # Bernoulli: sigma is not used, so its box is greyed out
    assert at.number_input(key="cfg_sigma").disabled
    at.session_state["cfg_sigma"] = 0.0
    at.run()
    assert not at.number_input(key="cfg_sigma").disabled and at.button(key="train_start").disabled
    assert any("sigma=0.0 is out of range" in e.value for e in column_of(at, "cfg_sigma").error)


SETTINGS = {"cfg_lr": 0.01, "cfg_latent_dim": 7, "cfg_epochs": -3, "cfg_width": 16}
CHOICES = {"cfg_likelihood": "gaussian", "cfg_kl_schedule": "linear"}


def change_settings(at: AppTest) -> None:
    for key, value in SETTINGS.items():
        at.number_input(key=key).set_value(value)
    for key, value in CHOICES.items():
        at.selectbox(key=key).select(value)
    at.run()


def assert_settings_shown(at: AppTest) -> None:
    assert {k: at.number_input(key=k).value for k in SETTINGS} == SETTINGS
    assert {k: at.selectbox(key=k).value for k in CHOICES} == CHOICES
    assert any("epochs=-3 is out of range" in e.value for e in at.error)  # still refused, not replaced


def test_settings_survive_a_page_change_and_a_reload():
    at = open_train()
    change_settings(at)
    at.switch_page(OTHER).run()
    at.switch_page(TRAIN).run()
    assert_settings_shown(at)
    token = at.session_state["client_token"]
    reloaded = open_train(token)  # a new session: only the server-side record knows this browser
    assert_settings_shown(reloaded)
    assert open_train().number_input(key="cfg_lr").value == 1e-3  # another browser starts afresh


def test_reset_puts_every_field_back_to_its_default_in_one_click_and_starts_nothing():
    at = open_train()
    change_settings(at)  # epochs=-3 among them: a refused value is reset too
    at.button(key="cfg_reset").click().run()
    defaults = {f.key: start_value(f) for f in FORM_FIELDS}
    assert {f.key: at.session_state[f.key] for f in FORM_FIELDS} == defaults
    assert not at.exception and not at.error and start_reason(at) is None
    assert load_client_registry().get(at.session_state["client_token"]).job_token is None  # nothing started
    assert {f.key: open_train(at.session_state["client_token"]).session_state[f.key] for f in FORM_FIELDS} \
        == defaults  # remembered: a reload shows the defaults


def test_a_stale_or_malformed_remembered_value_is_dropped_not_drawn():
    token = "stale-record-token"
    load_client_registry().get(token).form.update(
        {"cfg_lr": "fast", "cfg_epochs": 2.5, "cfg_likelihood": "mse", "cfg_latent_dim": True,
         "cfg_data_scale": float("nan"), "cfg_beta": 20_000.0, "cfg_unknown": 1})
    at = open_train(token)
    assert at.number_input(key="cfg_lr").value == 1e-3 and at.number_input(key="cfg_epochs").value == 3
    assert at.selectbox(key="cfg_likelihood").value == "bernoulli"
    assert at.number_input(key="cfg_beta").value == 20_000.0  # well-formed but out of range: shown, refused
    assert [e.value for e in column_of(at, "cfg_beta").error] == [check_field(LossConfig, "beta", 20_000.0)]


def test_the_loaded_model_s_settings_fill_the_form_and_are_remembered():
    at = open_train()
    at.button(key="cfg_use_loaded").click().run()
    config = load_run(BUNDLED).config
    shown = {f.key: (at.session_state[f.key]) for f in FORM_FIELDS}
    expected = {f.key: getattr(getattr(config, f.section), f.name) for f in FORM_FIELDS}
    assert shown == expected
    assert not at.exception and not at.error
    token = at.session_state["client_token"]
    assert open_train(token).number_input(key="cfg_epochs").value == config.train.epochs


def test_the_data_folder_and_downloads_are_the_host_s(host):
    at = open_train()
    at.selectbox(key="cfg_dataset").select("mnist").run()
    assert not at.main.text_input and not at.main.checkbox  # no data-folder box, no download box
    assert any(str(host / "data") in c.value and "does not download" in c.value for c in at.caption)
    missing = next(e.value for e in at.error if "MNIST" in e.value)
    assert str(host / "data") in missing and "ask the host" in missing
    assert at.button(key="train_start").disabled


def test_the_time_budget_says_under_it_what_empty_and_zero_mean_and_both_mean_it():
    at = open_train()
    column = column_of(at, "cfg_time_budget")
    assert [c.value for c in column.caption] == ["Empty or 0: no limit; else a number from 0.1 to 604800."]
    assert "Empty or 0: no limit." in at.number_input(key="cfg_time_budget").help
    for value in (0.0, None):
        at.number_input(key="cfg_time_budget").set_value(value).run()
        assert not at.error and not at.button(key="train_start").disabled  # no limit, as the caption says
