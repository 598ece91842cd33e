"""Figures a class draws over and over, made once per server: a page switch, a toggle flip or a link opened by a
whole class asks for the same run's same figure again (bench/load.py: encoding and decoding for the range
histogram, the traversals and the reconstructions took a third of a loaded server's CPU).

Shared for runs on public data; a person's images stay in that browser's session (see is_private). Figures are
only read: present_figure draws a copy."""
from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar

import streamlit as st

from ui.space import session_cached
from ui.state import run_mtime
from vae_core.data.images.dataset import is_private
from vae_core.runs.folders import LoadedRun

T = TypeVar("T")
VIEWS_KEPT = 256  # figures of a few images each: ~50 KB apiece
PRIVATE_VIEWS_KEY = "private_views_{kind}"  # session: a person's figures of this kind, the newest few


def cached_view(runs: Sequence[LoadedRun], kind: str, args: Hashable, make: Callable[[], T]) -> T:
    """make(), which draws `kind` of these runs with these args (which, with the runs, decide it), made once."""
    key = (kind, tuple((str(r.path), run_mtime(r)) for r in runs), args)
    if any(is_private(r.config.data) for r in runs):
        return session_cached(PRIVATE_VIEWS_KEY.format(kind=kind), key, make, keep=4)
    return _shared(key, make)


@st.cache_resource(max_entries=VIEWS_KEPT, show_spinner=False)
def _shared(key: tuple, _make: Callable[[], Any]) -> Any:
    """Cached: every session drawing this run's figure with these settings gets the one made first."""
    return _make()
