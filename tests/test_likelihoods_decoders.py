"""The likelihoods in use: the log_prob dispatch, the models' decoder outputs for each likelihood, the sigma floor
of a quarter grey level, the compatibility rules and the registry.

References are torch.distributions in float64.
"""
import math

import pytest
import torch
from torch.distributions import Bernoulli, ContinuousBernoulli, Independent, Laplace, Normal

from vae_core.model.compatibility import compatibility
from vae_core.config import ModelConfig
from vae_core.model.likelihoods import UNIT_LOG_SIGMA_FLOOR, continuous_bernoulli_mean, log_prob, optimal_log_sigma
from vae_core.model.vae import build_model
from vae_core.data.normalize import GREY_LEVELS, Normalizer, fit_normalizer
from vae_core.model.objective import reconstruction_nats

F64 = torch.float64


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
    # float64 torch mean; 2e-4 allows for the float32 cancellation reported in the mean tests
    # (test_likelihoods_densities.py)
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
        if lik.reads_sigma:  # the configured sigma is where the model starts (a sigma per feature: each one's)
            start = model.log_sigma if lik.sigma == "per_feature" else shared
            assert all(math.isclose(v, 0.3, rel_tol=1e-6) for v in start.exp().flatten().tolist()), name
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'"):
        likelihood_spec("poisson")
