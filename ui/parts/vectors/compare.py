"""Compare for runs on vectors: on the same test rows, each run's ELBO and IWAE in nats per raw row with the paired
difference to the best and its standard error, reconstruction profiles of a few rows and each feature's error.
Runs on images beside runs on vectors, or on different vectors, are refused with the reason and what to pick."""
from __future__ import annotations

from collections.abc import Sequence

import streamlit as st
import torch

from ui.parts.vectors.diagnostics import vector_metrics
from ui.state import page_test_rows
from ui.view_cache import cached_view
from ui.widgets import chart, url_number
from vae_core.model.evaluate_vectors import NATS_PER_ROW, VectorEvalMetrics
from vae_core.runs.evaluations import COMPARE
from vae_core.runs.folders import LoadedRun
from vae_plots import compare_vectors as cv
from vae_plots.compare_views import run_labels
from vae_plots.vector_diagnostics import vectors_key, vectors_words

N_PROFILES = 3  # test rows drawn as profiles: three panels fit a 768-pixel screen's height and a half


def refusal(runs: Sequence[LoadedRun]) -> str | None:
    """Why these runs cannot be compared on one set of test rows (None: they can), and what to pick instead."""
    if len({r.config.data.kind for r in runs}) > 1:
        on_images = ", ".join(r.name for r in runs if r.config.data.kind == "images")
        on_rows = ", ".join(r.name for r in runs if r.config.data.kind == "vectors")
        return (f"Runs on images ({on_images}) and runs on vectors ({on_rows}) cannot be compared: they share no "
                "test input, and nats per image and nats per row are not the same measure. Pick runs of one kind: "
                "only runs on images, or only runs on the same vectors.")
    keys = {vectors_key(r.config.data) for r in runs}
    if len(keys) > 1:
        read = "; ".join(f"{r.name}: {vectors_words(r.config.data)}" for r in runs)
        return (f"These runs read different vectors ({read}), so no test row is common to all of them and their "
                "values per row do not pair. Pick runs trained on the same vectors, with the same test share and "
                "seed (their normalizations may differ: the log-Jacobian makes nats per raw row compare).")
    return None


def compare_page(runs: list[LoadedRun]) -> None:
    """The Compare page below its picker, where any of the runs is on vectors."""
    if (why := refusal(runs)) is not None:
        st.error(why)
        return
    rows, labels = page_test_rows(runs[0]), run_labels(runs)
    metrics = [vector_metrics(run, rows, len(rows), COMPARE.iwae_k) for run in runs]
    metrics_ui(metrics, labels, len(rows))
    profiles_ui(runs, rows.x, rows.feature_names, labels)
    errors_ui(metrics, labels, rows.x)


def metrics_ui(metrics: list[VectorEvalMetrics], labels: list[str], n_rows: int) -> None:
    st.subheader("Test metrics")
    bounds, terms = cv.metrics_frames(metrics, labels)
    st.table(bounds, hide_index=True)
    st.markdown(cv.verdict_words(metrics, labels))
    st.table(terms, hide_index=True)
    st.caption(f"On all {n_rows:,} test rows, the same for every run; {NATS_PER_ROW}. A value's ±: its Monte-Carlo "
               "standard error. “vs best”: the run minus the highest ELBO, row by row, ± the standard error of that "
               f"paired difference (it holds both runs' Monte-Carlo noise); IWAE with k = {COMPARE.iwae_k}.")


def _spread(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each feature's mean and std over the test rows (a constant feature's std taken as 1)."""
    x = x.double()
    std = x.std(0, correction=0)
    return x.mean(0), torch.where(std > 0, std, torch.ones_like(std))


@st.fragment
def profiles_ui(runs: list[LoadedRun], x: torch.Tensor, names: tuple[str, ...], labels: list[str]) -> None:
    st.subheader("Reconstructions")
    start = url_number(st, "First test row", 0, len(x) - N_PROFILES, 0, "compare_row") \
        if len(x) > N_PROFILES else 0
    shown = x[start:start + N_PROFILES]
    mean, std = _spread(x)
    fig = cached_view(runs, "vector_profiles", (start, tuple(labels)), lambda: cv.profiles_figure(
        shown, [cv.reconstruct(run, shown) for run in runs], names, labels,
        range(start, start + len(shown)), mean, std))
    st.caption("Each test row's features (black) and each run's reconstruction of them from the posterior mean, "
               "in the test rows' standard units: (value − mean) / std of each feature.")
    chart(fig, key="compare_profiles")


def errors_ui(metrics: list[VectorEvalMetrics], labels: list[str], x: torch.Tensor) -> None:
    st.subheader("Each feature's error")
    st.caption("The RMSE of each run's reconstructions of every test row, feature by feature, over that feature's "
               "std across the test rows (dashed: 1, no better than always answering its mean; the hover gives raw "
               "units).")
    chart(cv.feature_rmse_figure(metrics, labels, _spread(x)[1]), key="compare_rmse")
