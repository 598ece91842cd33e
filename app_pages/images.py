"""Your data: upload images (.zip) or rows of numbers (.csv, .npy), see what normalization does to them, then train
on them."""
import streamlit as st

from ui.pages import IMAGES
from ui.parts.images import images_ui, privacy_ui, space_ui
from ui.parts.vectors.upload import vectors_ui

st.title(IMAGES.title)
privacy_ui()
images_tab, vectors_tab = st.tabs(["Images (.zip)", "Rows of numbers (.csv, .npy)"])
with images_tab:
    images_ui()
with vectors_tab:
    vectors_ui()
space_ui()
