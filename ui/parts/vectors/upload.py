"""The Your data page's vectors: a CSV or .npy uploaded into this browser's private space, what the loader made of
it, its first rows, each feature's statistics, and each feature's range against each output activation's."""
from __future__ import annotations

import dataclasses
import math

import streamlit as st

from ui.form_fields import DATASET_KEY, YOUR_VECTORS, set_form_values, vectors_start_values
from ui.my_vectors import choose_vectors, chosen_vectors, read_my_vectors, save_vectors_upload, vector_limits
from ui.pages import TRAIN
from ui.state import run_params
from vae_core.config import NORMALIZATIONS, DataConfig, VectorNormalization, default_for, field_info
from vae_core.data.images.source import UploadRefused
from vae_core.data.vector_normalize import fit_vector_normalizer
from vae_core.data.vectors.dataset import VectorLoad
from vae_core.data.vectors.limits import COLUMN_WORDS, ROW_WORDS, VectorDataError, amount
from vae_core.host import MB
from vae_core.model.compatibility import ACTIVATION_RANGE, features_outside
from vae_plots.vector_ranges import activation_words, feature_ranges_figure

SAVED_KEY = "vectors_saved_upload"  # session: the uploader's file id already copied into the private space
PREVIEW_ROWS = 10  # rows of the preview table
SHOWN_SKIPS = 1000  # rows of the skipped-rows table
SUFFIXES = ("csv", "npy")


def vectors_source_ui() -> DataConfig | None:
    """The upload of a CSV or .npy; returns the vectors this browser has chosen, if any."""
    limit = vector_limits()
    up = st.file_uploader(f"A .csv or .npy of rows of numbers (at most {amount('file_bytes', limit.file_bytes)})",
                          type=list(SUFFIXES), key="vectors_upload", max_upload_size=math.ceil(limit.file_bytes / MB),
                          help=f"One row a sample; numeric columns are features; an optional header, an optional "
                               f"`label` column (colours the latent map) and an optional `split` column (train/test). "
                               f"At most {amount('rows', limit.rows)} rows and {amount('columns', limit.columns)} "
                               "columns.")
    if up is not None and st.session_state.get(SAVED_KEY) != up.file_id:
        try:
            path = save_vectors_upload(up)
        except UploadRefused as e:
            st.error(str(e))
        else:
            st.session_state[SAVED_KEY] = up.file_id
            choose_vectors(_with_settings(DataConfig(dataset="vectors", vectors=str(path),
                                                     normalization=default_for("data.normalization", "vectors"))))
    return chosen_vectors()


def _with_settings(data: DataConfig) -> DataConfig:
    share = st.session_state.get("vectors_test_share")
    return data if share is None else dataclasses.replace(data, test_share=share)


def vectors_settings_ui(data: DataConfig, load: VectorLoad | None) -> DataConfig:
    """The test share (unless the file's split column splits it); the choice is kept for every page."""
    spec = field_info("data.test_share").spec
    by_column = load is not None and load.report.split_by == "column"
    share = st.number_input(spec.label, spec.lo, spec.hi, float(data.test_share), spec.step, key="vectors_test_share",
                            disabled=by_column, help="this file's split column is its split" if by_column else spec.help)
    chosen = dataclasses.replace(data, test_share=share)
    choose_vectors(chosen)
    return chosen


def vectors_read_ui(data: DataConfig) -> VectorLoad | None:
    """The file read as data says; a refused file shows the loader's reason and what to do."""
    try:
        return read_my_vectors(data)
    except (VectorDataError, OSError) as e:
        st.error(f"This file of vectors cannot be used: {e}")
        return None


def vectors_summary_ui(load: VectorLoad, data: DataConfig) -> None:
    r = load.report
    (st.warning if r.skipped or r.refused else st.success)(load.summary())
    split = "its split column" if r.split_by == "column" else \
        f"a seeded {data.test_share:.0%} of the rows (data seed {data.seed})"
    st.caption(f"Test split: {split}. Labels: "
               + (f"the `label` column ({len(load.train.label_names):,})" if load.train.labels is not None else "none")
               + ".")
    if r.skipped:
        with st.expander(f"The {len(r.skipped):,} skipped rows, and why"):
            st.dataframe([{"row": s.row, "reason": ROW_WORDS[s.reason][0], "detail": s.detail}
                          for s in r.skipped[:SHOWN_SKIPS]], width="stretch", hide_index=True)
    if r.refused:
        with st.expander(f"The {len(r.refused):,} refused columns, and why"):
            st.dataframe([{"column": c.name, "reason": COLUMN_WORDS[c.reason][0], "detail": c.detail}
                          for c in r.refused], width="stretch", hide_index=True)


def vectors_preview_ui(load: VectorLoad) -> None:
    """The first rows of the file that were kept, with their split and label."""
    parts = [(ds, ds.split) for ds in (load.train, load.test)]
    rows = sorted((int(ds.rows[i]), ds, i) for ds, _ in parts for i in range(min(len(ds), PREVIEW_ROWS)))
    table = [{"row": n, "split": ds.split, **({"label": ds.label_names[int(ds.labels[i])]} if ds.labels is not None
                                               else {}),
              **{name: float(v) for name, v in zip(ds.feature_names, ds.x[i].tolist())}}
             for n, ds, i in rows[:PREVIEW_ROWS]]
    st.markdown(f"**The first {len(table)} rows kept** (row: its place in the file)")
    st.dataframe(table, width="stretch", hide_index=True)


def vectors_stats_ui(load: VectorLoad) -> None:
    """Each feature's min, max, mean and std over the training split, in the file's own units."""
    r = load.train.ranges()
    st.markdown("**Each feature, raw** (the training split, in the file's units)")
    st.dataframe([{"feature": n, "min": lo, "max": hi, "mean": m, "std": s}
                  for n, lo, hi, m, s in zip(r.names, r.min, r.max, r.mean, r.std)], width="stretch", hide_index=True)


def vectors_ranges_ui(load: VectorLoad) -> None:
    """Each feature's normalized range against each output activation's: a line per activation, and the figure."""
    st.markdown("**Each feature's range against what each output activation can produce**")
    c1, c2 = st.columns(2)
    norms, acts = NORMALIZATIONS["vectors"], tuple(ACTIVATION_RANGE)
    norm: VectorNormalization = c1.selectbox("Normalization", norms, index=norms.index("zscore"),
                                             key="vectors_range_norm")
    act: str = c2.selectbox("Output activation", acts, index=acts.index("tanh"), key="vectors_range_act")
    lo, hi = _normalized_ranges(load, norm)
    for a in acts:
        n = len(features_outside(lo, hi, a))
        st.markdown(f"- **{a}**: {n} of {len(lo)} features leave {activation_words(a)} under {norm}")
    st.plotly_chart(feature_ranges_figure(load.train.feature_names, lo, hi, act), key="vectors_ranges",
                    config={"displayModeBar": False})
    st.caption("Bars: each feature's training values from its smallest to its largest, normalized as training would "
               "(zscore: the training split's mean and std).")


def _normalized_ranges(load: VectorLoad, norm: VectorNormalization) -> tuple[list[float], list[float]]:
    normalizer = fit_vector_normalizer(norm, load.train.x)
    ranges = normalizer.reachable_range()
    return [r[0] for r in ranges], [r[1] for r in ranges]


def _train_on_them() -> None:
    set_form_values(vectors_start_values() | {DATASET_KEY: YOUR_VECTORS})


def vectors_next_ui() -> None:
    if st.button("Train on these vectors", key="vectors_train", type="primary", on_click=_train_on_them):
        st.switch_page(TRAIN.path, query_params=run_params())


def vectors_ui() -> None:
    """The vectors part of the Your data page."""
    chosen = vectors_source_ui()
    if chosen is None:
        st.info("Upload a CSV or .npy of rows of numbers to see each feature's range against each output "
                "activation's before you train on them.")
        return
    load = vectors_read_ui(chosen)
    chosen = vectors_settings_ui(chosen, load)
    load = vectors_read_ui(chosen) if load is not None else None
    if load is None:
        return
    vectors_summary_ui(load, chosen)
    vectors_preview_ui(load)
    vectors_stats_ui(load)
    vectors_ranges_ui(load)
    vectors_next_ui()
