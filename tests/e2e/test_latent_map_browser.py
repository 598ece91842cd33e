"""End to end at a projector's 1024×768: on the Latent space map a click decodes the point clicked (two spots, two
different images), "Set as A" writes the nearest image into the interpolation's address, a box select shows the
images it holds; with real MNIST, all 10,000 test images are drawn. Screenshots: artifacts/screenshots/latent-click-*.
Times (click to decoded image, page to drawn map) are printed: run with -s to see them."""
from __future__ import annotations

import statistics
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from browser_harness import wait_settled
from tests.helpers import assert_no_exception, screenshot
from tests.test_latent_map import MNIST_RAW, SHARED_DATA, untrained_run
from vae_core.config import DataConfig

pytestmark = pytest.mark.e2e

PROJECTOR = {"width": 1024, "height": 768}
MAP = ".st-key-map_chart [data-testid='stPlotlyChart']"
DECODED = "[data-testid='stImage']:has-text('decoded at') img"
SPOTS = [(0.42, 0.45), (0.58, 0.55), (0.5, 0.38), (0.45, 0.6)]  # fractions of the plot area, inside the points


@pytest.fixture
def projector(browser):
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        context.close()


def open_map(page, url: str) -> float:
    """Open the Latent space page with the map in view; seconds until the map's points are drawn."""
    start = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.locator(f"{MAP} canvas").first.wait_for(state="attached", timeout=120_000)
    page.locator(f"{MAP} .legend, {MAP} .colorbar").first.wait_for(state="attached")
    drawn = time.perf_counter() - start
    wait_settled(page, timeout=120_000)
    page.locator(MAP).scroll_into_view_if_needed()
    page.get_by_test_id("stMain").evaluate("e => e.scrollBy(0, 120)")  # the colour selector out, the map whole
    return drawn


def click_map(page, fx: float, fy: float) -> None:
    box = page.locator(f"{MAP} .nsewdrag").first.bounding_box()
    x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    page.mouse.move(x, y)
    page.mouse.click(x, y)


def decoded_src(page) -> str:
    images = page.locator(DECODED)
    return images.first.get_attribute("src") if images.count() else ""


def click_and_wait(page, spot: tuple[float, float]) -> float:
    """Click a spot; seconds until the decoded image beside the map is another."""
    before = decoded_src(page)
    start = time.perf_counter()
    click_map(page, *spot)
    while decoded_src(page) in ("", before):
        assert time.perf_counter() - start < 15, f"the decoded image did not change after a click at {spot}"
        page.wait_for_timeout(20)
    elapsed = time.perf_counter() - start
    wait_settled(page)
    return elapsed


def test_a_click_on_the_map_decodes_the_point_clicked(projector, app_url):
    drawn = open_map(projector, f"{app_url}/latent")
    assert "Click the map" in projector.get_by_test_id("stMain").inner_text()
    times = [click_and_wait(projector, spot) for spot in SPOTS]
    first = decoded_src(projector)
    assert_no_exception(projector, "after clicking the map", screenshot(projector, "latent-click-decoded", False))
    text = projector.get_by_test_id("stMain").inner_text()
    assert "decoded at (" in text and "test images nearest (" in text, text[-800:]
    click_and_wait(projector, SPOTS[0])
    assert decoded_src(projector) != first
    print(f"\nsprites map drawn {drawn:.2f} s after the page was asked for; click -> decoded image "
          f"median {statistics.median(times):.3f} s of {[round(t, 3) for t in times]}")


def test_set_as_a_takes_the_nearest_image_into_the_interpolation_and_the_address(projector, app_url):
    open_map(projector, f"{app_url}/latent")
    click_and_wait(projector, SPOTS[1])
    button = projector.locator(".st-key-map_set_A button")
    index = button.inner_text().split("#")[1].split()[0]
    button.click()
    wait_settled(projector)
    assert parse_qs(urlsplit(projector.url).query).get("interp_a") == [index], projector.url
    assert projector.locator(".st-key-interp_a input").input_value() == index
    assert_no_exception(projector, "after Set as A")


def test_a_box_select_shows_the_images_it_holds(projector, app_url):
    open_map(projector, f"{app_url}/latent")
    projector.locator(MAP).hover()
    projector.locator(f"{MAP} .modebar-btn[data-title='Box Select']").click()
    box = projector.locator(f"{MAP} .nsewdrag").first.bounding_box()
    projector.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"])
    projector.mouse.down()
    projector.mouse.move(box["x"] + 0.7 * box["width"], box["y"] + 0.7 * box["height"], steps=8)
    projector.mouse.up()
    projector.get_by_text("test images selected").wait_for(timeout=30_000)
    wait_settled(projector)
    projector.get_by_test_id("stMain").evaluate("e => e.scrollBy(0, 300)")
    assert_no_exception(projector, "after a box select", screenshot(projector, "latent-click-box", False))
    assert projector.locator("[data-testid='stImage'] img").count() >= 1


@pytest.mark.skipif(not MNIST_RAW.exists(), reason=f"real MNIST files not found under {SHARED_DATA}")
def test_every_mnist_test_image_is_drawn_and_a_click_decodes(projector, app_url, runs_dir):
    data = DataConfig(dataset="mnist", data_dir=str(SHARED_DATA), n_train=64)
    run = untrained_run(runs_dir, data, 2, arch="mlp", hidden_dim=64)
    cold = open_map(projector, f"{app_url}/latent?run={run.name}")
    assert "All 10,000 test images" in projector.get_by_test_id("stMain").inner_text()
    points = projector.locator(MAP).evaluate("e => e.querySelector('.js-plotly-plot')._fullData.slice(1)"
                                             ".reduce((n, t) => n + t._length, 0)")  # as Plotly drew them
    assert points == 10_000
    times = [click_and_wait(projector, spot) for spot in SPOTS[:3]]
    assert_no_exception(projector, "the MNIST map", screenshot(projector, "latent-click-mnist", False))
    warm = open_map(projector, f"{app_url}/latent?run={run.name}")
    print(f"\nMNIST map (10,000 points) drawn {cold:.2f} s after the page was asked for (cold), {warm:.2f} s "
          f"(cached); click -> decoded image median {statistics.median(times):.3f} s of {[round(t, 3) for t in times]}")
