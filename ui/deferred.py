"""Costly estimates that no page waits for: the page draws at once, says they are computing, and redraws when the
background evaluator (ui/estimates.py) has them. One saved with the run, or cheap, is drawn at once.

Why: a server draws every session's page in one process; an IWAE bound on 2,000 images with k = 200 takes a
minute of one core, and while a page computes it, the class waits (bench/load.py: a slider on Diagnostics timed
out at 30 sessions)."""
from __future__ import annotations

from typing import Literal

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ui.estimates import evaluate_cached, load_evaluator, saved_estimate
from ui.state import run_mtime
from vae_core.model.evaluate import EvalMetrics
from vae_core.runs.folders import LoadedRun

PENDING_KEY = "deferred_pending"  # session: the (path, n_images, iwae_k) estimates the page is waiting for
POLL_S = 0.5
# An estimate decodes each image about k + 2 times (the ELBO's two draws, the IWAE's k): this many decodes take
# ~0.3 s for the default conv VAE on one core, so fewer are computed by the page itself.
INSTANT_DECODES = 1000


def begin() -> None:
    """A page that defers starts each full run waiting for nothing: what it asks for this run is what it awaits."""
    st.session_state[PENDING_KEY] = set()


def estimate(run: LoadedRun, n_images: int, iwae_k: int, notice: Literal["say", "quiet"] = "say") -> EvalMetrics | None:
    """The run's evaluation where it is at hand; else None: it is asked for in the background, the page says so
    (unless "quiet": it says it once for several) and refresh_when_ready redraws it."""
    path, mtime = str(run.path), run_mtime(run)
    if n_images * (iwae_k + 2) <= INSTANT_DECODES or saved_estimate(path, mtime, n_images, iwae_k) \
            or load_evaluator().ready(path, n_images, iwae_k):
        return evaluate_cached(path, mtime, n_images, iwae_k)
    st.session_state.setdefault(PENDING_KEY, set()).add((path, n_images, iwae_k))
    if notice == "say":
        computing(f"{n_images:,} test images{f' (IWAE, k = {iwae_k})' if iwae_k else ''}")
    if _in_fragment():  # a fragment's own rerun draws no poller: the whole page draws one
        st.rerun(scope="app")
    return None


def computing(what: str) -> None:
    st.info(f"Computing on {what}: the numbers appear here when they are ready.", icon=":material/hourglass_top:")


def waiting() -> bool:
    """Whether this page run is waiting for an estimate."""
    return bool(st.session_state.get(PENDING_KEY))


def _in_fragment() -> bool:
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def poll_if_pending() -> None:
    """At the page's end: a poller while something is computing (an idle one would rerun every half second)."""
    if waiting():
        refresh_when_ready()


@st.fragment(run_every=POLL_S)
def refresh_when_ready() -> None:
    """Redraw the page once every estimate it is waiting for is ready."""
    pending = st.session_state.get(PENDING_KEY)
    if pending and all(load_evaluator().ready(*p) for p in pending):
        st.session_state[PENDING_KEY] = set()
        st.rerun(scope="app")
