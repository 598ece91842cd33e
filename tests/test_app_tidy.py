"""Your runs, tidied, headless (AppTest): the Train page lists this browser's runs only and renames or deletes
them (deleting the loaded one loads the default and says so; a run still training cannot be deleted); the
sidebar's picker leaves out runs that ended before SHORT_RUN_STEPS unless "Show short runs" is ticked."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests import helpers
from tests.helpers import save_owned_run
from ui.state import DEFAULT_BUNDLED, SHORT_RUN_STEPS
from vae_core.data.images.private import PrivateSpace
from vae_core.runs.listing import writer_fields

ROOT = Path(__file__).resolve().parents[1]
TRAIN = "app_pages/train.py"
ME, THEM = "browser-a-secret-0123456789", "browser-b-secret-0123456789"




def name(tag: str) -> str:
    """A folder named as run_name names them: the picker's label ends with its tag (#long)."""
    return f"20250101-120000-sprites-unit-sigmoid-bernoulli-{tag}"


@pytest.fixture
def runs(tmp_path, monkeypatch) -> dict[str, Path]:
    root = tmp_path / "runs"
    monkeypatch.setenv("VAE_LAB_RUNS", str(root))
    return {"long": save_owned_run(root, name("long"), ME, steps=SHORT_RUN_STEPS),
            "short": save_owned_run(root, name("shrt"), ME, steps=SHORT_RUN_STEPS - 1, status="stopped"),
            "live": save_owned_run(root, name("live"), ME, steps=1, status="running", **writer_fields()),
            "tiny": save_owned_run(root, name("tiny"), ME, steps=4),  # finished, but short: hidden too
            "diverged": save_owned_run(root, name("dvrg"), ME, steps=3, status="diverged"),
            "private": save_owned_run(PrivateSpace.of(Path(os.environ["VAE_LAB_UPLOADS"]), ME).runs_dir, name("priv"),
                                      ME),  # on A's own images: in A's private space
            "theirs": save_owned_run(root, name("thrl"), THEM, steps=500),
            "theirs_short": save_owned_run(root, name("thrs"), THEM, steps=1, status="stopped")}


def open_app(page: str | None = None, **params: str) -> AppTest:
    return helpers.open_app(page, token=ME, **params)  # be browser A


def picker(at: AppTest) -> set[str]:
    """The tags of the runs the sidebar's picker offers, bundled ones aside (their labels have none)."""
    return {label.rsplit("#", 1)[1] for label in at.sidebar.selectbox(key="model_choice").options if "#" in label}


def labels(at: AppTest) -> list[str]:
    return at.sidebar.selectbox(key="model_choice").options


def offered(at: AppTest) -> set[str]:
    """The tags of the runs the Your runs section has a control for (its buttons' keys name their folders)."""
    return {b.key.rsplit("-", 1)[1] for b in at.button if b.key and b.key.startswith("run_delete_")}


def test_your_runs_lists_this_browser_s_runs_only(runs):
    at = open_app(TRAIN)
    assert offered(at) == {"long", "shrt", "live", "tiny", "dvrg", "priv"}
    assert at.button(key=f"run_delete_private-{name('priv')}")
    shown = " ".join(str(e.value) for e in [*at.main.markdown, *at.main.caption, *at.main.text_input])
    assert "thr" not in shown  # no control and no mention of another browser's runs
    assert at.button(key=f"run_delete_yours-{name('live')}").disabled  # still training
    assert at.button(key=f"run_rename_yours-{name('live')}").disabled
    assert any("Still training" in c.value for c in at.caption)


def test_a_rename_shows_the_title_in_the_picker_and_keeps_the_link(runs):
    at = open_app(TRAIN, run=name("long"))
    at.text_input(key=f"run_title_yours-{name('long')}").input("Best one").run()
    at.button(key=f"run_rename_yours-{name('long')}").click().run()
    assert any(f"Renamed {name('long')} to “Best one”" in s.value for s in at.success)
    assert any(label.endswith("· Best one #long") for label in labels(at)), labels(at)
    assert runs["long"].is_dir() and at.query_params["run"] in (name("long"), [name("long")])
    assert "**Best one**" in " ".join(c.value for c in at.sidebar.caption)


def test_deleting_the_loaded_run_asks_first_then_loads_the_default_and_says_so(runs):
    at = open_app(TRAIN, run=name("long"))
    at.button(key=f"run_delete_yours-{name('long')}").click().run()
    assert runs["long"].is_dir() and any("for good?" in w.value for w in at.warning)
    at.button(key=f"run_confirm_yours-{name('long')}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not runs["long"].exists()
    assert any("It was the loaded model: the default bundled model is loaded now" in s.value for s in at.success)
    assert at.session_state["run_path"].endswith(DEFAULT_BUNDLED) and "run" not in at.query_params
    assert "long" not in offered(at) | picker(at)


def test_cancel_keeps_the_run(runs):
    at = open_app(TRAIN)
    at.button(key=f"run_delete_yours-{name('shrt')}").click().run()
    at.button(key=f"run_cancel_yours-{name('shrt')}").click().run()
    assert runs["short"].is_dir() and not any("for good?" in w.value for w in at.warning)


def test_short_runs_are_hidden_from_the_picker_unless_asked_for(runs):
    at = open_app()
    assert picker(at) == {"long", "live", "dvrg", "priv", "thrl"}  # training, or diverged: the news, kept
    at.sidebar.checkbox(key="show_short_runs").check().run()
    assert picker(at) == {"long", "live", "tiny", "dvrg", "priv", "thrl", "shrt", "thrs"}


def test_the_loaded_short_run_stays_in_the_picker(runs):
    at = open_app(run=name("shrt"))
    assert picker(at) == {"long", "live", "dvrg", "priv", "thrl", "shrt"}
    assert at.session_state["run_path"] == str(runs["short"])
