"""The latent map's loaders: every test image of a run's split, their encoding and the map's figure, shared
between browsers for public datasets and kept in the browser's own session for a person's images."""
from __future__ import annotations

import dataclasses

import streamlit as st

from ui.space import session_cached
from ui.state import run_mtime
from vae_core.config import DataConfig, images_only
from vae_core.data.base import DatasetNotFoundError, ImageDataset
from vae_core.data.datasets import load_test_nested
from vae_core.data.images.dataset import is_private
from vae_core.runs.folders import LoadedRun
from vae_plots.latent_map import EncodedMap, LatentMap, encode_map, latent_map

PRIVATE_MAP_KEY = "private_map"  # session: the latent map's encoding of those images
PRIVATE_MAP_FIGURE_KEY = "private_map_figure"  # session: and its figure
MAP_POINTS = 10_000  # the most test images the latent map draws: MNIST's and CIFAR-10's whole test split


def map_test_images(run: LoadedRun, page: ImageDataset) -> ImageDataset:
    """Every test image of the run's split that the latent map draws (at most MAP_POINTS), the page's own first
    (their indices are the page's); a person's images, or a dataset missing here: the page's."""
    data = run.config.data
    if is_private(data):
        return page
    n = None if data.n_test is None else min(data.n_test, MAP_POINTS)
    try:
        return _load_map_images(images_only(dataclasses.replace(data, n_test=n, download=False)), len(page))
    except (DatasetNotFoundError, ValueError):  # only the run's carried images are here: the page shows those
        return page


@st.cache_resource(max_entries=4, show_spinner="Loading the test split…")
def _load_map_images(data: DataConfig, first: int) -> ImageDataset:
    """Cached because reading a whole test split takes a second; uint8 and read-only, never a person's images."""
    return load_test_nested(data, first)


def load_map_encoding(run: LoadedRun, data: ImageDataset) -> EncodedMap:
    """The map's posterior means and plane: in this session for a person's images, else shared."""
    key = (str(run.path), run_mtime(run), len(data))
    if is_private(run.config.data):
        return session_cached(PRIVATE_MAP_KEY, key, lambda: encode_map(run, data))
    return _shared_encoding(*key, run, data)


@st.cache_resource(max_entries=32, show_spinner="Encoding the test images…")  # the zoo's 20 and a class's
def _shared_encoding(path: str, mtime: float, n: int, _run: LoadedRun, _data: ImageDataset) -> EncodedMap:
    """Cached because encoding 10,000 test images takes seconds, paid again on every flip back to a run (the images
    are the run's split: the run, its save time and their number name them); read-only tensors."""
    return encode_map(_run, _data)


def load_map_figure(run: LoadedRun, data: ImageDataset, encoded: EncodedMap, color_by: str) -> LatentMap:
    """The map's figure: in this session for a person's images, else shared."""
    key = (str(run.path), run_mtime(run), len(data), color_by)
    if is_private(run.config.data):
        return session_cached(PRIVATE_MAP_FIGURE_KEY, key, lambda: latent_map(encoded, data, color_by))
    return _shared_figure(*key, encoded, data)


@st.cache_resource(max_entries=32, show_spinner=False)
def _shared_figure(path: str, mtime: float, n: int, color_by: str, _encoded: EncodedMap,
                   _data: ImageDataset) -> LatentMap:
    """Cached because building 10,000 points' figure costs a rerun ~0.1 s on every click; never mutated."""
    return latent_map(_encoded, _data, color_by)
