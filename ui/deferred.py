"""Costly estimates that a toggle flip does not wait for: the page draws at once, says they are computing, and
redraws when the background evaluator (state.Warmer) has them."""
from __future__ import annotations

import streamlit as st

from ui.state import evaluate_cached, load_warmer, run_mtime
from vae_core.model.evaluate import EvalMetrics
from vae_core.runs.folders import LoadedRun

SHOWN_KEY = "deferred_shown_run"  # session: the run the deferring page last drew, to tell a flip from a visit
PENDING_KEY = "deferred_pending"  # session: the (path, n_images, iwae_k) estimates the page is waiting for
POLL_S = 0.5


def flipped(run: LoadedRun) -> bool:
    """Whether this draw follows a change of run on the same page (a flip), not a first visit or a widget."""
    last = st.session_state.get(SHOWN_KEY)
    st.session_state[SHOWN_KEY] = str(run.path)
    return last is not None and last != str(run.path)


def estimate(run: LoadedRun, n_images: int, iwae_k: int, defer: bool) -> EvalMetrics | None:
    """The run's evaluation; None where `defer` and it is not computed yet: it is asked for in the background
    and the page says so (refresh_when_ready redraws it)."""
    path = str(run.path)
    if not defer or load_warmer().ready(path, n_images, iwae_k):
        return evaluate_cached(path, run_mtime(run), n_images, iwae_k)
    st.session_state.setdefault(PENDING_KEY, []).append((path, n_images, iwae_k))
    st.info(f"Computing on {n_images:,} test images{f' (IWAE, k = {iwae_k})' if iwae_k else ''}: the numbers "
            "appear here in a few seconds.", icon=":material/hourglass_top:")
    return None


def pending() -> bool:
    """Whether this page is waiting for an estimate."""
    return bool(st.session_state.get(PENDING_KEY))


@st.fragment(run_every=POLL_S)
def refresh_when_ready() -> None:
    """Redraw the page once every estimate it is waiting for is ready (drawn only where a flip may defer)."""
    pending = st.session_state.get(PENDING_KEY)
    if pending and all(load_warmer().ready(*p) for p in pending):
        st.session_state.pop(PENDING_KEY)
        st.rerun(scope="app")
