"""The Compare page's selection in the URL (?compare=a,b,c: the runs' folder names), so a link shows the same
runs. The page writes it, and so does a sweep that ends on another page (ui/jobs.py); a link that names unknown
runs, or too many, falls back with a short notice, never an exception."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from vae_plots.compare_views import RUN_COLORS

PARAM = "compare"  # the URL query parameter: the compared runs' folder names, comma-separated
WROTE_KEY = "compare_wrote"  # session: what this session last wrote to the URL (anything else came from a link)
KEPT_KEY = "compare_kept"  # session: the same, kept across page changes (a widget's state is not)
MIN_RUNS, MAX_RUNS = 2, len(RUN_COLORS)  # each run a colour of its own on every figure


def write_url(paths: list[str]) -> None:
    """The runs the Compare page shows, into its URL (and this session's memory of it)."""
    text = ",".join(Path(p).name for p in paths)
    st.session_state[WROTE_KEY] = st.session_state[KEPT_KEY] = text
    st.query_params[PARAM] = text


def show_next(paths: list[str]) -> dict[str, str]:
    """Compare shows these runs when it next draws, from whatever page; returns its query parameter, which
    st.switch_page must be given (it drops every other)."""
    text = ",".join(Path(p).name for p in paths[:MAX_RUNS])
    st.session_state[KEPT_KEY] = text  # read when a page change has dropped the parameter
    st.query_params[PARAM] = text  # read first: this page may be Compare, holding another selection
    return {PARAM: text}


def own_writing() -> bool:
    """Whether the URL holds what this session last wrote there (so the page's widget holds it too)."""
    text = st.query_params.get(PARAM)
    return text is not None and text == st.session_state.get(WROTE_KEY)


def asked_text() -> str | None:
    """The folder names the URL asks for; after a page change dropped them, this session's last; else None."""
    text = st.query_params.get(PARAM)
    return text if text is not None else st.session_state.get(KEPT_KEY)


@dataclass(frozen=True)
class Selection:
    """What a link's selection comes to: the runs shown, and what was dropped and why."""
    names: tuple[str, ...]  # run folder names, in the order asked for
    dropped: tuple[str, ...]  # asked for but unknown, or beyond MAX_RUNS
    notice: str  # one short sentence saying what was dropped and what is shown instead, or ""


def parse_selection(text: str, known: Sequence[str], fallback: Sequence[str]) -> Selection:
    """The runs a URL's comma-separated folder names ask for; unknown or extra ones dropped, with a notice.

    Fewer than MIN_RUNS left over: `fallback` instead (the loaded run's family, or a default).
    """
    asked = list(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))  # in order, once each
    have = set(known)
    unknown, found = [n for n in asked if n not in have], [n for n in asked if n in have]
    names, extra = found[:MAX_RUNS], found[MAX_RUNS:]
    said = []
    if unknown:
        said.append(f"No run here is named {_names(unknown)}")
    if extra:
        said.append(f"At most {MAX_RUNS} runs compare at once: {_names(extra)} left out")
    if len(names) < MIN_RUNS:
        said.append(f"The link names fewer than {MIN_RUNS} runs this server has: showing the default comparison")
        names = list(fallback)
    return Selection(tuple(names), tuple(unknown + extra), ". ".join(said) + "." if said else "")


def _names(names: Sequence[str], most: int = 3, limit: int = 60) -> str:
    """Names from a URL, quoted and cut short: a notice stays short whatever the link holds."""
    quoted = [f"“{n[:limit]}…”" if len(n) > limit else f"“{n}”" for n in names[:most]]
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(quoted) + more
