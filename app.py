"""VAE Lab: streamlit run app.py"""
import streamlit as st

from ui.sidebar import model_sidebar_ui
from ui.state import configure_torch

st.set_page_config(page_title="VAE Lab", page_icon=":material/science:", layout="wide")
configure_torch()

# File names differ from the URL paths on purpose: Streamlit treats pages/ as old-style pages until
# st.navigation runs, and on a fresh server a first request for /train would otherwise run
# pages/train.py alone. With no file named train.py, it falls through to this script (see ui/shell.py).
pages = [
    st.Page("pages/reconstructions_page.py", title="Reconstructions", icon=":material/compare:", default=True,
            url_path="reconstructions"),
    st.Page("pages/latent_page.py", title="Latent space", icon=":material/explore:", url_path="latent"),
    st.Page("pages/diagnostics_page.py", title="Diagnostics", icon=":material/troubleshoot:",
            url_path="diagnostics"),
    st.Page("pages/train_page.py", title="Train", icon=":material/model_training:", url_path="train"),
]
page = st.navigation(pages)
model_sidebar_ui()
page.run()
