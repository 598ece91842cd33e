import streamlit as st

from ui.downloads import pictures_ui, training_previews_ui
from ui.parts.vectors.reconstructions import reconstructions_page
from ui.state import current_run, page_test_images
from ui.view_cache import cached_view
from ui.widgets import chart, test_metrics_ui, url_number, url_slider
from vae_core.export import frames as f
from vae_plots import views

run = current_run()
if run.config.data.kind == "vectors":
    reconstructions_page(run)
    st.stop()
test = page_test_images(run)

st.title("Reconstructions")
st.caption("Test images and what the loaded VAE makes of them, mapped back to pixel space.")
if (verdict := views.degenerate(run)) is not None:
    st.warning(f"**Degenerate.** {verdict.reason}", icon=":material/warning:")


@st.fragment
def reconstructions_ui() -> None:
    left, right = st.columns(2)
    most = min(16, len(test))  # a run evaluated on a handful of test images has no more to show
    n = url_slider(left, "Images", 4, most, min(10, most), "recon_n") if most > 4 else most
    start = url_number(right, "First test image", 0, len(test) - n, 0, "recon_start") if len(test) > n else 0
    images = test.images[start:start + n]
    grid, errors = cached_view([run], "reconstructions", (start, n),
                               lambda: views.reconstruction_figures(run, images))
    chart(grid, key="recon_grid")
    pictures_ui(st, f"{run.path.name}-reconstructions", "recon",  # made when clicked, under what it draws
                lambda: f.mosaic(f.reconstruction_rows(run, images)))
    st.markdown("**Per-pixel squared error** (pixel space, mean over channels)")
    chart(errors, key="recon_error")
    pictures_ui(st, f"{run.path.name}-errors", "recon_errors",
                lambda: f.mosaic(f.heat(f.error_maps(f.reconstruction_rows(run, images)))))
    sigma_fig = views.sigma_map(run, images)
    if sigma_fig is not None:
        st.markdown("**The decoder's σ per pixel** (pixel units, mean over channels): where it admits uncertainty")
        chart(sigma_fig, key="recon_sigma")
    elif (log_sigma := run.model.decoder_log_sigma()) is not None:
        st.caption(f"The decoder's σ is shared by all pixels: {log_sigma.exp().item():.4g} in normalized units "
                   f"({run.config.loss.likelihood}).")


@st.fragment
def samples_ui() -> None:
    st.markdown("**One input, many codes.** The decoder mean at the posterior mean μ(x), then at samples "
                "z ~ q(z|x): each input has its own posterior, and these are what the reconstruction "
                "term of the ELBO scores.")
    left, right = st.columns(2)
    index = url_number(left, "Test image", 0, len(test) - 1, 0, "samples_index")
    seed = url_number(right, "Sample seed", 0, 10_000, 0, "samples_seed")
    chart(views.posterior_samples(run, test.images[index], 7, seed), key="samples_grid")


reconstructions_ui()
training_previews_ui(st, run.path)
st.divider()
samples_ui()
st.divider()
st.subheader("Test metrics")
test_metrics_ui(run.metrics.get("test") or {})
