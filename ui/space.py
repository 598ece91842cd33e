"""Your images in the app: the upload into this browser's private space, the host's folders, the choice of
how images become tensors, and which runs stay private.

Nothing here goes into st.cache_*: those caches are shared by every session, and an upload is one
browser's. A read is kept in this session's state; the choice of images in this browser's record.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from ui.session import client_record, client_token
from vae_core.config import DataConfig
from vae_core.data.base import DatasetNotFoundError
from vae_core.data.images.dataset import UserImages, read_images
from vae_core.data.images.private import PrivateSpace, delete_expired
from vae_core.data.images.source import MB, UploadLimits
from vae_core.data.normalize import fit_normalizer
from vae_core.host import HostSettings
from vae_core.model.reach import ImageStats, TargetRange, image_stats, target_range_of

RANGES_KEY = "images_ranges"  # session: each data config's target range on this browser's images
READ_KEY = "images_read"  # session: the last Read, so a rerun does not decode the images again
EXPIRE_EVERY_S = 60.0  # how often (at most) a page run looks for expired spaces
_expired_at = [0.0]
_expire_lock = threading.Lock()


@dataclass(frozen=True)
class Read:
    data: DataConfig  # as asked for ("auto" colour included)
    images: UserImages
    stats: ImageStats  # of the training split

    @property
    def chosen(self) -> DataConfig:
        """The data a run trains on: "auto" colour settled from the images."""
        return self.images.settle(self.data)


def host() -> HostSettings:
    return HostSettings.from_env()


def limits() -> UploadLimits:
    return UploadLimits(upload_bytes=host().max_upload_mb * MB)


def my_space() -> PrivateSpace:
    return PrivateSpace.of(host().uploads_dir, client_token())


def my_runs_dirs() -> list[Path]:
    """Where this browser's runs may be: the host's runs folder, and its private space."""
    space = my_space()
    return [host().runs_dir] + ([space.runs_dir] if space.runs_dir.is_dir() else [])


def keep_alive() -> None:
    """Every page run: this browser still uses its space; spaces nobody used for the stated time go."""
    my_space().touch()
    now = time.time()
    with _expire_lock:
        if now - _expired_at[0] < EXPIRE_EVERY_S:
            return
        _expired_at[0] = now
    from ui.jobs import busy_spaces  # here: ui.jobs imports this module

    delete_expired(host().uploads_dir, host().upload_ttl_s, busy_spaces())


def in_host_folder(path: str | Path) -> bool:
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(os.path.realpath(folder)) for folder in host().image_folders)


def images_refusal(path: str | None) -> str | None:
    """Why this browser may not train on the images at path (None: it may): its own uploads, or the host's folders."""
    if path is None or my_space().holds(path) or in_host_folder(path):
        return None
    return ("These images are neither this browser's upload nor in a folder the host opened to browsers; "
            "upload them on the Your images page.")


def runs_dir_for(config_images: str | None) -> Path | None:
    """Where a job on these images saves: this browser's private space for its uploads, else the host's folder."""
    return my_space().runs_dir if config_images and my_space().holds(config_images) else None


# ----------------------------------------------------------------------------- the chosen images

def chosen_images() -> DataConfig | None:
    """The images this browser chose (still on disk), else its newest upload with the default settings."""
    chosen = client_record().images
    if chosen is not None and Path(chosen.images).exists() and images_refusal(chosen.images) is None:
        return chosen
    uploads = my_space().uploads()
    return DataConfig(dataset="images", images=str(uploads[0])) if uploads else None


def choose(data: DataConfig) -> None:
    client_record().images = data


def read(data: DataConfig) -> Read:
    """The images as data asks (this session's last read when it asked the same); raises UploadRefused."""
    last = st.session_state.get(READ_KEY)
    if isinstance(last, Read) and last.data == data and Path(data.images).exists():
        return last
    with st.spinner("Reading your images…"):
        images = read_images(data.images, data, limits())
        result = Read(data, images, image_stats(images.train.images))
    st.session_state[READ_KEY] = result
    return result


def images_target_range(data: DataConfig) -> TargetRange:
    """The target range of data (this browser's chosen images, under data's normalization and scale), from this
    session's read; kept per data in this session."""
    chosen = chosen_images()
    if chosen is None or chosen.images != data.images:
        raise DatasetNotFoundError("These images are not this browser's current ones: upload them again.")
    kept = st.session_state.setdefault(RANGES_KEY, {})
    if data not in kept:
        train = read(chosen).images
        normalizer = fit_normalizer(data.normalization, train.train.images, data.data_scale)
        kept[data] = target_range_of(normalizer, train.test.images)
    return kept[data]


def forget() -> None:
    """This browser's images and private runs, deleted now."""
    st.session_state.pop(READ_KEY, None)
    st.session_state.pop(RANGES_KEY, None)
    client_record().images = None
    my_space().delete()


def save_upload(uploaded) -> Path:
    """An uploaded file (Streamlit's UploadedFile) copied into this browser's space; raises UploadRefused."""
    uploaded.seek(0)
    return my_space().save_upload(uploaded, limits())

