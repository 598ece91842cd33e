"""Test-set evaluation of a VAE on vectors: the ELBO, its terms and the IWAE bound in nats per row of the RAW rows
(the normalization's log-Jacobian included: VectorNormalizer.log_det), the posterior per latent dimension (KL, the
range of its means and standard deviations, active units), each feature's reconstruction error and each feature's
range against the output activation's.

The Monte-Carlo estimates and their standard errors are those of evaluate.py (its module docstring), with its seed
offsets. Bits/dim is not reported: it is a probability of 8-bit pixels, and rows of numbers have no bins.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

import torch

from vae_core.config import RunConfig
from vae_core.data.vector_normalize import VectorNormalizer
from vae_core.model.compatibility import ACTIVATION_RANGE, features_outside
from vae_core.model.evaluate import (IWAE_SEED_OFFSET, MC_SEED_OFFSET, count_active_units, iwae_bound,
                                     mc_standard_error, posterior_collapse, range_fractions, standard_error)
from vae_core.model.objective import equivalent_beta, kl_per_dimension, reconstruction_nats
from vae_core.model.vae import VAE

VECTORS_BPD_NOTE = "not reported for vectors: there are no 8-bit bins"
NATS_PER_ROW = "nats per row of the raw vectors (the normalization's log-Jacobian included)"


@dataclass(frozen=True)
class PerRow:
    """Each test row's estimates, (N,) nats per raw row; iwae None where not computed."""
    elbo: torch.Tensor
    iwae: torch.Tensor | None


@dataclass(frozen=True)
class VectorEvalMetrics:
    dataset: str
    n_test: int
    normalization: str
    elbo_nats: float  # mean ELBO per raw row (higher is better)
    recon_nats: float  # mean -log p(row|z), raw units
    kl_nats: float  # mean KL per row
    log_jacobian_nats: float  # sum_d log scale_d: raw recon = normalized recon + this
    iwae_nats: float | None  # importance-weighted bound on log p(row), raw units
    iwae_k: int  # 0: not computed
    elbo_se: float | None  # over the test rows
    iwae_se: float | None
    elbo_mc_se: float | None  # over z alone
    iwae_mc_se: float | None
    active_units: int
    kl_per_dim: list[float]  # nats, mean over the test rows
    posterior_var: list[float]  # Cov_x(E_q[z_u]), the active-unit statistic
    posterior_sigma: list[float]  # mean posterior std per dimension
    posterior_mu_min: list[float]  # per dimension, over the test rows: the range of the posterior means
    posterior_mu_max: list[float]
    posterior_sigma_min: list[float]  # and of the posterior standard deviations
    posterior_sigma_max: list[float]
    posterior_collapse: bool
    feature_names: list[str]
    feature_rmse: list[float]  # raw units, each feature's reconstruction from the posterior mean
    feature_min: list[float]  # each feature's normalized test values: what the decoder must reach
    feature_max: list[float]
    activation_range: list[float | None]  # [lo, hi] of the output activation; None: unbounded
    features_out_of_reach: list[str]  # features whose normalized test values leave the activation's range
    frac_targets_unreachable: float
    frac_outputs_saturated: float
    effective_beta: float | None
    bits_per_dim: float | None = None
    bits_per_dim_note: str = VECTORS_BPD_NOTE
    unit: str = NATS_PER_ROW
    per_row: PerRow | None = field(default=None, compare=False, repr=False)  # never saved

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "per_row"}

    def summary(self) -> "VectorEvalMetrics":
        """The same without the per-row tensors (what a job sends between processes)."""
        return replace(self, per_row=None)


@dataclass
class _Parts:
    """One pass's pieces, a batch at a time: normalized recon (two draws), KL (B, L), posteriors, errors."""
    recon: list = field(default_factory=list)
    recon_mc: list = field(default_factory=list)
    kl: list = field(default_factory=list)
    mu: list = field(default_factory=list)
    sigma: list = field(default_factory=list)
    sq: list = field(default_factory=list)  # (B, D) squared raw errors
    x: list = field(default_factory=list)  # (B, D) normalized targets
    x_hat: list = field(default_factory=list)  # (B, D) decoded posterior means, after the activation
    iwae: list = field(default_factory=list)
    iwae_var: list = field(default_factory=list)


@torch.no_grad()
def evaluate_vectors(model: VAE, normalizer: VectorNormalizer, rows: torch.Tensor, feature_names: tuple[str, ...],
                     *, config: RunConfig | None = None, steps: int = 0, iwae_k: int = 0, batch_size: int = 500,
                     seed: int = 0) -> VectorEvalMetrics:
    """Evaluate on raw rows (N, D) float32; z from generators seeded with `seed`, so results repeat."""
    model.eval()
    device = model.log_sigma.device
    noise = [torch.Generator(device).manual_seed(seed + k) for k in (0, IWAE_SEED_OFFSET, MC_SEED_OFFSET)]
    parts = _Parts()
    for chunk in rows.split(batch_size):
        _batch(model, normalizer, chunk.to(device), iwae_k, parts, noise)
    return _summarize(parts, model, normalizer, feature_names, iwae_k, config, steps)


def _batch(model: VAE, normalizer: VectorNormalizer, raw: torch.Tensor, iwae_k: int, parts: _Parts,
           noise: list[torch.Generator]) -> None:
    x = normalizer.forward(raw)
    out = model(x, noise[0])
    parts.recon.append(reconstruction_nats(out, x, model.likelihood))
    parts.recon_mc.append(reconstruction_nats(model(x, noise[2]), x, model.likelihood))
    parts.kl.append(kl_per_dimension(out.mu, out.logvar))
    parts.mu.append(out.mu)
    parts.sigma.append(torch.exp(0.5 * out.logvar))
    x_hat = model.decode(out.mu)
    parts.sq.append((normalizer.inverse(x_hat) - raw).double().pow(2))
    parts.x.append(x)
    parts.x_hat.append(x_hat)
    if iwae_k:
        bound = iwae_bound(model, x, iwae_k, generator=noise[1])
        parts.iwae.append(bound.nats)
        parts.iwae_var.append(bound.nats_mc_var)


def _reach(x: torch.Tensor, names: tuple[str, ...], activation: str) -> tuple[list[float | None], list[str]]:
    """The activation's range (None where unbounded) and the features whose values leave it."""
    outside = features_outside(x.amin(0).tolist(), x.amax(0).tolist(), activation)
    return [v if math.isfinite(v) else None for v in ACTIVATION_RANGE[activation]], [names[d] for d in outside]


def _summarize(parts: _Parts, model: VAE, normalizer: VectorNormalizer, names: tuple[str, ...], iwae_k: int,
               config: RunConfig | None, steps: int) -> VectorEvalMetrics:
    log_det = normalizer.log_det()
    recon = torch.cat(parts.recon) + log_det  # raw units: -log p(row|z) = -log p(x|z) + log_det
    kl, mu, sigma = torch.cat(parts.kl), torch.cat(parts.mu), torch.cat(parts.sigma)
    x, x_hat = torch.cat(parts.x), torch.cat(parts.x_hat)
    elbo = -(recon + kl.sum(1))
    iwae = torch.cat(parts.iwae) - log_det if iwae_k else None
    var = mu.var(0, correction=0).tolist()
    activation = model.cfg.output_activation
    unreachable, saturated = range_fractions(x, x_hat, activation)
    act_range, out_of_reach = _reach(x, names, activation)
    pair = (torch.cat(parts.recon).double() - torch.cat(parts.recon_mc).double()).pow(2) / 2
    kl_dims = kl.mean(0).tolist()
    beta = None if config is None else equivalent_beta(config.loss, x.shape[1], config.model.latent_dim,
                                                       config.train.batch_size, steps, kl_dims).value
    return VectorEvalMetrics(
        dataset="vectors", n_test=len(x), normalization=normalizer.kind, elbo_nats=elbo.mean().item(),
        recon_nats=recon.mean().item(), kl_nats=kl.sum(1).mean().item(), log_jacobian_nats=log_det,
        iwae_nats=None if iwae is None else iwae.mean().item(), iwae_k=iwae_k, elbo_se=standard_error(elbo),
        iwae_se=standard_error(iwae), elbo_mc_se=mc_standard_error(pair),
        iwae_mc_se=mc_standard_error(torch.cat(parts.iwae_var)) if iwae_k else None,
        active_units=count_active_units(var), kl_per_dim=kl_dims, posterior_var=var,
        posterior_sigma=sigma.mean(0).tolist(), posterior_mu_min=mu.amin(0).tolist(),
        posterior_mu_max=mu.amax(0).tolist(), posterior_sigma_min=sigma.amin(0).tolist(),
        posterior_sigma_max=sigma.amax(0).tolist(), posterior_collapse=posterior_collapse(var, steps or None),
        feature_names=list(names), feature_rmse=torch.cat(parts.sq).mean(0).sqrt().tolist(),
        feature_min=x.amin(0).tolist(), feature_max=x.amax(0).tolist(), activation_range=act_range,
        features_out_of_reach=out_of_reach, frac_targets_unreachable=unreachable, frac_outputs_saturated=saturated,
        effective_beta=beta, per_row=PerRow(elbo, iwae))
