import streamlit as st

from ui import deferred
from ui.compare_url import MAX_RUNS, MIN_RUNS
from ui.downloads import download_ui, pictures_ui
from ui.parts import compare as parts
from ui.parts.vectors.compare import compare_page
from ui.state import current_run, page_test_images
from ui.view_cache import cached_view
from ui.widgets import chart, url_choice, url_number
from vae_core.data.base import ImageDataset
from vae_core.export import frames as f
from vae_plots import compare_views as compare
from vae_plots.compare_table import BEST_MARK, metrics_csv, metrics_table

N_SHOWN = 8  # test images in the reconstruction rows: 32-pixel tiles stay visible at half a screen wide

deferred.begin()
st.title("Compare")
st.caption("Two to four runs on the same test images (or rows), one colour per run on every figure.")
runs = parts.compare_picker_ui(current_run())
if len(runs) < MIN_RUNS:
    st.info(f"Pick {MIN_RUNS} to {MAX_RUNS} runs to compare.")
    st.stop()
if any(r.config.data.kind == "vectors" for r in runs):
    compare_page(runs)
    st.stop()
labels = compare.run_labels(runs)
if not compare.same_images(runs):
    st.warning("These runs read different data sets or image sizes: no one test image suits them all, so only "
               "their metrics and training curves are compared.")


@st.fragment
def reconstructions_ui(test: ImageDataset) -> None:
    st.subheader("Reconstructions")
    start = url_number(st, "First test image", 0, len(test) - N_SHOWN, 0, "compare_start") \
        if len(test) > N_SHOWN else 0
    result = parts.reconstructions(runs, test.images[start:start + N_SHOWN], start)
    chart(result.grid, key="compare_grid")
    st.markdown("**Per-pixel squared error**, pixel space, one colour scale for every run")
    chart(result.errors, key="compare_errors")
    shown = test.images[start:start + N_SHOWN]
    pictures_ui(st, "compare-reconstructions", "compare_recon",  # made when clicked: inputs, then a row a run
                lambda: f.mosaic(f.compare_rows(runs, shown)))


def metrics_ui() -> None:
    st.subheader("Test metrics")
    evaluations = parts.evaluations(runs)
    if deferred.waiting():
        deferred.computing(f"the first {parts.N_EVAL} test images of each run (IWAE, k = {parts.IWAE_K})")
        return
    table = metrics_table(runs, evaluations, labels)
    for part in table.parts():
        st.table(part, hide_index=True)
    st.caption(f"On the first {parts.N_EVAL} test images of each run; IWAE with k = {parts.IWAE_K}. "
               f"{BEST_MARK.strip()}: the best of a column (equivalent β is a choice, not a result). "
               + table.note)
    download_ui(st, "CSV", lambda: metrics_csv(runs, evaluations, labels), "compare-metrics.csv", "compare_csv")


@st.fragment
def traversals_ui(test: ImageDataset) -> None:
    st.subheader("Traversals of one image")
    st.caption("Each run's posterior mean of the same test image, its most informative dimensions swept "
               "over ±3 prior standard deviations (rows: the dimension and its KL in nats).")
    anchor = url_number(st, "Test image", 0, len(test) - 1, 0, "compare_anchor")
    figs = cached_view(runs, "traversals", (anchor, tuple(labels)),
                       lambda: compare.traversals(runs, test.images[anchor], labels))
    per_row = compare.traversals_per_row(len(runs))
    for i, fig in enumerate(figs):
        if i % per_row == 0:
            cols = st.columns(per_row)
        with cols[i % per_row]:
            chart(fig, key=f"compare_traversal_{i}")


def ranges_ui(test: ImageDataset) -> None:
    st.subheader("Output ranges")
    st.caption("Where each run's outputs land in pixel units, over the targets (the same test images for all).")
    chart(parts.range_histograms(runs, test.images[:parts.N_EVAL]), key="compare_ranges")


def curves_ui() -> None:
    st.subheader("Training curves")
    if not compare.has_history(runs):
        st.caption("None of these runs saved its training curves.")
        return
    default = compare.default_curve_scale(runs)
    scale = url_choice(st, "selectbox", "Vertical axis", list(compare.CURVE_SCALES), default,
                       "compare_scale", help="per run: each run over its own range, so every run's curve can be "
                       "read (the hover gives its nats); shared: one axis of nats for all.")
    chart(compare.training_curves(runs, labels, scale), key="compare_curves")
    if not compare.nats_comparable(runs):
        st.caption("Nats per image of runs with different normalizations or likelihoods are on different scales: "
                   "compare the shapes of these curves, not their heights.")


images = page_test_images(runs[0]) if compare.same_images(runs) else None
if images is not None:
    reconstructions_ui(images)
metrics_ui()
curves_ui()
if images is not None:
    traversals_ui(images)
    ranges_ui(images)
deferred.poll_if_pending()
