"""This browser's vectors as the pages use them (Your data, the Train form, the not-unit lab): the file it chose,
kept in its private space, and its rows read once per session. Nothing here goes into st.cache_*: a person's rows
are theirs alone (a read is kept in this session's state; the choice in this browser's record)."""
from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from ui.session import client_record
from ui.space import my_space, session_cached
from vae_core.config import DataConfig
from vae_core.data.vectors.bundled import read_vectors
from vae_core.data.vectors.dataset import VectorLoad
from vae_core.data.vectors.limits import VectorLimits

VECTORS_READ_KEY = "vectors_read"  # session: the last read of this browser's vectors, so a rerun does not parse again


def chosen_vectors() -> DataConfig | None:
    """The vectors this browser chose on the Your data page (their file still on disk), else None."""
    chosen = client_record().vectors
    return chosen if chosen is not None and Path(chosen.vectors).is_file() else None


def choose_vectors(data: DataConfig) -> None:
    """Make these vectors, with these settings, this browser's choice: on every page, after a reload too."""
    client_record().vectors = data


def vector_limits() -> VectorLimits:
    """What one file of vectors may hold on this server (its bytes bound the uploader too)."""
    return VectorLimits()


def save_vectors_upload(uploaded: UploadedFile) -> Path:
    """An uploaded .csv or .npy copied into this browser's space; raises UploadRefused (a wrong suffix, too large)."""
    uploaded.seek(0)
    return my_space().save_vectors(uploaded, Path(uploaded.name).suffix, vector_limits())


def read_my_vectors(data: DataConfig) -> VectorLoad:
    """This browser's vectors read as data says (its seed and test share): this session's last read when it asked
    the same; raises VectorDataError (a ValueError) with the loader's reason, or OSError."""
    key = (data.vectors, data.seed, data.test_share, Path(data.vectors).is_file())  # gone: read again (and raise)
    return session_cached(VECTORS_READ_KEY, key, lambda: _read(data))


def _read(data: DataConfig) -> VectorLoad:
    with st.spinner("Reading your vectors…"):
        return read_vectors(data.vectors, seed=data.seed, test_share=data.test_share, limits=vector_limits())


def forget_vectors() -> None:
    """This browser's choice of vectors and this session's read of them forgotten (the files go with its space)."""
    st.session_state.pop(VECTORS_READ_KEY, None)
    client_record().vectors = None
