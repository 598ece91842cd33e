"""Lab 3: inputs not in [0, 1]; which reconstruction loss, and how to weigh it against the KL?

Four Gaussian decoders with a linear output on z-scored data, which differ only in where sigma comes from:
a fixed sigma = 1, a hand-picked weight (F.mse_loss(x_hat, x) + 1e-4 * KL: a fixed sigma in disguise), one
learned shared sigma (sigma-VAE, starting from the fixed variant's 1) and the analytic optimal sigma* = RMSE.
Each variant's sigma in effect is set against the one the data asked for (the learned and optimal ones), and each
is scored (ELBO, bits/dim) at that sigma: the hand-picked loss is the proper ELBO of sigma = sqrt(effective beta / 2)
(0.392 on 32x32 RGB), not of the 1/sqrt(2) its decoder carries, the sigma its run's own test evaluation scored.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from vae_core.config import LossConfig, ModelConfig, RunConfig
from vae_core.labs.base import (NOT_SETTLED, Column, Finding, Lab, LabRun, LabSettings, Measured, OwnMeasures, Variant,
                                Verdict, base_config, missing, vary)
from vae_core.labs.evidence import Direction, Evidence, evidence, verdict
from vae_core.model.evaluate import EvalMetrics, evaluate
from vae_core.model.likelihoods import MSE_SIGMA
from vae_core.model.objective import effective_beta, implied_sigma

FIXED_SIGMA = 1.0  # z-scored units: the data's own spread, i.e. the loss 0.5 * SSE ("MSE/2"), the usual default
HAND_KL_WEIGHT = 1e-4  # F.mse_loss(x_hat, x) + 1e-4 * KL: the weight as people pick it
AGREE_RATIO = 1.25  # two sigmas within this factor of each other ask for the same thing: "about right"
KEYS = ("fixed", "hand", "learned", "optimal")
CHOSEN_BY_DATA, CHOSEN_BY_HAND = ("learned", "optimal"), ("fixed", "hand")
ELBO_AT_SIGMA, BITS_AT_SIGMA = "elbo_at_sigma", "bits_at_sigma"  # paired: each image's, scored at the σ in effect
# Why a wider sigma can win in bits/dim (tests/test_lab_not_unit.py checks it against the normal CDF)
OPEN_BINS = ("whose bins are open-ended, (−∞, edge] and [edge, ∞): there a wider σ costs at most one bit a pixel (a "
             "Gaussian centred at or beyond the edge keeps between ½ and all of its mass in the bin, which falls "
             "toward ½ as σ grows; one centred short of the edge gains mass), while an interior bin's mass falls "
             "like 1/σ, so the 8-bit likelihood can ask for a wider σ than the RMSE")


def hand_picked_loss() -> LossConfig:
    """mse_loss(x_hat, x) (mean over pixels and batch) + HAND_KL_WEIGHT * KL (sum over dims, mean over batch)."""
    return LossConfig("gaussian", sigma=MSE_SIGMA, beta=HAND_KL_WEIGHT, recon_reduction="mean",
                      recon_batch_reduction="mean", kl_reduction="sum", kl_batch_reduction="mean")


def design(settings: LabSettings) -> tuple[Variant, ...]:
    base = base_config(settings, ModelConfig(output_activation="linear"), LossConfig("gaussian", sigma=FIXED_SIGMA),
                       normalization="zscore")
    return (Variant("fixed", f"fixed σ = {FIXED_SIGMA:g}", base),
            Variant("hand", "MSE + 1e-4·KL", dataclasses.replace(base, loss=hand_picked_loss())),
            Variant("learned", "learned σ", vary(base, loss={"likelihood": "gaussian_learned"})),
            Variant("optimal", "optimal σ = RMSE", vary(base, loss={"likelihood": "gaussian_optimal"})))


def loss_shape(config: RunConfig) -> tuple[int, int, int]:
    """(pixels per image, latent dimensions, batch size): what the reductions count."""
    m = config.model
    return m.channels * m.image_size**2, m.latent_dim, config.train.batch_size


def sigma_in_effect(lab_run: LabRun) -> float:
    """A fixed-sigma loss: the sigma of the proper ELBO it equals; learned or optimal: the model's own."""
    config = lab_run.run.config
    implied = implied_sigma(config.loss, *loss_shape(config))
    return implied if implied is not None else lab_run.run.model.log_sigma.exp().item()


@torch.no_grad()
def rmse(lab_run: LabRun) -> float:
    """The test reconstructions' RMSE in normalized units, z ~ q(z|x) as in the ELBO: what sigma* estimates."""
    model, x = lab_run.run.model, lab_run.x
    generator = torch.Generator().manual_seed(lab_run.run.config.train.seed)
    return (x - model(x, generator).x_hat).pow(2).mean().sqrt().item()


@torch.no_grad()
def scored_at(lab_run: LabRun, sigma: float) -> EvalMetrics:
    """The test evaluation (as training's, same images and z) of the decoder with its shared sigma set to `sigma`."""
    model = copy.deepcopy(lab_run.run.model)  # the loaded run is pictured too: its own sigma stays
    model.log_sigma.fill_(math.log(sigma))
    return evaluate(model, lab_run.run.normalizer, lab_run.images)


def own(lab_run: LabRun) -> OwnMeasures:
    """The sigma in effect and the ELBO and bits/dim scored at it (each test image's, which the rankings pair, and
    their means), the RMSE it should match, the beta the loss amounts to, and the steps trained."""
    config, sigma = lab_run.run.config, sigma_in_effect(lab_run)
    scored = scored_at(lab_run, sigma)
    found = scored.per_image
    bits = found.bits if found.bits is not None else torch.full_like(found.elbo, math.nan)
    return OwnMeasures({"sigma": sigma, "elbo_nats": scored.elbo_nats, "bits_per_dim": scored.bits_per_dim,
                        "rmse": rmse(lab_run), "beta": effective_beta(config.loss, *loss_shape(config)),
                        "steps": float(lab_run.run.metrics.get("steps", 0)),
                        "frac_open_bins": open_bin_share(lab_run.images)},
                       {ELBO_AT_SIGMA: found.elbo, BITS_AT_SIGMA: bits})


def open_bin_share(images: torch.Tensor) -> float:
    """The share of uint8 pixel values at 0 or 255, the grey levels whose bins are open-ended."""
    return ((images == 0) | (images == 255)).double().mean().item()


def ratio_text(ratio: float) -> str:
    """'3.2× too wide' / '2.0× too narrow' / 'about right'."""
    if 1 / AGREE_RATIO <= ratio <= AGREE_RATIO:
        return "about right"
    return f"{ratio:.2g}× too wide" if ratio > 1 else f"{1 / ratio:.2g}× too narrow"


def asked_sigma(m: Mapping[str, Measured]) -> float:
    """The sigma the data asked for: the analytic optimum, the training set's RMSE."""
    return m["optimal"].extras["sigma"]


def seeds_within(a: Measured, b: Measured, key: str = "sigma") -> Verdict:
    """Whether a's and b's σ agree within AGREE_RATIO on every seed ("agrees"), are apart on the same side on
    every seed ("disagrees"), or neither (not settled): σ is one number a model, so its noise is the seeds'."""
    ratios = [x / y for x, y in zip(a.seed_values(key), b.seed_values(key))]
    if ratios and all(1 / AGREE_RATIO <= r <= AGREE_RATIO for r in ratios):
        return "agrees"
    if ratios and (all(r > AGREE_RATIO for r in ratios) or all(r < 1 / AGREE_RATIO for r in ratios)):
        return "disagrees"
    return NOT_SETTLED


def per_seed(m: Measured, key: str = "sigma") -> str:
    """" (per seed 0.71, 0.73, 0.70)" where there are several seeds."""
    values = m.seed_values(key)
    return f" (per seed {', '.join(f'{v:.3g}' for v in values)})" if len(values) > 1 else ""


def asked_finding(m: Mapping[str, Measured]) -> Finding:
    learned, optimal = m["learned"].extras, m["optimal"].extras
    a, b = learned["sigma"], optimal["sigma"]
    text = (f"The data asked for **σ ≈ {b:.3g}** (z-scored units): the optimal σ* (the training set's RMSE) is "
            f"{b:.3g}{per_seed(m['optimal'])}, its test reconstructions' RMSE {optimal['rmse']:.3g}; the learned σ, "
            f"started at {FIXED_SIGMA:g}, ended at **{a:.3g}**{per_seed(m['learned'])} (RMSE {learned['rmse']:.3g})")
    if (still := _still_moving(m)) is not None:
        return Finding(text + still, NOT_SETTLED)
    found = seeds_within(m["learned"], m["optimal"])
    if found == "agrees":
        return Finding(text + f": within {AGREE_RATIO:g}× of each other on every seed, learning σ and computing it "
                       "agree, as the σ-VAE says.", "agrees")
    if found == NOT_SETTLED:
        return Finding(text + f": within {AGREE_RATIO:g}× on some seeds and not on others, so whether they agree is "
                       "not settled at this budget.", NOT_SETTLED)
    return Finding(text + f": the two do **not** agree within {AGREE_RATIO:g}× on any seed, though the learned σ had "
                   "slowed down: it settled elsewhere than the analytic one.", "disagrees")


# A learned log σ that moved this share of the most Adam moves it (about lr a step) was still on its way
STILL_MOVING = 0.8


def _still_moving(m: Mapping[str, Measured]) -> str | None:
    """Why the learned σ cannot be judged yet (it moved at Adam's top speed on some seed), or None."""
    config, steps = m["learned"].config, m["learned"].extras["steps"]
    if config is None or not steps:
        return None
    lr, start = config.train.lr, config.loss.sigma
    moved = max(abs(math.log(v / start)) for v in m["learned"].seed_values("sigma") or [start])
    if moved < STILL_MOVING * steps * lr:
        return None
    needed = abs(math.log(start / asked_sigma(m))) / lr
    return (f": it moved a factor of {math.exp(moved):.3g}, as far as Adam moves log σ at lr = {lr:g} in "
            f"{steps:.0f} steps (about {math.exp(steps * lr):.3g}×), so it was still on its way. Whether learning σ "
            f"and computing it agree is not settled at this budget: about {needed:,.0f} steps would let it get there.")


def _kl_text(found: Evidence | None) -> str:
    return f"; the difference {found.text(2, 'nats')}" if found is not None else ""


def settle(found: Evidence | None, expected: Direction) -> Verdict:
    return verdict(found, expected) if found is not None else NOT_SETTLED


def _fixed_finding(m: Mapping[str, Measured]) -> Finding:
    ratio = m["fixed"].extras["sigma"] / asked_sigma(m)
    fixed, best = m["fixed"].metrics, m["optimal"].metrics
    found = evidence(m["fixed"], m["optimal"], "kl")
    text = (f"The fixed σ = {FIXED_SIGMA:g} was **{ratio_text(ratio)}**, so it weighed the KL like **β ≈ "
            f"{ratio**2:.3g}** with the data's σ: KL {fixed.kl_nats:.1f} nats and {fixed.active_units:.3g} active "
            f"units, against {best.kl_nats:.1f} nats and {best.active_units:.3g} with the optimal σ{_kl_text(found)}")
    side = seeds_within(m["fixed"], m["optimal"])
    if side != "disagrees":  # about right, or too wide on some seeds and not others: no direction to test
        return Finding(text + ".", "measured")
    result = settle(found, "negative" if ratio > 1 else "positive")  # too wide: the KL wins, less KL
    if result == "agrees":
        return Finding(text + ": a σ too wide lets the KL win, too narrow the reconstruction, as the textbook "
                       "says.", "agrees")
    if result == "disagrees":
        return Finding(text + ": the KL did **not** move the way the σ predicts.", "disagrees")
    why = found.why_not_settled() if found else "nothing to pair"
    return Finding(text + f": whether the KL moved the way the σ predicts: {why}.", NOT_SETTLED)


def _hand_finding(m: Mapping[str, Measured]) -> Finding:
    hand, fixed = m["hand"], m["fixed"]
    d, latent, batch = loss_shape(hand.config) if hand.config else (0, 0, 0)
    sigma, ratio = hand.extras["sigma"], hand.extras["sigma"] / asked_sigma(m)
    found = evidence(hand, fixed, "kl")
    text = (f"mse_loss(x̂, x) + {HAND_KL_WEIGHT:g}·KL is a Gaussian with σ = 1/√2 and **β = {hand.extras['beta']:.3g}** "
            f"(D = {d} pixels, L = {latent}, B = {batch}): a proper ELBO with **σ = {sigma:.3g}**, "
            f"{ratio_text(ratio)} against the σ the data asked for. Its KL, {hand.metrics.kl_nats:.1f} nats against "
            f"{fixed.metrics.kl_nats:.1f} with the fixed σ = {FIXED_SIGMA:g}{_kl_text(found)}, ")
    result = settle(found, "positive" if sigma < fixed.extras["sigma"] else "negative")  # the smaller σ, more KL
    if result == "agrees":
        return Finding(text + "follows the order of the two σ (the smaller σ, the more z is used).", "agrees")
    if result == "disagrees":
        return Finding(text + "does **not** follow the order of the two σ (the smaller σ should use z more).",
                       "disagrees")
    why = found.why_not_settled() if found else "nothing to pair"
    return Finding(text + f"does not settle the order of the two σ: {why}.", NOT_SETTLED)


def _elbo(measured: Measured) -> float:
    """The ELBO the table shows: scored at the sigma in effect (extras), else the run's own."""
    return measured.value("elbo_nats")


def _bits(measured: Measured) -> float:
    bits = measured.value("bits_per_dim")
    return bits if bits is not None else math.inf


def data_against_hand(m: Mapping[str, Measured], score, measure: str, better: Direction,
                      groups: tuple[Sequence[str], Sequence[str]] = (CHOSEN_BY_DATA, CHOSEN_BY_HAND),
                      **words: Any) -> tuple[Verdict, str]:
    """The best σ the data chose against the best chosen by hand (groups: their keys), on `measure` paired sample
    by sample; words: how Evidence.text writes the difference (decimals, unit, over)."""
    pick = max if better == "positive" else min
    data = pick((k for k in groups[0] if k in m), key=lambda k: score(m[k]), default=None)
    hand = pick((k for k in groups[1] if k in m), key=lambda k: score(m[k]), default=None)
    found = evidence(m[data], m[hand], measure) if data and hand else None
    if found is None:
        return NOT_SETTLED, ""
    text = f"; {m[data].label} minus {m[hand].label}, {found.text(**words)}"
    return settle(found, better), text + (f" ({found.why_not_settled()})" if not found.settled else "")


def best_elbo_finding(m: Mapping[str, Measured], heading: str, digits: int, chosen: str = "the σ the data chose",
                      groups: tuple[Sequence[str], Sequence[str]] = (CHOSEN_BY_DATA, CHOSEN_BY_HAND),
                      **words: Any) -> Finding:
    """Which variant scores the best ELBO (at its σ in effect), and whether a σ the data chose beats one chosen
    by hand beyond the noise: "Best ELBO (heading): …"."""
    ranked = sorted(m, key=lambda k: -_elbo(m[k]))
    scores = ", ".join(f"{m[k].label} {_elbo(m[k]):,.{digits}f}" for k in ranked)
    result, diff = data_against_hand(m, _elbo, ELBO_AT_SIGMA, "positive", groups, **words)
    text = f"Best ELBO ({heading}): **{m[ranked[0]].label}**; in order: {scores}{diff}"
    if result == "agrees":
        return Finding(text + f": {chosen} scores best, beyond the noise, as the textbook says.", "agrees")
    if result == "disagrees":
        return Finding(text + ": a σ chosen by hand scored best, beyond the noise, against the textbook.",
                       "disagrees")
    return Finding(text + ": which scores best is not settled at this budget.", NOT_SETTLED)


def _bits_finding(m: Mapping[str, Measured]) -> Finding:
    ranked = sorted(m, key=lambda k: _bits(m[k]))
    scores = ", ".join(f"{m[k].label} {_bits(m[k]):.3f}" for k in ranked)
    result, diff = data_against_hand(m, _bits, BITS_AT_SIGMA, "negative", decimals=3)
    text = (f"Best in bits/dim (the 8-bit images' probability): **{m[ranked[0]].label}**; in order: "
            f"{scores}{diff}")
    if result == "agrees":
        return Finding(text + ": the σ the data chose gives the images the most probability too.", "agrees")
    if result == NOT_SETTLED:
        return Finding(text + ": which gives the most probability is not settled at this budget.", NOT_SETTLED)
    text += ": a σ chosen by hand does, beyond the noise, against the textbook."
    if "optimal" not in m or m[ranked[0]].extras["sigma"] <= asked_sigma(m):
        return Finding(text, "disagrees")
    edges = next(iter(m.values())).extras.get("frac_open_bins", math.nan)
    return Finding(text + f" {edges:.0%} of these pixels are at grey level 0 or 255, {OPEN_BINS}.", "disagrees")


def conclude(m: Mapping[str, Measured]) -> list[Finding]:
    gone = missing(m, *KEYS)
    found = [gone] if gone else []
    if "learned" in m and "optimal" in m:
        found.append(asked_finding(m))
    if "optimal" in m:
        found += [f(m) for key, f in (("fixed", _fixed_finding), ("hand", _hand_finding)) if key in m]
    if m:
        found += [best_elbo_finding(m, "nats of the z-scored data, higher is better", 0, decimals=1),
                  _bits_finding(m)]
    return found


LAB = Lab(
    id="not-unit",
    title="Inputs not in [0, 1]: which loss, which weight",
    question="My inputs are not in [0,1]: what reconstruction loss, and how do I weigh it against the KL?",
    textbook=("Use a Gaussian likelihood: −log N(x; x̂, σ²) = SSE / (2σ²) + constants. Its σ is the weight: a fixed "
              "σ acts like β = (σ / σ_data)², and a hand-picked weight such as MSE + 1e-4·KL is a fixed σ in "
              "disguise. Let the data choose σ: learn it (σ-VAE) or set it to the RMSE (the analytic optimum)."),
    design=design,
    columns=(Column("σ in effect", "sigma", ".3g"),
             Column("RMSE (z-scored)", "rmse", ".3g"),
             Column("β of the loss", "beta", ".3g"),
             Column("ELBO (nats)", "elbo_nats", ",.0f", "higher", ELBO_AT_SIGMA),
             Column("bits/dim", "bits_per_dim", ".3f", "lower", BITS_AT_SIGMA),
             Column("KL (nats)", "kl_nats", ".1f"),
             Column("active units", "active_units", "d")),
    conclude=conclude,
    own=own,
)
