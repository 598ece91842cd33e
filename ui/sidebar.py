"""The sidebar every page shares: which model is loaded, and a way to switch."""
from __future__ import annotations

import streamlit as st

from ui.state import current_run, model_choices, set_run
from vae_core.runs import LoadedRun


def model_sidebar_ui() -> LoadedRun:
    """Draw the model picker and a summary of the loaded run; return the run."""
    run = current_run()
    paths = {c.label: str(c.path) for c in model_choices()}  # labels are unique: folder names are
    current = next((label for label, path in paths.items() if path == str(run.path)), None)
    if current is None:  # e.g. a run folder deleted on disk since it was loaded
        current = f"loaded · {run.name}"
        paths[current] = str(run.path)
    # Keep the picker in step when something else (a finished training) changed the loaded run.
    if st.session_state.get("model_choice") != current:
        st.session_state["model_choice"] = current
    with st.sidebar:
        st.selectbox("Loaded model", list(paths), key="model_choice",
                     on_change=lambda: set_run(paths[st.session_state["model_choice"]]),
                     help="Bundled models ship with VAE Lab; your runs are saved by the Train page.")
        st.caption(run_summary(run))
    return run


def run_summary(run: LoadedRun) -> str:
    c = run.config
    test = run.metrics.get("test") or {}
    elbo = test.get("elbo_nats")
    lines = [f"**{c.data.dataset}** · {c.data.normalization} normalization",
             f"{c.model.arch} · {c.model.output_activation} output · {c.loss.likelihood} likelihood",
             f"latent {c.model.latent_dim} · β = {c.loss.beta:g}"]
    if elbo is not None:
        lines.append(f"test ELBO {elbo:.1f} nats/image · {test.get('active_units', '?')} active units")
    status = run.metrics.get("status")
    if status and status != "finished":
        lines.append(f"status: {status}")
    return "  \n".join(lines)
