"""Test-set evaluation: ELBO terms in nats/image, the IWAE bound, bits/dim, pixel-space MSE/PSNR,
the posterior (KL and sigma per dimension, active units, collapse) and the output range."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from .compatibility import ACTIVATION_RANGE
from .config import LossConfig
from .data import pixels
from .models import VAE
from .normalize import Normalizer
from .objective import effective_beta, kl_per_dimension, reconstruction_nats

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2015: a unit is active if Cov_x(E_q[z_u]) > 0.01
COLLAPSE_KL = 0.01  # nats: a dimension carrying less than this says nothing about x
# An encoder at its initialization already has a KL near zero (q(z|x) ~ N(0, I)): before this many
# optimizer steps a quiet posterior says the model is untrained, not that it collapsed.
COLLAPSE_MIN_STEPS = 100
SATURATION_EPS = 1e-3  # an output this close to its activation's bound is saturated
BERNOULLI_BPD_NOTE = ("Bits/dim is not reported for a Bernoulli likelihood: on grey-level data it is not a "
                      "normalized likelihood of the pixels, so the number would not compare with others.")


@dataclass(frozen=True)
class EvalMetrics:
    dataset: str
    n_test: int
    elbo_nats: float  # mean ELBO per image (higher is better)
    recon_nats: float  # mean -log p(x|z) per image
    kl_nats: float  # mean KL per image
    iwae_nats: float | None  # importance-weighted bound on log p(x) (Burda et al. 2015), nats/image
    iwae_k: int  # samples per image for iwae_nats; 0 = not computed
    bits_per_dim: float | None  # -ELBO on the 0..255 grey-level scale, per dimension, in bits
    bits_per_dim_note: str  # why bits_per_dim is None, else ""
    mse: float  # pixel space, [0, 1] scale, reconstructions from the posterior mean, clipped
    psnr_db: float
    active_units: int
    kl_per_dim: list[float]  # nats, mean over the test set
    posterior_var: list[float]  # Cov_x(E_q[z_u]) per dimension, the active-unit statistic
    posterior_sigma: list[float]  # mean posterior std per dimension (1 = the prior's)
    posterior_collapse: bool  # no dimension carries COLLAPSE_KL nats: z says nothing about x
    frac_targets_unreachable: float  # normalized targets outside the output activation's range
    frac_outputs_saturated: float  # decoder outputs within SATURATION_EPS of the activation's bounds
    effective_beta: float | None  # the proper-ELBO beta the training loss amounted to

    def to_dict(self) -> dict:
        return asdict(self)


def bits_per_dim(elbo_nats: float, normalizer: Normalizer, shape: tuple[int, int, int]) -> float:
    """Bits per dimension on the grey-level scale from an ELBO in normalized space (nats/image)."""
    c, h, w = shape
    log_p_grey = elbo_nats - normalizer.log_det_to_grey_levels(h, w)  # change of variables x -> k
    return -log_p_grey / (c * h * w * math.log(2))


def range_fractions(x: torch.Tensor, x_hat: torch.Tensor, activation: str) -> tuple[float, float]:
    """(fraction of targets outside the activation's range, fraction of outputs within 1e-3 of a bound)."""
    lo, hi = ACTIVATION_RANGE[activation]
    unreachable = ((x < lo) | (x > hi)).double().mean().item()
    if math.isinf(lo):
        return unreachable, 0.0
    saturated = ((x_hat - lo < SATURATION_EPS) | (hi - x_hat < SATURATION_EPS)).double().mean().item()
    return unreachable, saturated


def posterior_collapse(kl_per_dim: Sequence[float], steps: int | None = None) -> bool:
    """No dimension carries COLLAPSE_KL nats, after at least COLLAPSE_MIN_STEPS steps (None: steps unknown)."""
    # Every dimension, not a share: one dimension carrying a few nats is a z the decoder uses, and with
    # 256 dimensions a handful of informative ones is a used latent space (the KL prunes what the data
    # does not need), not a collapse.
    if steps is not None and steps < COLLAPSE_MIN_STEPS:
        return False
    return len(kl_per_dim) > 0 and all(k < COLLAPSE_KL for k in kl_per_dim)


@torch.no_grad()
def iwae_bound(model: VAE, x: torch.Tensor, k: int, chunk: int = 4096) -> torch.Tensor:
    """(B,) log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x) (Burda et al. 2015, eq. 8), nats."""
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    log_w = []
    per = max(1, chunk // len(x))  # samples decoded at once
    for start in range(0, k, per):
        s = min(per, k - start)
        z = mu + std * torch.randn((s, *mu.shape))  # (s, B, L)
        log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)  # (s, B)
        log_p_z = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        out = model.output_at(z.flatten(0, 1), mu.repeat(s, 1), logvar.repeat(s, 1))
        log_px = -reconstruction_nats(out, x.repeat(s, 1, 1, 1), model.likelihood).view(s, -1)
        log_w.append(log_px + log_p_z - log_q)
    return torch.logsumexp(torch.cat(log_w), 0) - math.log(k)


@torch.no_grad()
def evaluate(model: VAE, normalizer: Normalizer, images: torch.Tensor, *, dataset: str = "",
             loss: LossConfig | None = None, iwae_k: int = 0, batch_size: int = 500, seed: int = 0) -> EvalMetrics:
    """Evaluate on uint8 images (N, C, H, W); z is sampled with a fixed seed, so results repeat."""
    model.eval()
    parts: dict[str, list] = {k: [] for k in ("recon", "kl", "sq", "mu", "sigma", "iwae", "unreach", "sat")}
    activation = model.cfg.output_activation
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for chunk in images.split(batch_size):
            p = pixels(chunk)  # (B, C, H, W) in [0, 1]
            x = normalizer.forward(p)
            out = model(x)
            parts["recon"].append(reconstruction_nats(out, x, model.likelihood))
            parts["kl"].append(kl_per_dimension(out.mu, out.logvar))  # (B, L)
            parts["mu"].append(out.mu)
            parts["sigma"].append(torch.exp(0.5 * out.logvar))
            x_mean = model.decode(out.mu)
            parts["sq"].append((normalizer.inverse(x_mean).clamp(0, 1) - p).pow(2).flatten(1).mean(1))
            unreachable, saturated = range_fractions(x, model.out_act(model.decode_logits(out.mu)), activation)
            parts["unreach"].append(unreachable * len(x))
            parts["sat"].append(saturated * len(x))
            if iwae_k:
                parts["iwae"].append(iwae_bound(model, x, iwae_k))
    return _summarize(parts, model, normalizer, images, dataset, loss, iwae_k)


def _summarize(parts: dict, model: VAE, normalizer: Normalizer, images: torch.Tensor, dataset: str,
               loss: LossConfig | None, iwae_k: int) -> EvalMetrics:
    recon, kl = torch.cat(parts["recon"]), torch.cat(parts["kl"])
    n = len(images)
    mse = torch.cat(parts["sq"]).mean().item()
    elbo = -(recon.mean() + kl.sum(1).mean()).item()
    var = torch.cat(parts["mu"]).var(0, correction=0)  # (L,)
    bpd, note = None, BERNOULLI_BPD_NOTE
    if model.lik.discrete_bits:
        bpd, note = bits_per_dim(elbo, normalizer, tuple(images.shape[1:])), ""
    kl_dims = kl.mean(0).tolist()
    n_pixels, latent = images[0].numel(), model.cfg.latent_dim
    return EvalMetrics(
        dataset=dataset, n_test=n, elbo_nats=elbo, recon_nats=recon.mean().item(), kl_nats=kl.sum(1).mean().item(),
        iwae_nats=torch.cat(parts["iwae"]).mean().item() if iwae_k else None, iwae_k=iwae_k,
        bits_per_dim=bpd, bits_per_dim_note=note, mse=mse, psnr_db=10 * math.log10(1 / max(mse, 1e-12)),
        active_units=int((var > ACTIVE_UNIT_THRESHOLD).sum()), kl_per_dim=kl_dims, posterior_var=var.tolist(),
        posterior_sigma=torch.cat(parts["sigma"]).mean(0).tolist(), posterior_collapse=posterior_collapse(kl_dims),
        frac_targets_unreachable=sum(parts["unreach"]) / n, frac_outputs_saturated=sum(parts["sat"]) / n,
        effective_beta=effective_beta(loss, n_pixels, latent) if loss else None)
