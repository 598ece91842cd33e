import streamlit as st

from ui.jobs import POLL_S, job_line, my_job, refusal, server_line, start_blocked, stop, submit
from ui.parts.train.form import compatibility_matrix_ui, loss_balance_ui, run_config_ui, verdict_ui
from ui.parts.train.runs import your_runs_ui
from ui.parts.train.sweep import sweep_ui
from ui.parts.train.vectors import vector_test_metrics_ui
from ui.state import current_run
from ui.sweep_live import sweep_live_ui
from ui.widgets import chart, test_metrics_ui
from vae_core.jobs.progress import thin
from vae_core.model.evaluate import COLLAPSE_KL, kl_collapse_alarm
from vae_plots import views
from vae_plots.live_svg import kl_bars_svg

LIVE_POINTS = 400  # curve points sent each second: more than a chart's width in pixels is wasted
PREVIEW_ZOOM = 4  # nearest-neighbour upscale of the preview: the browser would blur a small image
VECTOR_CURVES = ("Rows of numbers: the curves are nats per normalized row, as the loss sees them; the test metrics "
                 "below are nats per raw row (the normalization's log-Jacobian added back), so they compare across "
                 "normalizations. No previews: a vector run keeps none.")

st.title("Train")
st.caption("Train a small VAE in the background: the curves update live, other pages stay usable, "
           "and the run is saved (and loaded) when it finishes or you stop it.")

form = run_config_ui()
config = form.config
if config:
    loss_balance_ui(config)
verdict = verdict_ui(config) if config else None
if config:
    with st.expander("Compatibility matrix: every output activation × normalization × likelihood"):
        compatibility_matrix_ui(config.data)
sweep = sweep_ui(config)
job = my_job()
active = job is not None and not job.done

blocked = form.start_blocked or (f"Start is disabled: {sweep.refused}" if sweep.refused else None) \
    or start_blocked(job, verdict, sweeping=sweep.spec is not None)
left, right, note = st.columns([2, 1, 3], vertical_alignment="center")  # "Start training" whole at 1024 px
note.caption(server_line())
left.button(f"Start {len(sweep.spec.values)} in lockstep" if sweep.spec else "Start training", key="train_start",
            type="primary", disabled=active or blocked is not None, on_click=submit, args=(config, sweep.spec))
right.button("Stop", key="train_stop", disabled=not active, on_click=stop, args=(job.token if job else "",))
if refused := refusal():
    st.error(refused)
elif blocked:
    st.warning(blocked)
your_runs_ui()


@st.fragment(run_every=POLL_S if active else None)
def live_ui() -> None:
    """Status, curves, KL per dimension and test reconstructions, every POLL_S while the job is active.
    Drawn as SVG and PNG images: a Plotly redraw each second cost the watcher's CPU a quarter core."""
    job = my_job()
    if job is None:
        return
    status_ui(job)
    snap = job.snapshot
    if snap is not None and snap.variants:
        sweep_live_ui(snap, LIVE_POINTS)
    elif snap is not None and snap.history and not job.done:
        live_figures_ui(snap)
    elif snap is not None and snap.history:  # ended: the interactive figure, drawn once
        chart(views.training_figure(thin(snap.history, LIVE_POINTS), job.config.data.kind), key="train_curves_final")
    if snap is not None and snap.history and job.config.data.kind == "vectors":
        st.caption(VECTOR_CURVES)
    if snap is not None and snap.test_metrics is not None and job.config.data.kind == "vectors":
        st.markdown("**Test metrics of this run**")
        vector_test_metrics_ui(snap.test_metrics.to_dict())
    elif snap is not None and snap.test_metrics is not None:
        st.markdown("**Test metrics of this run**")
        test_metrics_ui(snap.test_metrics.to_dict())
        end_verdict_ui(job, snap)
    if job.done and active:
        st.rerun(scope="app")  # turns the polling off, re-enables Start and loads the run


def live_figures_ui(snap) -> None:
    last = snap.history[-1]
    with st.container(key="train_curves"):
        st.image(views.training_svg(thin(snap.history, LIVE_POINTS), job.config.data.kind))
    # The step's metrics hold the KL per dimension, not Cov_x(E_q[z]): this alarm sees a posterior at the prior;
    # the active units of the test set, once training ends, judge collapse (end_verdict_ui).
    if kl_collapse_alarm(last.kl_per_dim, steps=last.step):
        st.error(f"**No latent dimension carries {COLLAPSE_KL:g} nats** in this batch: the posterior sits on the "
                 "prior, so the decoder is ignoring z.")
    c1, c2 = st.columns(2)
    c1.markdown(f"**KL per latent dimension** (the batch of step {last.step:,}; red: under {COLLAPSE_KL:g} nats)")
    c1.image(kl_bars_svg(last.kl_per_dim, COLLAPSE_KL))
    if snap.preview is not None:
        c2.markdown(f"**Test reconstructions** at step {snap.preview.step:,} (top: input, bottom: reconstruction)")
        c2.image(views.preview_picture(snap.preview, PREVIEW_ZOOM), width="stretch")


def end_verdict_ui(job, snap) -> None:
    """Under the test metrics: the collapse verdict from their active units, and the β the loss ended at."""
    steps = snap.history[-1].step if snap.history else None
    verdict = views.collapse_verdict_at(snap.test_metrics, steps)
    if verdict.alarm:
        st.error(views.collapse_message(snap.test_metrics))
    if job.config.loss.free_bits > 0 and not snap.variants:  # a sweep's variants may differ from job.config
        beta = views.config_beta(job.config, steps or 0, snap.test_metrics.kl_per_dim)
        st.caption(f"At its last step, with the test images' KL per dimension: {beta.words()}.")


def status_ui(job) -> None:
    with st.container(key="train_status"):
        if not job.done:
            st.info(job_line(job))
        elif job.status in ("failed", "diverged", "interrupted"):
            st.error(f"Training **{job.status}**. {job.message}")
        else:
            st.success(f"Training **{job.status}**. {job.message}")


if job is not None:
    with st.container(key="train_live"):
        live_ui()
else:
    run = current_run()
    fig = views.saved_history_figure(run)
    if fig is not None:
        st.subheader(f"How the loaded model ({run.name}) trained")
        chart(fig, key="saved_curves")
        if run.config.data.kind == "vectors":
            st.caption(VECTOR_CURVES)
