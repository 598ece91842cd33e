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
from collections.abc import Mapping

import torch

from ..config import LossConfig, ModelConfig, RunConfig
from ..evaluate import EvalMetrics, evaluate
from ..loss_code import MSE_SIGMA
from ..objective import effective_beta, implied_sigma
from .base import Column, Finding, Lab, LabRun, LabSettings, Measured, Variant, base_config, missing, vary

FIXED_SIGMA = 1.0  # z-scored units: the data's own spread, i.e. the loss 0.5 * SSE ("MSE/2"), the usual default
HAND_KL_WEIGHT = 1e-4  # F.mse_loss(x_hat, x) + 1e-4 * KL: the weight as people pick it
AGREE_RATIO = 1.25  # two sigmas within this factor of each other ask for the same thing: "about right"
KEYS = ("fixed", "hand", "learned", "optimal")
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


def extras(lab_run: LabRun) -> dict[str, float]:
    """The sigma in effect and the ELBO and bits/dim scored at it, the RMSE it should match, the beta the loss
    amounts to, and the steps trained."""
    config, sigma = lab_run.run.config, sigma_in_effect(lab_run)
    scored = scored_at(lab_run, sigma)
    return {"sigma": sigma, "elbo_nats": scored.elbo_nats, "bits_per_dim": scored.bits_per_dim,
            "rmse": rmse(lab_run), "beta": effective_beta(config.loss, *loss_shape(config)),
            "steps": float(lab_run.run.metrics.get("steps", 0)), "frac_open_bins": open_bin_share(lab_run.images)}


def open_bin_share(images: torch.Tensor) -> float:
    """The share of uint8 pixel values at 0 or 255, the grey levels whose bins are open-ended."""
    return ((images == 0) | (images == 255)).double().mean().item()


def _ratio_text(ratio: float) -> str:
    """'3.2× too wide' / '2.0× too narrow' / 'about right'."""
    if 1 / AGREE_RATIO <= ratio <= AGREE_RATIO:
        return "about right"
    return f"{ratio:.2g}× too wide" if ratio > 1 else f"{1 / ratio:.2g}× too narrow"


def asked_sigma(m: Mapping[str, Measured]) -> float:
    """The sigma the data asked for: the analytic optimum, the training set's RMSE."""
    return m["optimal"].extras["sigma"]


def _asked_finding(m: Mapping[str, Measured]) -> Finding:
    learned, optimal = m["learned"].extras, m["optimal"].extras
    a, b = learned["sigma"], optimal["sigma"]
    text = (f"The data asked for **σ ≈ {b:.3g}** (z-scored units): the optimal σ* (the training set's RMSE) is "
            f"{b:.3g}, its test reconstructions' RMSE {optimal['rmse']:.3g}; the learned σ, started at "
            f"{FIXED_SIGMA:g}, ended at **{a:.3g}** (RMSE {learned['rmse']:.3g})")
    if max(a, b) / min(a, b) <= AGREE_RATIO:
        return Finding(text + ": learning σ and computing it agree, as the σ-VAE says.", "agrees")
    steps, config = learned["steps"], m["learned"].config
    lr, start = (config.train.lr, config.loss.sigma) if config else (math.nan, math.nan)
    return Finding(text + f": the two do **not** agree. Adam moves log σ by roughly lr = {lr:g} a step, a factor of "
                   f"about {math.exp(steps * lr):.3g} in {steps:.0f} steps (it moved {max(a, start) / min(a, start):.3g}): "
                   "a short run leaves the learned σ behind the analytic one.", "disagrees")


def _fixed_finding(m: Mapping[str, Measured]) -> Finding:
    ratio = m["fixed"].extras["sigma"] / asked_sigma(m)
    fixed, best = m["fixed"].metrics, m["optimal"].metrics
    text = (f"The fixed σ = {FIXED_SIGMA:g} was **{_ratio_text(ratio)}**, so it weighed the KL like **β ≈ "
            f"{ratio**2:.3g}** with the data's σ: KL {fixed.kl_nats:.1f} nats and {fixed.active_units} active units, "
            f"against {best.kl_nats:.1f} nats and {best.active_units} with the optimal σ")
    if 1 / AGREE_RATIO <= ratio <= AGREE_RATIO:
        return Finding(text + ".", "measured")
    expected = fixed.kl_nats < best.kl_nats if ratio > 1 else fixed.kl_nats > best.kl_nats
    if expected:
        return Finding(text + ": a σ too wide lets the KL win, too narrow the reconstruction, as the textbook "
                       "says.", "agrees")
    return Finding(text + ": the KL did **not** move the way the σ predicts.", "disagrees")


def _hand_finding(m: Mapping[str, Measured]) -> Finding:
    hand = m["hand"]
    d, latent, batch = loss_shape(hand.config) if hand.config else (0, 0, 0)
    sigma, ratio = hand.extras["sigma"], hand.extras["sigma"] / asked_sigma(m)
    text = (f"mse_loss(x̂, x) + {HAND_KL_WEIGHT:g}·KL is a Gaussian with σ = 1/√2 and **β = {hand.extras['beta']:.3g}** "
            f"(D = {d} pixels, L = {latent}, B = {batch}): a proper ELBO with **σ = {sigma:.3g}**, "
            f"{_ratio_text(ratio)} against the σ the data asked for")
    kl_hand, kl_fixed = hand.metrics.kl_nats, m["fixed"].metrics.kl_nats
    follows = (kl_hand > kl_fixed) == (sigma < m["fixed"].extras["sigma"])
    text += (f". Its KL, {kl_hand:.1f} nats against {kl_fixed:.1f} with the fixed σ = {FIXED_SIGMA:g}, "
             f"{'follows' if follows else 'does **not** follow'} the order of the two σ (the smaller σ, the more z "
             "is used)")
    return Finding(text + ".", "agrees" if follows else "disagrees")


def _elbo(measured: Measured) -> float:
    """The ELBO the table shows: scored at the sigma in effect (extras), else the run's own."""
    return measured.value("elbo_nats")


def _bits(measured: Measured) -> float:
    bits = measured.value("bits_per_dim")
    return bits if bits is not None else math.inf


def _elbo_finding(m: Mapping[str, Measured]) -> Finding:
    ranked = sorted(m, key=lambda k: -_elbo(m[k]))
    scores = ", ".join(f"{m[k].label} {_elbo(m[k]):,.0f}" for k in ranked)
    text = f"Best ELBO (nats of the z-scored data, higher is better): **{m[ranked[0]].label}**; in order: {scores}"
    if ranked[0] in ("learned", "optimal"):
        return Finding(text + ": the σ the data chose scores best, as the textbook says.", "agrees")
    return Finding(text + ": a σ chosen by hand scored best, against the textbook.", "disagrees")


def _bits_finding(m: Mapping[str, Measured]) -> Finding:
    ranked = sorted(m, key=lambda k: _bits(m[k]))
    scores = ", ".join(f"{m[k].label} {_bits(m[k]):.3f}" for k in ranked)
    text = f"Best in bits/dim (the 8-bit images' probability): **{m[ranked[0]].label}**; in order: {scores}"
    if ranked[0] in ("learned", "optimal"):
        return Finding(text + ": the σ the data chose gives the images the most probability too.", "agrees")
    text += ": a σ chosen by hand does, against the textbook."
    if "optimal" not in m or m[ranked[0]].extras["sigma"] <= asked_sigma(m):
        return Finding(text, "disagrees")
    edges = next(iter(m.values())).extras.get("frac_open_bins", math.nan)
    return Finding(text + f" {edges:.0%} of these pixels are at grey level 0 or 255, {OPEN_BINS}.", "disagrees")


def conclude(m: Mapping[str, Measured]) -> list[Finding]:
    gone = missing(m, *KEYS)
    found = [gone] if gone else []
    if "learned" in m and "optimal" in m:
        found.append(_asked_finding(m))
    if "optimal" in m:
        found += [f(m) for key, f in (("fixed", _fixed_finding), ("hand", _hand_finding)) if key in m]
    if m:
        found += [_elbo_finding(m), _bits_finding(m)]
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
             Column("ELBO (nats)", "elbo_nats", ",.0f", "higher"),
             Column("bits/dim", "bits_per_dim", ".3f", "lower"),
             Column("KL (nats)", "kl_nats", ".1f"),
             Column("active units", "active_units", "d")),
    conclude=conclude,
    extras=extras,
)
