"""The sidebar every page shares: which model is loaded, and a way to switch."""
from __future__ import annotations

import time

import streamlit as st

from ui.downloads import run_zip_ui
from ui.family import family_toggle_ui
from ui.session import client_token
from ui.state import (ModelChoice, current_run, markdown_text, model_choices, pick_run, picker_choices,
                      short_runs_ui)
from vae_core.runs.folders import LoadedRun
from vae_plots.figures import format_number
from vae_plots.views import dataset_words, run_beta

PICKER_KEY = "model_choice"


def model_sidebar_ui() -> LoadedRun:
    """Draw the model picker and a summary of the loaded run; return the run."""
    run = current_run()
    every = model_choices(client_token())  # the toggle finds siblings among them all, short ones too
    choices = {str(c.path): c for c in picker_choices(every, run.path)}
    paths = list(choices)
    if str(run.path) not in choices:  # e.g. a run folder deleted on disk since it was loaded
        paths.append(str(run.path))
    # Keep the picker in step when something else (a finished training) changed the loaded run.
    if st.session_state.get(PICKER_KEY) != str(run.path):
        st.session_state[PICKER_KEY] = str(run.path)
    with st.sidebar:
        st.selectbox("Loaded model", paths, key=PICKER_KEY, format_func=lambda p: _label(choices.get(p), p),
                     on_change=lambda: pick_run(st.session_state[PICKER_KEY]),
                     help="★ bundled with VAE Lab · *you*: runs you trained in this browser · *class*: runs "
                          "others trained on this server. Then: output activation · normalization · likelihood.")
        short_runs_ui(every)
        choice = choices.get(str(run.path))
        family_toggle_ui(choice.info if choice else None, every)
        st.caption(run_summary(run, choice))
        run_zip_ui(st, run.path)
    return run


# The link is read from the browser's address bar, which URL-bound widgets keep current even when only a
# fragment reran (a link built on the server would lag behind them). The address never holds the identity
# (an HttpOnly cookie does, ui/cookie.py), so the link is the address as it is.
SHARE_HTML = """
<div style="font-family: 'Source Sans Pro', sans-serif; font-size: 14px; color: #31333f">
  <input id="link" readonly aria-label="Link to this view"
         style="width: 100%; box-sizing: border-box; padding: 4px; border: 1px solid #d6d6d9; border-radius: 4px">
  <button id="copy" style="margin-top: 6px">Copy link</button> <span id="said"></span>
  <script>
    const box = document.getElementById("link");
    function refresh() {
      const url = new URL(window.parent.location.href);
      if (box.value !== url.toString()) box.value = url.toString();
    }
    refresh();
    setInterval(refresh, 500);
    document.getElementById("copy").onclick = async () => {
      refresh();
      try { await navigator.clipboard.writeText(box.value); }
      catch (e) { box.select(); document.execCommand("copy"); }
      document.getElementById("said").textContent = "copied";
    };
  </script>
</div>
"""


def share_ui() -> None:
    """A copyable link to what the page shows: whoever opens it gets the view, not the identity (that is a
    cookie, never in the address) and not the training job."""
    with st.sidebar.expander("Link to this view", icon=":material/link:"):
        st.iframe(SHARE_HTML, height=76)  # our own constant HTML, nothing a user wrote
        st.caption("Opens the same model, page and settings in any browser. It does not carry your identity "
                   "(your training job stays yours).")
def _label(choice: ModelChoice | None, path: str) -> str:
    return choice.label if choice else f"loaded · {path.rsplit('/', 1)[-1]}"


def run_summary(run: LoadedRun, choice: ModelChoice | None = None) -> str:
    c = run.config
    test = run.metrics.get("test") or {}
    elbo = test.get("elbo_nats")
    lines = [f"**{markdown_text(choice.info.title)}**"] if choice and choice.info.title else []
    lines += [f"**{dataset_words(c.data.dataset)}** · {c.data.normalization} normalization",
              f"{c.model.arch} · {c.model.output_activation} output · {c.loss.likelihood} likelihood",
              f"latent {c.model.latent_dim} · β = {c.loss.beta:g}"]
    if c.loss.free_bits > 0:  # the β above is not the one on a dimension the free bits hold
        lines.append(f"equivalent β at its last step: {run_beta(run, test.get('kl_per_dim') or ()).words()}")
    if elbo is not None:
        per = "nats/image" if c.data.kind == "images" else "nats per raw row"
        lines.append(f"test ELBO {format_number(elbo, 1)} {per} · {test.get('active_units', '?')} active units")
    status = choice.info.status if choice else run.metrics.get("status")
    if status and status != "finished":
        lines.append(f"status: **{status}**" + (f" · {run.metrics['message']}" if run.metrics.get("message") else ""))
    if choice and choice.owner != "bundled":
        who = {"yours": "you", "private": "you, on your own data (private to this browser)"}.get(
            choice.owner, "someone else on this server")
        lines.append(f"trained by {who}, {time.strftime('%d %b %H:%M', time.localtime(choice.info.created))}")
    return "  \n".join(lines)
