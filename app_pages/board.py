import streamlit as st

from ui.parts.board import board_ui, name_ui

st.title("Class board")
st.caption("Every run trained on this server, ranked by bits/dim on the same test images, and what each makes of "
           "them. Runs on a person's own images stay private to their browser and are not here.")
name_ui()
board_ui()
