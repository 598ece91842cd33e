"""Test-set evaluation: ELBO terms in nats/image, the IWAE bound, bits/dim, pixel-space MSE/PSNR,
the posterior (KL and sigma per dimension, active units, collapse) and the output range.

Each Monte-Carlo estimate draws its z from its own seeded generator (the ELBO's does not change with iwae_k)
and comes with two standard errors, each for what it is:
- over the test images (`*_se`): std(per-image values, ddof=1) / sqrt(N), how far another N test images would
  move the mean; it holds the Monte-Carlo noise too, and is much the larger;
- Monte-Carlo (`*_mc_se`), over z alone on these images: for the one-sample ELBO, from a second independent
  draw per image (its own generator; Var_z of an image's estimate is E[(a - b)^2] / 2); for the IWAE bound, the
  jackknife over its k importance weights (the delta method, capped at 1 nat^2 per image, misses heavy tails).
A comparison of two runs on the same images uses their paired per-image values (vae_core.model.paired).

Bits/dim is a discrete likelihood of the 8-bit images: the ELBO (or IWAE bound) with log P(k|z), the mass
of each pixel's grey-level bin (likelihoods.discrete_log_prob), in place of the density log p(x|z). A mass is
at most 1 and the KL at least 0, so the ELBO's bits/dim is never negative, and it compares across
normalizations and likelihoods.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace

import torch

from vae_core.config import RunConfig
from vae_core.data.base import pixels
from vae_core.data.normalize import GREY_LEVELS, Normalizer
from vae_core.model.compatibility import ACTIVATION_RANGE, edge_share
from vae_core.model.likelihoods import discrete_log_prob
from vae_core.model.objective import equivalent_beta, kl_per_dimension, reconstruction_nats
from vae_core.model.reach import outside_share
from vae_core.model.vae import VAE, VAEOutput

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2015: a unit is active if Cov_x(E_q[z_u]) > 0.01
COLLAPSE_KL = 0.01  # nats: training's live alarm (kl_collapse_alarm) and the KL figure's line
# An encoder at its initialization already has a KL near zero (q(z|x) ~ N(0, I)): before this many
# optimizer steps a quiet posterior says the model is untrained, not that it collapsed.
COLLAPSE_MIN_STEPS = 100
SATURATION_EPS = 1e-3  # an output this close to its activation's bound is saturated
IWAE_SEED_OFFSET = 1  # the IWAE's z generator is seeded apart from the ELBO's
MC_SEED_OFFSET = 2  # and the second ELBO draw, which measures the ELBO's Monte-Carlo error, apart from both
# PSNR's cap: an image whose MSE is below the 8-bit rounding's own, 1/12 of a grey level squared, is exact as far
# as 8-bit pixels can tell (an exact reconstruction would otherwise count as infinitely many dB): 58.9 dB.
QUANTIZATION_MSE = 1 / (12 * GREY_LEVELS**2)
# Pixels per slice of the grey-level masses: their float64 temporaries stay near 100 MB, not 1 GB at IWAE's
# thousands of decoded images.
DISCRETE_PIXELS = 2**20
BERNOULLI_BPD_NOTE = ("Bits/dim is not reported for a Bernoulli likelihood: it is a distribution over two "
                      "values, not over the 256 grey levels, so it gives no probability to an 8-bit image.")


@dataclass(frozen=True)
class EvalMetrics:
    dataset: str
    n_test: int
    elbo_nats: float  # mean ELBO per image (higher is better)
    recon_nats: float  # mean -log p(x|z) per image
    kl_nats: float  # mean KL per image
    iwae_nats: float | None  # importance-weighted bound on log p(x) (Burda et al. 2015), nats/image
    iwae_k: int  # samples per image for iwae_nats; 0 = not computed
    bits_per_dim: float | None  # -ELBO of the 8-bit images (grey-level bin masses) per dimension, in bits; >= 0
    bits_per_dim_note: str  # why bits_per_dim is None, else ""
    mse: float  # pixel space, [0, 1] scale, reconstructions from the posterior mean, clipped
    psnr_db: float  # the mean over images of each one's PSNR (from its MSE; capped: QUANTIZATION_MSE)
    active_units: int
    kl_per_dim: list[float]  # nats, mean over the test set
    posterior_var: list[float]  # Cov_x(E_q[z_u]) per dimension, the active-unit statistic
    posterior_sigma: list[float]  # mean posterior std per dimension (1 = the prior's)
    posterior_collapse: bool  # no active unit (steps not counted): z says nothing about x
    frac_targets_unreachable: float  # normalized targets outside the output activation's range
    frac_outputs_saturated: float  # decoder outputs within SATURATION_EPS of the activation's bounds
    effective_beta: float | None  # the proper-ELBO beta the training loss amounted to at its last step
    # -IWAE bound of the 8-bit images per dimension, in bits; None if iwae_k = 0 or Bernoulli. Last, with a
    # default: EvalMetrics built before it existed stay valid.
    iwae_bits_per_dim: float | None = None
    # Standard errors over the test images (None: not computed, or fewer than two images), and the PSNR of the
    # pooled MSE; with defaults, for the same reason.
    elbo_se: float | None = None
    iwae_se: float | None = None
    bits_per_dim_se: float | None = None
    iwae_bits_per_dim_se: float | None = None
    psnr_pooled_db: float | None = None
    # Monte-Carlo standard errors over z alone (module docstring); None where not computed or saved before them.
    elbo_mc_se: float | None = None
    iwae_mc_se: float | None = None
    bits_per_dim_mc_se: float | None = None
    iwae_bits_per_dim_mc_se: float | None = None
    # The share of the test images' uint8 values at exactly 0 or 255 (compatibility.degeneracy reads it).
    frac_pixels_at_edges: float | None = None
    # Image by image, for paired comparisons; never saved (to_dict leaves it out) nor compared.
    per_image: "PerImage | None" = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "per_image"}

    def summary(self) -> "EvalMetrics":
        """The same without the per-image tensors: what a job sends between processes (a tensor sent through a
        queue lives in the sender's shared memory, gone once a finished worker exits)."""
        return replace(self, per_image=None)


@dataclass(frozen=True)
class PerImage:
    """Each test image's estimates, (N,) in the order of the test images; None where not computed."""
    elbo: torch.Tensor  # nats
    iwae: torch.Tensor | None  # nats
    bits: torch.Tensor | None  # bits/dim of the ELBO with the grey-level masses
    iwae_bits: torch.Tensor | None
    psnr: torch.Tensor  # dB


def standard_error(values: torch.Tensor | None) -> float | None:
    """The standard error of the mean of per-image values (N,): std(ddof=1) / sqrt(N); None for N < 2."""
    if values is None or len(values) < 2:
        return None
    return (values.double().std(correction=1) / math.sqrt(len(values))).item()


def mc_standard_error(variances: torch.Tensor | None) -> float | None:
    """The Monte-Carlo standard error of a mean over N images from each image's Var_z (N,): sqrt(sum) / N."""
    if variances is None or len(variances) == 0:
        return None
    return (variances.double().clamp_min(0).sum().sqrt() / len(variances)).item()


def psnr_db(mse: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of pixels in [0, 1] from their MSE, capped at the 8-bit rounding's (QUANTIZATION_MSE)."""
    return -10 * torch.log10(mse.double().clamp_min(QUANTIZATION_MSE))


def bits_per_dim(nll_nats: float | torch.Tensor, n_dims: int) -> float | torch.Tensor:
    """Bits per dimension from a bound on -log P(k) of 8-bit images (k in 0..255) with n_dims = C*H*W, nats/image."""
    return nll_nats / (n_dims * math.log(2))


def discrete_nll(out: VAEOutput, bins: tuple[torch.Tensor, torch.Tensor], likelihood: str) -> torch.Tensor:
    """(R,) -log P(k|z) per decoded image in nats (float64): every pixel's grey-level mass, the discrete
    counterpart of objective.reconstruction_nats. bins: (B, C, H, W) edges from Normalizer.grey_level_bins;
    out may hold several z samples per image, R = s * B rows, sample-major (as iwae_bound decodes them)."""
    lo, hi = bins
    step = max(1, DISCRETE_PIXELS // lo[0].numel())
    per_pixel = out.log_sigma is not None and out.log_sigma.dim() == out.x_hat.dim()
    nll = []
    for rows, images in _slices(len(out.x_hat), len(lo), step):
        log_sigma = out.log_sigma[rows] if per_pixel else out.log_sigma
        log_mass = discrete_log_prob(likelihood, lo[images], hi[images], out.x_hat[rows], out.logits[rows], log_sigma)
        nll.append(-log_mass.flatten(1).sum(1))
    return torch.cat(nll)


def _slices(n_rows: int, n_images: int, step: int) -> Iterator[tuple[slice, slice]]:
    """(output rows, image rows) at most step images at a time; output row r decodes image r % n_images."""
    for first in range(0, n_rows, n_images):
        for start in range(0, n_images, step):
            stop = min(start + step, n_images)
            yield slice(first + start, first + stop), slice(start, stop)


def range_fractions(x: torch.Tensor, x_hat: torch.Tensor, activation: str) -> tuple[float, float]:
    """(fraction of targets outside the activation's range, fraction of outputs within 1e-3 of a bound)."""
    lo, hi = ACTIVATION_RANGE[activation]
    unreachable = outside_share(x, activation)
    if math.isinf(lo):
        return unreachable, 0.0
    saturated = ((x_hat - lo < SATURATION_EPS) | (hi - x_hat < SATURATION_EPS)).double().mean().item()
    return unreachable, saturated


def count_active_units(posterior_var: Sequence[float]) -> int:
    """Units whose posterior mean moves with x: Cov_x(E_q[z_u]) > ACTIVE_UNIT_THRESHOLD (Burda et al. 2015)."""
    return sum(v > ACTIVE_UNIT_THRESHOLD for v in posterior_var)


def too_early_for_collapse(steps: int | None) -> bool:
    """Fewer than COLLAPSE_MIN_STEPS steps: a quiet posterior is an untrained one (None: steps unknown)."""
    return steps is not None and steps < COLLAPSE_MIN_STEPS


def posterior_collapse(posterior_var: Sequence[float], steps: int | None = None) -> bool:
    """No active unit (count_active_units), after at least COLLAPSE_MIN_STEPS steps (None: steps unknown)."""
    # Active units, not KL per dimension: an encoder that gives every x the same narrow posterior off the
    # prior's centre pays a KL on each dimension and still tells the decoder nothing about x (the sigmoid zoo
    # runs on symmetric data: 0 active units, every dimension over COLLAPSE_KL nats). None active, not a
    # share: with 256 dimensions a handful of active ones is a used latent space, not a collapse.
    if too_early_for_collapse(steps):
        return False
    return len(posterior_var) > 0 and count_active_units(posterior_var) == 0


def kl_collapse_alarm(kl_per_dim: Sequence[float], steps: int | None = None) -> bool:
    """Training's live alarm: no dimension's batch KL reaches COLLAPSE_KL nats, after COLLAPSE_MIN_STEPS steps."""
    # A step's metrics carry the KL per dimension but not Cov_x(E_q[z]); this catches a posterior at the prior,
    # not one that sits elsewhere for every x (posterior_collapse, on the test set, judges both).
    if too_early_for_collapse(steps):
        return False
    return len(kl_per_dim) > 0 and all(k < COLLAPSE_KL for k in kl_per_dim)


@dataclass(frozen=True)
class IWAEBound:
    nats: torch.Tensor  # (B,) with the decoder's density p(x|z), nats/image
    discrete_nats: torch.Tensor | None  # (B,) the same z with the grey-level masses P(k|z); None without bins
    nats_mc_var: torch.Tensor  # (B,) Var_z of each image's bound, by the jackknife (module docstring)
    discrete_mc_var: torch.Tensor | None


@torch.no_grad()
def iwae_bound(model: VAE, x: torch.Tensor, k: int, chunk: int = 4096,
               bins: tuple[torch.Tensor, torch.Tensor] | None = None,
               generator: torch.Generator | None = None) -> IWAEBound:
    """log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x) (Burda et al. 2015, eq. 8), nats/image; with
    the images' grey-level bins (Normalizer.grey_level_bins), also the bound on log P(k) from the same z_i.
    z is drawn from `generator` (torch's global one if None)."""
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    log_w: list[torch.Tensor] = []
    log_w_discrete: list[torch.Tensor] = []
    per = max(1, chunk // len(x))  # samples decoded at once
    for start in range(0, k, per):
        s = min(per, k - start)
        z = mu + std * torch.randn((s, *mu.shape), generator=generator, dtype=std.dtype, device=std.device)  # (s, B, L)
        log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)  # (s, B)
        log_p_z = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        out = model.output_at(z.flatten(0, 1), mu.repeat(s, 1), logvar.repeat(s, 1))
        log_px = -reconstruction_nats(out, x.repeat(s, *[1] * (x.dim() - 1)), model.likelihood).view(s, -1)
        log_w.append(log_px + log_p_z - log_q)
        if bins is not None:
            log_pk = -discrete_nll(out, bins, model.likelihood).view(s, -1)  # the bins of image r % B
            log_w_discrete.append(log_pk + log_p_z - log_q)
    discrete = bins is not None
    return IWAEBound(_log_mean_exp(log_w), _log_mean_exp(log_w_discrete) if discrete else None,
                     _log_mean_exp_var(log_w), _log_mean_exp_var(log_w_discrete) if discrete else None)


def _log_mean_exp(log_w: list[torch.Tensor]) -> torch.Tensor:
    """(B,) log of the mean over samples of exp(log_w), from chunks shaped (s, B)."""
    stacked = torch.cat(log_w)  # (k, B)
    return torch.logsumexp(stacked, 0) - math.log(len(stacked))


def _log_mean_exp_var(log_w: list[torch.Tensor]) -> torch.Tensor:
    """(B,) the jackknife's Var of log mean w over k samples: (k-1)/k sum_j (L_-j - mean L_-j)^2, L_-j without w_j."""
    stacked = torch.cat(log_w).double()  # (k, B)
    k = len(stacked)
    if k < 2:
        return torch.full(stacked.shape[1:], math.nan, dtype=torch.float64, device=stacked.device)
    w = torch.softmax(stacked, 0)  # w_j / sum w
    # log sum_{i != j} w_i = log sum w + log(1 - w~_j): exact but for the largest weight, whose share may round to 1.
    loo = torch.logsumexp(stacked, 0) + torch.log1p(-w.clamp_max(0.5))
    top = stacked.argmax(0)
    without_top = stacked.scatter(0, top[None], -math.inf)
    loo = loo.scatter(0, top[None], torch.logsumexp(without_top, 0)[None])
    return (k - 1) / k * (loo - loo.mean(0)).pow(2).sum(0)


@torch.no_grad()
def evaluate(model: VAE, normalizer: Normalizer, images: torch.Tensor, *, dataset: str = "",
             config: RunConfig | None = None, steps: int = 0, iwae_k: int = 0, batch_size: int = 500,
             seed: int = 0) -> EvalMetrics:
    """Evaluate on uint8 images (N, C, H, W); z is sampled from generators seeded with `seed`, so results repeat."""
    model.eval()
    parts: dict[str, list] = {k: [] for k in PARTS}
    noise = _Noise.seeded(seed, model.log_sigma.device)
    for chunk in images.split(batch_size):
        _evaluate_batch(model, normalizer, chunk, iwae_k, parts, noise)
    return _summarize(parts, model, images, dataset, iwae_k, _beta(config, steps, images[0].numel(), parts))


@dataclass(frozen=True)
class _Noise:
    """One z generator per Monte-Carlo estimate: the ELBO's samples stay the same whatever iwae_k is."""
    elbo: torch.Generator
    iwae: torch.Generator
    mc: torch.Generator  # the ELBO's second draw, for its Monte-Carlo error

    @classmethod
    def seeded(cls, seed: int, device: torch.device) -> "_Noise":
        return cls(*(torch.Generator(device).manual_seed(seed + offset)
                     for offset in (0, IWAE_SEED_OFFSET, MC_SEED_OFFSET)))


PARTS = ("recon", "discrete", "recon_mc", "discrete_mc", "kl", "sq", "mu", "sigma", "iwae", "iwae_discrete",
         "iwae_var", "iwae_discrete_var", "unreach", "sat", "edges")


def _evaluate_batch(model: VAE, normalizer: Normalizer, chunk: torch.Tensor, iwae_k: int, parts: dict,
                    noise: _Noise) -> None:
    """Append one batch's terms to parts; the ELBO's z sample gives both its density and its bin masses."""
    p = pixels(chunk).to(model.log_sigma.device)  # (B, C, H, W) in [0, 1], where the model is
    x = normalizer.forward(p)
    bins = normalizer.grey_level_bins(chunk.to(x.device)) if model.lik.discrete_bits else None
    out = model(x, noise.elbo)
    parts["recon"].append(reconstruction_nats(out, x, model.likelihood))
    if bins is not None:
        parts["discrete"].append(discrete_nll(out, bins, model.likelihood))
    _second_draw(model, x, bins, parts, noise.mc)
    parts["kl"].append(kl_per_dimension(out.mu, out.logvar))  # (B, L)
    parts["mu"].append(out.mu)
    parts["sigma"].append(torch.exp(0.5 * out.logvar))
    x_mean = model.decode(out.mu)
    parts["sq"].append((normalizer.inverse(x_mean).clamp(0, 1) - p).pow(2).flatten(1).mean(1))
    activation = model.cfg.output_activation
    unreachable, saturated = range_fractions(x, model.out_act(model.decode_logits(out.mu)), activation)
    parts["unreach"].append(unreachable * len(x))
    parts["edges"].append(edge_share(chunk) * len(x))
    parts["sat"].append(saturated * len(x))
    if iwae_k:
        bound = iwae_bound(model, x, iwae_k, bins=bins, generator=noise.iwae)
        parts["iwae"].append(bound.nats)
        parts["iwae_discrete"].append(bound.discrete_nats)
        parts["iwae_var"].append(bound.nats_mc_var)
        parts["iwae_discrete_var"].append(bound.discrete_mc_var)


def _second_draw(model: VAE, x: torch.Tensor, bins: tuple[torch.Tensor, torch.Tensor] | None, parts: dict,
                 generator: torch.Generator) -> None:
    """The reconstruction terms at an independent z per image: the pair gives the ELBO's Var_z (the KL is exact)."""
    out = model(x, generator)
    parts["recon_mc"].append(reconstruction_nats(out, x, model.likelihood))
    if bins is not None:
        parts["discrete_mc"].append(discrete_nll(out, bins, model.likelihood))


def _per_image(parts: dict, kl_nats: torch.Tensor, n_dims: int, iwae_k: int, psnr: torch.Tensor) -> PerImage:
    """Each image's ELBO and IWAE bound, in nats and (from the grey-level masses) in bits/dim."""
    elbo = -(torch.cat(parts["recon"]) + kl_nats)
    iwae = torch.cat(parts["iwae"]) if iwae_k else None
    if not parts["discrete"]:
        return PerImage(elbo, iwae, None, None, psnr)
    nll = torch.cat(parts["discrete"]) + kl_nats.double()  # -(E_q[log P(k|z)] - KL), float64
    iwae_bits = bits_per_dim(-torch.cat(parts["iwae_discrete"]), n_dims) if iwae_k else None
    return PerImage(elbo, iwae, bits_per_dim(nll, n_dims), iwae_bits, psnr)


@dataclass(frozen=True)
class _MonteCarlo:
    """The Monte-Carlo standard errors of the four estimates (module docstring); None where not computed."""
    elbo: float | None
    iwae: float | None
    bits: float | None
    iwae_bits: float | None


def _monte_carlo(parts: dict, n_dims: int, iwae_k: int) -> _MonteCarlo:
    """From the ELBO's two draws per image and the IWAE's importance weights."""
    pair = (torch.cat(parts["recon"]).double() - torch.cat(parts["recon_mc"]).double()).pow(2) / 2
    to_bits = (n_dims * math.log(2)) ** 2
    bits = iwae_bits = None
    if parts["discrete"]:
        bits = mc_standard_error((torch.cat(parts["discrete"]) - torch.cat(parts["discrete_mc"])).pow(2) / 2 / to_bits)
        iwae_bits = mc_standard_error(torch.cat(parts["iwae_discrete_var"]) / to_bits) if iwae_k else None
    iwae = mc_standard_error(torch.cat(parts["iwae_var"])) if iwae_k else None
    return _MonteCarlo(mc_standard_error(pair), iwae, bits, iwae_bits)


def _mean(values: torch.Tensor | None) -> float | None:
    return None if values is None else values.mean().item()


def _beta(config: RunConfig | None, steps: int, n_pixels: int, parts: dict) -> float | None:
    """The equivalent beta the run trained with at its last step: reductions (the batch's included),
    schedule, and free bits (no KL pressure on a dimension whose test KL is under them)."""
    if config is None:
        return None
    kl_dims = torch.cat(parts["kl"]).mean(0).tolist()
    return equivalent_beta(config.loss, n_pixels, config.model.latent_dim, config.train.batch_size, steps,
                           kl_dims).value


def _summarize(parts: dict, model: VAE, images: torch.Tensor, dataset: str,
               iwae_k: int, beta: float | None) -> EvalMetrics:
    recon, kl = torch.cat(parts["recon"]), torch.cat(parts["kl"])
    n = len(images)
    sq = torch.cat(parts["sq"])  # (N,) each image's pixel MSE
    var = torch.cat(parts["mu"]).var(0, correction=0)  # (L,)
    n_pixels = images[0].numel()
    est = _per_image(parts, kl.sum(1), n_pixels, iwae_k, psnr_db(sq))
    mc = _monte_carlo(parts, n_pixels, iwae_k)
    bpd, iwae_bpd = _mean(est.bits), _mean(est.iwae_bits)
    kl_dims = kl.mean(0).tolist()
    return EvalMetrics(
        dataset=dataset, n_test=n, elbo_nats=est.elbo.mean().item(), recon_nats=recon.mean().item(),
        kl_nats=kl.sum(1).mean().item(), iwae_nats=_mean(est.iwae), iwae_k=iwae_k,
        bits_per_dim=bpd, bits_per_dim_note="" if bpd is not None else BERNOULLI_BPD_NOTE, mse=sq.mean().item(),
        psnr_db=est.psnr.mean().item(), psnr_pooled_db=psnr_db(sq.mean()).item(),
        elbo_se=standard_error(est.elbo), iwae_se=standard_error(est.iwae), bits_per_dim_se=standard_error(est.bits),
        iwae_bits_per_dim_se=standard_error(est.iwae_bits),
        active_units=count_active_units(var.tolist()), kl_per_dim=kl_dims, posterior_var=var.tolist(),
        posterior_sigma=torch.cat(parts["sigma"]).mean(0).tolist(),
        posterior_collapse=posterior_collapse(var.tolist()), frac_targets_unreachable=sum(parts["unreach"]) / n,
        frac_outputs_saturated=sum(parts["sat"]) / n,
        effective_beta=beta, iwae_bits_per_dim=iwae_bpd, elbo_mc_se=mc.elbo, iwae_mc_se=mc.iwae,
        bits_per_dim_mc_se=mc.bits, iwae_bits_per_dim_mc_se=mc.iwae_bits, per_image=est,
        frac_pixels_at_edges=sum(parts["edges"]) / n)
