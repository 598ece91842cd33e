"""Keep every page inside app.py's st.navigation, even on a direct link to a fresh server.

Streamlit treats a folder named pages/ beside the main script as old-style (v1) pages until some
run calls st.navigation. If the first request after a server start names a page file's URL, it runs
that file on its own: no set_page_config, no model sidebar, file names as page titles. app.py's URL
paths (/train) differ from the file names (train_page.py), so the app's own links always go through
app.py; this guard covers a hand-typed file URL (/train_page): it switches the flag off and reruns,
and the rerun goes through app.py.
"""
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager  # the flag is not public API: tests/e2e pins this


def require_app_shell() -> None:
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
