"""The Reconstructions page for a run on vectors: x against x̂ a panel per feature, a few rows as profiles, each
feature's error (and the decoder's σ), one row decoded at μ(x) and at draws z ~ q(z|x), and the test metrics."""
from __future__ import annotations

import streamlit as st

from ui.state import page_test_rows
from ui.view_cache import cached_view
from ui.widgets import chart, test_metrics_ui, url_number, url_slider
from vae_core.data.vectors.dataset import VectorDataset
from vae_core.runs.folders import LoadedRun
from vae_plots import vector_figures as vf
from vae_plots import vector_views as vv

SCATTER_ROWS = (50, 2000, 500)  # test rows in the scatter: fewest, most, default (beyond 2,000 the dots merge)
PROFILE_ROWS = (1, 6, 3)  # rows drawn as profiles: a line each for x and x̂, so six rows are twelve lines
POSTERIOR_DRAWS = 7  # as the image page: z ~ q(z|x) decoded for one row


def reconstructions_page(run: LoadedRun) -> None:
    """Every part, for the loaded run on vectors."""
    data = page_test_rows(run)
    st.title("Reconstructions")
    st.caption(f"Test rows and what the loaded VAE makes of them (the decoder mean at the posterior mean μ(x)), "
               f"mapped back to the rows' raw units. {len(data):,} test rows of {data.features} features.")
    scatter_ui(run, data)
    errors_ui(run, data)
    st.divider()
    profiles_ui(run, data)
    st.divider()
    draws_ui(run, data)
    st.divider()
    st.subheader("Test metrics")
    test_metrics_ui(run.metrics.get("test") or {})


@st.fragment
def scatter_ui(run: LoadedRun, data: VectorDataset) -> None:
    st.subheader("x against x̂, a panel per feature")
    lo, hi, default = (min(v, len(data)) for v in SCATTER_ROWS)
    n = url_slider(st, "Test rows drawn", lo, hi, default, "vrecon_n") if hi > lo else hi
    st.caption(f"The first {n:,} test rows, in raw units: x̂ up, x across; the grey line is x̂ = x, where a perfect "
               "reconstruction lies.")
    chart(cached_view([run], "vector_scatter", n,
                      lambda: vf.feature_scatter(vv.reconstruct_rows(run, data.x[:n]), data.feature_names)),
          key="vrecon_scatter")


def errors_ui(run: LoadedRun, data: VectorDataset) -> None:
    """Each feature's RMSE over every test row, raw and as a share of its std, and the decoder's σ."""
    st.subheader("Error per feature")
    errors = vv.feature_errors(run, data)
    sigma = run.model.lik.sigma
    words = vv.SIGMA_WORDS.get(sigma) if errors.sigma is not None else None
    name = "scale b" if run.model.lik.density == "laplace" else "σ"
    st.caption(f"Over all {len(data):,} test rows, from the posterior mean. RMSE / std = 1 is no better than "
               "predicting each feature's mean." + (f" The decoder's {name} ({words}) in raw units: its "
                                                    "normalized-units value × the feature's scale." if words else ""))
    chart(vf.error_bars(errors, f"decoder {name} / std ({words})"), key="vrecon_error_bars")
    table = {"feature": list(errors.names), "RMSE (raw)": errors.rmse.tolist(), "std (raw)": errors.std.tolist(),
             "RMSE / std": errors.relative.tolist()}
    if errors.sigma is not None:
        table[f"decoder {name} (raw)"] = errors.sigma.tolist()
    st.dataframe(table, hide_index=True, key="vrecon_error_table")


@st.fragment
def profiles_ui(run: LoadedRun, data: VectorDataset) -> None:
    st.subheader("A few rows as profiles")
    left, right = st.columns(2)
    lo, hi, default = (min(v, len(data)) for v in PROFILE_ROWS)
    n = url_slider(left, "Rows", lo, hi, default, "vrecon_rows") if hi > lo else hi
    start = url_number(right, "First test row", 0, len(data) - n, 0, "vrecon_start") if len(data) > n else 0
    st.caption(f"x solid, x̂ dashed, in {vv.STANDARD_UNITS} (features of very different scales share the axis); "
               "the hover gives raw values.")
    rec = vv.reconstruct_rows(run, data.x[start:start + n])
    scale = vv.feature_scale(run, data)
    labels = [f"#{i}" for i in range(start, start + n)]
    chart(vf.reconstruction_profiles(scale.standardize(rec.x), scale.standardize(rec.x_hat), labels,
                                     data.feature_names, "standard units", (rec.x, rec.x_hat)), key="vrecon_profiles")


@st.fragment
def draws_ui(run: LoadedRun, data: VectorDataset) -> None:
    st.subheader("One input, many codes")
    st.caption("The decoder mean at the posterior mean μ(x), then at draws z ~ q(z|x): each row has its own posterior, "
               f"and these are what the ELBO's reconstruction term scores. In {vv.STANDARD_UNITS}.")
    left, right = st.columns(2)
    index = url_number(left, "Test row", 0, len(data) - 1, 0, "vsamples_row")
    seed = url_number(right, "Sample seed", 0, 10_000, 0, "vsamples_seed")
    raw = data.x[index]
    decoded = vv.posterior_draws(run, raw, POSTERIOR_DRAWS, seed)
    scale = vv.feature_scale(run, data)
    chart(vf.draws_profiles(scale.standardize(raw.double().numpy()), scale.standardize(decoded), data.feature_names,
                            "standard units", (raw.double().numpy(), decoded)), key="vsamples_chart")
