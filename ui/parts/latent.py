"""The Latent space page's map: every test image of the run's split, a click decoded beside it with the nearest test
images (either may become an end of the interpolation), and the images a box or lasso selects."""
from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from ui.latent_data import load_map_encoding, load_map_figure, map_test_images
from ui.widgets import url_choice
from vae_core.data.base import ImageDataset, pixels
from vae_core.export.frames import mosaic
from vae_core.runs.folders import LoadedRun
from vae_plots.latent_map import (EncodedMap, MapEvent, curve_images, decode_at, nearest, read_event)

MAP_KEY = "map_chart"  # the chart's selection lives in the session under this key
INTERP_ENDS = {"A": "interp_a", "B": "interp_b"}  # the interpolation's URL-bound inputs (app_pages/latent.py)
SELECTION_SHOWN = 60  # images of a box or lasso shown (a projector shows 60 small tiles at once)
SELECTION_COLUMNS = 12
NEAREST_PX = 56  # a nearest test image's width on the page
MAP_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["autoScale2d"]}  # box and lasso select kept


def map_ui(run: LoadedRun, test: ImageDataset) -> None:
    """The map, what a click decodes beside it, and what a selection holds under it."""
    st.subheader("Map of the posterior means")
    data = map_test_images(run, test)
    options = ["label", *(f for f in data.factor_names if f != "shape")]
    color_by = url_choice(st, "selectbox", "Colour by", options, "label", "map_color",
                          format_func=lambda o: "class / shape" if o == "label" else o)
    encoded = load_map_encoding(run, data)
    shown = load_map_figure(run, data, encoded, color_by)
    st.caption(f"{shown.note} All {len(data):,} test images. Click anywhere to decode that point; pick *Box select* "
               "or *Lasso select* above the map to see the images a region holds.")
    left, right = st.columns([5, 2])
    with left:
        state = st.plotly_chart(shown.figure, key=MAP_KEY, config=MAP_CONFIG, width="stretch", on_select="rerun",
                                selection_mode=("points", "box", "lasso"))
    event = read_event(_selection(state), curve_images(data, color_by))
    with right:
        decoded_ui(run, encoded, event, len(test))
    nearest_ui(data, encoded, event)
    selection_ui(data, event)


def _selection(state: Any) -> dict:
    """The chart's selection as a plain dict (Streamlit returns an attribute dict, empty before any event)."""
    selection = state.get("selection") if state else None
    return dict(selection) if selection else {}


def decoded_ui(run: LoadedRun, encoded: EncodedMap, event: MapEvent, n_page: int) -> None:
    """The clicked point decoded, its coordinates, and buttons to make the test image nearest it an end of the
    interpolation."""
    if event.kind != "click":
        st.info("Click the map, on a point or between them, to decode that point here.")
        return
    x, y = event.clicked
    st.image(mosaic(decode_at(run, encoded.plane, (x, y))[None]), width="content", output_format="PNG",
             caption=f"decoded at ({x:.2f}, {y:.2f})")
    ends_ui(encoded, (x, y), n_page)


def nearest_ui(data: ImageDataset, encoded: EncodedMap, event: MapEvent) -> None:
    """The test images nearest the clicked point on the map, with their index and label."""
    if event.kind != "click":
        return
    near = nearest(encoded.points, event.clicked)
    st.caption(f"The {len(near)} test images nearest ({event.clicked[0]:.2f}, {event.clicked[1]:.2f}) on the map")
    st.image([_tile(data, i) for i in near], width=NEAREST_PX, caption=[_name(data, i) for i in near],
             output_format="PNG")


def ends_ui(encoded: EncodedMap, xy: tuple[float, float], n_page: int) -> None:
    """Set an end of the interpolation to the test image nearest the click among those its inputs pick from."""
    index = int(nearest(encoded.points[:n_page], xy, 1)[0])
    st.caption(f"Interpolate from #{index}, the nearest of the {n_page:,} test images the panels above pick from:")
    for end, key in INTERP_ENDS.items():
        if st.button(f"Set #{index} as {end}", key=f"map_set_{end}", on_click=_set_end, args=(key, index),
                     width="stretch"):
            st.rerun()  # the whole page: the interpolation is another fragment


def _set_end(key: str, index: int) -> None:
    """Runs before the app reruns: the input takes the value, its URL binding writes it to the address."""
    st.session_state[key] = index


def selection_ui(data: ImageDataset, event: MapEvent) -> None:
    """The images a box or lasso holds, the first SELECTION_SHOWN of them, and how many."""
    if event.kind != "region":
        return
    picked = event.selected
    if not len(picked):
        st.caption("The region selected holds no test image.")
        return
    st.markdown(f"**{len(picked):,} test images selected**" + (f", the first {SELECTION_SHOWN} shown"
                                                              if len(picked) > SELECTION_SHOWN else ""))
    tiles = pixels(data.images[picked[:SELECTION_SHOWN]]).numpy()
    st.image(mosaic(tiles, min(SELECTION_COLUMNS, len(tiles))), width="stretch" if len(tiles) >= 8 else "content",
             output_format="PNG")


def _tile(data: ImageDataset, i: int) -> np.ndarray:
    return mosaic(pixels(data.images[i:i + 1]).numpy())


def _name(data: ImageDataset, i: int) -> str:
    return f"#{i} · {data.label_names[int(data.labels[i])]}"
