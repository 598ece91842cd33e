"""The Train page's "as code": the PyTorch it shows, run as written, trains like VAE Lab's own loss."""
import dataclasses
import functools
import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import ContinuousBernoulli, Normal, kl_divergence

from vae_core.config import LossConfig, ModelConfig, field_options
from vae_core.model.likelihoods import LIKELIHOODS, optimal_log_sigma
from vae_core.model.loss_code import MSE_SIGMA, loss_code
from vae_core.model.vae import VAE, VAEOutput, build_model
from vae_core.model.objective import kl_per_dimension, kl_weight, reconstruction_nats, training_loss

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
                 step=step)
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


# ----------------------------------------------------------------------------- the whole grid, on a real model
# Every loss configuration the form offers, its code run on a real VAE's forward pass against training_loss.
REDUCTIONS = ("recon_reduction", "recon_batch_reduction", "kl_reduction", "kl_batch_reduction")
SIGMAS = (0.1, MSE_SIGMA, 1.0)
BETAS = (1.0, 0.05)
FREE_BITS = (0.0, 0.012)  # 0.012 nats: between the batch-mean KLs of this model's dimensions (checked below)
GRID_MODEL = ModelConfig(arch="mlp", channels=1, image_size=28, latent_dim=4, hidden_dim=16)
GRID_B = 6
GRID_PIXELS = GRID_MODEL.channels * GRID_MODEL.image_size**2
GRID = [dict(likelihood=lik, sigma=s, **dict(zip(REDUCTIONS, r)), beta=b, free_bits=fb)
        for lik in LIKELIHOODS for s in SIGMAS
        for r in itertools.product(*(field_options(LossConfig, name) for name in REDUCTIONS))
        for b in BETAS for fb in FREE_BITS]


@functools.cache
def _model(likelihood: str, sigma: float) -> VAE:
    """Built in float64, its sigma buffer included: float32's log(0.1) would be a sigma the code does not show."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return build_model(GRID_MODEL, likelihood, sigma, seed=0)
    finally:
        torch.set_default_dtype(default)


@functools.cache
def _forward(likelihood: str, sigma: float, seed: int) -> tuple[torch.Tensor, VAEOutput]:
    """Two seeds are two batches: two values of a loss whose constants cancel in their difference."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(GRID_B, GRID_MODEL.channels, GRID_MODEL.image_size, GRID_MODEL.image_size, generator=g,
                   dtype=torch.float64)
    return x, _model(likelihood, sigma)(x, g)


def _training(cfg: LossConfig, seed: int) -> torch.Tensor:
    x, out = _forward(cfg.likelihood, cfg.sigma, seed)
    recon = reconstruction_nats(out, x, cfg.likelihood)
    return training_loss(recon, kl_per_dimension(out.mu, out.logvar), cfg, cfg.beta, x[0].numel())


def _shown(code: str, cfg: LossConfig, seed: int) -> torch.Tensor:
    x, out = _forward(cfg.likelihood, cfg.sigma, seed)
    floor = _model(cfg.likelihood, cfg.sigma).log_sigma_floor.exp().max()
    scope = dict(F=F, Normal=Normal, ContinuousBernoulli=ContinuousBernoulli, kl_divergence=kl_divergence, x=x,
                 x_hat=out.x_hat, logits=out.logits, log_sigma=out.log_sigma, mu=out.mu, logvar=out.logvar,
                 sigma_floor=floor)
    exec(code, scope)
    return scope["loss"]


def _assert_code_trains_as(code: str, cfg: LossConfig) -> None:
    """The code's loss is training's, or where it says "+ constants", differs from it by one constant."""
    theirs, ours = _shown(code, cfg, 1), _training(cfg, 1)
    if "+ constants" in code:  # a constant cancels in the difference of two batches' losses
        theirs, ours = theirs - _shown(code, cfg, 2), ours - _training(cfg, 2)
    assert abs(ours.item()) > 1e-3, "the comparison must not be between two near-zero numbers"
    torch.testing.assert_close(theirs, ours, rtol=1e-9, atol=0)
    params = [p for p in _model(cfg.likelihood, cfg.sigma).parameters() if p.requires_grad]
    ours_grad = torch.autograd.grad(_training(cfg, 1), params, retain_graph=True)
    for a, b in zip(torch.autograd.grad(_shown(code, cfg, 1), params, retain_graph=True), ours_grad):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)  # torch's continuous Bernoulli near 1/2 differs


@pytest.mark.parametrize("fields", GRID, ids=lambda d: "-".join(f"{v:.3g}" if isinstance(v, float) else str(v)
                                                                  for v in d.values()))
def test_the_code_shown_runs_and_computes_the_training_loss(fields):
    cfg = LossConfig(**fields)
    _assert_code_trains_as(loss_code(cfg, GRID_PIXELS, GRID_MODEL.latent_dim, GRID_B).code, cfg)


def test_the_grid_is_every_option_and_free_bits_bind_on_some_dimensions_only():
    assert len(GRID) == len(LIKELIHOODS) * len(SIGMAS) * 2**len(REDUCTIONS) * len(BETAS) * len(FREE_BITS) == 1536
    assert set(LIKELIHOODS) == set(field_options(LossConfig, "likelihood"))
    for seed in (1, 2):
        _, out = _forward("bernoulli", 1.0, seed)
        kl = kl_per_dimension(out.mu, out.logvar).mean(0)
        assert (kl < max(FREE_BITS)).any() and (kl > max(FREE_BITS)).any()


@pytest.mark.parametrize("name, value", [*((n, "sum") for n in REDUCTIONS), *((n, "mean") for n in REDUCTIONS),
                                         ("free_bits", 0.012), ("beta", 2.0), ("sigma", 0.2)])
def test_the_comparison_tells_a_different_loss_apart(name, value):
    other = {"sum": "mean", "mean": "sum"}
    trained = LossConfig(likelihood="gaussian", sigma=0.1, **({name: other[value]} if name in REDUCTIONS else {}))
    shown = loss_code(dataclasses.replace(trained, **{name: value}), GRID_PIXELS, GRID_MODEL.latent_dim, GRID_B).code
    with pytest.raises(AssertionError):
        _assert_code_trains_as(shown, trained)


def test_the_optimal_sigma_is_floored_as_in_training():
    cfg = LossConfig(likelihood="gaussian_optimal")
    model = _model(cfg.likelihood, cfg.sigma)
    x, near = _forward(cfg.likelihood, cfg.sigma, 1)[0], _forward(cfg.likelihood, cfg.sigma, 1)[0] + 1e-5
    setup = loss_code(cfg, GRID_PIXELS, GRID_MODEL.latent_dim, GRID_B).code.splitlines()[0]
    scope = dict(x=x, x_hat=near, sigma_floor=model.log_sigma_floor.exp().max())
    exec(setup, scope)  # an RMSE of 1e-5, under the floor of a quarter grey level
    assert setup.startswith("sigma = ") and scope["sigma"] == scope["sigma_floor"]
    torch.testing.assert_close(scope["sigma"].log(), optimal_log_sigma(x, near, model.log_sigma_floor))
