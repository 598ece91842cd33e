"""The Train page's "as code": the PyTorch it shows, run as written, trains like VAE Lab's own loss."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import ContinuousBernoulli, Normal, kl_divergence

from vae_core.config import LossConfig
from vae_core.loss_code import loss_code
from vae_core.models import VAEOutput
from vae_core.objective import kl_per_dimension, kl_weight, reconstruction_nats, training_loss

B, C, H, L = 6, 1, 4, 3
N_PIXELS = C * H * H
SIGMOID = ("bernoulli", "continuous_bernoulli")

CASES = [
    LossConfig(likelihood="gaussian", sigma=1 / math.sqrt(2), beta=100, recon_batch_reduction="sum",
               kl_reduction="mean"),  # the seed loss: mse_loss(reduction="sum") + 100 * kl.mean()
    LossConfig(likelihood="gaussian", sigma=0.3, recon_reduction="mean", beta=1e-4),
    LossConfig(likelihood="bernoulli"),
    LossConfig(likelihood="bernoulli", recon_reduction="mean", recon_batch_reduction="mean", kl_reduction="mean"),
    LossConfig(likelihood="continuous_bernoulli", kl_batch_reduction="sum", recon_coef=2),
    LossConfig(likelihood="gaussian_learned", sigma=0.2, free_bits=0.3, kl_schedule="linear", kl_warmup_steps=10),
    LossConfig(likelihood="laplace", sigma=0.1, recon_batch_reduction="sum", kl_batch_reduction="sum",
               kl_schedule="cyclical", kl_warmup_steps=8, kl_ramp_fraction=0.5, free_bits=0.2, kl_reduction="mean"),
]


def _leaves(likelihood: str, sigma: float) -> dict:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(B, C, H, H, generator=g).requires_grad_()
    x = torch.rand(B, C, H, H, generator=g)
    mu = torch.randn(B, L, generator=g).requires_grad_()
    logvar = (0.3 * torch.randn(B, L, generator=g)).requires_grad_()
    log_sigma = torch.tensor(math.log(sigma), requires_grad=True)
    x_hat = torch.sigmoid(logits) if likelihood in SIGMOID else logits
    return dict(logits=logits, x=x, mu=mu, logvar=logvar, log_sigma=log_sigma, x_hat=x_hat)


def _ours(cfg: LossConfig, t: dict, step: int) -> torch.Tensor:
    out = VAEOutput(t["x_hat"], t["logits"], t["mu"], t["logvar"], t["mu"], t["log_sigma"])
    recon = reconstruction_nats(out, t["x"], cfg.likelihood)
    return training_loss(recon, kl_per_dimension(t["mu"], t["logvar"]), cfg, cfg.beta * kl_weight(cfg, step),
                         N_PIXELS)


def _theirs(cfg: LossConfig, t: dict, step: int) -> torch.Tensor:
    scope = dict(t, F=F, Normal=Normal, ContinuousBernoulli=ContinuousBernoulli, kl_divergence=kl_divergence,
                 step=step, B=B)
    exec(loss_code(cfg, N_PIXELS, L, B).code, scope)  # the code exactly as the page shows it
    return scope["loss"]


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: f"{c.likelihood}-{c.recon_batch_reduction}-{c.kl_reduction}")
@pytest.mark.parametrize("step", [3, 7])
def test_the_code_shown_has_the_gradients_of_the_training_loss(cfg, step):
    t = _leaves(cfg.likelihood, cfg.sigma)
    wrt = [t["logits"], t["mu"], t["logvar"]] + ([t["log_sigma"]] if cfg.likelihood == "gaussian_learned" else [])
    ours = torch.autograd.grad(_ours(cfg, t, step), wrt, retain_graph=True)
    theirs = torch.autograd.grad(_theirs(cfg, t, step), wrt, retain_graph=True)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_the_seed_loss_reads_as_people_write_it():
    shown = loss_code(CASES[0], 3 * 32 * 32, 8, 64)
    assert 'F.mse_loss(x_hat, x, reduction="sum")' in shown.code and "kl = kl.mean()" in shown.code
    assert "beta = 0.1953" in shown.code  # 100 / (64 * 8)
    assert shown.recon_words == "summed over the 3,072 values of an image, then summed over the batch of 64"
    assert shown.kl_words == "averaged over the 8 latent dimensions of an image, then averaged over the batch"
