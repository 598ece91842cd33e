"""End to end at a projector's 1024×768: the Reconstructions and Latent space pages of a run on the bundled vectors
draw every figure without an exception box, a widget bound to the address changes what is drawn, and a click on the
map of μ decodes that point.
Screenshots: artifacts/screenshots/vectors-reconstructions.png, vectors-latent.png."""
from __future__ import annotations

import pytest

from browser_harness import chart_signature, wait_changed, wait_settled
from tests.helpers import assert_no_exception, running_app, screenshot
from vae_core.cli.main import main as cli

pytestmark = pytest.mark.e2e

PROJECTOR = {"width": 1024, "height": 768}
RUN = "vector-run"
CHART = "[data-testid='stPlotlyChart']"


@pytest.fixture(scope="module")
def vector_app(browser, tmp_path_factory):
    """A server whose runs folder holds one run on the bundled vectors (one epoch: 3 s)."""
    runs = tmp_path_factory.mktemp("vector_runs")
    assert cli(["train", "--dataset", "vectors", "--epochs", "1", "--out", str(runs / RUN)]) == 0
    with running_app(runs, tmp_path_factory.mktemp("vector_server")) as url:
        yield url


@pytest.fixture
def projector(browser):
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


def open_page(page, url: str, path: str, charts: int) -> None:
    page.goto(f"{url}/{path}?run={RUN}", wait_until="domcontentloaded")  # "": the first page, Reconstructions
    page.locator(CHART).nth(charts - 1).wait_for(state="attached", timeout=120_000)
    wait_settled(page, timeout=120_000)


def test_the_reconstructions_page_of_a_vector_run(projector, vector_app):
    open_page(projector, vector_app, "", 4)
    assert_no_exception(projector, "vector reconstructions")
    main = projector.get_by_test_id("stMain")
    assert "x against x̂, a panel per feature" in main.inner_text()
    assert projector.locator(f".st-key-vrecon_scatter {CHART} .subplot").count() >= 12  # a panel per feature
    assert "Bits/dim is not reported for vectors" in main.inner_text()
    screenshot(projector, "vectors-reconstructions")


def test_the_latent_page_of_a_vector_run_follows_its_widgets(projector, vector_app):
    open_page(projector, vector_app, "latent", 5)
    assert_no_exception(projector, "vector latent")
    assert "Traversal" in projector.get_by_test_id("stMain").inner_text()
    heat = projector.locator(f".st-key-vtraverse_heat {CHART}").first  # a redraw can hold the old one a moment
    before = chart_signature(heat)
    slider = projector.locator(".st-key-vtraverse_range").get_by_role("slider").first
    slider.focus()
    slider.press("ArrowRight")  # 3.0 -> 3.5 prior std
    projector.wait_for_url("**vtraverse_range=3.5**")
    wait_changed(heat, before)  # a wider range changes the features more
    wait_settled(projector, timeout=60_000)
    assert_no_exception(projector, "vector latent after the range")
    click_map(projector)
    projector.locator(f".st-key-vmap_decoded {CHART}").first.wait_for(state="attached")
    wait_settled(projector, timeout=60_000)
    assert_no_exception(projector, "vector latent after a click on the map")
    screenshot(projector, "vectors-latent")


def click_map(page) -> None:
    """Click the middle of the map's plot area (a click target lies under every spot)."""
    plot = page.locator(f".st-key-vmap_chart {CHART} .nsewdrag").first
    plot.scroll_into_view_if_needed()
    box = plot.bounding_box()
    x, y = box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"]
    page.mouse.move(x, y)
    page.mouse.click(x, y)
