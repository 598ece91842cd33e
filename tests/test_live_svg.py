"""The live training views drawn as SVG: well-formed, one line per term, the latest values written out."""
import xml.etree.ElementTree as ET

import pytest

from vae_plots.live_svg import kl_bars_svg, training_curves_svg

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on malformed XML


def test_three_panels_each_with_its_line_and_latest_value():
    steps = list(range(1, 101))
    root = parse(training_curves_svg(steps, [500 - s for s in steps], [s / 10 for s in steps],
                                     [-(500 - s) - s / 10 for s in steps]))
    lines = list(root.iter(f"{NS}polyline"))
    assert len(lines) == 3 and all(len(l.get("points").split()) == 100 for l in lines)
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert "400" in texts and "10" in texts and "-410" in texts  # the latest recon, KL, ELBO
    assert "step 1" in texts and "step 100" in texts


def test_a_falling_curve_is_drawn_falling():
    root = parse(training_curves_svg([1, 2, 3], [3.0, 2.0, 1.0], [1, 1, 1], [1, 1, 1]))
    ys = [float(p.split(",")[1]) for p in next(root.iter(f"{NS}polyline")).get("points").split()]
    assert ys[0] < ys[1] < ys[2]  # SVG's y grows downwards


def test_one_step_is_a_dot_and_huge_or_nan_values_stay_readable():
    root = parse(training_curves_svg([1], [float("nan")], [1e14], [-1e21]))
    assert len(list(root.iter(f"{NS}circle"))) == 3
    assert "-1.00e+21" in [t.text for t in root.iter(f"{NS}text")]
    with pytest.raises(ValueError):
        training_curves_svg([], [], [], [])


def test_kl_bars_one_per_dimension_quiet_ones_in_red():
    root = parse(kl_bars_svg([2.0, 0.001, 1.0, 0.0], threshold=0.01))
    bars = root.findall(f"{NS}rect")
    assert len(bars) == 4
    assert [b.get("fill") for b in bars] == ["#1f77b4", "#d62728", "#1f77b4", "#d62728"]
    heights = [float(b.get("height")) for b in bars]
    assert heights[0] == pytest.approx(2 * heights[2])


def test_a_sweep_overlays_one_coloured_line_per_variant_on_shared_axes():
    from vae_plots.live_svg import curves, curves_svg, sweep_colour

    runs = [curves([1, 2, 3], [9 + i, 8, 7], [1, 2, 3], [-10, -10, -10 + i], sweep_colour(i), f"act={a}")
            for i, a in enumerate(("sigmoid", "tanh", "linear"))]
    svg = curves_svg(runs)
    for i in range(3):
        assert svg.count(f'stroke="{sweep_colour(i)}"') == 3  # one line per panel
    assert all(f"act={a}" in svg for a in ("sigmoid", "tanh", "linear"))
    assert svg.count(">11<") == 1  # the recon panel's shared maximum is one tick, from the tallest variant


def test_the_first_steps_do_not_flatten_the_rest():
    steps = list(range(1, 101))
    recon = [1e5] * 5 + [100 - s / 10 for s in steps[5:]]  # a huge start, then the part worth seeing
    texts = [t.text for t in parse(training_curves_svg(steps, recon, steps, steps)).iter(f"{NS}text")]
    assert "1e+05" not in texts and "1,00,000" not in texts and "98.9" in texts  # the axis fits the settled part


def test_a_lab_variant_keeps_one_colour_on_every_seed():
    from ui.sweep_live import design_slots

    labels = [f"{v} · seed {s}" for s in (0, 1, 2) for v in ("tanh · z-score", "linear · z-score")]
    assert design_slots(labels) == [0, 1, 0, 1, 0, 1]
    assert design_slots(["lr=0.001", "lr=0.01"]) == [0, 1]  # a sweep: one colour a value
