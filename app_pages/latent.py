import streamlit as st

from ui.downloads import pictures_ui
from ui.parts.latent import map_ui
from ui.parts.vectors.latent import latent_page
from ui.state import current_run, page_test_images
from ui.view_cache import cached_view
from ui.widgets import chart, url_number, url_slider
from vae_core.export import frames as f
from vae_plots import views

run = current_run()
if run.config.data.kind == "vectors":
    latent_page(run)
    st.stop()
test = page_test_images(run)

st.title("Latent space")


@st.fragment
def traversal_ui() -> None:
    with st.container(key="traversal_panel"):
        st.subheader("Traversal")
        st.caption("Start from a test image's posterior mean and sweep one latent dimension at a time. "
                   "Rows are ordered by how many nats of KL the dimension carries on the test set.")
        left, mid, right = st.columns(3)
        anchor = url_slider(left, "Test image to start from", 0, len(test) - 1, 0, "traverse_anchor") \
            if len(test) > 1 else 0
        span = url_slider(mid, "Range (prior standard deviations)", *f.TRAVERSAL_SPAN_RANGE, f.TRAVERSAL_SPAN,
                          "traverse_range", step=0.5)
        limit = views.traversal_dims_limit(run)
        if limit > 1:
            n_dims = url_slider(right, "Dimensions shown", 1, limit, min(limit, f.TRAVERSAL_DIMS), "traverse_dims",
                                  help=f"At most {limit}: the dimensions carrying the most KL come first.")
        else:
            n_dims = 1
            right.caption("One latent dimension: its row is the whole traversal.")
        dims = f.informative_dims(run, n_dims)
        chart(cached_view([run], "traversal", (anchor, tuple(dims), span),
                          lambda: views.traversal(run, test.images[anchor], dims, span)), key="traversal_chart")
        image = test.images[anchor]
        pictures_ui(st, f"{run.path.name}-traversal", "traversal",  # made when clicked
                    lambda: f.mosaic(f.traversal_grid(run, image, dims, span)),
                    lambda: f.traversal_frames(f.traversal_grid(run, image, dims, span)))


@st.fragment
def interpolation_ui() -> None:
    st.subheader("Interpolation")
    left, right = st.columns(2)
    a = url_number(left, "Image A", 0, len(test) - 1, 0, "interp_a")
    b = url_number(right, "Image B", 0, len(test) - 1, min(1, len(test) - 1), "interp_b")
    chart(views.interpolation(run, test.images[a], test.images[b]), key="interp_chart")
    ends = test.images[a], test.images[b]
    pictures_ui(st, f"{run.path.name}-interpolation", "interp",  # made when clicked
                lambda: f.mosaic(f.interpolation_row(run, *ends)),
                lambda: f.interpolation_frames(f.interpolation_row(run, *ends)))


@st.fragment
def prior_ui() -> None:
    st.subheader("Samples from the prior")
    st.caption("Decoder means at z ~ N(0, I): what the model generates from nothing but the prior.")
    seed = url_number(st, "Seed", 0, 10_000, 0, "prior_seed")
    chart(views.prior_samples(run, f.PRIOR_SAMPLES, seed), key="prior_chart")
    pictures_ui(st, f"{run.path.name}-prior-samples", "prior",
                lambda: f.mosaic(f.prior_grid(run, f.PRIOR_SAMPLES, seed), f.PRIOR_COLUMNS),
                lambda: f.prior_frames(run, f.PRIOR_SAMPLES, seed))


@st.fragment
def latent_map_ui() -> None:
    map_ui(run, test)


traversal_ui()
st.divider()
interpolation_ui()
st.divider()
prior_ui()
st.divider()
latent_map_ui()
