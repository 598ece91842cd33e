"""The family toggle and links, headless (AppTest): flipping a toggle loads the sibling on every page, a
missing sibling says how to make it, and a link that names an unknown run falls back with a notice."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import save_activation_family
from ui.state import DEFAULT_BUNDLED

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def family(tmp_path_factory) -> dict[str, Path]:
    return save_activation_family(tmp_path_factory.mktemp("runs"))


@pytest.fixture(autouse=True)
def runs_dir(family, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(family["sigmoid"].parent))


def open_app(**params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in params.items():
        at.query_params[key] = value
    return at.run()


def test_flipping_the_activation_loads_the_sibling(family):
    at = open_app(run=family["sigmoid"].name)
    toggle = at.sidebar.button_group(key="toggle_model_output_activation")
    assert toggle.value == "sigmoid"
    toggle.set_value("tanh").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["run_path"] == str(family["tanh"])
    assert at.query_params["run"] in ("tiny-tanh", ["tiny-tanh"])
    assert at.sidebar.button_group(key="toggle_model_output_activation").value == "tanh"
    assert "tanh output" in " ".join(c.value for c in at.sidebar.caption)


def test_a_missing_sibling_says_how_to_make_it(family):
    at = open_app(run=family["sigmoid"].name)
    at.sidebar.button_group(key="toggle_model_output_activation").set_value("linear").run()
    assert at.session_state["run_path"] == str(family["sigmoid"])  # nothing to load: stays
    hint = " ".join(i.value for i in at.sidebar.info)
    assert "linear" in hint and "sweep" in hint


def test_a_link_to_an_unknown_run_falls_back_with_a_notice():
    at = open_app(run="../../etc/passwd")
    assert not at.exception, [e.value for e in at.exception]
    assert any("does not have" in w.value for w in at.warning)
    assert at.session_state["run_path"].endswith(DEFAULT_BUNDLED)
    assert "run" not in at.query_params


def test_a_link_sets_the_page_controls_and_a_bad_value_gets_a_notice():
    at = open_app(recon_n="7", samples_index="99999", samples_seed="abc")
    assert not at.exception, [e.value for e in at.exception]
    assert at.slider(key="recon_n").value == 7
    assert at.number_input(key="samples_index").value == 0 and at.number_input(key="samples_seed").value == 0
    notices = " ".join(w.value for w in at.warning)
    assert "“Test image” = '99999' is not allowed here" in notices and "“Sample seed” = 'abc'" in notices


def test_a_sibling_that_cannot_exist_says_why():
    at = open_app(run="sprites-sigmoid-unit-bernoulli")
    at.sidebar.button_group(key="toggle_model_output_activation").set_value("tanh").run()
    hint = " ".join(i.value for i in at.sidebar.info)
    assert "**tanh** cannot be trained" in hint and "Bernoulli" in hint and "sweep" not in hint


def test_a_flip_on_diagnostics_draws_at_once_and_its_estimates_follow(family):
    """A flip does not wait for the sibling's IWAE bound: the page says it is computing, then shows it."""
    at = open_app(run=family["sigmoid"].name)
    at.switch_page("app_pages/diagnostics.py").run()
    assert any(m.label == "ELBO" for m in at.metric)  # a first visit computes at once
    at.sidebar.button_group(key="toggle_model_output_activation").set_value("tanh").run()
    assert not at.exception, [e.value for e in at.exception]
    waiting = [i.value for i in at.info if i.value.startswith("Computing on")]
    cards = [m.label for m in at.metric]
    # the range section is drawn for the new model; the density and posterior sections either wait or are here
    assert "Targets out of the output's reach" in cards and (waiting or "ELBO" in cards)
    for _ in range(100):  # AppTest fires no run_every timer: rerun as the poller would
        if "ELBO" in [m.label for m in at.metric] and "Active units" in [m.label for m in at.metric]:
            break
        time.sleep(0.1)
        at.run()
    assert {"ELBO", "Active units"} <= {m.label for m in at.metric} and not at.exception
    assert "tanh output" in " ".join(c.value for c in at.sidebar.caption)
