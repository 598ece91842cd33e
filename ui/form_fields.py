"""The Train form's fields, named from the config's field metadata, and their memory: across pages (persist_state)
and across reloads (this browser's record on the server). Other pages write to it too: a job that ends shows its
run's settings (ui/jobs.py), and Your images fills in its data. The Train page draws the fields
(ui/parts/train/fields.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import streamlit as st

from ui.session import client_record
from vae_core.config import DATASET_DEFAULTS, SECTIONS, DataConfig, FieldInfo, RunConfig, check_field, fields_info

Section = Literal["data", "model", "loss", "train"]
RESTORED_KEY = "form_restored"  # session: the browser's remembered values were seeded into this session
PENDING_KEY = "form_pending"  # session: values to put into the widgets before they are next drawn
MAX_EXACT_INT = 2**53  # larger integers do not survive the browser's float64 numbers
# The dataset choice for this browser's own vectors: dataset "vectors" with its file (DataConfig.vectors); "vectors"
# alone is the bundled ones. Only the form's dataset box holds it; a config never does.
YOUR_VECTORS = "your vectors"


@dataclass(frozen=True)
class FormField:
    """One widget of the form: the config field it sets and its widget key."""
    section: Section
    name: str
    key: str

    @property
    def info(self) -> FieldInfo:
        return fields_info(SECTIONS[self.section])[self.name]


def _fields(section: Section, *names: str, keys: dict[str, str] | None = None) -> tuple[FormField, ...]:
    return tuple(FormField(section, n, (keys or {}).get(n, f"cfg_{n}")) for n in names)


FORM_FIELDS: tuple[FormField, ...] = (
    _fields("data", "dataset", "normalization", "data_scale", "n_train", "image_size")
    + _fields("model", "arch", "output_activation", "latent_dim", "width", "depth", "hidden_dim", "mlp_layers",
              "hidden_activation", "output_norm")
    + _fields("loss", "likelihood", "sigma", "beta", "recon_reduction", "recon_batch_reduction", "kl_reduction",
              "kl_batch_reduction", "recon_coef", "z_samples",
              "kl_schedule", "kl_warmup_steps", "kl_ramp_fraction", "free_bits")
    + _fields("train", "epochs", "time_budget_s", "batch_size", "lr", "lr_schedule", "seed",
              keys={"time_budget_s": "cfg_time_budget"})  # the key the browser tests already use
)
BY_NAME = {(f.section, f.name): f for f in FORM_FIELDS}
DATASET_KEY = BY_NAME[("data", "dataset")].key

# Where the form starts when it differs from the config's defaults: a first run a class trains in
# seconds on a shared CPU (the CLI's defaults train on everything, for as long as it takes).
FORM_START: dict[str, Any] = {"cfg_n_train": 5000, "cfg_epochs": 3, "cfg_time_budget": 30.0}


def _widget_value(f: FormField, raw: Any) -> Any:
    """A float field's widget holds floats even when a run or the record says 1."""
    is_number = f.info.kind == "number" and isinstance(raw, int) and not isinstance(raw, bool)
    return float(raw) if is_number else raw


def restorable(f: FormField, raw: Any) -> bool:
    """Whether a remembered value can go back into its widget (out of range is fine: it is shown refused)."""
    info = f.info
    if f.key == DATASET_KEY and raw == YOUR_VECTORS:
        return True
    if info.kind == "choice":
        return check_field(SECTIONS[f.section], f.name, raw) is None
    if raw is None:
        return info.optional
    if isinstance(raw, bool) or not isinstance(raw, int if info.kind == "integer" else (int, float)):
        return False
    return math.isfinite(raw) and abs(raw) <= MAX_EXACT_INT


def start_value(f: FormField) -> Any:
    return _widget_value(f, FORM_START.get(f.key, f.info.default))


def _seed(values: dict[str, Any], mode: Literal["fill", "replace"]) -> None:
    """Put remembered values into session state; a stale or malformed one is dropped, never drawn."""
    for f in FORM_FIELDS:
        raw = values.get(f.key)
        if f.key in values and restorable(f, raw) and (mode == "replace" or f.key not in st.session_state):
            st.session_state[f.key] = _widget_value(f, raw)


def restore_form() -> None:
    """Before any widget: this session's values, else this browser's remembered ones, else the start values."""
    if not st.session_state.get(RESTORED_KEY):
        st.session_state[RESTORED_KEY] = True
        _seed(client_record().form, "fill")
    _seed(st.session_state.pop(PENDING_KEY, None) or {}, "replace")
    for f in FORM_FIELDS:
        if f.key not in st.session_state:
            st.session_state[f.key] = start_value(f)


def remember_form() -> None:
    """After the widgets: mirror their raw values into this browser's record, so a reload finds them."""
    client_record().form.update({f.key: st.session_state[f.key] for f in FORM_FIELDS if f.key in st.session_state})


def apply_config_to_form(config: RunConfig) -> None:
    """Show a run's settings in the form: at once from a callback, else on the form's next drawing (st.rerun)."""
    values = {f.key: _widget_value(f, getattr(getattr(config, f.section), f.name)) for f in FORM_FIELDS}
    values = {key: v for key, v in values.items() if restorable(_by_key(key), v)}
    values[DATASET_KEY] = form_dataset(config.data)
    client_record().form.update(values)
    st.session_state[PENDING_KEY] = values


def vectors_start_values() -> dict[str, Any]:
    """Where the form starts on vectors (DATASET_DEFAULTS["vectors"]: a dense VAE, zscore, learned σ), on every
    training row (a person's file may hold fewer than the images' start subset)."""
    paths = {tuple(path.split(".")): value for path, value in DATASET_DEFAULTS["vectors"].items()}
    return {BY_NAME[p].key: v for p, v in paths.items() if p in BY_NAME} | {BY_NAME[("data", "n_train")].key: None}


def form_dataset(data: DataConfig) -> str:
    """What the form's dataset box shows for data: YOUR_VECTORS for a file of vectors, else its dataset."""
    return YOUR_VECTORS if data.vectors else data.dataset


def reset_form() -> None:
    """Every field back to where a new browser's form starts (start_value), at once from a callback."""
    set_form_values({f.key: start_value(f) for f in FORM_FIELDS})


def set_form_values(values: dict[str, Any]) -> None:
    """Put these values into the form (by widget key) on its next drawing, and into this browser's memory."""
    client_record().form.update(values)
    st.session_state[PENDING_KEY] = values


def _by_key(key: str) -> FormField:
    return next(f for f in FORM_FIELDS if f.key == key)
