"""Decoder likelihoods' densities in nats with every constant: the continuous Bernoulli (log-density, normalizing
constant, mean), Laplace, per-pixel and optimal-sigma Gaussians.

References are torch.distributions in float64 or numerical integration; test_maths.py already covers
the fixed-sigma Gaussian, the Bernoulli and the KL.
"""
import math

import pytest
import torch
from torch.distributions import ContinuousBernoulli, Laplace, Normal

from vae_core.model.likelihoods import (UNIT_LOG_SIGMA_FLOOR, continuous_bernoulli_log_norm,
                                  continuous_bernoulli_log_prob, continuous_bernoulli_mean, gaussian_log_prob,
                                  laplace_log_prob, optimal_log_sigma)

F64 = torch.float64
BAND = 1e-2  # |lambda - 0.5| below which the library switches to its Taylor expansions


# lambda = sigmoid(logits) over its whole range: exactly 0.5, on both sides of 0.5 at the distances the
# issue names (inside and just outside the Taylor band), moderate values, and near 0 / 1 (logits +-15).
NEAR_HALF = (0.0, 1e-6, 1e-3, 0.0099, 0.0101, 0.2)
LAMBDAS = sorted({0.5 + s * d for d in NEAR_HALF for s in (1, -1)} | {0.01, 0.1, 0.3, 0.7, 0.9, 0.99})


def _logits(dtype=F64) -> torch.Tensor:
    """Logits of LAMBDAS, plus +-5 and +-15 (lambda within 3e-7 of 0 or 1)."""
    lam = torch.tensor(LAMBDAS, dtype=F64)
    extra = torch.tensor([-15.0, -5.0, 5.0, 15.0], dtype=F64)
    return torch.cat([torch.logit(lam), extra]).to(dtype)


def _grid(n: int = 20001) -> torch.Tensor:
    return torch.linspace(0, 1, n, dtype=F64)


# ----------------------------------------------------------------------------- continuous Bernoulli


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_continuous_bernoulli_log_prob_matches_torch(dtype):
    # The reference is torch's ContinuousBernoulli in float64 (its float32 log-normalizer loses ~1e-2 at
    # logits 15, where it takes log(1 - p) of a rounded p); ours must hold 1e-5 in float32 as well.
    logits = _logits()
    x = torch.tensor([0.0, 1e-4, 0.1, 0.25, 0.5, 0.75, 0.9, 1 - 1e-4, 1.0], dtype=F64)
    L, X = torch.meshgrid(logits, x, indexing="ij")
    ref = ContinuousBernoulli(logits=L).log_prob(X)
    ours = continuous_bernoulli_log_prob(X.to(dtype), L.to(dtype))
    assert ours.dtype == dtype and ours.shape == X.shape
    torch.testing.assert_close(ours.double(), ref, atol=1e-5, rtol=0)


def test_continuous_bernoulli_log_prob_is_bce_plus_log_normalizer():
    # log p(x) = x log lam + (1 - x) log(1 - lam) + log C(lam): at lambda = 0.5, C = 2 (the uniform density 1).
    x = torch.rand(7, dtype=F64)
    zero = torch.zeros(7, dtype=F64)
    torch.testing.assert_close(continuous_bernoulli_log_prob(x, zero), torch.zeros(7, dtype=F64), atol=1e-12, rtol=0)
    torch.testing.assert_close(continuous_bernoulli_log_norm(zero), torch.full((7,), math.log(2), dtype=F64))


def test_continuous_bernoulli_integrates_to_one():
    # int_0^1 p(x) dx = 1 for every lambda, including those handled by the Taylor expansion near 0.5.
    # Trapezoid error on 20001 points: h^2/12 * |p'(1) - p'(0)| <= 2.5e-9 / 12 * logit^2 * C ~ 1e-7 at logit 15.
    logits = _logits()[:, None]
    x = _grid()
    density = continuous_bernoulli_log_prob(x.expand(len(logits), -1), logits.expand(-1, len(x))).exp()
    total = torch.trapezoid(density, x, dim=1)
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-6, rtol=0)


@pytest.mark.parametrize("side", [1, -1])
def test_continuous_bernoulli_log_norm_is_continuous_at_the_taylor_band_edge(side):
    # Just inside |lambda - 0.5| = 1e-2 the Taylor series answers, just outside the closed form; the two
    # must meet. The slope d log C / d lambda ~ 8/3 * 0.01, so a 2e-12 step in lambda moves it by ~5e-14;
    # the series' truncation error there is ~0.089 * (2 * 0.01)^6 ~ 6e-12.
    inside = torch.logit(torch.tensor([0.5 + side * (BAND - 1e-12)], dtype=F64))
    outside = torch.logit(torch.tensor([0.5 + side * (BAND + 1e-12)], dtype=F64))
    a, b = continuous_bernoulli_log_norm(inside), continuous_bernoulli_log_norm(outside)
    assert abs(a.item() - b.item()) < 1e-9
    # ... and both equal the closed form log(2 atanh(1 - 2 lam) / (1 - 2 lam)) evaluated in float64.
    lam = torch.sigmoid(inside)
    closed = torch.log(2 * torch.atanh(1 - 2 * lam) / (1 - 2 * lam))
    torch.testing.assert_close(a, closed, atol=1e-9, rtol=0)


def test_continuous_bernoulli_log_norm_has_finite_correct_gradients_everywhere():
    # torch.where must not leak NaN/inf gradients from the unused branch (0/0 at lambda = 0.5).
    logits = torch.cat([torch.zeros(1, dtype=F64), _logits()]).requires_grad_()
    continuous_bernoulli_log_norm(logits).sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[0].item() == 0.0  # log C is even in (lambda - 0.5): flat at 0.5
    logits.grad = None
    continuous_bernoulli_mean(logits).sum().backward()
    assert torch.isfinite(logits.grad).all()
    # d mean / d logits at 0: (1/3) * d lambda / d logits = (1/3) * (1/4) = 1/12 (the variance of U(0, 1))
    assert logits.grad[0].item() == pytest.approx(1 / 12, rel=1e-12)
    # away from the band edge, the gradient is the derivative of the closed form / series
    pts = torch.logit(torch.tensor([0.5 + 1e-3, 0.5 - 0.005, 0.3, 0.8], dtype=F64)).requires_grad_()
    assert torch.autograd.gradcheck(continuous_bernoulli_log_norm, (pts,))
    assert torch.autograd.gradcheck(continuous_bernoulli_mean, (pts,))


def test_continuous_bernoulli_mean_matches_torch_and_integration():
    # float64: E[x] from torch's closed form / cubic Taylor, and from int_0^1 x p(x) dx. The library's
    # series near 0.5 is first order, 0.5 + d/3; it omits 16/45 d^3 = 3.5e-7 at d = 0.0099, hence 1e-6.
    logits = _logits()
    ours = continuous_bernoulli_mean(logits)
    torch.testing.assert_close(ours, ContinuousBernoulli(logits=logits).mean, atol=1e-6, rtol=0)
    x = _grid()
    density = continuous_bernoulli_log_prob(x.expand(len(logits), -1), logits[:, None].expand(-1, len(x))).exp()
    integral = torch.trapezoid(x * density, x, dim=1)
    torch.testing.assert_close(ours, integral, atol=1e-6, rtol=0)
    # the mean is not lambda: it is pulled toward 0.5. Hand-worked at lambda = 0.7:
    # 0.7 / (2 * 0.7 - 1) - 1 / log(0.7 / 0.3) = 1.75 - 1 / log(7/3) = 0.56977...
    seven = continuous_bernoulli_mean(torch.logit(torch.tensor([0.7], dtype=F64)))
    assert seven.item() == pytest.approx(1.75 - 1 / math.log(7 / 3), abs=1e-12)
    lam = torch.sigmoid(logits)
    far = (lam - 0.5).abs() > 0.1
    assert ((ours - 0.5).abs() < (lam - 0.5).abs())[far].all()


def test_continuous_bernoulli_mean_float32_is_within_1e_5_of_the_truth():
    # A fair float32 bar: the log-density holds 1e-5 in float32 (test above), and float32 resolves a
    # value in [0, 1] to 6e-8. Compared with the float64 truth just outside the band:
    lam = torch.tensor([0.5 + BAND * 1.01, 0.5 - BAND * 1.01, 0.5 + 0.012, 0.5 - 0.015, 0.52], dtype=F64)
    logits = torch.logit(lam)
    truth = ContinuousBernoulli(logits=logits).mean  # float64: the closed form is exact to ~1e-12 here
    ours = continuous_bernoulli_mean(logits.float()).double()
    torch.testing.assert_close(ours, truth, atol=1e-5, rtol=0)


def test_continuous_bernoulli_mean_is_continuous_at_the_taylor_band_edge():
    # With the cubic term 16/45 d^3 in the series, the jump across |lambda - 0.5| = 1e-2 is the
    # omitted fifth-order term, far below 1e-9 (float64).
    for side in (1, -1):
        inside = continuous_bernoulli_mean(torch.logit(torch.tensor([0.5 + side * (BAND - 1e-12)], dtype=F64)))
        outside = continuous_bernoulli_mean(torch.logit(torch.tensor([0.5 + side * (BAND + 1e-12)], dtype=F64)))
        assert abs(inside.item() - outside.item()) < 1e-9


# ----------------------------------------------------------------------------- Laplace and Gaussians


def test_laplace_log_prob_matches_torch():
    torch.manual_seed(0)
    x, mean = torch.randn(3, 2, 5, 5, dtype=F64), torch.randn(3, 2, 5, 5, dtype=F64)
    for log_scale in (torch.tensor(-2.0, dtype=F64), torch.tensor(0.7, dtype=F64),
                      torch.randn(3, 2, 5, 5, dtype=F64), torch.randn(2, 1, 1, dtype=F64)):
        ref = Laplace(mean, log_scale.exp()).log_prob(x)
        torch.testing.assert_close(laplace_log_prob(x, mean, log_scale), ref, atol=1e-12, rtol=1e-12)
    # and in float32, the dtype training uses
    x32, m32, s32 = x.float(), mean.float(), torch.randn(3, 2, 5, 5)
    torch.testing.assert_close(laplace_log_prob(x32, m32, s32), Laplace(m32, s32.exp()).log_prob(x32),
                               atol=1e-5, rtol=1e-5)


def test_gaussian_log_prob_with_per_pixel_and_broadcast_log_sigma():
    # test_maths covers a (B, C, H, W) log_sigma in float32; here the per-channel broadcast and float64.
    torch.manual_seed(1)
    x, mean = torch.randn(4, 3, 6, 6, dtype=F64), torch.randn(4, 3, 6, 6, dtype=F64)
    for log_sigma in (torch.randn(4, 3, 6, 6, dtype=F64), torch.randn(3, 1, 1, dtype=F64),
                      torch.randn(1, 3, 6, 6, dtype=F64)):
        ours = gaussian_log_prob(x, mean, log_sigma)
        assert ours.shape == x.shape
        torch.testing.assert_close(ours, Normal(mean, log_sigma.exp()).log_prob(x), atol=1e-12, rtol=1e-12)


def _golden_section_min(f, a: float, b: float, iters: int = 200) -> float:
    """argmin of a unimodal f on [a, b]."""
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (a + b) / 2


def test_optimal_log_sigma_minimizes_the_gaussian_nll():
    torch.manual_seed(2)
    mean = torch.rand(6, 3, 4, 4, dtype=F64)
    x = mean + 0.07 * torch.randn_like(mean)

    def nll(log_s: float) -> float:  # summed over the batch and every pixel, one shared sigma
        return -Normal(mean, math.exp(log_s)).log_prob(x).sum().item()

    best = _golden_section_min(nll, math.log(1e-3), math.log(10.0))  # bracket chosen without the answer
    ours = optimal_log_sigma(x, mean)
    assert ours.shape == ()
    assert ours.item() == pytest.approx(best, abs=1e-6)
    # The minimum NLL per pixel is 0.5 log(2 pi mse) + 0.5 (plug sigma^2 = mse into the Gaussian NLL).
    mse = ((x - mean) ** 2).mean().item()
    per_pixel = -Normal(mean, ours.exp()).log_prob(x).mean().item()
    assert per_pixel == pytest.approx(0.5 * math.log(2 * math.pi * mse) + 0.5, abs=1e-10)
    assert nll(ours.item()) <= min(nll(ours.item() - 1e-3), nll(ours.item() + 1e-3))


def test_optimal_log_sigma_floor_and_gradient():
    mean = torch.rand(2, 1, 4, 4)
    floor = torch.tensor(UNIT_LOG_SIGMA_FLOOR)  # float32, as the clamp stores it
    assert optimal_log_sigma(mean.clone(), mean) == floor  # mse = 0: log 0 clamped to the floor
    assert optimal_log_sigma(mean + 1e-4, mean) == floor  # sigma* = 1e-4 < 1/1020
    assert optimal_log_sigma(mean + 2e-3, mean).item() == pytest.approx(math.log(2e-3), abs=1e-4)  # above it
    # A per-channel floor (C, 1, 1): one sigma serves every channel, so the largest floor holds it.
    channels = torch.log(torch.tensor([1e-3, 4e-3, 2e-3])).view(3, 1, 1)
    assert optimal_log_sigma(mean + 3e-3, mean, channels).item() == pytest.approx(math.log(4e-3), abs=1e-6)
    assert optimal_log_sigma(mean + 5e-3, mean, channels).item() == pytest.approx(math.log(5e-3), abs=1e-4)
    # sigma* is detached: by the envelope theorem (dNLL/dsigma = 0 at sigma*) the gradient w.r.t. the mean
    # equals that of the NLL with sigma* = rmse(mean) differentiated through.
    torch.manual_seed(3)
    x = torch.rand(3, 1, 5, 5, dtype=F64)
    m1 = torch.rand_like(x).requires_grad_()
    (-gaussian_log_prob(x, m1, optimal_log_sigma(x, m1)).sum()).backward()
    m2 = m1.detach().clone().requires_grad_()
    (-gaussian_log_prob(x, m2, 0.5 * torch.log(((x - m2) ** 2).mean())).sum()).backward()
    torch.testing.assert_close(m1.grad, m2.grad, atol=1e-10, rtol=1e-8)
