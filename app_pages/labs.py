import streamlit as st

from ui.parts.lab_data import settings_ui
from ui.parts.labs import controls_ui, lab_job, lab_picker_ui, live_ui, result_ui

st.title("Labs")
st.caption("Four questions people bring to VAEs (the third also on rows of numbers). Each lab trains a small family of models in lockstep on the "
           "data you choose, on several seeds, then answers from what it measured on them: a verdict only where "
           "every seed agrees beyond the noise.")

lab = lab_picker_ui()
st.markdown(f"> *“{lab.question}”*")
with st.expander("The textbook answer, which your run will confirm or contradict"):
    st.markdown(lab.textbook)
settings = settings_ui(lab)
if settings is not None:
    controls_ui(lab, settings)
job = lab_job(lab)
if job is not None and not job.done:
    with st.container(key="lab_live"):
        live_ui(lab)
result_ui(lab)
