"""Each feature's range against an output activation's: which leave it, and the figure that shows them."""
from __future__ import annotations

import math

import pytest

from vae_core.model.compatibility import features_outside
from vae_plots import figures
from vae_plots.vector_ranges import MOST_FEATURES, feature_ranges_figure, shown_features

LO, HI = [-0.5, 0.1, -3.0, 0.0], [0.5, 0.9, 2.0, 1.0]


@pytest.mark.parametrize("activation, outside", [("sigmoid", [0, 2]), ("tanh", [2]), ("linear", [])])
def test_a_feature_leaves_an_activation_where_its_values_pass_either_end(activation, outside):
    assert features_outside(LO, HI, activation) == outside


def test_the_figure_marks_in_red_the_features_an_activation_cannot_reach():
    fig = feature_ranges_figure(list("abcd"), LO, HI, "tanh")
    reached, below, above = fig.data
    assert list(reached.y) == list("abcd") and reached.marker.color == figures.ACCENT
    assert list(reached.base) == [-0.5, 0.1, -1.0, 0.0] and list(reached.x) == pytest.approx([1.0, 0.8, 2.0, 1.0])
    assert below.marker.color == above.marker.color == figures.TEST_COLOR
    assert list(below.x) == pytest.approx([0, 0, 2.0, 0]) and below.base[2] == -3.0  # c from -3 to -1
    assert list(above.x) == pytest.approx([0, 0, 1.0, 0]) and above.base[2] == 1.0  # and from 1 to 2
    assert (fig.layout.shapes[0].x0, fig.layout.shapes[0].x1) == (-1.0, 1.0)
    assert "(1 of 4 features)" in fig.layout.annotations[0].text


def test_an_unbounded_output_has_no_band_and_nothing_in_red():
    fig = feature_ranges_figure(list("abcd"), LO, HI, "linear")
    assert not fig.layout.shapes and not any(fig.data[1].x) and not any(fig.data[2].x)
    assert list(fig.data[0].x) == pytest.approx([h - l for l, h in zip(LO, HI)])


def test_past_the_most_a_projector_shows_the_features_farthest_outside_come_first_in_their_order():
    n = MOST_FEATURES + 10
    lo = [-1.0 - (d % 7) for d in range(n)]
    hi = [1.0] * n
    keep = shown_features(lo, hi, "tanh")
    assert len(keep) == MOST_FEATURES and keep == sorted(keep)
    assert min(-lo[d] for d in keep) >= max(-lo[d] for d in set(range(n)) - set(keep))
    assert "40 of 50 features, farthest outside first" in \
        feature_ranges_figure([str(d) for d in range(n)], lo, hi, "tanh").layout.annotations[0].text
    assert math.isfinite(feature_ranges_figure(["a"], [0.0], [1.0], None).layout.height)
