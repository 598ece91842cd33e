"""The latent map's parts (vae_plots.latent_map): one plane draws and decodes, a click decodes the point it lands on,
the nearest test images, what a selection event holds, and every test image of MNIST's split drawn."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.test_data import SHARED_DATA
from vae_core.config import DataConfig, LossConfig, ModelConfig, TrainConfig, images_only
from vae_core.data.datasets import load_dataset, load_test_nested
from vae_core.export.frames import to_pixels
from vae_core.model.latent import fit_plane
from vae_core.model.vae import build_model
from vae_core.runs.folders import RunRecord, load_run, save_run
from vae_core.training.trainer import make_run_config, prepare_data
from vae_plots.latent_map import (CLICK_GRID, GRID_CURVE, curve_images, decode_at, encode_map, latent_map, nearest,
                                  read_event)

MNIST_RAW = SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte"  # as tests/test_data.py looks for it


def untrained_run(root: Path, data: DataConfig, latent_dim: int, **model) -> Path:
    """A seeded, untrained run saved as finished: the map needs an encoder and a decoder, not a good one."""
    config = make_run_config(data, ModelConfig(latent_dim=latent_dim, width=8, **model),
                             LossConfig(likelihood="bernoulli"), TrainConfig(epochs=1))
    model = build_model(config.model, "bernoulli", 0.1, seed=0).eval()
    return save_run(root / f"z{latent_dim}", model, config, prepare_data(config).normalizer,
                    RunRecord("finished").to_dict())


@pytest.fixture(scope="module")
def sprites_z2(tmp_path_factory):
    data = DataConfig(n_train=64, n_test=200)
    run = load_run(untrained_run(tmp_path_factory.mktemp("runs"), data, 2))
    return run, load_dataset(images_only(data), "test")


def test_a_point_at_an_images_coordinates_decodes_that_images_mean(sprites_z2):
    """Latent 2: the plane is z itself, so decoding an image's map point is decoding its posterior mean."""
    run, test = sprites_z2
    encoded = encode_map(run, test)
    assert np.allclose(encoded.points, encoded.mu.numpy())
    for i in (0, 57, 199):
        xy = tuple(encoded.points[i])
        with torch.no_grad():
            expected = to_pixels(run, run.model.decode(encoded.mu[i:i + 1]))[0]
        assert np.allclose(decode_at(run, encoded.plane, xy), expected, atol=1e-6)
    assert not np.allclose(decode_at(run, encoded.plane, (3.0, -3.0)), decode_at(run, encoded.plane, (-3.0, 3.0)))


def test_the_pca_plane_lifts_back_to_the_mean_plus_its_components():
    """Larger latents: a point's coordinates lift to mean + x·PC1 + y·PC2, and project back to themselves."""
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(500, 6, generator=g) * torch.tensor([5.0, 3.0, 0.1, 0.1, 0.1, 0.1])
    plane = fit_plane(mu)
    assert plane.explained is not None and plane.axis_names[0].startswith("PC1")
    coords = torch.tensor([[0.0, 0.0], [1.5, -2.0]])
    z = plane.lift(coords)
    assert torch.allclose(z[0], mu.mean(0), atol=1e-5)  # the origin of the map is the mean of the data
    assert torch.allclose(z[1], mu.mean(0) + 1.5 * plane.axes[0] - 2.0 * plane.axes[1], atol=1e-5)
    assert torch.allclose(plane.project(z), coords, atol=1e-4)
    assert torch.allclose(plane.project(mu), (mu - mu.mean(0)) @ plane.axes.T, atol=1e-5)


def test_without_a_pca_the_other_dimensions_are_held_at_the_mean():
    mu = torch.ones(4, 5) * torch.arange(5.0)  # all alike: nothing for a PCA to find
    plane = fit_plane(mu)
    z = plane.lift(torch.tensor([[7.0, -7.0]]))[0]
    assert plane.explained is None and z.tolist() == [7.0, -7.0, 2.0, 3.0, 4.0]


def test_nearest_are_the_closest_points_in_order():
    points = np.random.default_rng(0).normal(size=(3000, 2))
    xy = (0.3, -0.2)
    brute = np.argsort(((points - xy) ** 2).sum(1), kind="stable")[:5]
    assert nearest(points, xy).tolist() == brute.tolist()
    assert nearest(points[:3], xy, k=5).tolist() == np.argsort(((points[:3] - xy) ** 2).sum(1)).tolist()
    with_nan = points.copy()
    with_nan[brute[0]] = np.nan
    assert brute[0] not in nearest(with_nan, xy)


def test_the_map_draws_every_image_over_a_grid_of_click_targets(sprites_z2):
    run, test = sprites_z2
    encoded = encode_map(run, test)
    for color_by in ("label", "scale"):
        fig = latent_map(encoded, test, color_by).figure
        assert fig.data[GRID_CURVE].name == "click" and len(fig.data[GRID_CURVE].x) == CLICK_GRID ** 2
        assert sum(len(t.x) for t in fig.data[1:]) == len(test)
        assert all(t.type == "scattergl" for t in fig.data)
        traces = curve_images(test, color_by)  # each trace's points are these test images, in this order
        for trace, images in zip(fig.data[1:], traces[1:]):
            assert np.allclose(trace.x, encoded.points[images, 0])


def point(curve: int, index: int, x: float = 0.0, y: float = 0.0) -> dict:
    return {"x": x, "y": y, "curve_number": curve, "point_index": index}


def test_a_selection_event_reads_as_a_click_a_region_or_nothing(sprites_z2):
    _, test = sprites_z2
    traces = curve_images(test, "label")
    assert read_event({}, traces).kind == "none"
    click = read_event({"points": [point(GRID_CURVE, 12, 0.5, -1.25)], "box": [], "lasso": []}, traces)
    assert click.kind == "click" and click.clicked == (0.5, -1.25)
    on_a_point = read_event({"points": [point(2, 3, 1.0, 2.0)], "box": [], "lasso": []}, traces)
    assert on_a_point.clicked == (1.0, 2.0)
    box = {"points": [point(GRID_CURVE, 5), point(1, 0), point(1, 2), point(3, 1), point(1, 2), point(9, 0),
                      point(2, 10_000)], "box": [{"x": [0, 1], "y": [0, 1]}], "lasso": []}
    region = read_event(box, traces)
    expected = sorted({int(traces[1][0]), int(traces[1][2]), int(traces[3][1])})  # targets and stale points left out
    assert region.kind == "region" and region.clicked is None and region.selected.tolist() == expected
    empty = read_event({"points": [point(GRID_CURVE, 1)], "box": [], "lasso": [{"x": [0], "y": [0]}]}, traces)
    assert empty.kind == "region" and len(empty.selected) == 0


def test_the_sprites_split_is_nested_without_reordering():
    data = images_only(DataConfig(n_test=300))
    assert torch.equal(load_test_nested(data, 100).images[:100], load_dataset(
        dataclasses.replace(data, n_test=100), "test").images)


@pytest.mark.skipif(not MNIST_RAW.exists(), reason=f"real MNIST files not found under {SHARED_DATA}")
def test_all_ten_thousand_mnist_test_images_are_drawn_the_pages_own_first(tmp_path):
    data = DataConfig(dataset="mnist", data_dir=str(SHARED_DATA), n_train=64)
    whole = load_test_nested(data, 2000)
    page = load_dataset(dataclasses.replace(data, n_test=2000), "test")
    assert len(whole) == 10_000 and torch.equal(whole.images[:2000], page.images)
    assert torch.equal(whole.labels.sort().values, load_dataset(data, "test").labels.sort().values)
    smaller = load_test_nested(dataclasses.replace(data, n_test=5000), 2000)  # a run on 5,000: the page's in it
    run_split = load_dataset(dataclasses.replace(data, n_test=5000), "test")
    assert torch.equal(smaller.images[:2000], page.images)
    assert torch.equal(smaller.images.flatten(1).sum(1).sort().values, run_split.images.flatten(1).sum(1).sort().values)
    run = load_run(untrained_run(tmp_path, data, 2, arch="mlp", hidden_dim=32))
    fig = latent_map(encode_map(run, whole), whole).figure
    assert sum(len(t.x) for t in fig.data[1:]) == 10_000 and len(fig.data) == 11  # the targets and ten digits
