"""The Compare page's parts: which runs it compares (kept in the URL by ui/compare_url.py, so a link shows the
same view) and its cached work."""
from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import streamlit as st
import torch

from ui import deferred
from ui.compare_url import MAX_RUNS, MIN_RUNS, Selection, asked_text, own_writing, parse_selection, write_url
from ui.family import candidates
from ui.session import client_token
from ui.state import ModelChoice, config_mtime, load_run_cached, model_choices
from vae_core.data.base import DatasetNotFoundError
from vae_core.model.evaluate import EvalMetrics
from vae_core.runs.evaluations import COMPARE
from vae_core.runs.families import family_of
from vae_core.runs.folders import LoadedRun, RunLoadError
from vae_plots import compare_views
from vae_plots.vector_diagnostics import vectors_key

PICK_KEY = "compare_pick"  # widget: the compared runs' paths
N_EVAL, IWAE_K = COMPARE.n_images, COMPARE.iwae_k  # a trained run saves these (runs/evaluations.py)


def family_paths(loaded: LoadedRun, choices: dict[str, ModelChoice]) -> list[str]:
    """The loaded run and its siblings along one field (at most MAX_RUNS, the loaded run among them)."""
    own = choices.get(str(loaded.path))
    if own is None:
        return [str(loaded.path)]
    family = [str(r.path) for r in family_of(own.info, candidates(own.info, list(choices.values())))]
    others = [p for p in family if p != str(loaded.path)][:MAX_RUNS - 1]
    return [p for p in family if p == str(loaded.path) or p in others]


def default_paths(loaded: LoadedRun, choices: dict[str, ModelChoice]) -> list[str]:
    """The loaded run's family; without one, the loaded run and the next runs alike (three in all)."""
    family = family_paths(loaded, choices)
    if len(family) >= MIN_RUNS:
        return family
    alike = [p for p, c in choices.items() if p != str(loaded.path) and _alike(c, loaded)]
    return [str(loaded.path), *alike][:3]


def _alike(choice: ModelChoice, loaded: LoadedRun) -> bool:
    """A run the loaded one is compared with by default: a bundled one on images; on vectors, one on the same
    vectors (no other compares with it)."""
    config = choice.info.config
    if config is None or config.data.kind != loaded.config.data.kind:
        return False
    if loaded.config.data.kind == "images":
        return choice.owner == "bundled"
    return vectors_key(config.data) == vectors_key(loaded.config.data)


def _pick(paths: list[str]) -> None:
    st.session_state[PICK_KEY] = paths
    write_url(paths)


def _asked(loaded: LoadedRun, choices: dict[str, ModelChoice]) -> list[str]:
    """The runs a link asks for (checked, a notice for what it drops), else this session's, else the default."""
    if own_writing() and PICK_KEY in st.session_state:
        return list(st.session_state[PICK_KEY])  # our own writing: the widget holds it
    text = asked_text()
    names = {c.path.name: p for p, c in reversed(choices.items())}  # a name shared by two runs: the first listed
    fallback = [Path(p).name for p in default_paths(loaded, choices)]
    chosen = parse_selection(text, list(names), fallback) if text is not None else \
        Selection(tuple(fallback), (), "")
    if chosen.notice:
        st.warning(chosen.notice, icon=":material/link:")
    paths = [names[n] for n in chosen.names if n in names]
    _pick(paths)
    return paths


def _load(paths: list[str]) -> list[LoadedRun]:
    """The runs, loaded; one that cannot be (deleted, unreadable) is left out with a notice."""
    runs = []
    for path in paths:
        try:
            runs.append(load_run_cached(path, config_mtime(path)))
        except (RunLoadError, OSError) as e:
            st.warning(f"Left out {Path(path).name}: {e}")
    return runs


def compare_picker_ui(loaded: LoadedRun) -> list[LoadedRun]:
    """The run picker (the sidebar's labels) and the family button; returns the runs picked."""
    choices = {str(c.path): c for c in model_choices(client_token())}
    st.session_state[PICK_KEY] = [p for p in _asked(loaded, choices) if p in choices]
    st.multiselect("Runs to compare", list(choices), key=PICK_KEY, max_selections=MAX_RUNS,
                   format_func=lambda p: choices[p].label, on_change=lambda: write_url(st.session_state[PICK_KEY]))
    family = family_paths(loaded, choices)
    st.button("Compare the loaded run's family", key="compare_family", on_click=_pick, args=(family,),
              disabled=len(family) < MIN_RUNS,
              help="The loaded run and the runs that differ from it in one field only."
              if len(family) >= MIN_RUNS else "The loaded run has no siblings yet: no run differs from it "
              "in one field only.")
    return _load(st.session_state[PICK_KEY])


def evaluations(runs: list[LoadedRun]) -> list[EvalMetrics | None]:
    """Every run evaluated on its first N_EVAL test images, with an IWAE bound (cached per run); None, with a
    notice, for a run whose test images this server does not have."""
    return [_evaluation(run) for run in runs]


def _evaluation(run: LoadedRun) -> EvalMetrics | None:
    try:
        return deferred.estimate(run, N_EVAL, IWAE_K, notice="quiet")  # None while it computes
    except (DatasetNotFoundError, ValueError) as e:
        st.warning(f"No test metrics for {run.name}: its test images ({run.config.data.dataset}) are not here. {e}")
        return None


def _key(runs: list[LoadedRun]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    return tuple(str(r.path) for r in runs), tuple(config_mtime(str(r.path)) for r in runs)


def reconstructions(runs: list[LoadedRun], images: torch.Tensor, start: int) -> compare_views.CompareReconstructions:
    """Each run's reconstructions of these test images (the first is number `start`), from the server's cache."""
    return load_reconstructions(*_key(runs), start, images)


@st.cache_resource(max_entries=16, show_spinner=False)
def load_reconstructions(paths: tuple[str, ...], mtimes: tuple[float, ...], start: int,
                         _images: torch.Tensor) -> compare_views.CompareReconstructions:
    """Cached: a class opening one link asks for the same rows again and again (figures are only read)."""
    runs = [load_run_cached(p, m) for p, m in zip(paths, mtimes)]
    return compare_views.reconstructions(runs, _images, compare_views.run_labels(runs))


def range_histograms(runs: list[LoadedRun], images: torch.Tensor) -> go.Figure:
    """Where each run's outputs land in pixels, from the server's cache."""
    return load_range_histograms(*_key(runs), images)


@st.cache_resource(max_entries=16, show_spinner=False)
def load_range_histograms(paths: tuple[str, ...], mtimes: tuple[float, ...], _images: torch.Tensor) -> go.Figure:
    """Cached: it encodes and decodes N_EVAL images per run (~0.2 s for three); the figure is only read."""
    runs = [load_run_cached(p, m) for p, m in zip(paths, mtimes)]
    return compare_views.range_histograms(runs, _images, compare_views.run_labels(runs))
