"""This browser's vectors as the pages use them (Your data, the Train form, the not-unit lab): the file it chose,
kept in its private space. Nothing here goes into st.cache_*: a person's rows are theirs alone."""
from __future__ import annotations

from pathlib import Path

from ui.session import client_record
from vae_core.config import DataConfig


def chosen_vectors() -> DataConfig | None:
    """The vectors this browser chose on the Your data page (their file still on disk), else None."""
    chosen = client_record().vectors
    return chosen if chosen is not None and Path(chosen.vectors).is_file() else None


def choose_vectors(data: DataConfig) -> None:
    """Make these vectors, with these settings, this browser's choice: on every page, after a reload too."""
    client_record().vectors = data
