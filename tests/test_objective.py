"""The training loss versus the reported ELBO terms: reductions and coefficients (and the effective beta
and implied sigma they amount to), KL schedules, free bits and several z samples."""
import math
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch.distributions import Normal

from vae_core.config import LossConfig, ModelConfig
from vae_core.model.likelihoods import LIKELIHOODS
from vae_core.model.vae import build_model
from vae_core.model.objective import (effective_beta, equivalent_beta, free_bits_words, implied_sigma, kl_per_dimension,
                                kl_weight, loss_terms, reconstruction_nats, reduction_factors, training_loss)

ROOT = Path(__file__).resolve().parents[1]
TINY = ModelConfig(arch="mlp", channels=1, image_size=28, latent_dim=3, hidden_dim=16)
N_PIXELS, LATENT = 1 * 28 * 28, 3


def _model(likelihood="gaussian", sigma=0.3, seed=0):
    torch.manual_seed(seed)
    return build_model(TINY, likelihood, sigma)


def _x(seed=1):
    return torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


# ----------------------------------------------------------------------------- effective beta, implied sigma


def test_effective_beta_hand_worked():
    # recon summed over pixels, KL averaged over 10 dims: loss = recon + 100 * KL / 10 = recon + 10 KL.
    cfg = LossConfig(beta=100, recon_reduction="sum", kl_reduction="mean")
    assert effective_beta(cfg, 3072, 10, 64) == pytest.approx(10.0)
    # recon averaged over 784 pixels, KL summed: loss = recon / 784 + KL = (recon + 784 KL) / 784.
    cfg = LossConfig(beta=1, recon_reduction="mean", kl_reduction="sum")
    assert effective_beta(cfg, 784, 20, 64) == pytest.approx(784.0)
    # recon_coef 2: loss = 2 recon / 784 + KL = (2 / 784)(recon + 392 KL).
    cfg = LossConfig(beta=1, recon_coef=2, recon_reduction="mean", kl_reduction="sum")
    assert effective_beta(cfg, 784, 20, 64) == pytest.approx(392.0)
    # both means, beta 4, 784 pixels, 16 dims: recon / 784 + 4 KL / 16 = (recon + 196 KL) / 784.
    cfg = LossConfig(beta=4, recon_reduction="mean", kl_reduction="mean")
    assert effective_beta(cfg, 784, 16, 64) == pytest.approx(196.0)
    # the ELBO itself
    assert effective_beta(LossConfig(), 784, 16, 64) == 1.0


# (recon over pixels, recon over batch, KL over dims, KL over batch) -> beta_eff, worked by hand for beta = 100,
# 784 pixels, L = 8, at B = 64 and B = 16: beta * (1 or 1/L)(1 or B) / ((1 or 1/784)(1 or B)).
EVERY_REDUCTION = {
    ("sum", "mean", "sum", "mean"): (100.0, 100.0),  # the ELBO's reductions, beta 100
    ("sum", "sum", "sum", "mean"): (100 / 64, 100 / 16),  # mse_loss(reduction="sum") + 100 * KL.sum(1).mean()
    ("sum", "sum", "mean", "mean"): (0.1953125, 0.78125),  # the seed loss: 100 / (64 * 8), 100 / (16 * 8)
    ("sum", "mean", "mean", "mean"): (12.5, 12.5),  # what the batch-blind display said for the seed loss
    ("sum", "sum", "sum", "sum"): (100.0, 100.0),  # both summed over the batch: B cancels
    ("sum", "sum", "mean", "sum"): (12.5, 12.5),
    ("sum", "mean", "sum", "sum"): (6400.0, 1600.0),
    ("sum", "mean", "mean", "sum"): (800.0, 200.0),
    ("mean", "mean", "sum", "mean"): (78400.0, 78400.0),  # mse_loss() + 100 * KL.sum(1).mean()
    ("mean", "mean", "mean", "mean"): (9800.0, 9800.0),  # mse_loss() + 100 * kl.mean()
    ("mean", "sum", "sum", "mean"): (1225.0, 4900.0),
    ("mean", "sum", "mean", "mean"): (153.125, 612.5),
    ("mean", "mean", "sum", "sum"): (5017600.0, 1254400.0),
    ("mean", "mean", "mean", "sum"): (627200.0, 156800.0),
    ("mean", "sum", "sum", "sum"): (78400.0, 78400.0),
    ("mean", "sum", "mean", "sum"): (9800.0, 9800.0),
}


@pytest.mark.parametrize("reductions", EVERY_REDUCTION)
def test_effective_beta_of_every_reduction_at_two_batch_sizes(reductions):
    recon_px, recon_b, kl_dims, kl_b = reductions
    cfg = LossConfig(beta=100, recon_reduction=recon_px, recon_batch_reduction=recon_b, kl_reduction=kl_dims,
                     kl_batch_reduction=kl_b)
    for batch, expected in zip((64, 16), EVERY_REDUCTION[reductions]):
        assert effective_beta(cfg, 784, 8, batch) == pytest.approx(expected, rel=1e-12)


SEED_LOSS = LossConfig(likelihood="gaussian", sigma=1 / math.sqrt(2), beta=100, recon_reduction="sum",
                       recon_batch_reduction="sum", kl_reduction="mean", kl_batch_reduction="mean")


def test_the_seed_loss_is_the_code_people_write():
    # F.mse_loss(x_hat, x, reduction="sum") + 100 * kl_divergence(q, p).mean(), as written, has the same
    # gradients as VAE Lab's training loss for SEED_LOSS (they differ by the Gaussian's constant only), and
    # those are beta_eff = 100 / (B L) times the proper ELBO's, up to the loss's own scale.
    model, x = _model("gaussian", 1 / math.sqrt(2)), _x()
    ours = loss_terms(model, x, SEED_LOSS, generator=torch.Generator().manual_seed(3))
    out = ours.out
    q, p = Normal(out.mu, torch.exp(0.5 * out.logvar)), Normal(0.0, 1.0)
    theirs = torch.nn.functional.mse_loss(out.x_hat, x, reduction="sum") + 100 * torch.distributions.kl_divergence(
        q, p).mean()
    constant = len(x) * N_PIXELS * (math.log(1 / math.sqrt(2)) + 0.5 * math.log(2 * math.pi))
    assert ours.loss.item() == pytest.approx(theirs.item() + constant, rel=1e-6)
    g_ours = torch.autograd.grad(ours.loss, out.x_hat, retain_graph=True)[0]
    g_theirs = torch.autograd.grad(theirs, out.x_hat, retain_graph=True)[0]
    torch.testing.assert_close(g_ours, g_theirs)
    beta_eff = effective_beta(SEED_LOSS, N_PIXELS, LATENT, len(x))
    assert beta_eff == pytest.approx(100 / (5 * 3))
    elbo_loss = (ours.recon_nats + beta_eff * ours.kl_nats).mean()  # the proper per-image ELBO with beta_eff
    scale = len(x)  # the seed loss sums the reconstruction over the batch: B times a per-image loss
    for t in (out.mu, out.logvar):
        torch.testing.assert_close(torch.autograd.grad(ours.loss, t, retain_graph=True)[0],
                                   scale * torch.autograd.grad(elbo_loss, t, retain_graph=True)[0])


@pytest.mark.parametrize("reductions", EVERY_REDUCTION)
def test_every_reduction_is_a_scaled_elbo_with_its_effective_beta(reductions):
    recon_px, recon_b, kl_dims, kl_b = reductions
    cfg = LossConfig(likelihood="gaussian", sigma=0.5, beta=3, recon_coef=2, recon_reduction=recon_px,
                     recon_batch_reduction=recon_b, kl_reduction=kl_dims, kl_batch_reduction=kl_b)
    model, x = _model("gaussian", 0.5), _x()
    terms = loss_terms(model, x, cfg, generator=torch.Generator().manual_seed(4))
    beta_eff = effective_beta(cfg, N_PIXELS, LATENT, len(x))
    f = reduction_factors(cfg, N_PIXELS, LATENT, len(x))
    elbo_loss = cfg.recon_coef * f.recon * (terms.recon_nats + beta_eff * terms.kl_nats).mean()
    assert terms.loss.item() == pytest.approx(elbo_loss.item(), rel=1e-5)


def test_equivalent_beta_of_a_run_counts_the_schedule_and_free_bits():
    cfg = LossConfig(beta=2, kl_schedule="linear", kl_warmup_steps=100, free_bits=0.5)
    eq = equivalent_beta(cfg, 784, 4, 64, step=51, kl_per_dim=[0.1, 0.7, 0.49, 3.0])
    assert eq.reductions == 2.0 and eq.schedule_weight == pytest.approx(0.5)  # the 51st step ran at step index 50
    assert eq.value == pytest.approx(1.0) and eq.free_dims == 2 and eq.latent_dim == 4
    done = equivalent_beta(cfg, 784, 4, 64, step=1000, kl_per_dim=[1.0] * 4)
    assert done.value == 2.0 and done.free_dims == 0
    assert equivalent_beta(LossConfig(), 784, 4, 64, step=0).value == 1.0


def test_free_bits_put_beta_0_on_the_dimensions_they_hold():
    """free_bits 5 on 10 dimensions: not "β = 1", but β = 0 on those under 5 nats and 1 on the others."""
    cfg = LossConfig(free_bits=5.0)
    eq = equivalent_beta(cfg, 784, 10, 64, step=1000, kl_per_dim=[1.0] * 7 + [6.0] * 3)
    assert (eq.free_dims, eq.latent_dim, eq.free_bits, eq.kl_known) == (7, 10, 5.0, True)
    assert eq.words() == ("β = 0 on 7 of 10 dimensions (KL under the free bits' 5 nats: no gradient), "
                          "β = 1 on the other 3")
    every = equivalent_beta(cfg, 784, 10, 64, step=1000, kl_per_dim=[1.0] * 10).words()
    assert every.startswith("β = 0 on 10 of 10 dimensions") and "other" not in every
    assert "β = 1 on all 10 dimensions" in equivalent_beta(cfg, 784, 10, 64, step=1000, kl_per_dim=[6.0] * 10).words()
    assert equivalent_beta(LossConfig(), 784, 10, 64, step=1000, kl_per_dim=[1.0] * 10).words() == "β = 1"


def test_before_training_free_bits_are_said_to_make_beta_0_under_them():
    before = equivalent_beta(LossConfig(free_bits=5.0), 784, 10, 64, step=0)
    assert not before.kl_known and before.free_dims == 0
    assert before.words() == "β = 1; " + free_bits_words(5.0)
    assert free_bits_words(5.0) == "free bits of 5 nats make β = 0 on any dimension whose KL is under 5 nats"
    assert free_bits_words(0.0) == ""


def test_the_train_form_says_where_free_bits_make_beta_0(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("app_pages/train.py").run()
    assert not any("free bits" in i.value for i in at.info if "Equivalent β" in i.value)
    at.number_input(key="cfg_free_bits").set_value(5.0).run()
    info = next(i.value for i in at.info if "Equivalent β" in i.value)
    assert "free bits of 5 nats make β = 0 on any dimension whose KL is under 5 nats" in info


def test_the_help_says_the_learned_sigma_is_not_floored_and_it_is_not():
    lik = LIKELIHOODS["gaussian_learned"]
    assert "not floored" in lik.description and "not floored" in lik.sigma_label
    model = _model("gaussian_learned", sigma=1e-3)
    floor = model.log_sigma_floor.max().item()  # a quarter grey level, where optimal and per-pixel σ stop
    with torch.no_grad():
        model.log_sigma.fill_(floor - 3.0)  # as far under it as a long run could drive the parameter
        out = model(_x())
    assert out.log_sigma.item() == pytest.approx(floor - 3.0)  # the likelihood reads it as it is


def test_implied_sigma_hand_worked():
    # mse_loss(reduction="sum") is SSE = SSE / (2 sigma^2) with sigma = 1/sqrt(2). With an effective beta
    # of 10, SSE/(2 sigma^2) + 10 KL = 10 (SSE / (2 * 10 sigma^2) + KL): a proper ELBO with
    # sigma' = sigma sqrt(10) = sqrt(10) / sqrt(2) = sqrt(5) = 2.2360...
    cfg = LossConfig(likelihood="gaussian", sigma=1 / math.sqrt(2), beta=100, kl_reduction="mean")
    assert implied_sigma(cfg, 3072, 10, 64) == pytest.approx(math.sqrt(5), rel=1e-12)
    assert implied_sigma(cfg, 3072, 10, 64) == pytest.approx(2.2360679, rel=1e-7)
    # recon mean over 784 pixels, beta 1, sigma 0.1: beta_eff 784, sigma' = 0.1 * 28 = 2.8
    cfg = LossConfig(likelihood="gaussian", sigma=0.1, recon_reduction="mean")
    assert implied_sigma(cfg, 784, 8, 64) == pytest.approx(2.8)
    # the proper ELBO implies its own sigma
    assert implied_sigma(LossConfig(likelihood="gaussian", sigma=0.3), 784, 8, 64) == pytest.approx(0.3)
    assert implied_sigma(LossConfig(likelihood="gaussian", beta=0.0), 784, 8, 64) == math.inf
    for likelihood in ("bernoulli", "continuous_bernoulli", "gaussian_learned", "gaussian_optimal",
                       "gaussian_pixel", "laplace"):
        assert implied_sigma(LossConfig(likelihood=likelihood, beta=100), 784, 8, 64) is None


# ----------------------------------------------------------------------------- the loss the reductions make

REDUCTION_CASES = [
    dict(),
    dict(recon_reduction="mean"),
    dict(kl_reduction="mean", beta=4.0),
    dict(recon_reduction="mean", kl_reduction="mean", recon_coef=3.0, beta=0.5),
    dict(recon_coef=0.25, beta=2.0, kl_schedule="linear", kl_warmup_steps=8),
]


@pytest.mark.parametrize("likelihood", ["gaussian", "bernoulli"])
def test_loss_is_the_configured_reduction_of_the_reported_terms(likelihood):
    model, x = _model(likelihood), _x()
    reported = None
    for case in REDUCTION_CASES:
        cfg = LossConfig(likelihood=likelihood, sigma=0.3, **case)
        step = 2
        torch.manual_seed(11)
        terms = loss_terms(model, x, cfg, step)
        f_r = 1 / N_PIXELS if cfg.recon_reduction == "mean" else 1.0
        f_k = 1 / LATENT if cfg.kl_reduction == "mean" else 1.0
        beta = cfg.beta * (step / 8 if cfg.kl_schedule == "linear" else 1.0)  # linear: 2/8 of the way
        assert terms.beta == pytest.approx(beta)
        expected = cfg.recon_coef * f_r * terms.recon_nats.mean() + beta * f_k * terms.kl_nats.mean()
        torch.testing.assert_close(terms.loss, expected, atol=1e-6, rtol=1e-6)
        # kl_per_dim is the batch mean per dimension; it sums to the mean KL per image
        torch.testing.assert_close(terms.kl_per_dim.sum(), terms.kl_nats.mean(), atol=1e-6, rtol=1e-6)
        # the reported terms are the ELBO's, bit for bit, whatever the loss does with them
        if reported is None:
            reported = terms
        assert torch.equal(terms.recon_nats, reported.recon_nats)
        assert torch.equal(terms.kl_nats, reported.kl_nats)
        assert torch.equal(terms.elbo_nats, reported.elbo_nats)
    # ... and they are nats: the Gaussian's recon includes its constants (not just the SSE)
    if likelihood == "gaussian":
        out = reported.out
        ref = -Normal(out.x_hat, 0.3).log_prob(x).flatten(1).sum(1)
        torch.testing.assert_close(reported.recon_nats, ref, atol=1e-2, rtol=1e-5)


def test_recon_mean_equals_recon_sum_with_beta_times_n_pixels_in_gradient():
    # recon/n + b KL = (recon + b n KL) / n: the gradients differ by exactly the factor 1/n.
    b = 0.7
    model, x = _model("gaussian"), _x()
    grads = []
    for cfg in (LossConfig(likelihood="gaussian", sigma=0.3, beta=b, recon_reduction="mean"),
                LossConfig(likelihood="gaussian", sigma=0.3, beta=b * N_PIXELS, recon_reduction="sum")):
        model.zero_grad()
        torch.manual_seed(5)  # the same z for both
        loss_terms(model, x, cfg).loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for g_mean, g_sum in zip(*grads):
        torch.testing.assert_close(g_mean * N_PIXELS, g_sum, atol=1e-4, rtol=1e-4)
    flat = torch.cat([g.flatten() for g in grads[1]])
    assert flat.abs().max() > 1e-2  # the comparison is not between zeros


# ----------------------------------------------------------------------------- KL schedules


def test_constant_schedule_is_one():
    cfg = LossConfig(kl_schedule="constant", kl_warmup_steps=10)
    assert all(kl_weight(cfg, s) == 1.0 for s in (0, 1, 5, 10, 99, 10**6))


def test_linear_warmup():
    cfg = LossConfig(kl_schedule="linear", kl_warmup_steps=100)
    assert kl_weight(cfg, 0) == 0.0
    assert kl_weight(cfg, 25) == pytest.approx(0.25)
    assert kl_weight(cfg, 50) == pytest.approx(0.5)
    assert kl_weight(cfg, 100) == 1.0
    assert kl_weight(cfg, 101) == 1.0
    assert kl_weight(cfg, 10**6) == 1.0
    weights = [kl_weight(cfg, s) for s in range(101)]
    assert all(b - a == pytest.approx(0.01) for a, b in zip(weights, weights[1:]))  # a straight line


def test_cyclical_schedule_fu_et_al():
    # Period P = 100, ramp fraction R = 0.5: 0 at each cycle start, 1 from R*P = 50 to P - 1 = 99,
    # linear from 0 to 1 over steps 0..50 of each cycle.
    P = 100
    cfg = LossConfig(kl_schedule="cyclical", kl_warmup_steps=P, kl_ramp_fraction=0.5)
    for cycle in range(3):
        s0 = cycle * P
        assert kl_weight(cfg, s0) == 0.0
        assert kl_weight(cfg, s0 + 10) == pytest.approx(0.2)
        assert kl_weight(cfg, s0 + 25) == pytest.approx(0.5)
        assert all(kl_weight(cfg, s0 + t) == 1.0 for t in range(50, P))
        ramp = [kl_weight(cfg, s0 + t) for t in range(51)]
        assert all(b - a == pytest.approx(0.02) for a, b in zip(ramp, ramp[1:]))
    assert [kl_weight(cfg, s) for s in range(P)] == [kl_weight(cfg, s + 7 * P) for s in range(P)]  # periodic
    # a ramp fraction that does not land on a step: P = 10, R = 0.25 -> 1 from step 2.5 on
    short = LossConfig(kl_schedule="cyclical", kl_warmup_steps=10, kl_ramp_fraction=0.25)
    assert [kl_weight(short, s) for s in range(12)] == pytest.approx([0, 0.4, 0.8, 1, 1, 1, 1, 1, 1, 1, 0, 0.4])
    # ramp fraction 1: a sawtooth that reaches (P-1)/P just before each restart
    saw = LossConfig(kl_schedule="cyclical", kl_warmup_steps=10, kl_ramp_fraction=1.0)
    assert kl_weight(saw, 9) == pytest.approx(0.9) and kl_weight(saw, 10) == 0.0


def test_schedule_scales_the_kl_in_the_loss_not_the_reported_kl():
    model, x = _model("gaussian"), _x()
    cfg = LossConfig(likelihood="gaussian", sigma=0.3, beta=2.0, kl_schedule="linear", kl_warmup_steps=4)
    torch.manual_seed(3)
    start = loss_terms(model, x, cfg, step=0)
    torch.manual_seed(3)
    later = loss_terms(model, x, cfg, step=3)
    assert start.beta == 0.0 and later.beta == pytest.approx(1.5)
    torch.testing.assert_close(start.loss, start.recon_nats.mean())
    torch.testing.assert_close(later.loss, later.recon_nats.mean() + 1.5 * later.kl_nats.mean())
    assert torch.equal(start.kl_nats, later.kl_nats)


# ----------------------------------------------------------------------------- free bits


def test_free_bits_floor_value_and_gradient():
    lam = 0.5
    # 4 images x 3 dims. Dim 0: mu = 0.1, sigma = 1 -> KL = mu^2 / 2 = 0.005 < lam.
    # Dim 1: mu = 2, sigma = 1 -> KL = 2 > lam.  Dim 2: mu = 0, var = e -> KL = 0.5 (e - 1 - 1) = 0.359 < lam.
    mu = torch.tensor([[0.1, 2.0, 0.0]] * 4, dtype=torch.float64, requires_grad=True)
    logvar = torch.tensor([[0.0, 0.0, 1.0]] * 4, dtype=torch.float64, requires_grad=True)
    recon = torch.zeros(4, dtype=torch.float64)
    kl_dims = kl_per_dimension(mu, logvar)
    torch.testing.assert_close(kl_dims.mean(0), torch.tensor([0.005, 2.0, 0.5 * (math.e - 2)], dtype=torch.float64))
    for kl_reduction, f_k in (("sum", 1.0), ("mean", 1 / 3)):
        mu.grad = logvar.grad = None
        cfg = LossConfig(free_bits=lam, kl_reduction=kl_reduction)
        loss = training_loss(recon, kl_dims, cfg, beta=1.0, n_pixels=10)
        # dims 0 and 2 contribute exactly lam each, dim 1 its KL
        assert loss.item() == pytest.approx(f_k * (lam + 2.0 + lam), abs=1e-12)
        loss.backward(retain_graph=True)
        # no gradient through the KL of the floored dims; dim 1: d/dmu (mean_b mu^2 / 2) = mu / B = 0.5
        assert (mu.grad[:, [0, 2]] == 0).all() and (logvar.grad[:, [0, 2]] == 0).all()
        torch.testing.assert_close(mu.grad[:, 1], torch.full((4,), f_k * 2.0 / 4, dtype=torch.float64))
        # at sigma = 1, d/dlogvar of -0.5 (1 + logvar - e^logvar) = 0.5 (e^logvar - 1) = 0
        torch.testing.assert_close(logvar.grad[:, 1], torch.zeros(4, dtype=torch.float64))
    # free_bits = 0: every dimension its own KL, and gradients for all
    mu.grad = None
    loss = training_loss(recon, kl_dims, LossConfig(), beta=1.0, n_pixels=10)
    assert loss.item() == pytest.approx(0.005 + 2.0 + 0.5 * (math.e - 2), abs=1e-12)
    loss.backward()
    torch.testing.assert_close(mu.grad[:, 0], torch.full((4,), 0.1 / 4, dtype=torch.float64))


def test_free_bits_apply_to_the_batch_mean_not_each_image():
    # Kingma et al. 2016 floor the minibatch average per dimension: one image with KL 2 and one with 0
    # average to 1 > lam = 0.5, so the dimension is not floored and both images get gradient.
    mu = torch.tensor([[2.0], [0.0]], dtype=torch.float64, requires_grad=True)
    logvar = torch.zeros(2, 1, dtype=torch.float64, requires_grad=True)
    loss = training_loss(torch.zeros(2, dtype=torch.float64), kl_per_dimension(mu, logvar),
                         LossConfig(free_bits=0.5), beta=1.0, n_pixels=1)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    torch.testing.assert_close(mu.grad, torch.tensor([[1.0], [0.0]], dtype=torch.float64))


def test_free_bits_in_loss_terms_leave_the_reported_kl_alone():
    model, x = _model("gaussian"), _x()
    torch.manual_seed(4)
    plain = loss_terms(model, x, LossConfig(likelihood="gaussian", sigma=0.3))
    torch.manual_seed(4)
    floored = loss_terms(model, x, LossConfig(likelihood="gaussian", sigma=0.3, free_bits=50.0))
    assert torch.equal(plain.kl_nats, floored.kl_nats)
    assert (plain.kl_per_dim < 50).all()  # an untrained model: every dimension below 50 nats
    torch.testing.assert_close(floored.loss, floored.recon_nats.mean() + 50.0 * LATENT)


# ----------------------------------------------------------------------------- several z samples


@pytest.mark.parametrize("likelihood", ["gaussian", "gaussian_optimal", "bernoulli"])
def test_z_samples_average_the_reconstruction_over_samples(likelihood):
    S = 4
    model, x = _model(likelihood), _x()
    torch.manual_seed(21)
    terms = loss_terms(model, x, LossConfig(likelihood=likelihood, sigma=0.3, z_samples=S))
    # the same draws by hand: encode once, then S reparameterized samples in order
    torch.manual_seed(21)
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    per_sample, zs = [], []
    for _ in range(S):
        z = mu + std * torch.randn_like(std)
        zs.append(z)
        per_sample.append(reconstruction_nats(model.output_at(z, mu, logvar), x, likelihood))
    per_sample = torch.stack(per_sample)  # (S, B)
    torch.testing.assert_close(terms.recon_nats, per_sample.mean(0), atol=1e-3, rtol=1e-6)
    torch.testing.assert_close(terms.out.z, zs[0], atol=0, rtol=0)  # out is the first sample's pass
    assert (per_sample.std(0) > 0).all()  # the samples really differ, so the mean is not one of them
    # the KL is analytic: the sample count does not change it
    torch.manual_seed(99)
    one = loss_terms(model, x, LossConfig(likelihood=likelihood, sigma=0.3, z_samples=1))
    torch.testing.assert_close(one.kl_nats, terms.kl_nats, atol=0, rtol=0)


def test_more_z_samples_shrink_the_spread_of_the_reconstruction_estimate():
    model, x = _model("gaussian", sigma=0.1), _x()
    spread = {}
    for S in (1, 8):
        runs = []
        for seed in range(12):
            torch.manual_seed(seed)
            with torch.no_grad():
                runs.append(loss_terms(model, x, LossConfig(likelihood="gaussian", sigma=0.1, z_samples=S)).recon_nats)
        spread[S] = torch.stack(runs).std(0).mean().item()
    assert spread[8] < 0.6 * spread[1]  # ~1/sqrt(8) = 0.35 in expectation
