"""Diagnostics of a run on vectors: can the output reach each feature, the model as a density in nats per raw row
(the normalization's log-Jacobian included; no bits/dim), and what the posterior does with each latent dimension.

Every estimate is computed by the page itself: a dense VAE on a thousand rows is cheap (evaluate_vectors with IWAE
k = 20 on the bundled vectors' 1,100 test rows: ~15 ms on one core; k = 200: ~0.1 s), so nothing is deferred."""
from __future__ import annotations

import math

import streamlit as st

from ui.state import page_test_rows
from ui.view_cache import cached_view
from ui.widgets import chart, monte_carlo, posterior_cards_ui, reach_cards_ui, url_choice
from vae_core.data.vectors.dataset import VectorDataset
from vae_core.model.compatibility import ACTIVATION_RANGE
from vae_core.model.evaluate import ACTIVE_UNIT_THRESHOLD, COLLAPSE_KL
from vae_core.model.evaluate_vectors import VectorEvalMetrics, evaluate_vectors
from vae_core.model.objective import equivalent_beta, implied_sigma
from vae_core.runs.evaluations import DIAGNOSTICS_DENSITY
from vae_core.runs.folders import LoadedRun
from vae_plots import views
from vae_plots.figures import format_number, kl_per_dim_bars
from vae_plots.vector_diagnostics import posterior_ranges_figure
from vae_plots.vector_ranges import feature_ranges_figure

K_CHOICES = [1, 2, 5, 10, 20, 50, 100, 200]  # importance samples, as the image page offers them
ROW_CHOICES = (100, 200, 500, 1000, 2000, 5000, 10000)  # test rows, below the split's own count
MOST_ROWS = 2000  # the density section's default: every test row up to this many
NAMES_SHOWN = 8  # features named in the out-of-reach warning, then "and N more"


def vector_metrics(run: LoadedRun, rows: VectorDataset, n: int, k: int) -> VectorEvalMetrics:
    """The run evaluated on its first n test rows (IWAE with k; 0: none), made once per (run, n, k): shared for
    runs on the bundled vectors, in this session for a person's (cached_view)."""
    return cached_view([run], "vector_metrics", (n, k), lambda: evaluate_vectors(
        run.model, run.normalizer, rows.x[:n], rows.feature_names, config=run.config,
        steps=views.run_steps(run) or 0, iwae_k=k))


def row_choices(total: int) -> list[int]:
    """The counts of test rows offered: the round ones below the split's count, then all of them."""
    return [n for n in ROW_CHOICES if n < total] + [total]


def diagnostics_page(run: LoadedRun) -> None:
    """The Diagnostics page for a run on vectors."""
    rows = page_test_rows(run)
    st.title("Diagnostics")
    st.caption(f"What the loaded model ({run.name}) can and cannot do, measured on its {len(rows):,} test rows "
               f"of {rows.features} features.")
    if (note := views.status_note(run)) is not None:
        st.warning(note)
    whole = vector_metrics(run, rows, len(rows), 0)
    reach_ui(run, whole)
    st.divider()
    density_ui(run, rows)
    st.divider()
    posterior_ui(run, whole)


def reach_ui(run: LoadedRun, m: VectorEvalMetrics) -> None:
    """Each feature's normalized range against the output activation's, and the shares out of reach."""
    st.subheader("Can the output reach each feature?")
    act, norm = run.config.model.output_activation, run.config.data.normalization
    lo, hi = ACTIVATION_RANGE[act]
    reach_cards_ui(m.frac_targets_unreachable, m.frac_outputs_saturated, act)
    if m.features_out_of_reach:
        st.warning(f"{len(m.features_out_of_reach)} of {len(m.feature_names)} features leave ({lo:g}, {hi:g}) once "
                   f"{norm}-normalized: {_named(m.features_out_of_reach)}. A {act} output can never reproduce "
                   "those values, however long it trains: pick a linear output, or a normalization that fits.")
    chart(feature_ranges_figure(m.feature_names, m.feature_min, m.feature_max, act), key="vec_ranges")


def _named(names: list[str]) -> str:
    shown = ", ".join(f"“{n}”" for n in names[:NAMES_SHOWN])
    return shown + (f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else "")


def density_ui(run: LoadedRun, rows: VectorDataset) -> None:
    """ELBO and IWAE in nats per raw row with their errors, the terms, the log-Jacobian and the equivalent β."""
    st.subheader("How good is the model as a density?")
    left, right = st.columns(2)
    k = url_choice(left, "select_slider", "Importance samples k (IWAE)", K_CHOICES, DIAGNOSTICS_DENSITY.iwae_k,
                   "iwae_k")
    choices = row_choices(len(rows))
    if len(choices) > 1:
        n = url_choice(right, "select_slider", "Test rows", choices, max(c for c in choices if c <= MOST_ROWS),
                       "rows_n")
    else:  # a slider of one stop is a dot
        n = choices[0]
        right.caption(f"All {n:,} test rows: there are no more to choose from.")
    m = vector_metrics(run, rows, n, k)
    spread = lambda mc, se: views.uncertainty_words(mc, se, m.n_test, 2, "row")  # noqa: E731
    c = [*st.columns(2), *st.columns(2), *st.columns(2)]  # two to a row: a 1024-pixel projector shows each whole
    c[0].metric("ELBO", format_number(m.elbo_nats, 2), monte_carlo(m.elbo_mc_se, 2), "off", delta_arrow="off",
                help=f"{m.unit}, one z sample per row; higher is better. " + spread(m.elbo_mc_se, m.elbo_se))
    c[1].metric(f"IWAE bound, k = {k}", format_number(m.iwae_nats, 2),
                f"{format_number(m.iwae_nats - m.elbo_nats, 2, signed=True)} over the ELBO",
                help=f"log p(row) ≥ IWAE_k ≥ ELBO (Burda et al. 2015); tighter as k grows. {m.unit}. "
                     + spread(m.iwae_mc_se, m.iwae_se) + " The Monte-Carlo error is the jackknife's over the k weights.")
    c[2].metric("−log p(row|z)", format_number(m.recon_nats, 2), help=f"the ELBO's reconstruction term, {m.unit}")
    c[3].metric("KL(q ‖ p)", format_number(m.kl_nats, 2), help="nats per row")
    c[4].metric("Log-Jacobian", format_number(m.log_jacobian_nats, 2), help=_jacobian_words(m))
    c[5].metric("Bits/dim", "—", help=m.bits_per_dim_note)
    st.caption(f"On {m.n_test:,} test rows. ± under a value: its Monte-Carlo standard error; over the rows: "
               f"ELBO ± {format_number(m.elbo_se, 2)}, IWAE ± {format_number(m.iwae_se, 2)}. "
               f"{_jacobian_words(m)} Bits/dim: {m.bits_per_dim_note}.")
    st.caption(beta_words(run, m) + ".")


def _jacobian_words(m: VectorEvalMetrics) -> str:
    return (f"The {m.normalization} normalization's log-Jacobian, Σ_d log scale_d = "
            f"{format_number(m.log_jacobian_nats, 2)} nats per row, is added to −log p(x|z) of the normalized row: "
            "so these numbers compare across normalizations.")


def beta_words(run: LoadedRun, m: VectorEvalMetrics) -> str:
    """"Its loss amounts to a proper ELBO with β = …" on D features, as the image page says it on its pixels."""
    cfg, d = run.config, run.config.model.features
    last = equivalent_beta(cfg.loss, d, cfg.model.latent_dim, cfg.train.batch_size, views.run_steps(run) or 0,
                           m.kl_per_dim)
    sigma = implied_sigma(cfg.loss, d, cfg.model.latent_dim, cfg.train.batch_size)
    note = f"Its loss amounts to a proper ELBO with β = {last.reductions:.4g} on {d} features"
    note += f" (a Gaussian with σ = {sigma:.4g} at β = 1, in normalized units)" if sigma is not None else ""
    if cfg.loss.free_bits > 0 or not math.isclose(last.value, last.reductions):
        note += f"; at its last step, with its KL schedule and free bits, {last.words()}"
    return note


def posterior_ui(run: LoadedRun, m: VectorEvalMetrics) -> None:
    """Active units, KL per dimension, and each dimension's range of posterior μ and σ over the test rows."""
    st.subheader("Is the latent space used?")
    posterior_cards_ui(run, m, "row")
    st.markdown("**KL per dimension** (nats/row)")
    chart(kl_per_dim_bars(m.kl_per_dim, threshold=COLLAPSE_KL).update_yaxes(title_text="KL (nats/row)"), key="vec_kl")
    st.markdown(f"**Posterior μ and σ of each dimension**, smallest to largest over the {m.n_test:,} test rows "
                f"(μ from {format_number(min(m.posterior_mu_min), 2)} to {format_number(max(m.posterior_mu_max), 2)}; "
                "active units in colour)")
    chart(posterior_ranges_figure(m.posterior_mu_min, m.posterior_mu_max, m.posterior_sigma_min,
                                  m.posterior_sigma_max, [v > ACTIVE_UNIT_THRESHOLD for v in m.posterior_var]),
          key="vec_posterior")
