"""ui/view_cache.py: a run's figure is made once for every session on public data, and once per session (never
shared) on a person's images."""
from __future__ import annotations

import shutil
from pathlib import Path

from streamlit.testing.v1 import AppTest

from vae_core.runs.folders import bundled_models_dir


def _script(run_dir: str, private: bool) -> None:
    import dataclasses

    import streamlit as st

    from ui.view_cache import cached_view
    from vae_core.runs.folders import load_run

    run = load_run(run_dir)
    if private:  # the same weights, said to be trained on a person's images
        data = dataclasses.replace(run.config.data, dataset="images", images="upload.zip")
        run = dataclasses.replace(run, config=dataclasses.replace(run.config, data=data))
    made = st.session_state.setdefault("made", [])
    fig = cached_view([run], "test", 3, lambda: made.append(1) or object())
    st.session_state["figure_id"] = id(fig)


def _session(run_dir: Path, private: bool) -> AppTest:
    at = AppTest.from_function(_script, kwargs={"run_dir": str(run_dir), "private": private})
    return at.run()


def test_a_figure_of_a_public_run_is_made_once_for_every_session(tmp_path):
    run_dir = shutil.copytree(bundled_models_dir() / "sprites-sigmoid-unit-gaussian", tmp_path / "public")
    a, b = _session(run_dir, False), _session(run_dir, False)
    assert a.session_state["made"] == [1] and b.session_state["made"] == []  # the second session made nothing
    assert a.session_state["figure_id"] == b.session_state["figure_id"]


def test_a_figure_of_a_persons_images_is_never_shared_between_sessions(tmp_path):
    run_dir = shutil.copytree(bundled_models_dir() / "sprites-sigmoid-unit-gaussian", tmp_path / "private")
    a, b = _session(run_dir, True), _session(run_dir, True)
    assert a.session_state["made"] == [1] and b.session_state["made"] == [1]
    assert a.session_state["figure_id"] != b.session_state["figure_id"]
    a.run()
    assert a.session_state["made"] == [1]  # kept in its own session
