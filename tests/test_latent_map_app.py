"""The Latent space page's map, headless (AppTest): a click event decodes the point it names, beside the map, with
the nearest test images; "Set as A" puts the nearest image into the interpolation and its address; a box shows the
images it holds. AppTest has no way to click a chart, so the test sends the event the browser would send (the chart's
widget state, as Streamlit's frontend writes it); tests/e2e/test_latent_map_browser.py clicks for real."""
from __future__ import annotations

import json

import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from tests.test_app import open_page, url_value
from ui.parts.latent import MAP_KEY
from vae_core.runs.test_images import PAGE_TEST_IMAGES
from vae_plots.latent_map import GRID_CURVE

LATENT = "app_pages/latent.py"


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))


def send_selection(at: AppTest, points: list[dict], box: list | None = None) -> AppTest:
    """Rerun as after the browser reported this selection on the map (the private _run is AppTest's own rerun)."""
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(MAP_KEY))
    state = WidgetState(id=chart.proto.id, string_value=json.dumps(
        {"selection": {"points": points, "point_indices": [p["point_index"] for p in points], "box": box or [],
                       "lasso": []}}))
    states = at._tree.get_widget_states()
    states.widgets.append(state)
    return at._run(states)


def click(at: AppTest, x: float, y: float) -> AppTest:
    return send_selection(at, [{"x": x, "y": y, "curve_number": GRID_CURVE, "point_index": 0}])


def decoded_src(at: AppTest) -> str:
    """The decoded image's media address (a new image is a new file)."""
    return next(i.proto.imgs[0].url for i in at.get("image") if i.proto.imgs[0].caption.startswith("decoded at"))


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def test_a_click_decodes_that_point_and_lists_the_nearest_images():
    at = open_page(LATENT)
    assert not at.exception and any("Click the map" in i.value for i in at.info)
    click(at, 0.5, -0.25)
    assert not at.exception
    first = decoded_src(at)
    assert any(c == "The 5 test images nearest (0.50, -0.25) on the map" for c in captions(at)), captions(at)
    nearest = next(i for i in at.get("image") if len(i.proto.imgs) == 5)
    assert all(img.caption.startswith("#") for img in nearest.proto.imgs)
    click(at, -2.0, 1.5)
    assert decoded_src(at) != first, "the decoded image did not change with the point"
    assert any("(-2.00, 1.50)" in c for c in captions(at))


def test_set_as_a_puts_the_nearest_image_into_the_interpolation_and_the_address():
    at = click(open_page(LATENT), 1.0, 1.0)
    button = next(b for b in at.button if b.label.endswith(" as A"))
    index = int(button.label.split("#")[1].split()[0])
    assert 0 <= index < PAGE_TEST_IMAGES
    button.click().run()
    assert not at.exception
    assert at.number_input(key="interp_a").value == index
    assert url_value(at, "interp_a") == str(index)


def test_a_box_shows_the_images_it_holds():
    at = open_page(LATENT)
    inside = [{"x": 0, "y": 0, "curve_number": c, "point_index": i} for c in (1, 2) for i in range(4)]
    send_selection(at, inside + [{"x": 0, "y": 0, "curve_number": GRID_CURVE, "point_index": 3}],
                   box=[{"xref": "x", "yref": "y", "x": [-1, 1], "y": [-1, 1]}])
    assert not at.exception
    assert any(m.value.startswith("**8 test images selected**") for m in at.markdown), [m.value for m in at.markdown]
