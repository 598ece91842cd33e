"""The Train form's fields drawn from the config metadata (label, help, range), and the values it refuses.

No widget has min_value/max_value: Streamlit would silently put a typed 5 back to the last valid
value. Each value is checked with the config's own check_field and a refusal shows under its field.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Sequence

import streamlit as st

from ui.form_fields import BY_NAME, FormField, Section, restorable
from ui.pages import IMAGES
from vae_core.config import SECTIONS, FieldInfo, RunConfig, check_field, range_text
from vae_core.training.trainer import make_run_config

Use = Literal["used", "unused"]  # an unused field (σ under a Bernoulli) is greyed out, unless it is refused
PERSIST = "session"  # widget values survive page changes within a session
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


def to_config_value(info: FieldInfo, raw: Any) -> Any:
    """The widget's value as the config takes it: an optional field's empty box, or 0 below its range, is None."""
    if info.optional and (raw is None or (raw == 0 and info.spec.lo is not None and info.spec.lo > 0)):
        return None
    return raw


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

    def select(self, col: Any, section: Section, name: str, *, help: str | None = None,
               options: Sequence[Any] | None = None, **kw: Any) -> Any:
        """A selectbox of the field's options (or of `options`, some of them)."""
        f = BY_NAME[(section, name)]
        return col.selectbox(f.info.spec.label, f.info.options if options is None else options, key=f.key,
                             help=help or f.info.spec.help, persist_state=PERSIST, **kw)

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

    def refuse_missing_upload(self, label: str, problem: str) -> None:
        """Refuse for want of this browser's upload (images or vectors): the reason, and the way to upload it."""
        self.refusals.append(Refusal(None, label, problem))
        st.warning(problem)
        st.page_link(IMAGES.path, label=IMAGES.title, icon=IMAGES.icon)

    def refused_n_train(self, n_train: int | None, available: int, what: str) -> bool:
        """Whether n_train asks for more than the upload's `available` training images (or rows): refused, said."""
        if n_train is None or n_train <= available:
            return False
        message = (f"n_train={n_train:,} is more than your {available:,} training {what}; clear it to train on all "
                   "of them, or set fewer.")
        st.error(message)
        self.refusals.append(Refusal("cfg_n_train", BY_NAME[("data", "n_train")].info.spec.label, message))
        return True

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
