"""Presentation mode and hide= (ui/present.py), headless: what present=1 sets, how hide= is read and refused, the
sidebar's switch in the address, figures for a projector, and the one table of names the README shows."""
import json
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import open_app as opened
from ui.present import HIDEABLE, SIZES, SWITCH_KEY, hideable_table, present_figure
from vae_plots.figures import FONT_SIZE, TICK_FONT_SIZE

ROOT = Path(__file__).resolve().parents[1]
LATENT = "app_pages/latent.py"


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))


def style(at: AppTest) -> str:
    return "".join(h.proto.body for h in at.get("html") if "<style>" in h.proto.body)


def figure(at: AppTest, key: str) -> dict:
    chart = next(c for c in at.get("plotly_chart") if key in c.proto.id)
    return json.loads(chart.proto.spec)["layout"]


def test_present_1_enlarges_the_type_and_the_figures_and_survives_a_page_change():
    plain, present = opened(LATENT), opened(LATENT, present="1")
    assert "font-size" not in style(plain)
    assert all(f"font-size: {s.root_px}px" in style(present) for s in SIZES.screens)
    assert present.query_params["present"] == "1"  # put back after the page change dropped it
    before, after = figure(plain, "traversal_chart"), figure(present, "traversal_chart")
    assert after["font"]["size"] == round(before["font"]["size"] * SIZES.figure_font_scale)
    assert after["height"] == min(round(before["height"] * SIZES.figure_height_scale), SIZES.figure_max_height_px)


def test_the_switch_follows_the_link_and_writes_present_into_it():
    at = opened(present="1")
    assert at.toggle(key=SWITCH_KEY).value is True
    at.toggle(key=SWITCH_KEY).set_value(False).run()
    assert "present" not in at.query_params and "font-size" not in style(at)
    at.toggle(key=SWITCH_KEY).set_value(True).run()
    assert at.query_params["present"] == "1" and "font-size" in style(at)


def test_hide_hides_the_named_widgets_and_drops_an_unknown_name_with_a_notice():
    at = opened(hide="anchor, RANGE,bogus,anchor")
    css = style(at)
    assert all(f".st-key-{k}" in css for k in HIDEABLE["anchor"].keys + HIDEABLE["range"].keys)
    assert ".st-key-interp_a" not in css and "font-size" not in css  # hide= alone is not presentation mode
    assert at.query_params["hide"] == "anchor,range"
    notices = [w.value for w in at.warning if "bogus" in w.value]
    assert len(notices) == 1 and all(name in notices[0] for name in HIDEABLE), notices
    at.slider(key="recon_n").set_value(6).run()  # the next rerun: the link is clean, the notice said once
    assert not [w for w in at.warning if "bogus" in w.value] and at.query_params["hide"] == "anchor,range"


def test_a_present_value_other_than_1_or_0_is_refused_with_a_notice():
    at = opened(present="yes")
    assert any("present='yes'" in w.value for w in at.warning)
    assert "present" not in at.query_params and at.toggle(key=SWITCH_KEY).value is False


def test_a_projector_figure_has_larger_fonts_and_fits_the_screen_and_the_original_is_unchanged():
    fig = go.Figure(go.Scatter(x=[0, 1], y=[1, 2]), layout=dict(height=900, legend=dict(y=-0.1),
                                                                 annotations=[dict(text="a", font=dict(size=10))]))
    spec = present_figure(fig)["layout"]
    scaled = lambda size: round(size * SIZES.figure_font_scale)  # noqa: E731
    assert spec["height"] == SIZES.figure_max_height_px and fig.layout.height == 900
    assert spec["font"]["size"] == scaled(FONT_SIZE) and spec["xaxis"]["tickfont"]["size"] == scaled(TICK_FONT_SIZE)
    assert spec["annotations"][0]["font"]["size"] == scaled(10) and spec["legend"]["font"]["size"] == scaled(FONT_SIZE)
    assert spec["legend"]["y"] < -0.1 * SIZES.figure_font_scale  # further under the plot, clear of the larger axis


def test_the_readme_lists_the_tables_names():
    readme = (ROOT / "README.md").read_text()
    assert hideable_table() in readme
    listed = re.findall(r"^\| `([a-z]+)` \|", readme.split("### Presentation mode")[1].split("\n## ")[0], re.M)
    assert listed == list(HIDEABLE)


def test_every_widget_key_the_table_names_is_a_key_in_the_source():
    """The table names widgets by key, the pages set them: a key renamed there must be renamed here."""
    source = "\n".join(p.read_text() for d in ("ui", "app_pages") for p in (ROOT / d).rglob("*.py")
                       if p.name != "present.py")
    missing = [k for h in HIDEABLE.values() for k in h.keys if f'"{k}"' not in source]
    assert missing == []
