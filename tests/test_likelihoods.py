"""Decoder likelihoods in nats with every constant: the continuous Bernoulli (log-density, normalizing
constant, mean), Laplace, per-pixel and optimal-sigma Gaussians, the log_prob dispatch, the models'
decoder outputs for them, and the compatibility rules.

References are torch.distributions in float64 or numerical integration; test_maths.py already covers
the fixed-sigma Gaussian, the Bernoulli and the KL.
"""
import math

import pytest
import torch
from torch.distributions import Bernoulli, ContinuousBernoulli, Independent, Laplace, Normal

from vae_core.model.compatibility import compatibility
from vae_core.config import ModelConfig
from vae_core.model.likelihoods import (UNIT_LOG_SIGMA_FLOOR, continuous_bernoulli_log_norm,
                                  continuous_bernoulli_log_prob, continuous_bernoulli_mean, discrete_log_prob,
                                  gaussian_log_prob, laplace_log_prob, log_prob, optimal_log_sigma)
from vae_core.model.vae import build_model
from vae_core.data.normalize import GREY_LEVELS, Normalizer, fit_normalizer
from vae_core.model.objective import reconstruction_nats

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


# ----------------------------------------------------------------------------- dispatch


def _reference_log_prob(likelihood, x, x_hat, logits, log_sigma):
    if likelihood == "bernoulli":  # torch's Bernoulli.log_prob is -BCE-with-logits, grey targets included
        return Bernoulli(logits=logits, validate_args=False).log_prob(x)
    if likelihood == "continuous_bernoulli":
        return ContinuousBernoulli(logits=logits).log_prob(x)
    if likelihood == "gaussian_optimal" and log_sigma is None:  # training: the batch's sigma*
        return Normal(x_hat, ((x - x_hat) ** 2).mean().sqrt()).log_prob(x)
    if likelihood == "laplace":
        return Laplace(x_hat, log_sigma.exp()).log_prob(x)
    return Normal(x_hat, log_sigma.exp()).log_prob(x)


LIKELIHOODS = ["bernoulli", "continuous_bernoulli", "gaussian", "gaussian_learned", "gaussian_optimal",
               "gaussian_pixel", "laplace"]


@pytest.mark.parametrize("likelihood", LIKELIHOODS)
def test_log_prob_dispatch(likelihood):
    torch.manual_seed(4)
    x = torch.rand(3, 2, 4, 4, dtype=F64)
    logits = 3 * torch.randn_like(x)
    x_hat = torch.sigmoid(logits)  # the location; the Bernoulli families must use the logits instead
    log_sigma = torch.randn_like(x) if likelihood == "gaussian_pixel" else torch.tensor(-1.2, dtype=F64)
    ours = log_prob(likelihood, x, x_hat, logits, log_sigma)
    ref = _reference_log_prob(likelihood, x, x_hat, logits, log_sigma)
    assert ours.shape == x.shape
    torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-10)
    if likelihood in ("bernoulli", "continuous_bernoulli", "gaussian_optimal"):  # they need no log_sigma
        ref_none = _reference_log_prob(likelihood, x, x_hat, logits, None)
        torch.testing.assert_close(log_prob(likelihood, x, x_hat, logits, None), ref_none, atol=1e-10, rtol=1e-10)
    else:
        with pytest.raises(ValueError, match="log_sigma"):
            log_prob(likelihood, x, x_hat, logits, None)


# ----------------------------------------------------------------------------- models

SMALL = dict(channels=3, image_size=32, latent_dim=4, width=4, depth=2, hidden_dim=16)


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_gaussian_pixel_decoder_predicts_a_log_sigma_per_pixel(arch):
    torch.manual_seed(5)
    model = build_model(ModelConfig(arch=arch, **SMALL), "gaussian_pixel")
    x = torch.rand(4, 3, 32, 32)
    out = model(x)
    assert out.x_hat.shape == x.shape and out.logits.shape == x.shape  # the image's channels, not 2C
    assert out.log_sigma.shape == x.shape
    assert (out.log_sigma >= UNIT_LOG_SIGMA_FLOOR).all()
    assert out.log_sigma.std() > 0  # it varies across pixels: not one shared sigma
    torch.testing.assert_close(model.decode_log_sigma(out.z), out.log_sigma, atol=0, rtol=0)
    assert model.decoder_log_sigma() is None  # there is no shared sigma to report
    ref = -Independent(Normal(out.x_hat, out.log_sigma.exp()), 3).log_prob(x)
    torch.testing.assert_close(reconstruction_nats(out, x, "gaussian_pixel"), ref, atol=1e-2, rtol=1e-5)


def test_gaussian_pixel_log_sigma_floor_holds_for_very_negative_raw_outputs():
    torch.manual_seed(6)
    model = build_model(ModelConfig(arch="conv", **SMALL), "gaussian_pixel")
    last = model.decoder[-1]  # ConvTranspose2d -> 2C channels: C locations, then C raw log sigmas
    assert last.out_channels == 6
    with torch.no_grad():
        last.bias[3:] = -1e3
    log_sigma = model.decode_log_sigma(torch.randn(2, 4))
    assert (log_sigma >= UNIT_LOG_SIGMA_FLOOR).all()
    torch.testing.assert_close(log_sigma, torch.full_like(log_sigma, UNIT_LOG_SIGMA_FLOOR), atol=1e-6, rtol=0)
    # The run's own floor, channel by channel: a zscore normalizer whose channels have different scales.
    norm = Normalizer("zscore", (0.5, 0.4, 0.3), (0.1, 0.2, 0.4))
    model.set_sigma_floor(norm.sigma_floor())
    log_sigma = model.decode_log_sigma(torch.randn(2, 4))  # (2, 3, 32, 32)
    floors = torch.tensor([0.25 / 255 / c for c in (0.1, 0.2, 0.4)]).log().view(3, 1, 1)
    torch.testing.assert_close(log_sigma, floors.expand_as(log_sigma), atol=1e-6, rtol=0)


# Hand-worked: a quarter of a grey level is 0.25 / 255 = 1/1020 in pixel units; x = (p - shift) / scale, so in
# normalized units it is 1 / (1020 scale): unit (scale 1) 1/1020, symmetric (0.5) 1/510, zscore with std 0.2
# 1/204, and unit with data_scale 10 (scale 1/10) 1/102.
FLOOR_CASES = [(Normalizer("unit", (0.0,), (1.0,)), 1 / 1020), (Normalizer("symmetric", (0.5,), (0.5,)), 1 / 510),
               (Normalizer("zscore", (0.3,), (0.2,)), 1 / 204), (Normalizer("unit", (0.0,), (0.1,)), 1 / 102)]


@pytest.mark.parametrize("norm, expected", FLOOR_CASES, ids=["unit", "symmetric", "zscore", "unit-x10"])
def test_the_sigma_floor_is_a_quarter_grey_level_in_every_normalization(norm, expected):
    floor = norm.sigma_floor()
    assert floor.shape == (1, 1, 1)
    assert floor.item() == pytest.approx(expected, rel=1e-6)
    # Back in grey levels (sigma_p = sigma_x * scale, times 255): the same for every normalization.
    assert floor.item() * norm.scale[0] * GREY_LEVELS == pytest.approx(0.25, rel=1e-6)


def test_fitted_normalizers_floor_every_channel_at_a_quarter_grey_level():
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (10, 3, 4, 4), generator=g).to(torch.uint8)
    for kind in ("unit", "symmetric", "zscore"):
        for data_scale in (1.0, 3.0):
            norm = fit_normalizer(kind, images, data_scale)
            grey = norm.sigma_floor().flatten() * torch.tensor(norm.scale) * GREY_LEVELS
            torch.testing.assert_close(grey, torch.full((3,), 0.25), atol=1e-6, rtol=0)


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_continuous_bernoulli_decode_returns_the_mean_not_lambda(arch):
    torch.manual_seed(7)
    model = build_model(ModelConfig(arch=arch, **SMALL), "continuous_bernoulli")
    z = 3 * torch.randn(5, 4)
    logits = model.decode_logits(z)
    decoded = model.decode(z)
    torch.testing.assert_close(decoded, continuous_bernoulli_mean(logits), atol=0, rtol=0)
    # float64 torch mean; 2e-4 allows for the float32 cancellation reported in the mean test above
    torch.testing.assert_close(decoded.double(), ContinuousBernoulli(logits=logits.double()).mean, atol=2e-4, rtol=0)
    assert (decoded - torch.sigmoid(logits)).abs().max() > 0.05  # not sigmoid(logits)
    assert model.decode_log_sigma(z) is None
    # the other likelihoods decode to the activation of the logits
    other = build_model(ModelConfig(arch=arch, **SMALL), "bernoulli")
    torch.testing.assert_close(other.decode(z), torch.sigmoid(other.decode_logits(z)), atol=0, rtol=0)


@pytest.mark.parametrize("likelihood", ["continuous_bernoulli", "laplace", "gaussian_optimal"])
def test_reconstruction_nats_of_the_new_likelihoods(likelihood):
    torch.manual_seed(8)
    model = build_model(ModelConfig(arch="mlp", **SMALL), likelihood, sigma=0.2)
    x = torch.rand(3, 3, 32, 32)
    out = model(x)
    if likelihood == "continuous_bernoulli":
        ref = -ContinuousBernoulli(logits=out.logits.double()).log_prob(x.double()).flatten(1).sum(1)
    else:
        log_sigma = None if out.log_sigma is None else out.log_sigma.double()  # optimal: None in training
        ref = -_reference_log_prob(likelihood, x.double(), out.x_hat.double(), None, log_sigma).flatten(1).sum(1)
    torch.testing.assert_close(reconstruction_nats(out, x, likelihood).double(), ref, atol=2e-2, rtol=1e-5)


# ----------------------------------------------------------------------------- compatibility

ZSCORE_RANGE = (-0.42, 2.82)  # MNIST's zscored range


def _assert_reason(verdict, *alternatives):
    assert verdict.reason, "a non-'works' verdict needs a reason"
    assert any(a in verdict.reason for a in alternatives), (verdict.reason, alternatives)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli"])
def test_bounded_likelihoods_need_unit_targets_and_a_sigmoid(likelihood):
    assert compatibility("sigmoid", "unit", likelihood) == compatibility("sigmoid", "unit", likelihood, (0.0, 1.0))
    assert compatibility("sigmoid", "unit", likelihood).status == "works"
    assert compatibility("sigmoid", "unit", likelihood, (0.0, 0.5)).status == "works"  # data scale 0.5
    for activation in ("tanh", "linear"):
        v = compatibility(activation, "unit", likelihood)
        assert v.status == "refused"
        _assert_reason(v, "Pick the sigmoid")
        _assert_reason(v, "Gaussian")
    for normalization, rng in (("symmetric", None), ("zscore", ZSCORE_RANGE), ("zscore", None), ("unit", (0.0, 10.0))):
        for activation in ("sigmoid", "tanh", "linear"):
            v = compatibility(activation, normalization, likelihood, rng)
            assert v.status == "refused"
            _assert_reason(v, "Pick unit normalization")
    name = "continuous Bernoulli" if likelihood == "continuous_bernoulli" else "Bernoulli"
    assert name in compatibility("sigmoid", "symmetric", likelihood).reason


def test_a_data_scale_of_10_mismatches_a_sigmoid_gaussian():
    rng = (0.0, 10.0)  # unit normalization times 10
    for likelihood in ("gaussian", "gaussian_learned", "gaussian_optimal", "gaussian_pixel", "laplace"):
        v = compatibility("sigmoid", "unit", likelihood, rng)
        assert v.status == "mismatched"
        _assert_reason(v, "linear output")
        assert "10.00" in v.reason
        assert compatibility("linear", "unit", likelihood, rng).status == "works"
        assert compatibility("tanh", "unit", likelihood, rng).status == "mismatched"
    assert compatibility("sigmoid", "unit", "bernoulli", rng).status == "refused"


@pytest.mark.parametrize("likelihood", ["laplace", "gaussian", "gaussian_learned", "gaussian_optimal",
                                        "gaussian_pixel"])
def test_continuous_likelihoods_on_zscore(likelihood):
    for rng in (ZSCORE_RANGE, None):
        for activation in ("tanh", "sigmoid"):
            v = compatibility(activation, "zscore", likelihood, rng)
            assert v.status == "mismatched"
            _assert_reason(v, "linear output")
        assert compatibility("linear", "zscore", likelihood, rng).status == "works"
        assert compatibility("linear", "zscore", likelihood, rng).reason == ""
    # zscored data inside (-1, 1) fits a tanh
    assert compatibility("tanh", "zscore", likelihood, (-0.9, 0.95)).status == "works"


def test_gaussian_optimal_fits_sigma_per_training_batch_and_evaluates_with_the_kept_one():
    torch.manual_seed(9)
    model = build_model(ModelConfig(arch="mlp", **SMALL), "gaussian_optimal")
    x = torch.rand(6, 3, 32, 32)
    out = model(x)  # training: forward fits this batch's sigma*, above the model's floor
    torch.testing.assert_close(out.log_sigma, optimal_log_sigma(x, out.x_hat, model.log_sigma_floor))
    assert model.sample_output(out.mu, out.logvar).log_sigma is None  # no x: the likelihood fits it
    with torch.no_grad():
        model.log_sigma.fill_(-2.0)  # what the Trainer keeps after each step
    model.eval()
    out = model(x)
    assert out.log_sigma.item() == -2.0
    whole = reconstruction_nats(out, x, "gaussian_optimal")
    halves = torch.cat([reconstruction_nats(model.output_at(out.z[i:i + 3], out.mu[i:i + 3], out.logvar[i:i + 3]),
                                            x[i:i + 3], "gaussian_optimal") for i in (0, 3)])
    torch.testing.assert_close(whole, halves)  # evaluation no longer depends on the batch it sits in


def test_the_registry_covers_every_likelihood_and_its_sigma():
    from typing import get_args

    from vae_core.config import LikelihoodName
    from vae_core.model.likelihoods import LIKELIHOODS, likelihood_spec

    assert set(LIKELIHOODS) == set(get_args(LikelihoodName))
    for name, lik in LIKELIHOODS.items():
        model = build_model(ModelConfig(width=8, latent_dim=2), name, sigma=0.3)
        shared = model.decoder_log_sigma() if lik.sigma != "optimal" else model.log_sigma
        assert (shared is not None) == lik.shared_sigma, name
        if lik.reads_sigma:  # the configured sigma is where the model starts
            assert math.isclose(shared.exp().item(), 0.3, rel_tol=1e-6), name
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'"):
        likelihood_spec("poisson")


# ----------------------------------------------------------------------------- grey-level bin masses
# log P(k|z): the decoder's mass on each pixel's bin [k - 1/2, k + 1/2] / 255, mapped through the
# normalization, the edge bins open. The masses of the 256 levels must sum to 1 under every likelihood and
# normalization, match torch.distributions' CDFs, and stay finite and exact far in the tails.

LOCATION_LIKELIHOODS = ["gaussian", "gaussian_learned", "gaussian_optimal", "gaussian_pixel", "laplace"]
SIGMAS = (1e-3, 0.02, 1.0, 1e3)  # 1e-3: about the floor of unit-normalized data (a quarter of a grey level)
CB_LOGITS = (-80.0, -5.0, -1e-3, -1e-9, 0.0, 1e-8, 1e-6, 1e-5, 0.3, 5.0, 80.0)


def _normalizers() -> dict[str, Normalizer]:
    """unit, symmetric, zscore (three channels, three scales) and data scales 10 and 0.1."""
    g = torch.Generator().manual_seed(0)
    images = torch.cat([torch.randint(0, 60, (20, 1, 4, 4), generator=g),
                        torch.randint(0, 256, (20, 2, 4, 4), generator=g)], 1).to(torch.uint8)
    return {f"{kind}-x{scale:g}": fit_normalizer(kind, images, scale)
            for kind, scale in (("unit", 1.0), ("symmetric", 1.0), ("zscore", 1.0), ("zscore", 10.0), ("unit", 0.1))}


NORMALIZERS = _normalizers()
EVERY_LEVEL = torch.arange(256, dtype=torch.uint8).view(256, 1, 1, 1).expand(256, 3, 1, 1)  # (256, 3, 1, 1)


def _location_log_mass(likelihood, norm, loc, sigma):
    """(256, 3, 1, 1) log masses of every grey level in 3 channels, the location loc in normalized units."""
    lo, hi = norm.grey_level_bins(EVERY_LEVEL)
    x_hat = torch.full(lo.shape, loc, dtype=F64)
    log_sigma = torch.tensor(math.log(sigma), dtype=F64)
    if likelihood == "gaussian_pixel":  # a sigma per pixel: a full tensor, not a shared scalar
        log_sigma = log_sigma.expand(lo.shape)
    return discrete_log_prob(likelihood, lo, hi, x_hat, torch.zeros_like(x_hat), log_sigma)


def _cb_log_mass(norm, logit):
    lo, hi = norm.grey_level_bins(EVERY_LEVEL)
    return discrete_log_prob("continuous_bernoulli", lo, hi, None, torch.full(lo.shape, logit, dtype=F64), None)


def _assert_sums_to_one(log_mass):
    assert log_mass.dtype == F64 and torch.isfinite(log_mass).all() and (log_mass <= 0).all()
    total = torch.logsumexp(log_mass, 0).exp()  # (3, 1, 1) per channel
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-12, rtol=0)


def test_grey_level_bins_tile_the_line():
    for name, norm in NORMALIZERS.items():
        lo, hi = norm.grey_level_bins(EVERY_LEVEL)
        assert lo.dtype == hi.dtype == F64 and (lo < hi).all(), name
        assert torch.isinf(lo[0]).all() and (lo[0] < 0).all() and torch.isinf(hi[255]).all() and (hi[255] > 0).all()
        assert torch.equal(lo[1:], hi[:-1]), name  # no gaps, no overlaps
        centre = norm.forward(EVERY_LEVEL.double() / 255)  # the grey level itself, mid-bin
        torch.testing.assert_close((lo[1:-1] + hi[1:-1]) / 2, centre[1:-1], atol=1e-12, rtol=0)
        pixel_width = (norm.inverse(hi[1:-1]) - norm.inverse(lo[1:-1]))  # back in pixels: 1/255 everywhere
        torch.testing.assert_close(pixel_width, torch.full_like(pixel_width, 1 / 255), atol=1e-12, rtol=0)


@pytest.mark.parametrize("likelihood", LOCATION_LIKELIHOODS)
@pytest.mark.parametrize("norm", NORMALIZERS)
def test_location_bin_masses_sum_to_one(likelihood, norm):
    lo, hi = NORMALIZERS[norm].value_range()
    for loc in (-1e3, lo - 3, lo, (lo + hi) / 2, hi, hi + 0.01, 1e3):
        for sigma in SIGMAS:
            _assert_sums_to_one(_location_log_mass(likelihood, NORMALIZERS[norm], loc, sigma))


@pytest.mark.parametrize("norm", ["unit-x1", "unit-x0.1"])  # the continuous Bernoulli needs data in [0, 1]
def test_continuous_bernoulli_bin_masses_sum_to_one(norm):
    for logit in CB_LOGITS:
        _assert_sums_to_one(_cb_log_mass(NORMALIZERS[norm], logit))


@pytest.mark.parametrize("likelihood", ["gaussian", "laplace"])
@pytest.mark.parametrize("norm", NORMALIZERS)
def test_location_bin_masses_match_torch_cdfs(likelihood, norm):
    # Moderate sigmas and locations, where a plain CDF difference in float64 is exact to ~1e-16.
    n = NORMALIZERS[norm]
    lo, hi = n.grey_level_bins(EVERY_LEVEL)
    r_lo, r_hi = n.value_range()
    for loc in (r_lo, (r_lo + r_hi) / 2, r_hi + 0.1):
        for sigma in (0.02, 0.3, 2.0):
            dist = (Normal if likelihood == "gaussian" else Laplace)(torch.tensor(loc, dtype=F64), sigma)
            ref = dist.cdf(hi) - dist.cdf(lo)
            ours = _location_log_mass(likelihood, n, loc, sigma).exp()
            torch.testing.assert_close(ours, ref, atol=1e-14, rtol=1e-10)


def test_continuous_bernoulli_bin_masses_match_torch_cdf():
    # lims=(0.5, 0.5): torch's exact formula everywhere (its default swaps in F(x) = x within 1e-3 of 1/2).
    # It cancels as lambda -> 1/2 (1e-10 at logits 1e-3) and raises a rounded lambda to a power near 0 or 1
    # (1e-2 off at logits 30): moderate logits here, the extremes against mpmath below.
    lo, hi = NORMALIZERS["unit-x1"].grey_level_bins(EVERY_LEVEL)
    for logit in (-5.0, -1e-3, 0.3, 5.0):
        dist = ContinuousBernoulli(logits=torch.tensor(logit, dtype=F64), lims=(0.5, 0.5), validate_args=False)
        ref = dist.cdf(hi.clamp(0, 1)) - dist.cdf(lo.clamp(0, 1))
        torch.testing.assert_close(_cb_log_mass(NORMALIZERS["unit-x1"], logit).exp(), ref, atol=1e-13, rtol=1e-9)


def test_continuous_bernoulli_bin_masses_near_a_half_match_integration():
    # At and around lambda = 1/2 (logits 0, 1e-8, 1e-5: the expansion and the closed form on either side of
    # its 1e-6 switch), against the trapezoid rule on each bin of the library's own density (tested above).
    n = NORMALIZERS["unit-x1"]
    lo, hi = (e[:, 0].flatten().clamp(0, 1) for e in n.grey_level_bins(EVERY_LEVEL))  # (256,) channel 0
    grid = lo[:, None] + (hi - lo)[:, None] * torch.linspace(0, 1, 201, dtype=F64)  # 201 points per bin
    for logit in (0.0, 1e-8, -1e-8, 1e-5, 1e-3):
        density = continuous_bernoulli_log_prob(grid, torch.full_like(grid, logit)).exp()
        ref = torch.trapezoid(density, grid, dim=1)  # (256,)
        ours = _cb_log_mass(n, logit)[:, 0].flatten().exp()
        torch.testing.assert_close(ours, ref, atol=1e-15, rtol=1e-10)
    uniform = _cb_log_mass(n, 0.0)[:, 0].flatten()  # lambda = 1/2 is the uniform density on [0, 1]
    torch.testing.assert_close(uniform[1:-1], torch.full((254,), -math.log(255), dtype=F64), atol=1e-13, rtol=0)
    assert uniform[0].item() == pytest.approx(-math.log(510), abs=1e-13)
    assert uniform[-1].item() == pytest.approx(-math.log(510), abs=1e-13)


def _mp_log_mass(kind: str, a, b, logit=None):
    """log(F(b) - F(a)) with mpmath at 60 digits: standardized edges for a Normal or Laplace; edges in [0, 1]
    for the continuous Bernoulli with those logits (its CDF as Loaiza-Ganem & Cunningham 2019 write it)."""
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 60
    if kind == "continuous_bernoulli":  # F(b) - F(a) = (g(b) - g(a)) / (2 lam - 1), g(x) = lam^x (1 - lam)^(1 - x)
        lam, one_minus = 1 / (1 + mp.exp(-mp.mpf(logit))), 1 / (1 + mp.exp(mp.mpf(logit)))  # 1 - lambda, unrounded
        g = lambda x: lam ** mp.mpf(x) * one_minus ** (1 - mp.mpf(x))  # noqa: E731
        return float(mp.log((g(b) - g(a)) / (lam - one_minus)))
    cdf = mp.ncdf if kind == "gaussian" else (lambda u: mp.exp(u) / 2 if u < 0 else 1 - mp.exp(-u) / 2)
    a, b = mp.mpf(a), mp.mpf(b)
    if a + b > 0:  # an exact identity (symmetry), so 60 digits cover the difference of two numbers near 1
        a, b = -b, -a
    return float(mp.log(cdf(b) - cdf(a)))


@pytest.mark.parametrize("likelihood", ["gaussian", "laplace"])
def test_far_tail_masses_are_finite_and_exact(likelihood):
    # sigma = 1e-3 (the floor) with the location hundreds to a million sigmas from most bins: a CDF difference
    # in float64 would be 0 (log: -inf) or cancel; ours must match 60-digit arithmetic.
    n = NORMALIZERS["unit-x1"]
    lo, hi = (e[:, 0].flatten().tolist() for e in n.grey_level_bins(EVERY_LEVEL))
    for loc in (-1e3, -0.5, 0.9, 5.0):
        ours = _location_log_mass(likelihood, n, loc, 1e-3)[:, 0].flatten()
        assert torch.isfinite(ours).all()
        ref = [_mp_log_mass(likelihood, (a - loc) / 1e-3, (b - loc) / 1e-3) for a, b in zip(lo, hi)]
        torch.testing.assert_close(ours, torch.tensor(ref, dtype=F64), atol=1e-9, rtol=1e-12)


def test_continuous_bernoulli_far_tail_masses_are_finite_and_exact():
    n = NORMALIZERS["unit-x1"]
    lo, hi = (e[:, 0].clamp(0, 1).flatten().tolist() for e in n.grey_level_bins(EVERY_LEVEL))
    for logit in (-300.0, -80.0, 80.0, 300.0):  # lambda within 1e-130 of 0 or 1
        ours = _cb_log_mass(n, logit)[:, 0].flatten()
        assert torch.isfinite(ours).all()
        ref = torch.tensor([_mp_log_mass("continuous_bernoulli", a, b, logit) for a, b in zip(lo, hi)], dtype=F64)
        torch.testing.assert_close(ours, ref, atol=1e-9, rtol=1e-12)


@pytest.mark.parametrize("likelihood", ["gaussian", "laplace"])
def test_a_wide_distribution_gives_density_times_bin_width(likelihood):
    # sigma much wider than a bin: the mass is the density at the bin's centre times its width, up to
    # width^2 / 24 times the log-density's curvature (the midpoint rule), here < 1e-5 nats: the link to the
    # continuous density. Not in the bin holding a Laplace's mode, whose kink the midpoint rule misses.
    for name in ("unit-x1", "symmetric-x1", "zscore-x10"):
        n = NORMALIZERS[name]
        lo, hi = (e[1:-1] for e in n.grey_level_bins(EVERY_LEVEL))  # the closed bins
        loc, sigma = sum(n.value_range()) / 2, 0.5 * (n.value_range()[1] - n.value_range()[0])
        centre = (lo + hi) / 2
        log_sigma = torch.tensor(math.log(sigma), dtype=F64)
        density = log_prob(likelihood, centre, torch.full_like(centre, loc), None, log_sigma)
        ours = _location_log_mass(likelihood, n, loc, sigma)[1:-1]
        smooth = (lo >= loc) | (hi <= loc)  # a mode on an edge is smooth on either side
        torch.testing.assert_close(ours[smooth], (density + (hi - lo).log())[smooth], atol=1e-5, rtol=0)
        assert smooth.sum() >= len(smooth.flatten()) - 3  # at most one bin per channel left out


def test_discrete_log_prob_refuses_the_bernoulli_and_a_missing_sigma():
    lo, hi = NORMALIZERS["unit-x1"].grey_level_bins(EVERY_LEVEL)
    with pytest.raises(ValueError, match="not a distribution over grey levels"):
        discrete_log_prob("bernoulli", lo, hi, lo, lo, None)
    with pytest.raises(ValueError, match="log_sigma"):
        discrete_log_prob("gaussian_optimal", lo, hi, torch.zeros_like(lo), lo, None)
