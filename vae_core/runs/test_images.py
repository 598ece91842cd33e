"""The test images a run is shown and measured on: its dataset's test split, else the ones it carries."""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch

from vae_core.config import DataConfig, images_only
from vae_core.data.base import DatasetNotFoundError, ImageDataset
from vae_core.data.datasets import load_dataset
from vae_core.data.images.dataset import is_private
from vae_core.runs.folders import LoadedRun, RunLoadError, read_samples


def test_images(run: LoadedRun, n: int) -> torch.Tensor:
    """The first n test images of the run's data (its carried samples where the dataset is gone, and always for a
    person's images: a process-wide cache must not hold anyone's upload)."""
    if is_private(run.config.data):
        return _carried(run)[:n]
    try:
        return _test_split(images_only(run.config.data))[:n]  # one cache entry for a family's variants
    except (ValueError, OSError):
        if read_samples(run.path) is None:
            raise
        return _carried(run)[:n]


def _carried(run: LoadedRun) -> torch.Tensor:
    samples = read_samples(run.path)
    if samples is None:
        raise RunLoadError(f"{run.path} carries no test images, and its dataset is not on this machine.")
    return samples.images


@functools.lru_cache(maxsize=4)
def _test_split(data: DataConfig) -> torch.Tensor:
    """Cached: a family's variants share their data, and a lab or an export reads it for each (uint8, treated as read-only).
    The test split alone: prepare_data would load (or generate) the training split too."""
    return load_dataset(data, "test").images


PAGE_TEST_IMAGES = 2000  # what the pages draw from: enough for the latent map, quick to encode


def page_data(data: DataConfig) -> DataConfig:
    """The run's test split as the pages use it: at most PAGE_TEST_IMAGES, never a download."""
    n = PAGE_TEST_IMAGES if data.n_test is None else min(data.n_test, PAGE_TEST_IMAGES)
    return images_only(dataclasses.replace(data, n_test=n, download=False))


@dataclass(frozen=True)
class PageImages:
    """The test images the pages show and measure, and why they are not the dataset's (None: they are, or the run
    is on a person's images, which are always its own copy)."""
    test: ImageDataset
    missing: Exception | None = None


def find_page_images(run: LoadedRun, load_split: Callable[[DataConfig], ImageDataset] | None = None,
                     load_carried: Callable[[], ImageDataset | None] | None = None) -> PageImages:
    """page_data's split, else (and always for a person's images) the ones the run carries; raises RunLoadError
    where neither is there. The loaders: the app passes its caches."""
    data, missing = run.config.data, None
    if not is_private(data):
        try:
            return PageImages((load_split or _load_test)(page_data(data)))
        except (DatasetNotFoundError, ValueError) as e:
            missing = e
    samples = (load_carried or (lambda: read_samples(run.path)))()
    if samples is None:
        raise RunLoadError(f"This model was trained on {data.dataset}, whose test images are not available here, "
                           f"and it carries none. {missing or ''}")
    return PageImages(samples, missing)


def _load_test(data: DataConfig) -> ImageDataset:
    return load_dataset(data, "test")


def page_images(run: LoadedRun) -> torch.Tensor:
    """The uint8 test images the pages show and measure (find_page_images, uncached)."""
    return find_page_images(run).test.images
