"""The Train form on rows of numbers: the bundled vectors or this browser's own, a dense VAE (mlp), and only the
normalizations and likelihoods the config accepts for vectors; the data's defaults when the form turns to vectors."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence, get_args

import streamlit as st

from ui.widgets import CARDS_PER_ROW
from ui.form_fields import BY_NAME, DATASET_KEY, YOUR_VECTORS, set_form_values, vectors_start_values
from ui.my_vectors import chosen_vectors, read_my_vectors
from ui.parts.train.fields import FieldReader
from vae_core.config import (DATASET_DEFAULTS, DataConfig, DataKind, DatasetName, LossConfig, UnitLikelihood,
                             field_options)
from vae_core.data.base import DatasetNotFoundError
from vae_core.data.vector_normalize import fit_vector_normalizer
from vae_core.data.vectors.bundled import bundled_vectors
from vae_core.data.vectors.dataset import VectorLoad
from vae_core.data.vectors.limits import VectorDataError
from vae_core.model.compatibility import ACTIVATION_RANGE
from vae_plots.figures import format_number
from vae_plots.views import ACTIVE_UNIT_WORDS

NO_VECTORS = "No vectors of yours on this server yet: upload a CSV or .npy on the Your data page."
# Every likelihood but those on [0, 1]: the config's own rule for vectors (_kind_problem refuses those).
VECTOR_LIKELIHOODS = tuple(lik for lik in field_options(LossConfig, "likelihood") if lik not in get_args(UnitLikelihood))
VECTOR_ARCH = DATASET_DEFAULTS["vectors"]["model.arch"]  # a dense VAE: a row of numbers has no neighbouring pixels


def form_datasets() -> tuple[str, ...]:
    """The form's datasets: every dataset, and this browser's own vectors once it has chosen some."""
    return get_args(DatasetName) + ((YOUR_VECTORS,) if chosen_vectors() else ())


def form_kind(dataset: str) -> DataKind:
    """Images or vectors, for the form's dataset box (YOUR_VECTORS included)."""
    return "vectors" if dataset in ("vectors", YOUR_VECTORS) else "images"


def kind_now() -> DataKind:
    """The kind of the dataset the form holds now (before the fields are drawn)."""
    return form_kind(st.session_state.get(DATASET_KEY, ""))


def on_dataset_change() -> None:
    """Turning to vectors puts their defaults (DATASET_DEFAULTS) into the form: a dense VAE, zscore, learned σ."""
    if kind_now() == "vectors":
        set_form_values(vectors_start_values())


def keep_in(section: str, name: str, options: Sequence[Any]) -> None:
    """A field whose held value this kind of data does not take goes to the data's default, before it is drawn."""
    key = BY_NAME[(section, name)].key
    if st.session_state.get(key) not in options:
        st.session_state[key] = DATASET_DEFAULTS["vectors"][f"{section}.{name}"]


def vectors_data_ui(form: FieldReader, dataset: str, **values: Any) -> DataConfig | None:
    """The bundled vectors, or this browser's own (chosen on the Your data page) with their seed and test share."""
    if dataset != YOUR_VECTORS:
        return form.build(DataConfig, dataset="vectors", **values)
    chosen = chosen_vectors()
    try:
        load = read_my_vectors(chosen) if chosen else None
    except (VectorDataError, OSError) as e:
        load, problem = None, str(e)
    else:
        problem = NO_VECTORS
    if load is None:
        form.refuse_missing_upload("Your vectors", problem)
        return None
    st.caption(f"**Your vectors:** {load.summary()}")
    if form.refused_n_train(values["n_train"], len(load.train), "rows"):
        return None
    return form.build(DataConfig, **{**dataclasses.asdict(chosen), **values})


@dataclass(frozen=True)
class VectorReach:
    """What a normalization does to vectors, as the verdicts read it (images: reach.TargetRange)."""
    lo: float  # the smallest normalized training value, over the features
    hi: float
    frac_outside: dict[str, float]  # per output activation: the share of normalized test values out of its reach


def vector_reach(load: VectorLoad, data: DataConfig) -> VectorReach:
    """The normalized range of load's training rows under data's normalization, and each activation's share of
    normalized test values it cannot produce."""
    normalizer = fit_vector_normalizer(data.normalization, load.train.x, data.data_scale)
    x = normalizer.forward(load.test.x)
    shares = {act: float(((x < lo) | (x > hi)).double().mean()) for act, (lo, hi) in ACTIVATION_RANGE.items()}
    return VectorReach(*normalizer.value_range(), shares)


def vectors_target_range(data: DataConfig) -> VectorReach:
    """The reach of the bundled vectors (shared cache), or of this browser's own (from this session's read)."""
    if data.vectors is None:
        return _bundled_reach(data)
    chosen = chosen_vectors()
    if chosen is None or chosen.vectors != data.vectors:
        raise DatasetNotFoundError("These vectors are not this browser's current ones: upload them again.")
    return vector_reach(read_my_vectors(data), data)


@st.cache_data(max_entries=32, show_spinner="Measuring the normalized vectors…")
def _bundled_reach(data: DataConfig) -> VectorReach:
    """Cached: generating the bundled vectors takes a second; never a person's rows (those: this session's read)."""
    return vector_reach(bundled_vectors(data.seed, data.test_share), data)


def vector_test_metrics_ui(m: dict[str, Any]) -> None:
    """A vector run's test metrics as cards: nats per raw row (the normalization's log-Jacobian included)."""
    iwae = m.get("iwae_nats")
    cards = [("ELBO", format_number(m["elbo_nats"], 2), "higher is better; compares across normalizations"),
             ("IWAE", format_number(iwae, 2) if iwae is not None else "—",
              f"a tighter bound on log p(row), k = {m.get('iwae_k')}" if iwae is not None else "not computed"),
             ("−log p(x|z)", format_number(m["recon_nats"], 2), "the ELBO's reconstruction term"),
             ("KL(q ‖ p)", format_number(m["kl_nats"], 2), "the ELBO's KL term"),
             ("Active units", f"{m['active_units']} / {len(m.get('kl_per_dim', []))}", ACTIVE_UNIT_WORDS),
             ("Out of reach", f"{len(m['features_out_of_reach'])} / {len(m['feature_names'])}",
              "features whose normalized test values leave the output activation's range: "
              + (", ".join(m["features_out_of_reach"]) or "none"))]
    for row in range(0, len(cards), CARDS_PER_ROW):
        for col, (label, value, help_text) in zip(st.columns(CARDS_PER_ROW), cards[row:row + CARDS_PER_ROW]):
            col.metric(label, value, help=help_text)
    st.caption(f"On {m['n_test']:,} test rows; {m['unit']}. Bits/dim: {m['bits_per_dim_note']}.")
    if m.get("posterior_collapse"):
        st.error("**Posterior collapse:** no latent dimension is active on the test rows; the decoder ignores z.")
