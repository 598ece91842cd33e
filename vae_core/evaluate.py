"""Test-set evaluation: ELBO terms in nats/image, bits/dim, pixel-space MSE/PSNR, KL per dimension,
active units (Burda et al. 2015)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from .data import pixels
from .models import VAE
from .normalize import Normalizer
from .objective import kl_per_dimension, reconstruction_nats

ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2015: a unit is active if Cov_x(E_q[z_u]) > 0.01
BERNOULLI_BPD_NOTE = ("Bits/dim is not reported for a Bernoulli likelihood: on grey-level data it is not a "
                      "normalized likelihood of the pixels, so the number would not compare with others.")


@dataclass(frozen=True)
class EvalMetrics:
    dataset: str
    n_test: int
    elbo_nats: float  # mean ELBO per image (higher is better)
    recon_nats: float  # mean -log p(x|z) per image
    kl_nats: float  # mean KL per image
    bits_per_dim: float | None  # -ELBO on the 0..255 grey-level scale, per dimension, in bits
    bits_per_dim_note: str  # why bits_per_dim is None, else ""
    mse: float  # pixel space, [0, 1] scale, reconstructions from the posterior mean, clipped
    psnr_db: float
    active_units: int
    kl_per_dim: list[float]  # nats, mean over the test set
    posterior_var: list[float]  # Cov_x(E_q[z_u]) per dimension, the active-unit statistic

    def to_dict(self) -> dict:
        return asdict(self)


def bits_per_dim(elbo_nats: float, normalizer: Normalizer, shape: tuple[int, int, int]) -> float:
    """Bits per dimension on the grey-level scale from an ELBO in normalized space (nats/image)."""
    c, h, w = shape
    log_p_grey = elbo_nats - normalizer.log_det_to_grey_levels(h, w)  # change of variables x -> k
    return -log_p_grey / (c * h * w * math.log(2))


@torch.no_grad()
def evaluate(model: VAE, normalizer: Normalizer, images: torch.Tensor, *, dataset: str = "",
             batch_size: int = 500, seed: int = 0) -> EvalMetrics:
    """Evaluate on uint8 images (N, C, H, W); z is sampled with a fixed seed, so results repeat."""
    model.eval()
    recon, kl, sq_err, mus, kl_dims = [], [], [], [], []
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for chunk in images.split(batch_size):
            p = pixels(chunk)  # (B, C, H, W) in [0, 1]
            x = normalizer.forward(p)
            out = model(x)
            recon.append(reconstruction_nats(out, x, model.likelihood))
            kl_dims.append(kl_per_dimension(out.mu, out.logvar))  # (B, L)
            p_hat = normalizer.inverse(model.decode(out.mu)).clamp(0, 1)
            sq_err.append((p_hat - p).pow(2).flatten(1).mean(1))
            mus.append(out.mu)
    recon_t, kl_t = torch.cat(recon), torch.cat(kl_dims)
    mse = torch.cat(sq_err).mean().item()
    elbo = -(recon_t.mean() + kl_t.sum(1).mean()).item()
    var = torch.cat(mus).var(0, correction=0)  # (L,)
    bpd, note = None, BERNOULLI_BPD_NOTE
    if model.likelihood != "bernoulli":
        bpd, note = bits_per_dim(elbo, normalizer, tuple(images.shape[1:])), ""
    return EvalMetrics(
        dataset=dataset, n_test=len(images), elbo_nats=elbo, recon_nats=recon_t.mean().item(),
        kl_nats=kl_t.sum(1).mean().item(), bits_per_dim=bpd, bits_per_dim_note=note, mse=mse,
        psnr_db=10 * math.log10(1 / max(mse, 1e-12)),
        active_units=int((var > ACTIVE_UNIT_THRESHOLD).sum()),
        kl_per_dim=kl_t.mean(0).tolist(), posterior_var=var.tolist())
