"""This browser's private space (its uploads and the runs trained on them) and what it may read: its own
uploads and the host's open folders, never another browser's. The space is found by this browser's secret
(ui/session.py), so no link leads to it; spaces nobody used for the host's stated time are deleted.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from ui.session import client_token
from vae_core.data.images.private import PrivateSpace, delete_expired
from vae_core.data.images.source import MB, UploadLimits
from vae_core.host import HostSettings

T = TypeVar("T")
EXPIRE_EVERY_S = 60.0  # how often (at most) a page run looks for expired spaces
_expired_at = [0.0]
_expire_lock = threading.Lock()


def session_cached(slot: str, key: Hashable, compute: Callable[[], T], keep: int = 1) -> T:
    """What is made of a person's images, kept in this browser's session only: computed once per key, the newest
    `keep` keys kept (a read or a sample of images can be tens of MB). The one private cache (see is_private)."""
    kept: dict = st.session_state.setdefault(slot, {})
    if key not in kept:
        value = compute()  # a refusal raises here and keeps nothing
        while len(kept) >= keep:
            kept.pop(next(iter(kept)))
        kept[key] = value
    return kept[key]


def session_latest(slot: str) -> Any:
    """The value session_cached kept last in slot; None where it holds none."""
    kept = st.session_state.get(slot)
    return next(reversed(kept.values())) if kept else None


def host() -> HostSettings:
    """The host's settings, as the environment says now."""
    return HostSettings.from_env()


def limits() -> UploadLimits:
    """What an upload may weigh on this server."""
    return UploadLimits(upload_bytes=host().max_upload_mb * MB)


def my_space() -> PrivateSpace:
    """This browser's private space."""
    return PrivateSpace.of(host().uploads_dir, client_token())


def my_runs_dirs() -> list[Path]:
    """Where this browser's runs may be: the host's runs folder, and its private space."""
    space = my_space()
    return [host().runs_dir] + ([space.runs_dir] if space.runs_dir.is_dir() else [])


def keep_alive(busy: Callable[[], list[PrivateSpace]]) -> None:
    """Every page run: this browser still uses its space; spaces nobody used for the stated time go, except the
    `busy` ones (a job trains on them: the caller knows the jobs, this module does not)."""
    my_space().touch()
    now = time.time()
    with _expire_lock:
        if now - _expired_at[0] < EXPIRE_EVERY_S:
            return
        _expired_at[0] = now
    delete_expired(host().uploads_dir, host().upload_ttl_s, busy())


def in_host_folder(path: str | Path) -> bool:
    """Whether path lies in a folder the host opened to browsers."""
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(os.path.realpath(folder)) for folder in host().image_folders)


def images_refusal(path: str | None) -> str | None:
    """Why this browser may not train on the images at path (None: it may): its own uploads, or the host's folders."""
    if path is None or my_space().holds(path) or in_host_folder(path):
        return None
    return ("These images are neither this browser's upload nor in a folder the host opened to browsers; "
            "upload them on the Your data page.")


def runs_dir_for(config_images: str | None) -> Path | None:
    """Where a job on these images saves: this browser's private space for its uploads, else the host's folder."""
    return my_space().runs_dir if config_images and my_space().holds(config_images) else None


def save_upload(uploaded: UploadedFile) -> Path:
    """An uploaded file copied into this browser's space; raises UploadRefused."""
    uploaded.seek(0)
    return my_space().save_upload(uploaded, limits())
