"""This browser's images as the pages use them (Your images, the Train form, a lab): the ones it chose, read
once per session, and the target range each data config gives them.

Nothing here goes into st.cache_*: those caches are shared by every session, and an upload is one
browser's. A read is kept in this session's state; the choice of images in this browser's record.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from ui.session import client_record
from ui.space import images_refusal, limits, my_space, session_cached, session_latest
from vae_core.config import DataConfig
from vae_core.data.base import DatasetNotFoundError
from vae_core.data.images.dataset import UserImages, read_images
from vae_core.data.normalize import run_normalizer
from vae_core.model.reach import ImageStats, TargetRange, image_stats, target_range_of

RANGES_KEY = "images_ranges"  # session: each data config's target range on this browser's images
READ_KEY = "images_read"  # session: the last Read, so a rerun does not decode the images again


@dataclass(frozen=True)
class Read:
    """Images read as a data config asks, with the statistics of their training split."""
    data: DataConfig  # as asked for ("auto" colour included)
    images: UserImages
    stats: ImageStats  # of the training split

    @property
    def chosen(self) -> DataConfig:
        """The data a run trains on: "auto" colour settled from the images."""
        return self.images.settle(self.data)


def chosen_images() -> DataConfig | None:
    """The images this browser chose (still on disk), else its newest upload with the default settings."""
    chosen = client_record().images
    if chosen is not None and Path(chosen.images).exists() and images_refusal(chosen.images) is None:
        return chosen
    uploads = my_space().uploads()
    return DataConfig(dataset="images", images=str(uploads[0])) if uploads else None


def choose(data: DataConfig) -> None:
    """Make these images, with these settings, this browser's choice: on every page, after a reload too."""
    client_record().images = data


def last_read() -> Read | None:
    """This session's last read, if any."""
    return session_latest(READ_KEY)


def read(data: DataConfig) -> Read:
    """The images as data asks (this session's last read when it asked the same); raises UploadRefused."""
    return session_cached(READ_KEY, (data, Path(data.images).exists()), lambda: _read(data))  # gone: read (raises)


def _read(data: DataConfig) -> Read:
    with st.spinner("Reading your images…"):
        images = read_images(data.images, data, limits())
        return Read(data, images, image_stats(images.train.images))


def images_target_range(data: DataConfig) -> TargetRange:
    """The target range of data (this browser's chosen images, under data's normalization and scale), from this
    session's read; kept per data in this session."""
    chosen = chosen_images()
    if chosen is None or chosen.images != data.images:
        raise DatasetNotFoundError("These images are not this browser's current ones: upload them again.")
    return session_cached(RANGES_KEY, data, lambda: _target_range(read(chosen).images, data), keep=32)


def _target_range(images: UserImages, data: DataConfig) -> TargetRange:
    return target_range_of(run_normalizer(data, images.train.images), images.test.images)


def forget() -> None:
    """This browser's images and private runs, deleted now."""
    st.session_state.pop(READ_KEY, None)
    st.session_state.pop(RANGES_KEY, None)
    client_record().images = None
    my_space().delete()
