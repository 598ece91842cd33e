"""Runs are what they say, headless (AppTest): a diverged run is kept but not loaded; the picker tells
this browser's runs from the class's; one job per browser; the form shows what a run used."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.session import OLD_LINK_NOTICE, TOKEN_KEY
from ui.state import DEFAULT_BUNDLED
from vae_core.runs.folders import bundled_models_dir, run_tag

ROOT = Path(__file__).resolve().parents[1]
TRAIN = "app_pages/train.py"
DEFAULT = str(bundled_models_dir() / DEFAULT_BUNDLED)


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def browser(token: str | None = None, page: str = TRAIN) -> AppTest:
    """A fresh session, as a new tab: with a token, the same browser as before (AppTest has no cookies, so
    the session's identity is set directly, as the browser's cookie would)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if token:
        at.session_state[TOKEN_KEY] = token
    at.run()
    if page != "app_pages/reconstructions.py":
        at.switch_page(page).run()
    return at


def start(at: AppTest, **values: float) -> None:
    for key, value in {"cfg_n_train": 128, "cfg_width": 8, "cfg_epochs": 2, "cfg_time_budget": 0, **values}.items():
        at.number_input(key=key).set_value(value)
    at.run()  # Start's callback takes the form as last drawn, as in a browser
    at.button(key="train_start").click().run()
    assert not at.exception, [e.value for e in at.exception]


def wait_until(at: AppTest, done, timeout_s: float = 120) -> None:
    """Rerun (one poll each: AppTest fires no run_every timers) until done(at)."""
    deadline = time.monotonic() + timeout_s
    while not done(at):
        assert time.monotonic() < deadline, f"not done in {timeout_s:.0f} s"
        time.sleep(0.5)
        at.run()


def texts(elements) -> str:
    return " ".join(e.value for e in elements)


def test_a_diverged_run_is_kept_but_not_loaded(runs_dir):
    at = browser()
    start(at, cfg_lr=1.0, cfg_epochs=20)  # lr 1 blows up within a few steps
    wait_until(at, lambda at: "did not change" in texts(at.warning))
    assert not at.exception
    assert "diverged" in texts(at.warning) and "diverged" in texts(at.error)  # the notice and the status
    assert at.session_state["run_path"] == DEFAULT  # still the model that was loaded
    [run] = [p for p in runs_dir.iterdir() if not p.name.startswith(".")]
    labels = at.sidebar.selectbox(key="model_choice").options
    assert any("⚠ diverged" in label and label.startswith("you ") for label in labels), labels


def test_the_picker_tells_my_runs_from_the_class(runs_dir):
    mine = browser()
    start(mine)
    wait_until(mine, lambda at: "is now the loaded model" in texts(at.success))
    token = mine.session_state[TOKEN_KEY]
    assert "u" not in mine.query_params  # the identity is never in the address
    [run] = [p for p in runs_dir.iterdir() if not p.name.startswith(".")]
    assert mine.session_state["run_path"] == str(run)  # a finished run is loaded
    time.sleep(2.1)  # the run list is cached for 2 s, server-wide
    again = browser(token, page="app_pages/reconstructions.py")  # the same browser, reloaded
    other = browser(page="app_pages/reconstructions.py")  # somebody else
    for at in (again, other):  # a tiny run: short, so listed once asked for
        at.sidebar.checkbox(key="show_short_runs").check().run()
    suffix = f"#{run_tag(run.name)}"
    assert any(o.startswith("you ") and suffix in o for o in again.sidebar.selectbox(key="model_choice").options)
    assert any(o.startswith("class ") and suffix in o for o in other.sidebar.selectbox(key="model_choice").options)
    assert not any(o.startswith("you ") for o in other.sidebar.selectbox(key="model_choice").options)


def test_one_job_per_browser_and_the_form_shows_what_the_run_used(runs_dir):
    at = browser()
    start(at, cfg_epochs=1000, cfg_time_budget=60)
    token = at.session_state[TOKEN_KEY]
    assert at.button(key="train_start").disabled
    assert "your training job is" in texts(at.warning)
    reloaded = browser(token)  # a reload: the same job, still live, and Stop works
    assert not reloaded.button(key="train_stop").disabled
    reloaded.number_input(key="cfg_epochs").set_value(7).run()  # edited while it trains
    reloaded.button(key="train_stop").click().run()
    wait_until(reloaded, lambda at: "is now the loaded model" in texts(at.success))
    reloaded.run()
    assert reloaded.number_input(key="cfg_epochs").value == 1000  # what the run used


def test_a_sweep_trains_a_family_and_opens_it_in_compare(runs_dir):
    at = browser()
    at.selectbox(key="cfg_likelihood").set_value("gaussian")
    at.selectbox(key="cfg_sweep_field").set_value("model.output_activation").run()
    assert at.button(key="train_start").label == "Start 3 in lockstep"
    start(at)
    for _ in range(120):
        time.sleep(0.5)
        at.run()
        if "compare" in at.query_params:
            break
    assert not at.exception, [e.value for e in at.exception]
    names = at.query_params["compare"]
    names = (names[0] if isinstance(names, list) else names).split(",")
    assert len(names) == 3 and all((runs_dir / n / "config.json").is_file() for n in names)
    sweeps = {json.loads((runs_dir / n / "metrics.json").read_text())["sweep"] for n in names}
    assert len(sweeps) == 1 and None not in sweeps  # one family, grouped by its manifest
    assert any("3 of 3 variants saved" in s.value for s in at.success)


def test_an_old_link_with_u_opens_the_view_but_not_that_browser(runs_dir):
    owner = browser()
    start(owner, cfg_epochs=1000, cfg_time_budget=60)
    old_link = browser()
    old_link.query_params["u"] = owner.session_state[TOKEN_KEY]  # what links used to carry
    old_link.query_params["recon_n"] = "11"
    old_link.run()
    assert not old_link.exception, [e.value for e in old_link.exception]
    assert OLD_LINK_NOTICE in texts(old_link.info)
    assert "u" not in old_link.query_params and old_link.query_params["recon_n"] in ("11", ["11"])  # the view stays
    assert old_link.session_state[TOKEN_KEY] != owner.session_state[TOKEN_KEY]
    old_link.switch_page(TRAIN).run()
    assert old_link.button(key="train_stop").disabled  # not the owner's job
    owner.button(key="train_stop").click().run()
