"""Training jobs as a browser sees them: the server's one queue, this browser's job, and what happens
when it ends (a finished or stopped run is loaded on whatever page the person is on; a diverged or
failed one is kept but not loaded unless the person asks).
"""
from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from ui.compare_url import show_next as show_in_compare
from ui.form_fields import apply_config_to_form
from ui.pages import COMPARE
from ui.session import client_record, client_token
from ui.space import images_refusal, my_space, runs_dir_for
from ui.state import load_run_infos, run_params, set_run
from vae_core.config import DataConfig, RunConfig
from vae_core.data.images.private import PrivateSpace
from vae_core.host import HostSettings
from vae_core.jobs.scheduler import JobRecord, JobScheduler, Scheduler
from vae_core.labs.base import lab_id_of
from vae_core.model.compatibility import Verdict
from vae_core.runs.listing import cleanup_stale_temporaries
from vae_core.training.sweeps import Family

log = logging.getLogger(__name__)

LOADED_ON_END = ("finished", "stopped")  # runs that become the loaded model by themselves
POLL_S = 0.8  # how often a page looks at a running job: with its jitter, curves redraw at least once a second
NOTICE_KEY = "job_notice"  # session: what happened to the job since the page last drew (one message)
REFUSED_KEY = "job_refused"  # session: why the server refused the last Start


def load_scheduler() -> Scheduler:
    """The server's one queue of training jobs, shared by every session (and, on Redis, by every app process)."""
    return _load_scheduler(HostSettings.from_env())


@st.cache_resource
def _load_scheduler(settings: HostSettings) -> Scheduler:
    """Cached per host settings: one per server (tests change the settings between apps). Runs once per
    server, so it is also where a crash's leftovers (half-written run folders) are cleared away."""
    removed = cleanup_stale_temporaries(settings.runs_dir)
    if removed.removed:
        log.info("removed %d stale temporary folder(s) under %s", len(removed.removed), settings.runs_dir)
    if settings.queue_url:
        from vae_core.jobs.redis_queue import connect  # only when the host asked for Redis: nothing to import else

        return connect(settings)
    return JobScheduler(settings)


def scheduler_ui() -> bool:
    """Every run, first: the server's queue answers (on Redis, one round trip); where the host's Redis cannot be
    reached, at start or mid-class, say what to check (False: the page stops here)."""
    try:
        load_scheduler().active()
    except ValueError as e:  # QueueUnavailable (a ValueError, so this module need not import Redis)
        st.error(str(e))
        return False
    return True


def busy_spaces() -> list[PrivateSpace]:
    """The private spaces a queued or running job trains on: they are not expired under it."""
    settings = HostSettings.from_env()
    return [PrivateSpace.of(settings.uploads_dir, r.owner) for r in load_scheduler().active()]


def my_job() -> JobRecord | None:
    """This browser's current (or last) job, found by the token in its URL: a reload finds it again."""
    token = client_record().job_token
    return load_scheduler().get(token) if token else None


def submit(config: RunConfig, sweep: Family | None = None) -> None:
    """Start's callback (it runs before the page draws, so the page already shows the job): queue a job
    (one run, or a sweep's family) for this browser; a refusal (one job per browser, a full queue) is kept
    for the page to show."""
    try:
        refusal = _private_refusal(config.data)
        if refusal:
            raise ValueError(refusal)
        client_record().job_token = load_scheduler().submit(client_token(), config, sweep,
                                                             runs_dir_for(config.data.images or config.data.vectors))
    except ValueError as e:
        st.session_state[REFUSED_KEY] = str(e)


def _private_refusal(data: DataConfig) -> str | None:
    """Why this browser may not train on data's files (None: it may): vectors only from its own uploads."""
    if data.vectors is not None and not my_space().holds(data.vectors):
        return "These vectors are not this browser's upload: upload them on the Your data page."
    return images_refusal(data.images)


def refusal() -> str | None:
    """Why the server refused the last Start, once."""
    return st.session_state.pop(REFUSED_KEY, None)


def stop(token: str) -> None:
    """Stop's callback: a queued job is cancelled; a running one stops after its step and saves."""
    load_scheduler().stop(token)


def settle_ended_job(job: JobRecord | None, watching: bool = False) -> None:
    """Once per job: load a finished or stopped run; keep a diverged one aside; say which on the page.
    A sweep's family goes to Compare (and, if its owner is `watching` it on the Train page, opens there)."""
    record = client_record()
    if job is None or not job.done or job.token in record.adopted:
        return
    record.adopted.add(job.token)
    load_run_infos.clear()  # the picker lists the new run at once
    if job.status != "cancelled":
        apply_config_to_form(job.config)  # the form shows what the run used (the host's time cap included)
    if job.snapshot and job.snapshot.variants:
        return _settle_sweep(job, watching)
    run_dir = job.snapshot.run_dir if job.snapshot else None
    if job.status in LOADED_ON_END and run_dir is not None:
        set_run(run_dir)
        st.session_state[NOTICE_KEY] = ("success", f"Your run {Path(run_dir).name} {job.status} and is now the "
                                                   "loaded model on every page.")
        return
    st.session_state[NOTICE_KEY] = ("warning", f"Your training job {job.status}: {job.message} The loaded model "
                                               "did not change" + (" (pick the run in the sidebar to inspect it)."
                                                                   if run_dir else "."))


def _settle_sweep(job: JobRecord, watching: bool) -> None:
    variants = job.snapshot.variants
    saved = [v.run_dir for v in variants if v.run_dir is not None and v.status in LOADED_ON_END]
    lab = lab_id_of(job.sweep.field) if job.sweep is not None else None
    what = f"Your lab {lab} {job.status} (its conclusion is on the Labs page)" if lab else \
        f"Your sweep of {job.sweep.field if job.sweep else 'a field'} {job.status}"
    if not saved:
        st.session_state[NOTICE_KEY] = ("warning", f"{what}: none of its variants finished or stopped, so the "
                                                   "loaded model did not change (its runs are in the picker).")
        return
    set_run(saved[0])
    family = len(saved) > 1
    shown = show_in_compare([str(d) for d in saved]) if family else {}
    st.session_state[NOTICE_KEY] = ("success", f"{what}: {len(saved)} of {len(variants)} variants saved as runs"
                                               f"{' (the Compare page shows them)' if family else ''}; "
                                               f"{Path(saved[0]).name} is the loaded model.")
    if watching and family:
        st.switch_page(COMPARE.path, query_params={**run_params(), **shown})  # it keeps only what it is given


def notice_ui() -> None:
    """Show, once, what happened to this browser's job since the page last drew."""
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        kind, text = notice
        (st.success if kind == "success" else st.warning)(text)


def start_blocked(job: JobRecord | None, verdict: Verdict | None, sweeping: bool = False) -> str | None:
    """Why Start is disabled besides the form's own refusals; None if it is not. A sweep's variants have
    verdicts of their own (a refused one is skipped), so the form's own combination need not work."""
    if job is not None and not job.done:
        return "Start is disabled while your training job is queued or running: stop it, or let it end, to start another."
    if verdict is None:
        return "Start is disabled: the data for this run is not available on this server (see the message above)."
    if verdict.status == "refused" and not sweeping:
        return "Start is disabled: this combination is refused (the reason is above). Change one of its three parts."
    return None


def server_line() -> str:
    """How this server shares its CPU, for the Train page."""
    scheduler = load_scheduler()
    active = scheduler.active()
    running = sum(1 for j in active if j.position == 0)
    slots, cap = scheduler.slots(), scheduler.settings.job_time_cap_s
    return (f"This server trains {slots} job{'s' if slots != 1 else ''} at a time, each for at most "
            f"{cap:g} s, one per browser; now {running} running, {len(active) - running} waiting.")


def job_line(job: JobRecord, subject: str = "Training") -> str:
    """One line on where the job is: queue place, or step and time."""
    if job.status == "queued":
        return job.message
    last = job.snapshot.history[-1] if job.snapshot and job.snapshot.history else None
    if last is None:
        return f"{subject} is **{job.status}** (starting a worker process)…"
    sigma = f", σ {last.sigma:.3g}" if last.sigma else ""
    return (f"{subject} is **{job.status}** · step {last.step:,}, epoch {last.epoch:.2f}, {last.elapsed_s:.0f} s"
            f" of {job.time_budget_s:g} s, β now {last.beta:.3g}{sigma}.")


def job_sidebar_ui(poll: bool, opens_compare: bool = False) -> None:
    """Every page, before it draws: settle a job that ended (a sweep opens Compare if `opens_compare`: the
    Train page watched it); while one runs (and `poll`: the page does not watch it itself), a sidebar line
    that polls it."""
    job = my_job()
    settle_ended_job(job, watching=opens_compare)
    if poll and job is not None and not job.done:
        with st.sidebar:
            st.fragment(_job_poll_ui, run_every=POLL_S)()
    notice_ui()


def _job_poll_ui() -> None:
    job = my_job()
    if job is None or job.done:
        st.rerun(scope="app")  # it ended: the whole page settles it and redraws with the new model
    st.caption(job_line(job, subject="Your training job"))
