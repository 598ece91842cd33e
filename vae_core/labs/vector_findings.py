"""The not-unit lab on vectors, its sentences: the asker's loss as a proper ELBO (a calculation), how wide each
variant's posterior means go against the optimal σ's, a σ per feature against one shared, and the data's choice of
σ against a hand's; each verdict from paired differences row by row over the seeds (evidence.py)."""
from __future__ import annotations

import math
from collections.abc import Mapping

from vae_core.labs.base import NOT_SETTLED, Finding, Measured, PairedMeasure
from vae_core.labs.evidence import Evidence, evidence
from vae_core.labs.not_unit import HAND_KL_WEIGHT, STILL_MOVING, asked_sigma, ratio_text, seeds_within, settle

WEIGHT = f"{HAND_KL_WEIGHT:.0e}".replace("e-0", "e-")  # "1e-4", as the asker wrote it
ROWS = "rows"  # what a paired difference is taken over here
PRIOR_REACH = 3.0  # the prior N(0, 1) keeps 99.7 % of a code's mass within ±3: means beyond it are far out


def error_cost(sigma: float) -> float:
    """Nats the Gaussian charges for an error of one standard deviation (1 in z-scored units) in one feature."""
    return 1 / (2 * sigma**2)


def loss_finding(asker: Measured) -> Finding:
    """The asker's loss in the β/σ algebra on D features: a calculation, which no measurement can contradict."""
    d, beta, sigma = int(asker.extras["features"]), asker.extras["beta"], asker.extras["sigma"]
    latent = asker.config.model.latent_dim if asker.config else 0
    return Finding(
        f"reduce_mean(square(x − x̂), 1) + {WEIGHT}·KL is a Gaussian with σ = 1/√2 and **β = {beta:.3g}** "
        f"({WEIGHT} × D, D = {d} features, L = {latent}; the batch cancels): **your loss is a proper ELBO "
        f"with σ = {sigma:.3g} on z-scored features, i.e. it assumes each feature is known to within {sigma:.3g} of "
        f"its standard deviation** ({sigma:.1%} of its spread). An error of one standard deviation in one feature "
        f"costs it {error_cost(sigma):,.0f} nats, while moving a code's mean to μ costs only μ²/2 nats of KL.")


def _reach_words(m: Measured) -> str:
    e = m.extras
    return f"means from {e['mu_min']:.3g} to {e['mu_max']:.3g}, each row's largest |μ| {e['mu_reach']:.3g} on average"


def _past_prior(m: Measured) -> str:
    """Whether the means left the prior's ±PRIOR_REACH, in words."""
    far = max(-m.extras["mu_min"], m.extras["mu_max"])
    where = "past" if far > PRIOR_REACH else "though within"
    return f", {where} the prior's ±{PRIOR_REACH:g} (to {far:.3g})"


def reach_finding(m: Mapping[str, Measured], key: str, ref: str, measure: PairedMeasure) -> Finding:
    """How far `key`'s posterior means go against `ref`'s (the optimal σ): a narrower σ should spread them."""
    a, b = m[key], m[ref]
    ratio = a.extras["sigma"] / asked_sigma(m)
    found = evidence(a, b, measure)
    diff = f"; {a.label} minus {b.label}, {found.text(2, over=ROWS)}" if found else ""
    text = (f"With {a.label} (σ = {a.extras['sigma']:.3g}, **{ratio_text(ratio)}** against the σ the data asked "
            f"for) the posterior {_reach_words(a)}; with {b.label}, {_reach_words(b)}{diff}")
    side = seeds_within(a, b)
    if side != "disagrees":  # the two σ about equal, or on either side by seed: no direction to test
        return Finding(text + ".", "measured")
    narrower = a.extras["sigma"] < b.extras["sigma"]
    result = settle(found, "positive" if narrower else "negative")
    if result == "agrees" and narrower:
        return Finding(text + f": the narrower σ spread the codes wider. At σ = {a.extras['sigma']:.3g} an error "
                       f"costs {error_cost(a.extras['sigma']):,.0f} nats per feature, so telling rows apart beats "
                       f"the KL's pull to the prior's centre{_past_prior(a)}.", "agrees")
    if result == "agrees":
        return Finding(text + ": the wider σ let the KL pull the codes toward the prior's centre.", "agrees")
    if result == "disagrees":
        return Finding(text + ": the codes did **not** spread the way the σ predicts (a narrower σ, wider means).",
                       "disagrees")
    why = found.why_not_settled() if found else "nothing to pair"
    return Finding(text + f": whether the codes spread the way the σ predicts: {why}.", NOT_SETTLED)


def feature_finding(feature: Measured, shared: Measured, found: Evidence | None) -> Finding:
    """A σ per feature against the optimal shared σ, on the ELBO row by row: the textbook expects it higher."""
    e = feature.extras
    if (still := _still_moving(feature)) is not None:
        return Finding(f"A σ per feature went from {e['sigma_min']:.3g} to {e['sigma_max']:.3g} (z-scored units), "
                       f"started at {feature.config.loss.sigma:g}{still}", NOT_SETTLED)
    diff = f"; the difference {found.text(2, 'nats', ROWS)}" if found else ""
    text = (f"A σ per feature went from {e['sigma_min']:.3g} to {e['sigma_max']:.3g} (z-scored units) against one "
            f"shared σ* = {shared.extras['sigma']:.3g}; ELBO {feature.value('elbo_nats'):,.1f} against "
            f"{shared.value('elbo_nats'):,.1f} nats per raw row{diff}")
    result = settle(found, "positive")
    if result == "agrees":
        return Finding(text + ": features the code predicts well got a narrow σ, the others a wide one, and the "
                       "model scores higher, as the textbook says.", "agrees")
    if result == "disagrees":
        return Finding(text + ": one shared σ scored higher, beyond the noise, against the textbook.", "disagrees")
    why = found.why_not_settled() if found else "nothing to pair"
    return Finding(text + f": which scores higher: {why}.", NOT_SETTLED)


def _still_moving(feature: Measured) -> str | None:
    """Why a learned σ per feature cannot be judged yet (one moved at Adam's top speed, about lr a step), or None."""
    config, steps = feature.config, feature.extras["steps"]
    if config is None or not steps:
        return None
    lr, start = config.train.lr, config.loss.sigma
    moved = max(abs(math.log(v / start)) for key in ("sigma_min", "sigma_max") for v in feature.seed_values(key))
    if moved < STILL_MOVING * steps * lr:
        return None
    return (f"; one moved a factor of {math.exp(moved):.3g}, as far as Adam moves log σ at lr = {lr:g} in {steps:.0f} "
            "steps, so it was still on its way: whether a σ per feature scores better than one shared is not settled "
            "at this budget (more steps would let it get there).")
