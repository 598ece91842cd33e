"""End to end at a projector's 1024×768: Diagnostics and Compare on runs on vectors, in Chromium, against a server of
their own (their runs stay out of the other browser tests' runs folder)."""
from __future__ import annotations

import pytest

from browser_harness import PLOTLY, wait_settled
from tests.helpers import assert_no_exception, running_app, screenshot
from vae_core.cli.main import main as cli

pytestmark = pytest.mark.e2e
PROJECTOR = {"width": 1024, "height": 768}


@pytest.fixture(scope="module")
def vectors_url(browser, tmp_path_factory):
    """A server whose runs folder holds two runs on the bundled vectors: a linear and a tanh decoder (~3 s each)."""
    runs = tmp_path_factory.mktemp("vector_runs")
    for name, flags in (("vec-linear", []), ("vec-tanh", ["--output-activation", "tanh"])):
        assert cli(["train", "--dataset", "vectors", "--epochs", "1", "--quiet", "--out", str(runs / name),
                    *flags]) == 0
    with running_app(runs, tmp_path_factory.mktemp("vector_server")) as url:
        yield url


@pytest.fixture
def projector(browser):
    context = browser.new_context(viewport=PROJECTOR)
    try:
        yield context.new_page()
    finally:
        context.close()


def _open(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    wait_settled(page, timeout=90_000)


def _card(page, label: str) -> str:
    card = page.locator("[data-testid='stMetric']").filter(has_text=label).first
    return card.locator("[data-testid='stMetricValue']").inner_text().strip()


def test_diagnostics_of_a_tanh_decoder_on_vectors(projector, vectors_url):
    _open(projector, f"{vectors_url}/diagnostics?run=vec-tanh")
    for key in ("vec_ranges", "vec_kl", "vec_posterior"):
        projector.locator(f".st-key-{key} {PLOTLY}").wait_for(state="visible", timeout=60_000)
    shot = screenshot(projector, "vectors-diagnostics")
    assert_no_exception(projector, "Diagnostics of a run on vectors", shot)
    assert _card(projector, "Bits/dim") == "—", shot
    assert _card(projector, "ELBO").startswith("-"), shot
    assert "tanh output can never reproduce" in projector.locator("[data-testid='stAlert']").first.inner_text(), shot
    bars = projector.locator(f".st-key-vec_ranges {PLOTLY} .ytick text").all_text_contents()
    assert len(bars) == 12, f"a bar per feature: {bars} ({shot})"


def test_compare_of_two_runs_on_the_same_vectors(projector, vectors_url):
    _open(projector, f"{vectors_url}/compare?run=vec-linear&compare=vec-linear,vec-tanh")
    for key in ("compare_profiles", "compare_rmse"):
        projector.locator(f".st-key-{key} {PLOTLY}").wait_for(state="visible", timeout=60_000)
    shot = screenshot(projector, "vectors-compare")
    assert_no_exception(projector, "Compare of two runs on vectors", shot)
    tables = projector.locator("[data-testid='stTable']")
    assert tables.count() == 2, shot
    assert "best" in tables.first.inner_text() and "±" in tables.first.inner_text(), shot
    legend = projector.locator(f".st-key-compare_rmse {PLOTLY} g.legend g.traces").count()
    assert legend == 2, f"a bar colour per run ({shot})"
