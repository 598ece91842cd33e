import math

import streamlit as st

from ui import deferred
from ui.family import warm_siblings
from ui.parts.vectors.diagnostics import diagnostics_page
from ui.state import current_run, page_test_images
from ui.view_cache import cached_view
from ui.widgets import chart, monte_carlo, posterior_cards_ui, reach_cards_ui, url_choice
from vae_core.model.compatibility import ACTIVATION_RANGE
from vae_core.model.objective import implied_sigma
from vae_core.runs.evaluations import DIAGNOSTICS_DENSITY, DIAGNOSTICS_POSTERIOR
from vae_plots import views
from vae_plots.figures import format_number

IWAE_K, IWAE_N = DIAGNOSTICS_DENSITY.iwae_k, DIAGNOSTICS_DENSITY.n_images  # the density section's defaults
POSTERIOR_N = DIAGNOSTICS_POSTERIOR.n_images  # test images for the posterior's estimates

run = current_run()
if run.config.data.kind == "vectors":
    diagnostics_page(run)
    st.stop()
test = page_test_images(run)
cfg = run.config
act = cfg.model.output_activation
deferred.begin()  # costly estimates follow when computed: the page never waits for them

st.title("Diagnostics")
st.caption(f"What the loaded model ({run.name}) can and cannot do, measured on its test images.")
if (note := views.status_note(run)) is not None:
    st.warning(note)


@st.fragment
def range_ui() -> None:
    st.subheader("Can the output reach the targets?")
    # Not in the URL: bound to it, this slider missed a press now and then under a class's load (bench/soak.py,
    # three runs out of three); unbound, none in the same soak.
    n = st.slider("Test images", 50, len(test), min(500, len(test)), 50, key="range_n") \
        if len(test) > 50 else len(test)
    view = cached_view([run], "range", n, lambda: views.range_view(run, test.images[:n]))
    lo, hi = ACTIVATION_RANGE[act]
    reach_cards_ui(view.frac_unreachable, view.frac_saturated, act)
    if view.frac_unreachable > 0:
        st.warning(f"{view.frac_unreachable:.1%} of the {cfg.data.normalization}-normalized target values lie "
                   f"outside ({lo:g}, {hi:g}): a {act} output can never reproduce them, however long it trains.")
    chart(view.figure, key="range_hist")


@st.fragment
def likelihood_ui() -> None:
    st.subheader("How good is the model as a density?")
    left, right = st.columns(2)
    k = url_choice(left, "select_slider", "Importance samples k (IWAE)", [1, 2, 5, 10, 20, 50, 100, 200], IWAE_K,
                   "iwae_k")
    n = url_choice(right, "select_slider", "Test images", [100, 200, 500, 1000, 2000], IWAE_N, "iwae_n")
    m = deferred.estimate(run, min(n, len(test)), k)
    if m is None:
        return
    c = [*st.columns(2), *st.columns(2)]  # two to a row: a 1024-pixel projector shows each value whole
    c[0].metric("ELBO", format_number(m.elbo_nats, 1), monte_carlo(m.elbo_mc_se, 1), "off", delta_arrow="off",
                help="nats/image, one z sample per image. " + views.uncertainty_words(m.elbo_mc_se, m.elbo_se,
                                                                                     m.n_test, 1))
    c[1].metric(f"IWAE bound, k = {k}", format_number(m.iwae_nats, 1),
                f"{format_number(m.iwae_nats - m.elbo_nats, signed=True)} over the ELBO",  # its ± in the help
                help="log p(x) ≥ IWAE_k ≥ ELBO (Burda et al. 2015); tighter as k grows. nats/image. "
                     + views.uncertainty_words(m.iwae_mc_se, m.iwae_se, m.n_test, 1)
                     + " The Monte-Carlo error is the jackknife's over the k weights.")
    if m.bits_per_dim is None:
        c[2].metric("Bits/dim", "—", help=m.bits_per_dim_note)
        c[3].metric("Bits/dim (IWAE)", "—")
        st.caption(m.bits_per_dim_note)
    else:
        c[2].metric("Bits/dim (ELBO)", format_number(m.bits_per_dim, 3), monte_carlo(m.bits_per_dim_mc_se, 3), "off",
                    delta_arrow="off",
                    help="-log2 of each 8-bit pixel's grey-level probability mass, KL included, per dimension. "
                         + views.uncertainty_words(m.bits_per_dim_mc_se, m.bits_per_dim_se, m.n_test, 3))
        c[3].metric("Bits/dim (IWAE)", format_number(m.iwae_bits_per_dim, 3),
                    monte_carlo(m.iwae_bits_per_dim_mc_se, 3), "off", delta_arrow="off",
                    help=views.uncertainty_words(m.iwae_bits_per_dim_mc_se, m.iwae_bits_per_dim_se, m.n_test, 3))
    n_pixels = cfg.model.channels * cfg.model.image_size**2
    last = views.run_beta(run, m.kl_per_dim)  # free bits judged on these test images' KL per dimension
    sigma = implied_sigma(cfg.loss, n_pixels, cfg.model.latent_dim, cfg.train.batch_size)
    note = f"Its loss amounts to a proper ELBO with β = {last.reductions:.4g}"
    note += f" (a Gaussian with σ = {sigma:.4g} at β = 1)" if sigma is not None else ""
    if cfg.loss.free_bits > 0 or not math.isclose(last.value, last.reductions):
        note += f"; at its last step, with its KL schedule and free bits, {last.words()}"
    st.caption(note + ".")


@st.fragment
def posterior_ui() -> None:
    st.subheader("Is the latent space used?")
    m = deferred.estimate(run, min(POSTERIOR_N, len(test)), 0)
    if m is None:
        return
    posterior_cards_ui(run, m, "image")
    kl_fig, sigma_fig = views.posterior_figures(m)
    left, right = st.columns(2)
    left.markdown("**KL per dimension** (nats/image)")
    with left:
        chart(kl_fig, key="diag_kl")
    right.markdown(f"**Mean posterior σ per dimension** (the prior's is 1; {views.SIGMA_HIGHLIGHT_WORDS})")
    with right:
        chart(sigma_fig, key="diag_sigma")


range_ui()
st.divider()
likelihood_ui()
st.divider()
posterior_ui()
deferred.poll_if_pending()
# A flip loads a sibling: its costly estimates, at this page's settings, computed while the class looks at these.
warm_siblings(run, [(min(int(st.session_state.get("iwae_n", IWAE_N)), len(test)), int(st.session_state.get(
    "iwae_k", IWAE_K))), (min(POSTERIOR_N, len(test)), 0)])
