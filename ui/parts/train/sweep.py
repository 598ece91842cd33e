"""The Train page's sweep: one field over several values, trained as a family in lockstep (vae_core.training.sweeps)."""
from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

import streamlit as st

from ui.sweep_live import swatch
from ui.parts.train.form import load_target_range
from vae_core.model.compatibility import Verdict, compatibility
from vae_core.config import RunConfig, field_info, field_value
from vae_core.data.base import DatasetNotFoundError
from vae_core.runs.families import field_label
from vae_core.training.sweeps import SWEEP_MAX_VARIANTS, SweepSpec, format_value, sweep_configs, sweepable_fields

FIELD_KEY = "cfg_sweep_field"  # widget: the swept field ("" = one run)
VALUES_KEY = "cfg_sweep_values_{field}"  # widget: the values, one per field (a field's options differ)
ONE_RUN = ""


@dataclass(frozen=True)
class SweepChoice:
    spec: SweepSpec | None  # None: one run, or a sweep that is refused
    refused: str | None = None  # why the sweep cannot start
    labels: tuple[str, ...] = ()  # per variant: "output_activation=tanh"
    verdicts: tuple[Verdict | None, ...] = ()  # per variant; None where the data is not available


def _field_name(path: str) -> str:
    return "one run (no sweep)" if path == ONE_RUN else f"{field_label(path)} ({path.split('.')[1]})"


def _values_ui(path: str, current: Any, options: tuple[Any, ...]) -> tuple[Any, ...]:
    key = VALUES_KEY.format(field=path.replace(".", "_"))
    if options:
        default = list(options) if len(options) <= 3 else [current]
        return tuple(st.multiselect("Values", options, default=default, key=key, format_func=format_value,
                                    max_selections=SWEEP_MAX_VARIANTS, persist_state="session"))
    text = st.text_input("Values, comma-separated", value=format_value(current), key=key, persist_state="session",
                         help=f"2 to {SWEEP_MAX_VARIANTS} values, e.g. 1, 4, 16.")
    return tuple(v for v in text.split(",") if v.strip())


def _spec(path: str, values: tuple[Any, ...], config: RunConfig) -> SweepChoice:
    try:
        spec = SweepSpec(path, values)
        configs = sweep_configs(config, spec)
    except ValueError as e:
        return SweepChoice(None, str(e))
    verdicts = tuple(_verdict(c) for c in configs)
    if all(v is not None and v.status == "refused" for v in verdicts):
        return SweepChoice(None, "Every variant of this sweep is refused (see why above).", spec.labels, verdicts)
    return SweepChoice(spec, None, spec.labels, verdicts)


def _verdict(config: RunConfig) -> Verdict | None:
    try:
        target = load_target_range(config.data)
    except (DatasetNotFoundError, ValueError):
        return None
    return compatibility(config.model.output_activation, config.data.normalization, config.loss.likelihood,
                         (target.lo, target.hi))


def sweep_ui(config: RunConfig | None) -> SweepChoice:
    """Pick a field and its values; say per variant whether it works. One run when no field is picked."""
    st.markdown("**Train a family in lockstep** (optional)")
    left, right = st.columns([2, 3])  # "one run (no sweep)" whole at 1024 px
    path = left.selectbox("Sweep", (ONE_RUN, *sweepable_fields()), key=FIELD_KEY, format_func=_field_name,
                          persist_state="session",
                          help="Train one variant per value, everything else as above: the same initial weights, "
                               "batches and z noise, in one job. Each variant is saved as its own run, and the "
                               "family opens in Compare when it ends.")
    if path == ONE_RUN or config is None:
        return SweepChoice(None)
    with right:
        values = _values_ui(path, field_value(config, path), field_info(path).options)
    choice = _spec(path, values, config)
    _variants_ui(choice)
    return choice


def _variants_ui(choice: SweepChoice) -> None:
    """One line per variant in its colour (the colour of its live curve and, later, in Compare)."""
    for i, (label, verdict) in enumerate(zip(choice.labels, choice.verdicts)):
        said = "data not available" if verdict is None else verdict.status
        reason = f": {verdict.reason}" if verdict is not None and verdict.reason else ""
        st.markdown(f"{swatch(i)} <b>{escape(label)}</b> — {escape(said + reason)}", unsafe_allow_html=True)
    if choice.refused:
        st.error(choice.refused)
