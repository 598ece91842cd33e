"""Your images: upload a .zip, see what normalization does to it, then train on it."""
import streamlit as st

from ui.parts.images import (delete_ui, look_ui, next_ui, privacy_ui, private_runs_ui, read_ui, settings_ui, source_ui,
                             stats_ui, summary_ui)

st.title("Your images")
privacy_ui()
chosen = source_ui()
if chosen is None:
    st.info("Upload a .zip of your images to see them here, with what each normalization and output activation "
            "will do to them, before you train.")
else:
    r = read_ui(settings_ui(chosen))
    if r is not None:
        summary_ui(r)
        look_ui(r)
        stats_ui(r)
        next_ui()
    private_runs_ui()
    delete_ui()
