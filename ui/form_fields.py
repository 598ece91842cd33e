"""The Train form's fields, drawn from the config's field metadata (label, help, range, default), and
their memory: across pages (persist_state) and across reloads (this browser's record on the server).

No widget has min_value/max_value: Streamlit would silently put a typed 5 back to the last valid
value. Each value is checked with the config's own check_field and a refusal shows under its field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import streamlit as st

from ui.session import client_record
from vae_core.config import SECTIONS, FieldInfo, RunConfig, check_field, fields_info, range_text
from vae_core.training.trainer import make_run_config

Section = Literal["data", "model", "loss", "train"]
Use = Literal["used", "unused"]  # an unused field (σ under a Bernoulli) is greyed out, unless it is refused
PERSIST = "session"  # widget values survive page changes within a session
RESTORED_KEY = "form_restored"  # session: the browser's remembered values were seeded into this session
PENDING_KEY = "form_pending"  # session: values to put into the widgets before they are next drawn
MAX_EXACT_INT = 2**53  # larger integers do not survive the browser's float64 numbers


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

# Where the form starts when it differs from the config's defaults: a first run a class trains in
# seconds on a shared CPU (the CLI's defaults train on everything, for as long as it takes).
FORM_START: dict[str, Any] = {"cfg_n_train": 5000, "cfg_epochs": 3, "cfg_time_budget": 30.0}
DATA_SCALES = (0.01, 0.1, 1.0, 10.0, 100.0)  # the slider's presets; a loaded run's own scale joins them


@dataclass(frozen=True)
class Refusal:
    """A value the form refuses: its widget key (None: the combination), its label, the validator's sentence."""
    key: str | None
    label: str
    message: str


@dataclass(frozen=True)
class FormResult:
    """What the form describes: a config to train, or the refusals that stop it."""
    config: RunConfig | None  # None while any value is refused
    refusals: tuple[Refusal, ...] = ()

    @property
    def start_blocked(self) -> str | None:
        """Why Start is disabled, in words for the page; None when the form is valid."""
        if self.config is not None:
            return None
        what = " ".join(f"{r.label}: {r.message}" for r in self.refusals)
        marked = "the value marked" if len(self.refusals) == 1 else "the values marked"
        return f"Start is disabled: {what} Correct {marked} above."


# ----------------------------------------------------------------------------- values

def to_config_value(info: FieldInfo, raw: Any) -> Any:
    """The widget's value as the config takes it: an optional field's empty box, or 0 below its range, is None."""
    if info.optional and (raw is None or (raw == 0 and info.spec.lo is not None and info.spec.lo > 0)):
        return None
    return raw


def _widget_value(f: FormField, raw: Any) -> Any:
    """A float field's widget holds floats even when a run or the record says 1."""
    is_number = f.info.kind == "number" and isinstance(raw, int) and not isinstance(raw, bool)
    return float(raw) if is_number else raw


def restorable(f: FormField, raw: Any) -> bool:
    """Whether a remembered value can go back into its widget (out of range is fine: it is shown refused)."""
    info = f.info
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
    client_record().form.update(values)
    st.session_state[PENDING_KEY] = values


def set_form_values(values: dict[str, Any]) -> None:
    """Put these values into the form (by widget key) on its next drawing, and into this browser's memory."""
    client_record().form.update(values)
    st.session_state[PENDING_KEY] = values


def _by_key(key: str) -> FormField:
    return next(f for f in FORM_FIELDS if f.key == key)


# ----------------------------------------------------------------------------- widgets

def _help(info: FieldInfo, text: str | None = None) -> str:
    parts = [text or info.spec.help]
    if info.kind in ("integer", "number"):
        parts.append(f"Allowed: {range_text(info)}.")
    if info.optional and info.spec.none_means:
        parts.append(empty_words(info) + ".")
    return " ".join(parts)


def empty_words(info: FieldInfo) -> str:
    """"Empty or 0: no limit": what an optional field's None stands for, and the values that give it
    (to_config_value)."""
    zero = info.spec.lo is not None and info.spec.lo > 0
    return f"Empty{' or 0' if zero else ''}: {info.spec.none_means}"


def _number_style(info: FieldInfo) -> dict[str, Any]:
    """Step and format: an integer field steps by ints (so Streamlit keeps it int), a number field by floats."""
    if info.kind == "integer":
        return {"step": int(info.spec.step or 1), "format": "%d"}
    return {"step": float(info.spec.step or 0.1), "format": "%g"}


class FieldReader:
    """Draws the form's fields from the config metadata and keeps the values it refuses."""

    def __init__(self) -> None:
        self.refusals: list[Refusal] = []

    def refused_now(self, section: Section, *names: str) -> bool:
        """Whether any of these fields holds a refused value, before they are drawn (to open their expander)."""
        return any(self._message(BY_NAME[(section, n)], st.session_state.get(BY_NAME[(section, n)].key))
                   for n in names)

    def _message(self, f: FormField, raw: Any) -> str | None:
        return check_field(SECTIONS[f.section], f.name, to_config_value(f.info, raw))

    def _keep(self, col: Any, f: FormField, label: str, raw: Any) -> Any:
        """Check a drawn value; a refusal goes right under its field and into the form's result."""
        message = self._message(f, raw)
        if message:
            col.error(message)
            self.refusals.append(Refusal(f.key, label, message))
        return to_config_value(f.info, raw)

    def number(self, col: Any, section: Section, name: str, *, label: str | None = None,
               use: Use = "used") -> Any:
        f = BY_NAME[(section, name)]
        label = label or f.info.spec.label
        refused = self._message(f, st.session_state.get(f.key)) is not None
        raw = col.number_input(label, key=f.key, help=_help(f.info), placeholder=f.info.spec.none_means or None,
                               disabled=use == "unused" and not refused, persist_state=PERSIST,
                               **_number_style(f.info))
        if f.info.optional and f.info.spec.none_means:  # said under the field, not only in its help
            col.caption(f"{empty_words(f.info)}; else {range_text(f.info)}.")
        return self._keep(col, f, label, raw)

    def select(self, col: Any, section: Section, name: str, *, help: str | None = None, **kw: Any) -> Any:
        f = BY_NAME[(section, name)]
        return col.selectbox(f.info.spec.label, f.info.options, key=f.key, help=help or f.info.spec.help,
                             persist_state=PERSIST, **kw)

    def radio(self, col: Any, section: Section, name: str) -> Any:
        f = BY_NAME[(section, name)]
        return col.radio(f.info.spec.label, f.info.options, key=f.key, help=f.info.spec.help, horizontal=True,
                         persist_state=PERSIST)

    def slider(self, col: Any, section: Section, name: str, presets: Sequence[float]) -> Any:
        """A select slider over presets; the current value (a loaded run's, or a refused one) joins them."""
        f = BY_NAME[(section, name)]
        current = st.session_state.get(f.key)
        options = sorted({*presets, current} if restorable(f, current) else set(presets))
        raw = col.select_slider(f.info.spec.label, options, key=f.key, help=_help(f.info), persist_state=PERSIST,
                                format_func=lambda v: f"×{v:g}")
        return self._keep(col, f, f.info.spec.label, raw)

    def build(self, cls: type, **values: Any) -> Any:
        """The section's config, or None if a value is refused (the refusal is already shown)."""
        if any(check_field(cls, name, v) for name, v in values.items()):
            return None
        try:
            return cls(**values)
        except ValueError as e:  # a rule across fields
            self.refusals.append(Refusal(None, cls.__name__, str(e)))
            st.error(str(e))
            return None

    def result(self, *parts: Any) -> FormResult:
        """The run's config from the four sections, unless something was refused."""
        if self.refusals or None in parts:
            return FormResult(None, tuple(self.refusals))
        try:
            return FormResult(make_run_config(*parts))
        except ValueError as e:
            st.error(str(e))
            return FormResult(None, (Refusal(None, "This combination", str(e)),))
