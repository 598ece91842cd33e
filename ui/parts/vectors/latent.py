"""The Latent space page for a run on vectors: a traversal as feature profiles (a heatmap of every dimension's
change, the profiles of one), an interpolation between two rows, prior samples as rows, and the map of μ."""
from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from ui.parts.latent import MAP_CONFIG
from ui.state import page_test_rows
from ui.view_cache import cached_view
from ui.widgets import chart, url_choice, url_number, url_slider
from vae_core.data.vectors.dataset import VectorDataset
from vae_core.export import frames as f
from vae_core.runs.folders import LoadedRun
from vae_plots import vector_figures as vf
from vae_plots.figures import TEST_COLOR
from vae_plots.latent_map import nearest, read_event
from vae_plots import vector_views as vv

PRIOR_ROWS = 16  # prior samples drawn as rows: a 1024-pixel projector shows sixteen rows of twelve cells whole
AXES_WORDS = {"pca": "principal components", "kl": "two highest-KL dimensions"}  # the map's planes (MapAxes)


def latent_page(run: LoadedRun) -> None:
    """Every part, for the loaded run on vectors."""
    data = page_test_rows(run)
    st.title("Latent space")
    traversal_ui(run, data)
    st.divider()
    interpolation_ui(run, data)
    st.divider()
    prior_ui(run, data)
    st.divider()
    map_ui(run, data)


def _kl(run: LoadedRun) -> list[float]:
    kl = (run.metrics.get("test") or {}).get("kl_per_dim") or []
    return kl if len(kl) == run.config.model.latent_dim else []


def _dim_label(run: LoadedRun, d: int) -> str:
    kl = _kl(run)
    return f"z{d} · {kl[d]:.2f} nats" if kl else f"z{d}"


@st.fragment
def traversal_ui(run: LoadedRun, data: VectorDataset) -> None:
    st.subheader("Traversal")
    st.caption("From a test row's posterior mean, set one latent dimension at a time to values across ± the range "
               "(in prior standard deviations) and decode. Rows are ordered by the nats of KL each dimension carries "
               "on the test rows.")
    left, right = st.columns(2)
    anchor = url_slider(left, "Test row to start from", 0, len(data) - 1, 0, "vtraverse_anchor") if len(data) > 1 \
        else 0
    span = url_slider(right, "Range (prior standard deviations)", *f.TRAVERSAL_SPAN_RANGE, f.TRAVERSAL_SPAN,
                      "vtraverse_range", step=0.5)
    dims = f.informative_dims(run, run.config.model.latent_dim)
    scale = vv.feature_scale(run, data)
    grid = cached_view([run], "vector_traversal", (anchor, span),
                       lambda: vv.traversal_profiles(run, data.x[anchor], dims, span))  # (dims, values, D) raw
    st.markdown(f"**The change of each feature** from −{span:g} to +{span:g}, in standard units (the feature's std "
                "over the test rows)")
    change = scale.standardize(grid[:, -1]) - scale.standardize(grid[:, 0])
    chart(vf.change_heatmap(change, [_dim_label(run, d) for d in dims], data.feature_names), key="vtraverse_heat")
    dim = url_choice(st, "selectbox", "Dimension drawn", dims, dims[0], "vtraverse_dim", format_func=_z,
                     help="In the heatmap's order: the most KL first.")  # "z2" in the address, whatever its KL
    row = dims.index(dim)
    values = vv.traversal_values(span)
    chart(vf.sweep_profiles(scale.standardize(grid[row]), [f"z{dim} = {v:+.2f}" for v in values],
                            data.feature_names, "standard units", grid[row]), key="vtraverse_lines")


def _z(d: int) -> str:
    return f"z{d}"


@st.fragment
def interpolation_ui(run: LoadedRun, data: VectorDataset) -> None:
    st.subheader("Interpolation")
    st.caption(f"Decodes along the straight line from μ(row A) to μ(row B), in {vv.STANDARD_UNITS}; the rows "
               "themselves dotted.")
    left, right = st.columns(2)
    a = url_number(left, "Row A", 0, len(data) - 1, 0, "vinterp_a")
    b = url_number(right, "Row B", 0, len(data) - 1, min(1, len(data) - 1), "vinterp_b")
    raw = vv.interpolation_profiles(run, data.x[a], data.x[b])
    scale = vv.feature_scale(run, data)
    ends = [vf.Profile(f"row {name} (#{i})", scale.standardize(data.x[i].double().numpy()), vf.INPUT_COLOR, dash,
                       3, raw=data.x[i].double().numpy()) for name, i, dash in (("A", a, "dot"), ("B", b, "dash"))]
    steps = [f"t = {t:.2f}" for t in np.linspace(0, 1, len(raw))]
    chart(vf.sweep_profiles(scale.standardize(raw), steps, data.feature_names, "standard units", raw, ends),
          key="vinterp_chart")


@st.fragment
def prior_ui(run: LoadedRun, data: VectorDataset) -> None:
    st.subheader("Samples from the prior")
    st.caption(f"Decoder means at z ~ N(0, I), a row each: the raw values written in the cells, coloured in "
               f"{vv.STANDARD_UNITS}.")
    seed = url_number(st, "Seed", 0, 10_000, 0, "vprior_seed")
    raw = vv.prior_rows(run, PRIOR_ROWS, seed)
    chart(vf.rows_heatmap(vv.feature_scale(run, data).standardize(raw), raw, data.feature_names), key="vprior_chart")


@st.fragment
def map_ui(run: LoadedRun, data: VectorDataset) -> None:
    st.subheader("Map of the posterior means")
    latent = run.config.model.latent_dim
    axes = url_choice(st, "segmented_control", "Axes", list(AXES_WORDS), "pca", "vmap_axes",
                      format_func=AXES_WORDS.get) if latent > 2 else "pca"
    axes = axes or "pca"  # a segmented control clicked off holds none
    encoded = cached_view([run], "vector_mu", axes, lambda: vv.mu_map(run, data, axes))
    shown = cached_view([run], "vector_map", axes, lambda: vf.mu_map_figure(encoded, data))
    st.caption(shown.note)
    state = st.plotly_chart(shown.figure, key="vmap_chart", config=MAP_CONFIG, width="stretch", on_select="rerun",
                            selection_mode="points")
    decoded_ui(run, data, encoded, state)


def decoded_ui(run: LoadedRun, data: VectorDataset, encoded: vv.MuMap, state: Any) -> None:
    """The clicked point of the map decoded as a row, over the test row nearest it."""
    selection = state.get("selection") if state else None  # Streamlit's attribute dict; empty before any click
    event = read_event(dict(selection) if selection else {}, [])
    if event.kind != "click":
        st.info("Click the map, on a point or between them, to decode that point as a row here.")
        return
    (x, y), scale = event.clicked, vv.feature_scale(run, data)
    near = int(nearest(encoded.points, (x, y), 1)[0])
    decoded, row = vv.decode_point(run, encoded.plane, (x, y)), data.x[near].double().numpy()
    st.markdown(f"**Decoded at ({x:.2f}, {y:.2f})**, dashed, over the test row nearest it on the map, #{near} "
                f"({vv.STANDARD_UNITS})")
    chart(vf.decoded_point(vf.Profile(f"decoded at ({x:.2f}, {y:.2f})", scale.standardize(decoded), TEST_COLOR,
                                      "dash", 3, raw=decoded),
                           vf.Profile(f"test row #{near}", scale.standardize(row), vf.INPUT_COLOR, raw=row),
                           data.feature_names), key="vmap_decoded")
