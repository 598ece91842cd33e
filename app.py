"""VAE Lab: streamlit run app.py"""
import streamlit as st

from ui.sidebar import model_sidebar_ui
from ui.state import configure_torch

st.set_page_config(page_title="VAE Lab", page_icon=":material/science:", layout="wide")
configure_torch()

pages = [
    st.Page("pages/reconstructions.py", title="Reconstructions", icon=":material/compare:", default=True),
    st.Page("pages/latent.py", title="Latent space", icon=":material/explore:"),
    st.Page("pages/diagnostics.py", title="Diagnostics", icon=":material/troubleshoot:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
]
page = st.navigation(pages)
model_sidebar_ui()
page.run()
