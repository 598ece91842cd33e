"""The Labs page's parts: pick a lab, choose its data and seed, run its family in the background, watch it,
then read the conclusion measured on it, with the evidence and a report to download."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from ui.jobs import POLL_S, job_line, my_job, refusal, server_line, stop, submit
from ui.parts.lab_data import budget_data, dataset_problem
from ui.session import client_token
from ui.space import my_runs_dirs
from ui.state import config_mtime
from ui.sweep_live import sweep_live_ui
from ui.widgets import chart, url_choice
from vae_core.config import RunConfig
from vae_core.data.base import DatasetNotFoundError
from vae_core.jobs.scheduler import JobRecord
from vae_core.labs import LABS, Lab
from vae_core.labs.base import LabSettings, StepPlan, family_name
from vae_core.labs.measure import load_family
from vae_core.labs.report import (BEST_NOTE, VERDICT_MARK, Rows, Table, averaged_words, picture_rows,
                                  reconstruction_rows, report_files, report_zip, row_strip, seeds_words, table,
                                  unit_words)
from vae_core.labs.run import LabOutcome, conclude_family
from vae_core.runs.folders import RunLoadError, read_config
from vae_core.runs.manifest import list_sweeps
from vae_plots.lab_charts import lab_chart
from vae_plots.views import dataset_words

LIVE_POINTS = 400
PRIVATE_VIEWS_KEY = "lab_private_views"  # session: measured views of labs on this browser's own images
INSTANT_KEY = "lab_instant_{lab}"  # session: the settings whose bundled runs this lab shows, instead of a job's
# Plain glyphs in Streamlit's colours: an emoji needs a font that a classroom's browser may lack.
VERDICT_ICON = {"agrees": ":green[**✔**]", "disagrees": ":red[**✘**]", "not settled": ":gray[**○**]",
                "measured": ":blue[**●**]", "missing": ":orange[**!**]"}


def lab_picker_ui() -> Lab:
    """Which lab, in the URL (?lab=...), so a link opens it."""
    ids = list(LABS)
    chosen = url_choice(st, "selectbox", "Lab: the question", ids, ids[0], "lab",
                        format_func=lambda i: LABS[i].title)
    return LABS[chosen]


def duration_words(seconds: float) -> str:
    """"45 s", "2 min 15 s"."""
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def expected_seconds(lab: Lab, settings: LabSettings) -> float:
    """The family's training time at the lab's measured rate: its steps on each seed, the seeds in turn."""
    return lab.budget.seconds(settings.steps) * settings.seeds


def lab_job(lab: Lab) -> JobRecord | None:
    """This browser's job, if it is this lab's family."""
    job = my_job()
    return job if job is not None and job.sweep is not None and job.sweep.field == family_name(lab.id) else None


def start(lab: Lab, settings: LabSettings) -> None:
    """Run's callback: this lab's family as one job; a result shown instantly gives way to it."""
    st.session_state.pop(INSTANT_KEY.format(lab=lab.id), None)
    family = lab.family(settings)
    submit(family.configs[0], family)


def controls_ui(lab: Lab, settings: LabSettings) -> None:
    job = my_job()
    active = job is not None and not job.done
    problem = None if settings.dataset in ("sprites", "images", "vectors") else \
        dataset_problem(settings.dataset, settings.data_dir or "")
    n = len(lab.variants(settings))
    left, mid, right = st.columns([2, 2, 3], vertical_alignment="center")
    left.button("Run this lab", key="lab_run", type="primary", disabled=active or problem is not None, on_click=start,
                args=(lab, settings))
    st.caption(f"{n} model{'s' if n > 1 else ''}{' in lockstep' if n > 1 else ''} on each of {settings.seeds} "
               f"seed{'s' if settings.seeds > 1 else ''}, {settings.steps:,} steps each: about "
               f"{duration_words(expected_seconds(lab, settings))} of training on {budget_data(lab)} here, then "
               "measuring.")
    instant = lab.instant(settings) if lab.instant else None
    if instant:
        mid.button("Measure the bundled model now", key="lab_instant", on_click=_show_instant,
                   args=(lab, settings), help="no training: the zoo's model of this design, measured now")
    right.caption(server_line())
    if problem:
        st.error(f"{problem} Pick sprites, or ask the host to put the dataset in the data folder.")
    if active and lab_job(lab) is None:
        st.info("Your other training job is running: Run is back when it ends (Stop it on the Train page).")
    if refused := refusal():
        st.error(refused)


def _show_instant(lab: Lab, settings: LabSettings) -> None:
    st.session_state[INSTANT_KEY.format(lab=lab.id)] = settings.at_seed(settings.seed)  # one bundled run: one seed


@st.fragment(run_every=POLL_S)
def live_ui(lab: Lab) -> None:
    """While this lab's family trains: its status, overlaid curves and previews; at its end, the page redraws."""
    job = lab_job(lab)
    if job is None or job.done:
        st.rerun(scope="app")
    c1, c2 = st.columns([5, 1])
    c1.info(job_line(job, subject="The lab"))
    c2.button("Stop", key="lab_stop", on_click=stop, args=(job.token,))
    if job.snapshot is not None and job.snapshot.variants:
        sweep_live_ui(job.snapshot, LIVE_POINTS)


@dataclass(frozen=True)
class LabSource:
    """A trained family to conclude from: the settings it ran with and its variants' folders (None: not saved)."""
    settings: LabSettings
    run_dirs: tuple[str | None, ...]
    bundled: bool = False  # the bundled runs (Lab.instant), not a family trained for this lab


def latest_source(lab: Lab) -> LabSource | None:
    """The bundled runs this browser asked for, else its newest ended family of this lab."""
    instant = st.session_state.get(INSTANT_KEY.format(lab=lab.id))
    if instant is not None and lab.instant and (dirs := lab.instant(instant)):
        return LabSource(instant, tuple(str(d) for d in dirs), bundled=True)
    found = [(m, runs_dir) for runs_dir in my_runs_dirs() for m in list_sweeps(runs_dir)
             if m.field == family_name(lab.id) and m.owner == client_token() and m.status not in ("running", "queued")]
    for m, runs_dir in sorted(found, key=lambda f: f[0].started or 0.0, reverse=True):
        # a variant its owner deleted since (Your runs, on the Train page) is one not saved
        dirs = tuple(str(runs_dir / v.run) if v.run and (runs_dir / v.run).is_dir() else None for v in m.variants)
        if any(dirs):
            return LabSource(settings_of([d for d in dirs if d], lab), dirs)
    return None


def settings_of(run_dirs: list[str], lab: Lab) -> LabSettings:
    """The settings a lab's family ran with, read back from its runs (a run from before step budgets: the lab's
    default steps; a family from before seeds: one seed)."""
    configs: list[RunConfig] = [read_config(Path(d))[0] for d in run_dirs]
    config, seeds = configs[0], sorted({c.train.seed for c in configs})
    images = config.data if config.data.dataset == "images" else None
    n_train, epochs, batch = config.data.n_train, config.train.epochs, config.train.batch_size
    steps = StepPlan(epochs, n_train).steps(batch) if n_train else lab.budget.steps
    # vectors: the subset they trained on stands for their training split (the step plan it gives is the same)
    vectors = dataclasses.replace(config.data, n_train=None) if config.data.kind == "vectors" else None
    return LabSettings(config.data.dataset, config.data.data_dir, seeds[0], steps, images,
                       train_images=n_train if vectors else None, seeds=seeds[-1] - seeds[0] + 1, vectors=vectors)


@dataclass(frozen=True)
class LabView:
    outcome: LabOutcome
    table: Table
    rows: Rows  # reconstructions of the same test images by each variant
    pictures: Rows  # the lab's own pictures (Lab.pictures)
    report: dict[str, bytes]


@st.cache_data(max_entries=32, show_spinner="Measuring the lab's runs…")
def load_lab_view(lab_id: str, settings: LabSettings, run_dirs: tuple[str | None, ...],
                  mtimes: tuple[float, ...]) -> LabView:
    """Cached by the runs' folders and their modification times: measuring loads every variant and its
    test images (seconds); the result is small and read-only."""
    dirs = tuple(Path(d) if d else None for d in run_dirs)
    lab = LABS[lab_id]
    family = load_family(lab.variants(settings), dirs, settings.seed_list)  # once: measurements and pictures
    outcome = conclude_family(lab, settings, dirs, family)
    rows, pictures = reconstruction_rows(outcome, family), picture_rows(outcome, family)
    return LabView(outcome, table(outcome), rows, pictures, report_files(outcome, rows, pictures))


def lab_view(lab_id: str, source: LabSource) -> LabView:
    """The measured view of a lab's runs: shared by the server's cache, except on a person's images, whose
    measurements stay in that browser's session (a shared cache must not hold anyone's upload)."""
    key = (lab_id, source.settings, source.run_dirs, _mtimes(source.run_dirs))
    if not source.settings.private:
        return load_lab_view(*key)
    mine = st.session_state.setdefault(PRIVATE_VIEWS_KEY, {})
    if key not in mine:
        with st.spinner("Measuring the lab's runs…"):
            mine.clear()  # one lab view of a person's images at a time: they can be large
            mine[key] = load_lab_view.__wrapped__(*key)
    return mine[key]


def _mtimes(run_dirs: tuple[str | None, ...]) -> tuple[float, ...]:
    """The runs' save times, the cache key (as for every run cache): a re-saved run is measured again."""
    return tuple(config_mtime(d) if d and Path(d).is_dir() else 0.0 for d in run_dirs)


def result_ui(lab: Lab) -> None:
    """The newest result of this lab for this browser: conclusion, table, reconstructions, report."""
    source = latest_source(lab)
    if source is None:
        st.caption("No result yet: press Run (its help says how long it takes here), and the conclusion appears "
                   "here, measured on your runs.")
        return
    try:
        view = lab_view(lab.id, source)
    except (RunLoadError, DatasetNotFoundError, ValueError, OSError) as e:
        st.error(f"This lab's runs could not be measured: {e} Run the lab again.")
        return
    conclusion_ui(view.outcome, source.bundled)
    evidence_ui(view, lab)


def conclusion_ui(outcome: LabOutcome, bundled: bool) -> None:
    s, n = outcome.settings, len(outcome.variants)
    st.subheader("What the bundled model measured" if bundled else "What your run measured")
    trained = "the bundled model, measured now" if bundled else \
        f"{s.steps} training steps of {'each of ' if n > 1 else ''}{n} model{'s' if n > 1 else ''}" \
        f"{' in lockstep' if n > 1 else ''} on each seed"
    st.caption(f"{dataset_words(s.dataset)}, {seeds_words(s)}, {trained}. Every number below comes from "
               f"{'this run' if n == 1 and s.seeds == 1 else 'these runs'}.")
    with st.container(key="lab_conclusion"):
        for f in outcome.findings:
            mark = f" *({VERDICT_MARK[f.verdict]})*" if VERDICT_MARK[f.verdict] else ""
            st.markdown(f"{VERDICT_ICON[f.verdict]} {f.text}{mark}")


def evidence_ui(view: LabView, lab: Lab) -> None:
    import pandas as pd  # streamlit's own dependency; only the table needs it

    s = view.outcome.settings
    st.markdown(f"**Measurements**, {averaged_words(s)}: {unit_words(s)}, on the test "
                f"{'rows' if s.kind == 'vectors' else 'images'}")
    st.dataframe(pd.DataFrame(list(view.table.rows), columns=list(view.table.header)), hide_index=True,
                 key="lab_table")
    st.caption(BEST_NOTE + ".")
    figure = lab_chart(view.outcome)
    if figure is not None:
        chart(figure, key="lab_chart")
    for caption, images in view.pictures:
        st.image(row_strip(images, zoom=3), caption=caption)
    if view.rows:
        st.markdown("**Reconstructions** of the same test images (posterior mean)")
        for label, images in view.rows:
            st.image(row_strip(images), caption=label)
    st.download_button("Download the report (Markdown and PNG, zipped)", report_zip(view.report, lab.id),
                       file_name=f"vae-lab-{lab.id}.zip", mime="application/zip", key="lab_report")

