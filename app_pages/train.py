import streamlit as st

from ui.state import current_run, set_run
from ui.train_form import (compatibility_matrix_ui, current_job, loss_balance_ui, run_config_ui, start_job,
                           verdict_ui)
from ui.widgets import chart, test_metrics_ui
from vae_core import figures, views
from vae_core.evaluate import posterior_collapse

st.title("Train")
st.caption("Train a small VAE in the background: the curves update live, other pages stay usable, "
           "and the run is saved (and loaded) when it finishes or you stop it.")

config = run_config_ui()
if config:
    loss_balance_ui(config)
verdict = verdict_ui(config) if config else None
if config:
    with st.expander("Compatibility matrix: every output activation × normalization × likelihood"):
        compatibility_matrix_ui(config.data)
job = current_job()
running = job is not None and not job.snapshot().done

left, right, _ = st.columns([1, 1, 4])
if left.button("Start training", key="train_start", type="primary",
               disabled=running or config is None or verdict is None or verdict.status == "refused"):
    job = start_job(config)
    running = True
if right.button("Stop", key="train_stop", disabled=not running):
    job.stop()


@st.fragment(run_every=0.75 if running else None)
def live_ui() -> None:
    snap = job.snapshot()
    with st.container(key="train_status"):
        if snap.status in ("starting", "running"):
            last = snap.history[-1] if snap.history else None
            progress = (f" · step {last.step}, epoch {last.epoch:.2f}, {last.elapsed_s:.0f} s, "
                        f"β now {last.beta:.3g}" + (f", σ {last.sigma:.3g}" if last.sigma else "")) if last else ""
            st.info(f"Training is **{snap.status}**{progress}.")
        elif snap.status == "failed":
            st.error(f"Training **failed**: {snap.message}")
        elif snap.status == "diverged":
            st.error(f"Training **diverged**. {snap.message}")
        else:
            st.success(f"Training **{snap.status}**. {snap.message}")
    with st.container(key="train_live"):
        if snap.history:
            chart(views.training_figure(snap.history), key="train_curves")
            c1, c2 = st.columns(2)
            if posterior_collapse(list(snap.history[-1].kl_per_dim)):
                st.error("**Posterior collapse:** almost every latent dimension carries under 0.01 nats right now.")
            c1.markdown("**KL per latent dimension** (last batch)")
            with c1:
                chart(figures.kl_per_dim_bars(snap.history[-1].kl_per_dim), key="train_kl")
            if snap.preview is not None:
                c2.markdown(f"**Test reconstructions** at step {snap.preview.step}")
                with c2:
                    grid = [snap.preview.inputs, snap.preview.recons]
                    chart(figures.image_grid(grid, len(snap.preview.inputs),
                                             row_labels=["input", "recon"]), key="train_preview")
    if snap.test_metrics is not None:
        st.markdown("**Test metrics of this run**")
        test_metrics_ui(snap.test_metrics.to_dict())
    if snap.done and snap.run_dir is not None and not st.session_state.get("job_adopted"):
        st.session_state["job_adopted"] = True
        set_run(snap.run_dir)  # the finished run becomes the loaded model
        st.rerun(scope="app")
    elif snap.done and running:
        st.rerun(scope="app")  # turns the polling off and re-enables Start


if job is not None:
    live_ui()
else:
    run = current_run()
    fig = views.saved_history_figure(run)
    if fig is not None:
        st.subheader(f"How the loaded model ({run.name}) trained")
        chart(fig, key="saved_curves")
