import streamlit as st

from ui.state import current_run, page_test_images
from ui.widgets import chart
from vae_plots import views

run = current_run()
test = page_test_images(run)

st.title("Latent space")


@st.fragment
def traversal_ui() -> None:
    with st.container(key="traversal_panel"):
        st.subheader("Traversal")
        st.caption("Start from a test image's posterior mean and sweep one latent dimension at a time. "
                   "Rows are ordered by how many nats of KL the dimension carries on the test set.")
        left, mid, right = st.columns(3)
        anchor = left.slider("Test image to start from", 0, len(test) - 1, 0, key="traverse_anchor") \
            if len(test) > 1 else 0
        span = mid.slider("Range (prior standard deviations)", 0.5, 5.0, 3.0, 0.5, key="traverse_range")
        limit = views.traversal_dims_limit(run)
        if limit > 1:
            n_dims = right.slider("Dimensions shown", 1, limit, min(limit, 10), key="traverse_dims",
                                  help=f"At most {limit}: the dimensions carrying the most KL come first.")
        else:
            n_dims = 1
            right.caption("One latent dimension: its row is the whole traversal.")
        dims = views.informative_dims(run, n_dims)
        chart(views.traversal(run, test.images[anchor], dims, span), key="traversal_chart")


@st.fragment
def interpolation_ui() -> None:
    st.subheader("Interpolation")
    left, right = st.columns(2)
    a = left.number_input("Image A", 0, len(test) - 1, 0, key="interp_a")
    b = right.number_input("Image B", 0, len(test) - 1, min(1, len(test) - 1), key="interp_b")
    chart(views.interpolation(run, test.images[a], test.images[b]), key="interp_chart")


@st.fragment
def prior_ui() -> None:
    st.subheader("Samples from the prior")
    st.caption("Decoder means at z ~ N(0, I): what the model generates from nothing but the prior.")
    seed = st.number_input("Seed", 0, 10_000, 0, key="prior_seed")
    chart(views.prior_samples(run, 32, seed), key="prior_chart")


@st.fragment
def map_ui() -> None:
    st.subheader("Map of the posterior means")
    options = ["label", *(f for f in test.factor_names if f != "shape")]
    color_by = st.selectbox("Colour by", options, key="map_color",
                            format_func=lambda o: "class / shape" if o == "label" else o)
    result = views.latent_map(run, test, color_by)
    st.caption(f"{result.note} {len(test)} test images.")
    chart(result.figure, key="map_chart")


traversal_ui()
st.divider()
interpolation_ui()
st.divider()
prior_ui()
st.divider()
map_ui()
