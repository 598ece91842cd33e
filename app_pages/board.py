import streamlit as st

from ui.parts.board import board_ui, name_ui

st.title("Class board")
st.caption("Every run trained on this server, ranked by bits/dim on the same test images (runs on vectors: by the "
           "ELBO in nats per raw row on the same test rows), and what each makes of them. Runs on a person's own "
           "images or vectors stay private to their browser and are not here.")
name_ui()
board_ui()
