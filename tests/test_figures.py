"""Tests for vae_plots.figures: shapes, placement, labels, data kept, and JSON that Streamlit can send."""
from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
from PIL import Image

from vae_plots import figures as F


def decode_uri(uri: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert uri.startswith(prefix)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri[len(prefix):]))).convert("RGB"))


def check_sendable(fig: go.Figure) -> dict:
    """What Streamlit sends must serialize, and every property must pass plotly's full validation."""
    assert isinstance(fig, go.Figure)
    spec = json.loads(fig.to_json())
    go.Figure(fig.to_dict())  # re-validates everything, the template included; raises on a bad property
    assert fig.layout.template.layout.paper_bgcolor == pio.templates["plotly_white"].layout.paper_bgcolor
    return spec


# ------------------------------------------------------------------------------------------- tile

@pytest.mark.parametrize("channels", [1, 3])
def test_tile_shape_and_dtype(channels):
    images = np.random.default_rng(0).random((6, channels, 4, 5))
    out = F.tile(images, nrows=2, ncols=3, pad=1)
    assert out.shape == (2 * 5 - 1, 3 * 6 - 1, 3)
    assert out.dtype == np.uint8
    assert F.tile(images, 2, 3, pad=0).shape == (8, 15, 3)


def test_tile_grey_is_replicated_to_rgb():
    out = F.tile(np.full((1, 1, 2, 2), 0.5), 1, 1)
    assert (out == 128).all()


@pytest.mark.parametrize("pad_value", [0.0, 1.0])
def test_tile_pad_pixels(pad_value):
    out = F.tile(np.full((4, 3, 4, 5), 0.5), 2, 2, pad=1, pad_value=pad_value)
    expected = round(pad_value * 255)
    assert (out[4, :, :] == expected).all()  # the gap between rows
    assert (out[:, 5, :] == expected).all()  # the gap between columns
    assert (out[:4, :5] == 128).all()


def test_tile_is_row_major():
    images = np.zeros((6, 1, 4, 5))
    images[4] = 1.0  # row 1, column 1 in a 2 x 3 grid
    out = F.tile(images, 2, 3, pad=1, pad_value=0.0)
    assert (out[5:9, 6:11] == 255).all()
    out[5:9, 6:11] = 0
    assert (out == 0).all()


def test_tile_accepts_a_5d_grid():
    images = np.random.default_rng(1).random((2, 3, 3, 4, 4))
    np.testing.assert_array_equal(F.tile(images, 2, 3), F.tile(images.reshape(6, 3, 4, 4), 2, 3))
    with pytest.raises(ValueError):
        F.tile(images, 3, 2)


def test_tile_clips_and_handles_nan():
    images = np.array([-1.0, 2.0, np.nan, 0.25]).reshape(4, 1, 1, 1)
    out = F.tile(images, 1, 4, pad=0)
    assert out[0, :, 0].tolist() == [0, 255, 0, 64]


def test_tile_fills_missing_cells_and_rejects_overflow():
    out = F.tile(np.zeros((3, 1, 2, 2)), 2, 2, pad=0, pad_value=1.0)
    assert (out[2:, 2:] == 255).all() and (out[:2, :2] == 0).all()
    with pytest.raises(ValueError):
        F.tile(np.zeros((5, 1, 2, 2)), 2, 2)
    with pytest.raises(ValueError):
        F.tile(np.zeros((4, 2, 2, 2)), 2, 2)  # two channels is neither grey nor RGB


# ------------------------------------------------------------------------------------------- png

def test_png_data_uri_round_trips_exactly():
    rgb = np.random.default_rng(2).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    uri = F.png_data_uri(rgb)
    np.testing.assert_array_equal(decode_uri(uri), rgb)
    grey = rgb[..., 1]
    np.testing.assert_array_equal(decode_uri(F.png_data_uri(grey)), np.repeat(grey[..., None], 3, axis=2))
    with pytest.raises(ValueError):
        F.png_data_uri(rgb.astype(np.float32))
    with pytest.raises(ValueError):
        F.png_data_uri(rgb[..., :2])


# ------------------------------------------------------------------------------------------- image_grid

def test_image_grid_is_one_image_trace_with_the_tiled_png():
    images = np.random.default_rng(3).random((6, 3, 8, 8))
    fig = F.image_grid(images, ncols=3, title="samples")
    check_sendable(fig)
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Image)
    np.testing.assert_array_equal(decode_uri(fig.data[0].source), F.tile(images, 2, 3))
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.layout.yaxis.autorange == "reversed"
    assert fig.layout.xaxis.showgrid is False and fig.layout.yaxis.showgrid is False
    assert fig.layout.title.text == "samples"


def test_image_grid_labels_sit_at_tile_centres():
    images = np.zeros((2, 3, 1, 8, 8))  # (R, K, C, H, W)
    cols = ["-3σ", "0", "+3σ"]
    fig = F.image_grid(images, 3, row_labels=["input", "recon"], col_labels=cols)
    check_sendable(fig)
    assert list(fig.layout.xaxis.tickvals) == [3.5, 12.5, 21.5]  # tile k spans pixels 9k .. 9k+7
    assert list(fig.layout.xaxis.ticktext) == cols
    assert list(fig.layout.yaxis.tickvals) == [3.5, 12.5]
    assert list(fig.layout.yaxis.ticktext) == ["input", "recon"]
    assert decode_uri(fig.data[0].source).shape == (17, 26, 3)


def test_image_grid_sends_grey_as_grey_png():
    images = np.random.default_rng(7).random((4, 1, 5, 5))
    fig = F.image_grid(images, ncols=2)
    png = Image.open(io.BytesIO(base64.b64decode(fig.data[0].source.split(",", 1)[1])))
    assert png.mode == "L"
    np.testing.assert_array_equal(decode_uri(fig.data[0].source), F.tile(images, 2, 2))


def test_image_grid_checks_its_arguments():
    with pytest.raises(ValueError):
        F.image_grid(np.zeros((2, 3, 1, 4, 4)), ncols=2)
    with pytest.raises(ValueError):
        F.image_grid(np.zeros((4, 1, 4, 4)), ncols=0)
    with pytest.raises(ValueError):
        F.image_grid(np.zeros((4, 1, 4, 4)), ncols=2, row_labels=["only one"])


def test_image_grid_partial_last_row_and_height():
    fig = F.image_grid(np.zeros((5, 1, 4, 4)), ncols=3, height=333)
    assert decode_uri(fig.data[0].source).shape == (9, 14, 3)
    assert fig.layout.height == 333
    assert F.image_grid(np.zeros((5, 1, 4, 4)), ncols=3).layout.height > 0


def test_validation_stays_on_for_callers():
    fig = F.image_grid(np.zeros((1, 1, 4, 4)), 1)
    with pytest.raises(ValueError):
        fig.update_layout(not_a_plotly_property=1)


# ------------------------------------------------------------------------------------------- heatmap

def test_error_heatmap_tiles_with_nan_gaps():
    errors = np.random.default_rng(4).random((5, 3, 4))
    fig = F.error_heatmap(errors, ncols=3, title="per-pixel error")
    check_sendable(fig)
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Heatmap)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2 * 4 - 1, 3 * 5 - 1)
    assert np.isnan(z[3, :]).all() and np.isnan(z[:, 4]).all() and np.isnan(z[:, 9]).all()
    for i in range(5):
        r, c = divmod(i, 3)
        np.testing.assert_array_equal(z[r * 4:r * 4 + 3, c * 5:c * 5 + 4], errors[i])
    assert np.isnan(z[4:, 10:]).all()  # the sixth cell has no image
    assert fig.data[0].zmin == 0 and fig.data[0].zmax == pytest.approx(errors.max())
    assert fig.data[0].colorbar.title.text == "squared error"
    assert fig.layout.yaxis.autorange == "reversed"


def test_error_heatmap_rejects_channels():
    with pytest.raises(ValueError):
        F.error_heatmap(np.zeros((2, 1, 4, 4)), ncols=2)


# ------------------------------------------------------------------------------------------- curves

def test_training_curves_panels_and_data():
    steps, recon, kl, elbo = [0, 10, 20], [300.0, 200.0, 150.0], [1.0, 5.0, 8.0], [-301.0, -205.0, -158.0]
    fig = F.training_curves(steps, recon, kl, elbo, test_steps=[20], test_elbo=[-160.0], title="run 1")
    check_sendable(fig)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["negative log-likelihood −log p(x|z) (nats/image)", "KL(q(z|x) ‖ p(z)) (nats/image)",
                      "ELBO (nats/image)"]
    assert fig.data[0].name == "−log p(x|z)"  # the hover's name: the term itself, not "reconstruction"
    assert len(fig.data) == 4
    for trace, ys, axis in zip(fig.data, (recon, kl, elbo), ("y", "y2", "y3")):
        np.testing.assert_array_equal(trace.x, steps)
        np.testing.assert_array_equal(trace.y, ys)
        assert trace.yaxis == axis
    test = fig.data[3]
    assert test.name == "test ELBO" and test.yaxis == "y3"
    np.testing.assert_array_equal(test.y, [-160.0])
    assert fig.layout.xaxis.matches == "x3" and fig.layout.xaxis2.matches == "x3"
    assert fig.layout.xaxis3.title.text == "step"
    domains = [fig.layout.yaxis.domain, fig.layout.yaxis2.domain, fig.layout.yaxis3.domain]
    assert all(0 <= lo < hi <= 1 for lo, hi in domains)
    assert domains[0][0] > domains[1][1] and domains[1][0] > domains[2][1]  # stacked, no overlap


def test_training_curves_empty_run():
    fig = F.training_curves([], [], [], [])
    check_sendable(fig)
    assert len(fig.data) == 3 and all(len(t.x) == 0 for t in fig.data)


def test_training_curves_of_one_step_are_readable():
    """A run that diverged at step 2 has one point: draw it, with a padded range (plotly's own is value ± 1,
    whose ticks read "-1,700,476,671.5") and whole steps."""
    fig = F.training_curves([1], [1.7e9], [0.14], [-1.7e9])
    check_sendable(fig)
    assert all(t.mode == "markers" for t in fig.data)
    assert list(fig.layout.yaxis.range) == pytest.approx([1.53e9, 1.87e9])
    assert list(fig.layout.yaxis3.range) == pytest.approx([-1.87e9, -1.53e9])
    assert fig.layout.xaxis3.dtick == 1
    many = F.training_curves(list(range(50)), np.linspace(9, 1, 50), np.ones(50), -np.linspace(10, 2, 50))
    assert many.data[0].mode == "lines" and many.layout.yaxis.range is None
    assert list(many.layout.yaxis2.range) == [0.9, 1.1]  # a flat KL gets a range around it too
    assert many.layout.xaxis3.dtick is None


def test_number_axes_switch_to_powers_of_ten_at_a_million():
    """Axes as the cards: positional with separators below SCIENTIFIC_FROM, "×10⁹" beyond (not "B" or "P")."""
    fig = F.kl_per_dim_bars([1e16, 3.0])
    axis = fig.layout.template.layout.yaxis
    assert axis.exponentformat == "power" and axis.separatethousands
    assert 10 ** (axis.minexponent + 1) == F.SCIENTIFIC_FROM  # plotly uses the exponent when |exp| > minexponent


@pytest.mark.parametrize("value, decimals, signed, text", [
    (-121.04, 2, False, "-121.04"), (798595.67, 3, False, "798,596"),
    (-99995.3, 1, False, "-99,995"), (9999.25, 1, False, "9,999.2"),
    (-1700476672.0, 2, False, "-1.70 × 10⁹"),
    (6135040.0, 2, True, "+6.14 × 10⁶"), (-0.5, 2, True, "-0.50"), (1e16, 1, False, "1.00 × 10¹⁶"),
    (2.5e-7, 2, False, "0.00"), (float("nan"), 2, False, "NaN"), (float("-inf"), 2, False, "-∞"),
    (None, 2, False, "—"),
])
def test_format_number(value, decimals, signed, text):
    assert F.format_number(value, decimals, signed=signed) == text


def test_training_curves_rejects_ragged_input():
    with pytest.raises(ValueError):
        F.training_curves([0, 1], [1.0], [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError):
        F.training_curves([], [], [], [], test_steps=[1], test_elbo=[])


# ------------------------------------------------------------------------------------------- KL bars

def test_kl_per_dim_bars_mutes_inactive_dims():
    kl = [2.5, 0.001, 0.5, 0.0]
    fig = F.kl_per_dim_bars(kl, threshold=0.01, title="KL per dim")
    check_sendable(fig)
    active, inactive = fig.data
    assert list(active.x) == ["z0", "z2"] and list(active.y) == [2.5, 0.5]
    assert list(inactive.x) == ["z1", "z3"] and list(inactive.y) == [0.001, 0.0]
    assert inactive.marker.color == F.MUTED and active.marker.color != F.MUTED
    assert list(fig.layout.xaxis.categoryarray) == ["z0", "z1", "z2", "z3"]
    (line,) = fig.layout.shapes
    assert line.y0 == line.y1 == 0.01 and line.line.dash == "dash"


def test_kl_per_dim_bars_name_their_groups_by_kl_never_active():
    """Beside an "Active units: 0 / 10" card, the legend must not call a dimension with KL >= 0.01 "active"."""
    fig = F.kl_per_dim_bars([2.5, 0.001, 0.5, 0.0], threshold=0.01)
    assert [t.name for t in fig.data] == ["KL ≥ 0.01 nats: 2", "KL < 0.01 nats: 2"]
    assert not any("active" in t.name for t in fig.data)


def test_kl_per_dim_bars_with_no_dims():
    fig = F.kl_per_dim_bars([])
    check_sendable(fig)
    assert all(len(t.x) == 0 for t in fig.data)


# ------------------------------------------------------------------------------------------- scatter

def test_latent_scatter_categorical():
    rng = np.random.default_rng(5)
    points, labels = rng.normal(size=(300, 2)), rng.integers(0, 3, size=300)
    names = ["circle", "square", "heart"]
    fig = F.latent_scatter(points, labels, color_name="shape", categorical=True, category_names=names)
    check_sendable(fig)
    assert [t.name for t in fig.data] == names
    assert all(isinstance(t, go.Scattergl) for t in fig.data)
    for k, trace in enumerate(fig.data):
        np.testing.assert_array_equal(trace.x, points[labels == k, 0])
        np.testing.assert_array_equal(trace.y, points[labels == k, 1])
    assert fig.layout.legend.title.text == "shape"
    assert len({t.marker.color for t in fig.data}) == 3


def test_latent_scatter_categorical_without_names():
    fig = F.latent_scatter(np.zeros((4, 2)), np.array([7, 3, 7, 3]), color_name="digit", categorical=True)
    assert [t.name for t in fig.data] == ["3", "7"]


def test_latent_scatter_continuous():
    rng = np.random.default_rng(6)
    points, values = rng.normal(size=(5000, 2)), rng.random(5000)
    fig = F.latent_scatter(points, values, color_name="scale", categorical=False, axis_titles=("PC1", "PC2"))
    check_sendable(fig)
    (trace,) = fig.data
    assert isinstance(trace, go.Scattergl)
    np.testing.assert_array_equal(trace.marker.color, values)
    assert trace.marker.colorbar.title.text == "scale"
    assert fig.layout.xaxis.title.text == "PC1" and fig.layout.yaxis.title.text == "PC2"


def test_latent_scatter_checks_shapes():
    with pytest.raises(ValueError):
        F.latent_scatter(np.zeros((4, 3)), np.zeros(4), color_name="c", categorical=False)


# ------------------------------------------------------------------------------------------- imports

def test_import_pulls_in_neither_streamlit_nor_torch():
    code = ("import sys, vae_plots; before = set(sys.modules); import vae_plots.figures; "
            "new = set(sys.modules) - before; "
            "assert not {m for m in new if m.split('.')[0] in ('streamlit', 'torch')}, new")
    subprocess.run([sys.executable, "-c", code], check=True)
