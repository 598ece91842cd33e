"""The family toggle: under the model picker, one segmented control per field in which the loaded run has
siblings (runs that differ from it in that field alone). Picking a value loads that sibling everywhere."""
from __future__ import annotations

from typing import Any

import streamlit as st

from ui.estimates import load_evaluator
from ui.session import client_token
from ui.state import ModelChoice, model_choices, set_run
from vae_core.config import with_value
from vae_core.model.compatibility import compatibility
from vae_core.runs.families import TOGGLE_FIELDS, FamilyAxis, family_axes, field_label, siblings
from vae_core.runs.folders import LoadedRun
from vae_core.runs.listing import RunInfo

TOGGLE_KEY = "toggle_{field}"  # session: one segmented control per field (dots become underscores: CSS class names)
HINT_KEY = "toggle_hint"  # session: why the last pick did nothing, said once


def candidates(run: RunInfo, choices: list[ModelChoice]) -> list[RunInfo]:
    """Siblings in order of preference: the run's own sweep, then yours, then bundled, then the class's."""
    rank = {"private": 1, "yours": 1, "bundled": 2, "class": 3}
    ordered = sorted(choices, key=lambda c: (0 if run.sweep and c.info.sweep == run.sweep else rank[c.owner]))
    return [c.info for c in ordered]


def sibling_paths(run: RunInfo, choices: list[ModelChoice]) -> list[str]:
    """The runs one toggle flip away from `run`: for each field, the sibling each value would load."""
    found = siblings(run, candidates(run, choices))
    return [str(s.path) for field in TOGGLE_FIELDS for s in found.get(field, {}).values()]


def warm_siblings(loaded: LoadedRun, requests: list[tuple[int, int]]) -> None:
    """Evaluate, in the background, what a flip from the loaded run will show: each (n_images, iwae_k)."""
    if loaded.config.data.kind != "images":
        return  # the evaluator estimates images; a dense VAE's estimates on a few thousand rows take milliseconds
    load_evaluator().warm(_siblings_of(loaded), requests)


def _siblings_of(loaded: LoadedRun) -> list[str]:
    choices = model_choices(client_token())
    own = next((c.info for c in choices if c.path == loaded.path), None)
    return sibling_paths(own, choices) if own is not None else []


def _format(axis: FamilyAxis, value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f":gray[~~{text}~~]" if axis.run_for(value) is None else text


def refusal(run: RunInfo, path: str, value: Any) -> str | None:
    """Why a sibling with this value cannot exist (e.g. a Bernoulli likelihood with a tanh output), or None."""
    try:
        config = with_value(run.config, path, value)
    except ValueError as e:
        return str(e)
    verdict = compatibility(config.model.output_activation, config.data.normalization, config.loss.likelihood)
    return verdict.reason if verdict.status == "refused" else None


def how_to_make(axis: FamilyAxis, run: RunInfo) -> str:
    """Where a missing sibling comes from: a sweep on the Train page (or the zoo), or why it cannot exist."""
    refused = {v: why for v in axis.missing if (why := refusal(run, axis.field, v))}
    said = [f"**{v}** cannot be trained with the rest as loaded: {why}" for v, why in refused.items()]
    makeable = [v for v in axis.missing if v not in refused]
    if makeable:
        said.append(_sweep_hint(axis, run, makeable))
    return "\n\n".join(said)


def _sweep_hint(axis: FamilyAxis, run: RunInfo, values: list[Any]) -> str:
    missing = ", ".join(str(v) for v in values)
    zoo = (f" or `python -m vae_core zoo build --dataset {run.dataset}`"
           if run.dataset != "sprites" and axis.field in TOGGLE_FIELDS else "")
    return (f"No run yet with {field_label(axis.field).lower()} = {missing} and everything else as loaded. "
            f"Train them together: Train page → sweep “{field_label(axis.field)}”{zoo}.")


def _flip(axis: FamilyAxis, key: str, run: RunInfo) -> None:
    value = st.session_state.get(key)
    sibling = axis.run_for(value)
    if value is None or value == axis.current:
        return
    if sibling is None:
        st.session_state[HINT_KEY] = how_to_make(FamilyAxis(axis.field, axis.current,
                                                            tuple(m for m in axis.members if m.value == value)), run)
        return
    set_run(sibling.path)


def axis_ui(axis: FamilyAxis, run: RunInfo) -> None:
    key = TOGGLE_KEY.format(field=axis.field.replace(".", "_"))
    st.session_state[key] = axis.current  # in step with the loaded run, whatever loaded it
    st.segmented_control(field_label(axis.field), [m.value for m in axis.members], key=key, required=True,
                         format_func=lambda v: _format(axis, v), on_change=_flip, args=(axis, key, run),
                         help=how_to_make(axis, run) if axis.missing else None)


def family_toggle_ui(run: RunInfo | None, choices: list[ModelChoice]) -> None:
    """The toggles for the loaded run (drawn in the sidebar); nothing for a run whose config is unreadable."""
    if run is None:
        return
    for axis in family_axes(run, candidates(run, choices)):
        axis_ui(axis, run)
    hint = st.session_state.pop(HINT_KEY, None)
    if hint:
        st.info(hint, icon=":material/info:")
