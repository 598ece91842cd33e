"""Every reported term in nats with all constants, checked against torch.distributions."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vae_core.model.compatibility import compatibility
from vae_core.config import LossConfig, ModelConfig
from vae_core.model.evaluate import bits_per_dim
from vae_core.model.likelihoods import bernoulli_log_prob, discrete_log_prob, gaussian_log_prob
from vae_core.model.vae import build_model
from vae_core.data.normalize import fit_normalizer
from vae_core.model.objective import kl_per_dimension, loss_terms, reconstruction_nats

torch.manual_seed(0)


def test_gaussian_log_prob_matches_normal():
    x, mean = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    for log_sigma in (torch.tensor(-2.3), torch.tensor(0.0), torch.randn(4, 3, 8, 8)):
        ours = gaussian_log_prob(x, mean, log_sigma)
        ref = Normal(mean, log_sigma.exp()).log_prob(x)
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_bernoulli_log_prob_matches_bernoulli_including_grey_targets():
    logits = torch.randn(4, 1, 8, 8) * 5
    for x in (torch.randint(0, 2, logits.shape).float(), torch.rand(logits.shape)):
        ref = x * torch.nn.functional.logsigmoid(logits) + (1 - x) * torch.nn.functional.logsigmoid(-logits)
        torch.testing.assert_close(bernoulli_log_prob(x, logits), ref, atol=1e-5, rtol=1e-5)
    binary = torch.randint(0, 2, logits.shape).float()
    torch.testing.assert_close(bernoulli_log_prob(binary, logits), Bernoulli(logits=logits).log_prob(binary),
                               atol=1e-5, rtol=1e-5)


def test_bernoulli_log_prob_is_stable_for_extreme_logits():
    logits = torch.tensor([-200.0, 200.0])
    out = bernoulli_log_prob(torch.tensor([1.0, 0.0]), logits)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.tensor([-200.0, -200.0]))


def test_bernoulli_log_prob_is_torchs_bce_to_float_rounding_and_its_gradient_exact():
    """The fused form (likelihoods._BernoulliNLL) against float64 BCE: float32 within the error of torch's own
    float32 BCE, and autograd's gradients (logits and targets) against finite differences."""
    logits = torch.cat([torch.linspace(-40, 40, 801), torch.tensor([-200.0, -17.0, 17.0, 200.0])])
    L, X = torch.meshgrid(logits, torch.tensor([0.0, 0.001, 0.25, 0.5, 0.75, 0.999, 1.0]), indexing="ij")
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    ref = -bce(L.double(), X.double(), reduction="none")
    torch_error = (-bce(L, X, reduction="none").double() - ref).abs().max()
    assert (bernoulli_log_prob(X, L).double() - ref).abs().max() <= max(torch_error, 1e-6)
    l64 = (torch.randn(3, 2, 4, 4, dtype=torch.float64) * 4).requires_grad_()
    x64 = torch.rand(3, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(bernoulli_log_prob, (x64, l64))


def test_kl_matches_kl_divergence_to_standard_normal():
    mu, logvar = torch.randn(16, 10) * 2, torch.randn(16, 10)
    q = Normal(mu, (0.5 * logvar).exp())
    ref = kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(mu)))
    torch.testing.assert_close(kl_per_dimension(mu, logvar), ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "gaussian_learned"])
def test_loss_terms_are_per_image_nats(likelihood):
    torch.manual_seed(1)
    model = build_model(ModelConfig(channels=1, image_size=28, latent_dim=4), likelihood, sigma=0.3)
    x = torch.rand(5, 1, 28, 28)
    torch.manual_seed(3)
    terms = loss_terms(model, x, LossConfig(likelihood=likelihood, beta=2.0))
    out = terms.out
    if likelihood == "bernoulli":
        dist = Independent(Bernoulli(logits=out.logits), 3)
        ref_recon = -(x * torch.nn.functional.logsigmoid(out.logits)
                      + (1 - x) * torch.nn.functional.logsigmoid(-out.logits)).flatten(1).sum(1)
        assert dist.batch_shape == (5,)
    else:
        ref_recon = -Independent(Normal(out.x_hat, out.log_sigma.exp()), 3).log_prob(x)
    q = Independent(Normal(out.mu, (0.5 * out.logvar).exp()), 1)
    p = Independent(Normal(torch.zeros_like(out.mu), torch.ones_like(out.mu)), 1)
    torch.testing.assert_close(terms.recon_nats, ref_recon, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(terms.kl_nats, kl_divergence(q, p), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(terms.elbo_nats, -(ref_recon + kl_divergence(q, p)), atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(terms.loss, (ref_recon + 2.0 * kl_divergence(q, p)).mean(), atol=1e-3, rtol=1e-5)


def test_kl_does_not_depend_on_data_range_but_recon_does():
    torch.manual_seed(2)
    model = build_model(ModelConfig(channels=1, image_size=28, latent_dim=4, output_activation="linear"),
                        "gaussian", sigma=0.1)
    mu, logvar = torch.randn(3, 4), torch.randn(3, 4)
    assert kl_per_dimension(mu, logvar).sum(1).shape == (3,)  # a function of (mu, logvar) only
    x = torch.rand(3, 1, 28, 28)
    out = model(x)
    small = reconstruction_nats(out, x, "gaussian")
    big = reconstruction_nats(out, 10 * x, "gaussian")
    assert (big > small).all()


def test_bits_per_dim_hand_worked():
    # 3 bits per dimension of a 3x2x2 image: a negative log-likelihood of 12 * 3 * log 2 nats.
    assert bits_per_dim(12 * 3 * math.log(2), 12) == pytest.approx(3.0)
    # The continuous Bernoulli at lambda = 1/2 is uniform on [0, 1]: a grey level inside has mass 1/255,
    # 0 and 255 (their bins cut at 0 and 1) 1/510. Pixels 0, 10, 200, 255: log2(255) + 1/2 bits/dim.
    unit = fit_normalizer("unit", torch.zeros(1, 1, 1, 1, dtype=torch.uint8))
    k = torch.tensor([0, 10, 200, 255], dtype=torch.uint8).view(1, 1, 2, 2)
    log_mass = discrete_log_prob("continuous_bernoulli", *unit.grey_level_bins(k), None, torch.zeros(1, 1, 2, 2), None)
    assert bits_per_dim(-log_mass.sum().item(), 4) == pytest.approx(math.log2(255) + 0.5, rel=1e-12)


def test_zscore_normalizer_matches_torch_statistics():
    images = torch.randint(0, 256, (50, 3, 6, 6), dtype=torch.uint8)
    norm = fit_normalizer("zscore", images)
    p = images.float() / 255
    mean, std = p.mean(dim=(0, 2, 3)), p.std(dim=(0, 2, 3))
    torch.testing.assert_close(torch.tensor(norm.shift, dtype=torch.float64), mean.double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(torch.tensor(norm.scale, dtype=torch.float64), std.double(), atol=1e-6, rtol=0)
    x = norm.forward(p)
    torch.testing.assert_close(norm.inverse(x), p, atol=1e-6, rtol=0)
    torch.testing.assert_close(norm.from_grey_levels(images), x, atol=1e-5, rtol=0)  # the fused training path
    assert abs(x.mean().item()) < 1e-4


@pytest.mark.parametrize("activation,normalization,likelihood,status", [
    ("sigmoid", "unit", "bernoulli", "works"),
    ("tanh", "unit", "bernoulli", "refused"),
    ("linear", "unit", "bernoulli", "refused"),
    ("sigmoid", "zscore", "bernoulli", "refused"),
    ("sigmoid", "symmetric", "bernoulli", "refused"),
    ("sigmoid", "unit", "gaussian", "works"),
    ("tanh", "symmetric", "gaussian", "works"),
    ("tanh", "unit", "gaussian", "works"),
    ("sigmoid", "symmetric", "gaussian", "mismatched"),
    ("tanh", "zscore", "gaussian_learned", "mismatched"),
    ("linear", "zscore", "gaussian_learned", "works"),
])
def test_compatibility_verdicts(activation, normalization, likelihood, status):
    target = (-0.42, 2.82) if normalization == "zscore" else None  # MNIST's zscored range
    verdict = compatibility(activation, normalization, likelihood, target)
    assert verdict.status == status
    assert (verdict.reason == "") == (status == "works")
