"""The class board's parts: every run this server trained (never a person's runs on their own images), under its
owner's chosen name or an animal; filters kept in the URL; a leaderboard and a gallery per set of test images,
redrawn while a run trains; pinned runs open in Compare. An owner's secret never leaves vae_core.runs.names."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from ui.compare_url import MAX_RUNS, MIN_RUNS, show_next
from ui.pages import COMPARE
from ui.session import client_token
from ui.signin import current_login, shown_name
from ui.state import config_mtime, load_run_cached, load_run_infos, load_test_images, run_params
from ui.widgets import chart, url_choice
from vae_core.config import DataConfig
from vae_core.data.base import DatasetNotFoundError, pixels
from vae_core.data.datasets import load_dataset
from vae_core.data.images.dataset import is_private
from vae_core.export.frames import compare_rows
from vae_core.labs.base import lab_id_of
from vae_core.model.evaluate import EvalMetrics
from vae_core.model.evaluate_vectors import NATS_PER_ROW, VECTORS_BPD_NOTE, VectorEvalMetrics, evaluate_vectors
from vae_core.runs import evaluations
from vae_core.runs.folders import RunLoadError, default_runs_dir, run_tag
from vae_core.runs.listing import RunInfo
from vae_core.runs.manifest import list_sweeps
from vae_core.runs.names import (NAME_MAX, NAME_RULE, anonymous_name, check_name, display_names, owner_key, read_names,
                                 save_name)
from vae_plots import board
from vae_plots.board import ALL, FACETS, SCORES, BoardRun, Filters, Group, Measured, Standing
from vae_plots.figures import image_grid
from vae_plots.views import run_steps

GALLERY_IMAGES = 6  # test images a gallery row shows: six 32-pixel tiles fit beside a name at 1024 pixels
GALLERY_ROW_PX = 48  # a gallery row's height: the width left beside the names at 1024 pixels, over six tiles
MAX_SHOWN = 24  # runs on the board at once: 24 gallery rows, and a cold board measures them in a few seconds
REFRESH_S = 3.0  # how often the board redraws while a run trains (a finished run appears this soon)
ERROR_CHARS = 160  # of a reason a run could not be measured: a table cell, not a log
FILTER_LABELS = {"dataset": "Dataset", "lab": "Lab", "sweep": "Sweep", "who": "Owner"}
FILTER_KEY = "board_{facet}"  # widget and URL parameter of each filter
PIN_KEY = "board_pin"  # widget: the runs pinned to open in Compare
NAME_FORM = "board_name_form"
UNKNOWN_OWNER = "unknown"  # an unreadable run's metrics.json, which names its owner, could not be read


# --------------------------------------------------------------------------- names


def name_ui() -> None:
    """The text box for this browser's name on the board; saved in the runs folder under a hash of its secret."""
    login = current_login()
    if login is not None:  # the provider's name: a typed one would let anyone stand in for a signed-in person
        st.caption(f"Your runs show as “{shown_name(login)}”, the name you signed in with.")
        return
    runs_dir, key = default_runs_dir(), owner_key(client_token())
    current = read_names(runs_dir).get(key)
    with st.form(NAME_FORM, border=False):
        text = st.text_input("Your name on the class board", value=current or "", max_chars=NAME_MAX,
                             placeholder=anonymous_name(key), key="board_name",
                             help=f"{NAME_RULE}. Empty: your runs show as “{anonymous_name(key)}”.")
        saved = st.form_submit_button("Save name")
    if saved:
        _save_name(runs_dir, key, text)


def _save_name(runs_dir: Path, key: str, text: str) -> None:
    if not text.strip():
        save_name(runs_dir, key, None)
        st.success(f"Your runs show as “{anonymous_name(key)}”.")
        return
    check = check_name(text)
    if check.name is None:
        st.error(check.error)
        return
    save_name(runs_dir, key, check.name)
    st.success(f"Your runs show as “{check.name}”.")


# --------------------------------------------------------------------------- the runs


@st.cache_resource(ttl=2, show_spinner=False)
def load_sweep_labs(root: str) -> dict[str, str | None]:
    """Sweep id -> the lab that ran it (None: a sweep of a field). Cached for 2 s and shared, as the run listing
    is: each redraw of every board reads it; it holds no owner."""
    return {m.id: lab_id_of(m.field) for m in list_sweeps(Path(root))}


def _shared(info: RunInfo) -> bool:
    """Not a person's images or vectors: their runs live in a private space the board never reads, and one saved
    "for everyone" still carries their test images, which no shared cache may hold."""
    return info.config is None or not is_private(info.config.data)


def board_runs() -> list[BoardRun]:
    """The runs in the server's runs folder, newest first, each under its owner's display name."""
    root = str(default_runs_dir())
    infos = [i for i in load_run_infos(root) if _shared(i)]
    who = display_names((i.owner for i in infos), read_names(Path(root)))
    labs, me = load_sweep_labs(root), client_token()
    return [BoardRun(i, who[i.owner] if i.status != "unreadable" else UNKNOWN_OWNER, i.owner == me,
                     labs.get(i.sweep) if i.sweep else None, i.sweep) for i in infos]


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class BoardEntry:
    metrics: EvalMetrics | VectorEvalMetrics  # on the group's test images (or rows), with the values one by one
    row: np.ndarray | None  # (GALLERY_IMAGES, C, H, W) reconstructions of the first images, in [0, 1]; None: rows


@st.cache_resource(max_entries=4 * MAX_SHOWN, show_spinner=False)
def load_board_entry(path: str, mtime: float, data: DataConfig) -> BoardEntry:
    """Cached and shared: every board measures the same runs on the same images (never a person's: see _shared),
    each once per save of the run (~0.2 s a sprites run on one core, unless the run saved it)."""
    run = load_run_cached(path, mtime)
    if data.kind == "vectors":
        rows = load_dataset(data, "test")  # ~20 ms for the bundled vectors: once per run, as the entry is
        return BoardEntry(evaluate_vectors(run.model, run.normalizer, rows.x, rows.feature_names, config=run.config,
                                           steps=run_steps(run) or 0), None)
    images = load_test_images(data).images
    # Where these are the images Compare measures, the run's saved estimate: the same ELBO and bits/dim (the
    # ELBO's z do not depend on k), not computed again.
    metrics = evaluations.read_evaluation(run.path, images, evaluations.COMPARE.iwae_k) \
        or evaluations.evaluate_loaded(run, images, iwae_k=0)
    return BoardEntry(metrics, compare_rows([run], images[:GALLERY_IMAGES])[1])


def _entry(run: BoardRun, data: DataConfig) -> BoardEntry | str:
    """The run's entry, or why it has none."""
    path = str(run.info.path)
    try:
        return load_board_entry(path, config_mtime(path), data)
    except (RunLoadError, OSError) as e:
        return f"cannot be loaded: {e}"[:ERROR_CHARS]
    except (DatasetNotFoundError, ValueError) as e:
        return f"its test images are not on this server: {e}"[:ERROR_CHARS]


def _entries(group: Group) -> dict[str, BoardEntry | str]:
    """Each rankable run of the group measured (a cold board says it is working)."""
    todo = [r for r in group.runs if group.data is not None and not board.rankable(r.info)]
    with st.spinner(f"Measuring {len(todo)} runs on the same {group.score.items}…"):
        return {str(r.info.path): _entry(r, group.data) for r in todo}


# --------------------------------------------------------------------------- drawing


def filters_ui(runs: list[BoardRun]) -> Filters:
    """Dataset, lab, sweep and owner, each a select box kept in the URL (a link shows the same board)."""
    values = {}
    for facet, col in zip(FACETS, st.columns(len(FACETS))):
        values[facet] = url_choice(col, "selectbox", FILTER_LABELS[facet], board.facet_options(runs, facet), ALL,
                                   FILTER_KEY.format(facet=facet))
    return Filters(**values)


def pin_ui(runs: list[BoardRun]) -> None:
    """Pick MIN_RUNS to MAX_RUNS runs and open them side by side in Compare."""
    labels = {str(r.info.path): f"{r.who} · {r.label}" for r in runs if r.info.status != "unreadable"}
    kept = [p for p in st.session_state.get(PIN_KEY, []) if p in labels]  # a run gone from the board drops out
    st.session_state[PIN_KEY] = kept
    picked = st.multiselect("Pin runs to show side by side", list(labels), key=PIN_KEY, max_selections=MAX_RUNS,
                            format_func=labels.get, placeholder=f"{MIN_RUNS} to {MAX_RUNS} runs")
    if st.button("Open in Compare", key="board_compare", disabled=len(picked) < MIN_RUNS,
                 help=f"Pin {MIN_RUNS} to {MAX_RUNS} runs first." if len(picked) < MIN_RUNS else None):
        st.switch_page(COMPARE.path, query_params={**run_params(), **show_next(picked)})


def group_ui(group: Group, index: int) -> None:
    """One set of test images: its leaderboard, then its gallery."""
    st.subheader(group.title)
    entries = _entries(group)
    measured = {p: Measured(e.metrics) if isinstance(e, BoardEntry) else Measured(None, e) for p, e in entries.items()}
    standings = board.leaderboard(group.runs, measured, group.score)
    st.table(board.standings_frame(standings, group.score), hide_index=True)
    if group.data is not None and group.data.kind == "vectors":
        vectors_note_ui(measured)
    elif group.data is not None:
        notes = {m.metrics.bits_per_dim_note for m in measured.values() if m.metrics and m.metrics.bits_per_dim_note}
        st.caption(" ".join([f"Bits/dim ± its Monte-Carlo standard error; lower is better. {board.settled_words()}",
                             *sorted(notes)]))
        gallery_ui(group.data, [s for s in standings if isinstance(entries.get(str(s.run.info.path)), BoardEntry)],
                   entries, index)


def vectors_note_ui(measured: dict[str, Measured]) -> None:
    """What a vectors board ranks by, and why it shows no gallery."""
    n = next((m.metrics.n_test for m in measured.values() if m.metrics is not None), 0)
    st.caption(f"ELBO ± its Monte-Carlo standard error, in {NATS_PER_ROW}: higher is better, and runs of any "
               f"normalization rank together (no bits/dim: {VECTORS_BPD_NOTE}). "
               f"{board.settled_words(SCORES['vectors'], n)} No gallery: pin runs and open them in Compare to see "
               "their reconstructions of the same rows.")


def gallery_ui(data: DataConfig, standings: list[Standing], entries: dict[str, BoardEntry | str], index: int) -> None:
    """The first GALLERY_IMAGES test images, then each measured run's reconstructions of them, best first."""
    if not standings:
        return
    inputs = pixels(load_test_images(data).images[:GALLERY_IMAGES]).numpy()
    rows = [entries[str(s.run.info.path)].row for s in standings]
    st.markdown(f"**The first {GALLERY_IMAGES} of them**, and each run's reconstructions (from the posterior mean), "
                "in the leaderboard's order")
    labels = ["input", *(f"{s.rank or '–'} · {s.run.who} #{run_tag(s.run.info.name)}" for s in standings)]
    height = GALLERY_ROW_PX * len(labels) + 20  # the default height suits a 600-pixel-wide picture: here a gap
    chart(image_grid(np.stack([inputs, *rows]), GALLERY_IMAGES, row_labels=labels, height=height),
          key=f"board_gallery_{index}")


def board_ui() -> None:
    """The board, redrawn every REFRESH_S while any run trains (an idle board asks for nothing)."""
    live = any(r.info.status == "running" for r in board_runs())
    st.fragment(_board_body, run_every=REFRESH_S if live else None)(live)


def _board_body(live: bool) -> None:
    runs = board_runs()
    if live and not any(r.info.status == "running" for r in runs):
        st.rerun()  # the last run ended: a whole rerun draws the board once more and stops the timer
    if not runs:
        st.info("No run has been trained on this server yet: runs trained on the Train and Labs pages appear here.")
        return
    filters = filters_ui(runs)
    shown = [r for r in runs if filters.keeps(r)]
    if len(shown) > MAX_SHOWN:
        st.caption(f"Showing the newest {MAX_SHOWN} of {len(shown)} runs: narrow the filters to see the others.")
    shown = shown[:MAX_SHOWN]
    if not shown:
        st.info("No run matches these filters.")
        return
    pin_ui(shown)
    for i, group in enumerate(board.groups(shown)):
        group_ui(group, i)
