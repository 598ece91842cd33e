"""What the pages say about a model's numbers, headless (AppTest): the ± on a card is the Monte-Carlo error and
says so beside the spread over the test images; a degenerate run is named as such; Compare calls no winner
that its paired difference cannot settle."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import open_app

ROOT = Path(__file__).resolve().parents[1]
CB = "sprites-sigmoid-unit-continuous_bernoulli"


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))


def opened(run: str | None = None, page: str | None = None, **params: str) -> AppTest:
    return open_app(page, timeout=90, **({"run": run} if run else {}), **params)


def test_the_elbo_card_shows_the_monte_carlo_error_and_names_both():
    at = opened()
    card = next(m for m in at.metric if m.label == "ELBO")
    assert card.value == "3,719.6" and card.delta == "± 0.3 Monte-Carlo"  # under the value: it stays whole
    # the bundled sigmoid/unit run: 0.28 nats over z, 7.3 over the test images
    assert "Monte-Carlo standard error" in card.help and "over the test images" in card.help
    assert "7.3" in card.help and "positive" in card.help and "bits/dim" in card.help


def test_a_degenerate_run_is_named_on_reconstructions():
    at = opened(CB)
    warnings = [w.value for w in at.warning]
    assert any("Degenerate" in w and "0 or 255" in w and "bits/dim" in w for w in warnings), warnings
    assert not any("Degenerate" in w.value for w in opened().warning)  # the default run is not


def test_compare_names_the_degenerate_run_and_marks_only_settled_bests():
    runs = ",".join([CB, "sprites-sigmoid-unit-gaussian", "sprites-sigmoid-unit-bernoulli"])
    at = opened(page="app_pages/compare.py", compare=runs)
    captions = " ".join(c.value for c in at.caption)
    assert "is degenerate" in captions
    assert at.selectbox(key="compare_scale").value == "per run"  # their nats differ ten-thousandfold


def test_a_degenerate_run_wins_no_column_in_nats():
    """Its ELBO is the largest of the three (29,571 against 3,7xx) only because its density is unbounded."""
    runs = ",".join([CB, "sprites-sigmoid-unit-gaussian", "sprites-tanh-unit-gaussian"])
    at = opened(page="app_pages/compare.py", compare=runs)
    table = at.table[0].value
    assert "★" not in str(table.iloc[0, 1]) and "★" not in str(table.iloc[0, 2])  # ELBO, IWAE: not the CB row
    assert at.selectbox(key="compare_scale").value == "per run"  # its KL is thirty times the others'
