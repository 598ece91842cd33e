"""Lab 3 on rows of numbers, in the asker's own setting: a dense VAE with a code of 5 on z-scored vectors and a linear
output, trained with their loss, reduce_mean(square(x − x̂), 1) + 1e-4·KL, beside a fixed σ = 1, a learned shared
σ, the optimal σ (= RMSE) and a σ per feature. Each is scored (ELBO in nats per RAW row, the log-Jacobian included)
at the σ in effect, and each variant's posterior means are measured: how far its codes go from the prior's centre,
the asker's symptom (means from −9 to 8). There is no bits/dim: rows of numbers have no 8-bit bins.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping

import torch

from vae_core.config import LossConfig, ModelConfig, RunConfig, default_for
from vae_core.labs.base import (Column, Finding, Lab, LabRun, LabSettings, Measured, OwnMeasures,
                                Variant, base_config, missing, vary)
from vae_core.labs.evidence import evidence
from vae_core.labs.not_unit import (ELBO_AT_SIGMA, FIXED_SIGMA, asked_finding, best_elbo_finding,
                                   hand_picked_loss, rmse)
from vae_core.labs.rows import evaluate_rows
from vae_core.labs.vector_findings import ROWS, feature_finding, loss_finding, reach_finding
from vae_core.model.objective import effective_beta, implied_sigma

LAB_ID = "not-unit-vectors"
ASKER_LATENT = 5  # the asker's code size
KEYS = ("asker", "fixed", "learned", "optimal", "feature")
CHOSEN_BY_DATA, CHOSEN_BY_HAND = ("learned", "optimal", "feature"), ("asker", "fixed")
MU_REACH = "mu_reach"  # paired: each row's largest |posterior mean| over the code


def design(settings: LabSettings) -> tuple[Variant, ...]:
    model = ModelConfig(arch="mlp", latent_dim=ASKER_LATENT, output_activation="linear",
                        hidden_dim=default_for("model.hidden_dim", "vectors"),
                        mlp_layers=default_for("model.mlp_layers", "vectors"))
    base = base_config(settings, model, LossConfig("gaussian", sigma=FIXED_SIGMA), normalization="zscore")
    return (Variant("asker", "your loss: MSE + 1e-4·KL", dataclasses.replace(base, loss=askers_loss())),
            Variant("fixed", f"fixed σ = {FIXED_SIGMA:g}", base),
            Variant("learned", "learned σ", vary(base, loss={"likelihood": "gaussian_learned"})),
            Variant("optimal", "optimal σ = RMSE", vary(base, loss={"likelihood": "gaussian_optimal"})),
            Variant("feature", "σ per feature", vary(base, loss={"likelihood": "gaussian_feature"})))


def askers_loss() -> LossConfig:
    """reduce_mean(square(x − x̂), 1) + 1e-4·KL, both averaged over the batch: lab 3's hand-picked loss, whose mean
    is over a row's D features here."""
    return hand_picked_loss()


def loss_shape(config: RunConfig) -> tuple[int, int, int]:
    """(features D, latent dimensions, batch size): what the reductions count."""
    return config.model.features or 0, config.model.latent_dim, config.train.batch_size


def feature_sigmas(lab_run: LabRun) -> torch.Tensor | None:
    """A σ-per-feature decoder's σ of each feature (D,), z-scored units, its floor applied; else None."""
    model = lab_run.run.model
    if model.lik.sigma != "per_feature":
        return None
    with torch.no_grad():
        return model.decode_log_sigma(torch.zeros(1, model.cfg.latent_dim)).exp().flatten()


def sigma_in_effect(lab_run: LabRun) -> float:
    """A fixed-σ loss: the σ of the proper ELBO it equals; learned or optimal: the model's own; per feature: their
    geometric mean (each feature is scored at its own)."""
    config = lab_run.run.config
    if (implied := implied_sigma(config.loss, *loss_shape(config))) is not None:
        return implied
    per_feature = feature_sigmas(lab_run)
    if per_feature is not None:
        return per_feature.log().mean().exp().item()
    return lab_run.run.model.log_sigma.exp().item()


@torch.no_grad()
def scored_at(lab_run: LabRun, sigma: float):
    """The test evaluation of the decoder at the σ in effect (a per-feature σ: as trained)."""
    model = lab_run.run.model
    if feature_sigmas(lab_run) is None:
        model = copy.deepcopy(model)  # the pictured run keeps its own σ
        model.log_sigma.fill_(math.log(sigma))
    return evaluate_rows(model, lab_run.run, lab_run.images)


@torch.no_grad()
def own(lab_run: LabRun) -> OwnMeasures:
    """The σ in effect and the ELBO per raw row scored at it, the RMSE it should match, the β of the loss, the
    posterior means' range and each row's largest |μ| (the asker's symptom), and the steps trained."""
    config, sigma = lab_run.run.config, sigma_in_effect(lab_run)
    scored = scored_at(lab_run, sigma)
    mu = lab_run.run.model.encode(lab_run.x)[0]
    per_feature = feature_sigmas(lab_run)
    spread = (per_feature.min().item(), per_feature.max().item()) if per_feature is not None else (sigma, sigma)
    return OwnMeasures({"sigma": sigma, "sigma_min": spread[0], "sigma_max": spread[1],
                        "elbo_nats": scored.elbo_nats, "rmse": rmse(lab_run),
                        "beta": effective_beta(config.loss, *loss_shape(config)),
                        "mu_min": min(scored.posterior_mu_min), "mu_max": max(scored.posterior_mu_max),
                        "mu_reach": mu.abs().amax(1).mean().item(), "features": float(loss_shape(config)[0]),
                        "steps": float(lab_run.run.metrics.get("steps", 0))},
                       {ELBO_AT_SIGMA: scored.per_row.elbo, MU_REACH: mu.abs().amax(1)})


NO_BITS = Finding("No bits/dim here: bits/dim counts the probability of 8-bit pixels, each a bin of 1/256, and rows "
                  "of numbers have no bins; a density of continuous values is measured in nats per row instead, "
                  "and with the normalization's log-Jacobian included those compare across normalizations.")


def conclude(m: Mapping[str, Measured]) -> list[Finding]:
    gone = missing(m, *KEYS)
    found = [gone] if gone else []
    if "asker" in m:
        found.append(loss_finding(m["asker"]))
    if "learned" in m and "optimal" in m:
        found.append(asked_finding(m))
    if "optimal" in m:
        found += [reach_finding(m, k, "optimal", MU_REACH) for k in ("asker", "fixed") if k in m]
        if "feature" in m:
            found.append(feature_finding(m["feature"], m["optimal"], evidence(m["feature"], m["optimal"],
                                                                               ELBO_AT_SIGMA)))
    if m:
        found += [best_elbo_finding(m, "nats per raw row, the z-score's log-Jacobian included, each at its σ in "
                                    "effect; higher is better", 1, "a σ the data chose",
                                    (CHOSEN_BY_DATA, CHOSEN_BY_HAND), decimals=1, unit="nats", over=ROWS), NO_BITS]
    return found


LAB = Lab(
    id=LAB_ID,
    title="Vectors not in [0, 1]: your loss, your code size",
    question=("How to achieve a VAE with unrestricted input? My dense VAE (code size 5) uses loss = "
              "reduce_mean(square(x − x̂), 1) + 1e-4·KL, and the posterior means range over [−9, 8]."),
    textbook=("Unbounded inputs need no special loss: z-score them, use a linear output and a Gaussian likelihood, "
              "−log N(x; x̂, σ²) = SSE / (2σ²) + constants. Its σ is the weight on the KL: a mean of squared errors "
              "plus 1e-4·KL is a Gaussian whose σ is tiny, so the KL hardly counts and the codes spread far beyond "
              "the prior's N(0, 1). Let the data choose σ (learn it, set it to the RMSE, or one per feature)."),
    design=design,
    columns=(Column("σ in effect", "sigma", ".3g"),  # short labels: nine columns fit a 1024-pixel projector
             Column("RMSE (z)", "rmse", ".3g"),
             Column("β of loss", "beta", ".3g"),
             Column("ELBO (nats/row)", "elbo_nats", ",.1f", "higher", ELBO_AT_SIGMA),
             Column("KL (nats)", "kl_nats", ".1f"),
             Column("μ from", "mu_min", ".3g"),
             Column("μ to", "mu_max", ".3g"),
             Column("largest |μ|", "mu_reach", ".3g"),
             Column("active", "active_units", "d")),
    conclude=conclude,
    own=own,
    kind="vectors",
)
