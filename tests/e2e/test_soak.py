"""The half-minute soak: bench/soak.py's class (sessions touring every page, moving sliders, two of them
training) against a fresh server, held to the same goals as the full run."""
from __future__ import annotations

import pytest

from bench.soak import soak

pytestmark = pytest.mark.e2e


def test_half_a_minute_of_a_class_on_one_server(browser, tmp_path):
    result = soak(sessions=6, minutes=0.5, trainers=2, runs_dir=tmp_path / "runs", log_dir=tmp_path,
                  browser=browser)
    print(result.summary())
    assert result.actions >= 6, f"only {result.actions} actions in half a minute: {result.summary()}"
    assert result.trainings_started >= 1, result.summary()
    assert not result.goals_missed(), f"{result.goals_missed()}\n{result.summary()}"
