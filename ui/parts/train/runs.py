"""The Train page's "Your runs": the runs this browser trained (on the server and in its private space), each
renamed (a title; the folder, which links name, stays) or deleted after a confirmation. Another browser's runs are
never offered, and vae_core.runs.tidy refuses them anyway."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import streamlit as st

from ui.session import client_token
from ui.sidebar import PICKER_KEY
from ui.state import (RUN_KEY, ModelChoice, default_run_path, load_run_infos, markdown_text, model_choices,
                      set_run)
from vae_core.runs.folders import TITLE_MAX_CHARS
from vae_core.runs.tidy import RunRefused, delete_run, rename_run

CONFIRM_KEY = "runs_confirm_delete"  # session: the path of the run whose delete waits for its confirmation
SAID_KEY = "runs_said"  # session: what the last rename or delete did, shown once
OPEN_KEY = "your_runs_open"  # session: whether the section is open (kept across reruns and page changes)
RUNNING_REASON = "Still training: stop it on this page (or wait for it to end) to rename or delete it."


def your_runs() -> list[ModelChoice]:
    """This browser's runs, newest first: the private ones (on its own images), then those on the server."""
    return [c for c in model_choices(client_token()) if c.owner in ("yours", "private")]


def row_key(choice: ModelChoice) -> str:
    """A run's widget keys' stem: its folder's name (one private and one shared run may share it)."""
    return f"{choice.owner}-{choice.path.name}"


def _say(kind: Literal["success", "error"], text: str) -> None:
    st.session_state[SAID_KEY] = (kind, text)


def _rename(path: str, box: str) -> None:
    try:
        title = rename_run(path, st.session_state.get(box) or "", client_token())
    except (RunRefused, OSError) as e:
        return _say("error", f"Not renamed: {e}")
    load_run_infos.clear()  # the picker shows the new title at once
    st.session_state[PICKER_KEY] = st.session_state.get(RUN_KEY)  # its label changed: sent again to the browser
    _say("success", f"Renamed {Path(path).name} to “{title}” (its links still work: the folder keeps its name).")


def _delete(path: str) -> None:
    st.session_state.pop(CONFIRM_KEY, None)
    try:
        delete_run(path, client_token())
    except (RunRefused, OSError) as e:
        return _say("error", f"Not deleted: {e}")
    load_run_infos.clear()
    text = f"Deleted {Path(path).name}."
    if st.session_state.get(RUN_KEY) == path:
        set_run(default_run_path())
        text += " It was the loaded model: the default bundled model is loaded now."
    _say("success", text)


def _ask(path: str | None) -> None:
    st.session_state[CONFIRM_KEY] = path


def run_row_ui(choice: ModelChoice) -> None:
    """One run: its label and summary, then a title box with Rename, and Delete (disabled while it trains)."""
    key, path, running = row_key(choice), str(choice.path), choice.info.status == "running"
    with st.container(key=f"run_row_{key}", border=True):
        st.markdown(f"**{markdown_text(choice.label)}**  \n:gray[{markdown_text(choice.info.summary())}]")
        box, rename, delete = st.columns([2, 1, 1], vertical_alignment="bottom")
        box.text_input("Title", value=choice.info.title or "", key=f"run_title_{key}", max_chars=TITLE_MAX_CHARS,
                       placeholder="A name for this run", disabled=running, label_visibility="collapsed",
                       help=f"1 to {TITLE_MAX_CHARS} characters, one line. Shown in the picker; the folder keeps "
                            "its name, so links to the run still work.")
        rename.button("Rename", key=f"run_rename_{key}", on_click=_rename, args=(path, f"run_title_{key}"),
                      disabled=running, help=RUNNING_REASON if running else None, width="stretch")
        delete.button("Delete", key=f"run_delete_{key}", on_click=_ask, args=(path,), disabled=running,
                      help=RUNNING_REASON if running else "Asks you to confirm first.", width="stretch")
        if running:
            st.caption(RUNNING_REASON)
        if st.session_state.get(CONFIRM_KEY) == path:
            confirm_ui(choice)


def confirm_ui(choice: ModelChoice) -> None:
    """The confirmation step of a delete."""
    key, path = row_key(choice), str(choice.path)
    st.warning("Delete this run for good? Its folder is removed from the server, and links and Compare "
               "selections that name it will fall back to the default model.")
    with st.container(horizontal=True):
        st.button("Delete for good", key=f"run_confirm_{key}", type="primary", on_click=_delete, args=(path,))
        st.button("Cancel", key=f"run_cancel_{key}", on_click=_ask, args=(None,))


def your_runs_ui() -> None:
    """The section: what the last action did, then every run of this browser's, or how to make one."""
    runs = your_runs()
    with st.expander("Your runs: rename or delete", key=OPEN_KEY, on_change="rerun", icon=":material/folder_managed:"):
        if said := st.session_state.pop(SAID_KEY, None):
            kind, text = said
            (st.success if kind == "success" else st.error)(text)
        st.caption(f"{len(runs)} run{'' if len(runs) == 1 else 's'} trained in this browser, newest first. Another browser's runs are not "
                   "listed: only the browser that trained a run may rename or delete it." if runs else
                   "No runs of yours yet: the runs you train in this browser are listed here.")
        for choice in runs:
            run_row_ui(choice)
