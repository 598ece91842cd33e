"""Every Monte-Carlo number says how sure it is: each estimate draws from its own seeded generator (the ELBO
does not move with iwae_k), its standard error over the test images is std(ddof=1) / sqrt(N), and PSNR is the
mean of each image's, the pooled one kept beside it."""
import math
import statistics

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae_core.config import DataConfig, ModelConfig
from vae_core.data.datasets import load_dataset
from vae_core.data.base import pixels
from vae_core.model.evaluate import EvalMetrics, evaluate, psnr_db
from vae_core.model.vae import build_model
from vae_core.data.normalize import fit_normalizer

N_PIXELS = 3 * 32 * 32


@pytest.fixture(scope="module")
def images():
    return load_dataset(DataConfig(n_test=24), "test").images  # (24, 3, 32, 32) uint8


@pytest.fixture(scope="module")
def model():
    return build_model(ModelConfig(channels=3, image_size=32, latent_dim=4, width=8, depth=3), "gaussian", 0.1,
                       seed=0).eval()


def test_the_elbo_does_not_change_with_iwae_k(model, images):
    unit = fit_normalizer("unit", images)
    plain = evaluate(model, unit, images, iwae_k=0, batch_size=10)
    with_iwae = evaluate(model, unit, images, iwae_k=16, batch_size=10)
    assert with_iwae.elbo_nats == plain.elbo_nats and with_iwae.elbo_se == plain.elbo_se
    assert with_iwae.bits_per_dim == plain.bits_per_dim and with_iwae.bits_per_dim_se == plain.bits_per_dim_se
    assert plain.iwae_se is None and plain.iwae_bits_per_dim_se is None
    assert with_iwae.iwae_se > 0 and with_iwae.iwae_bits_per_dim_se > 0
    torch.manual_seed(123)  # torch's global stream plays no part
    assert evaluate(model, unit, images, iwae_k=16, batch_size=10) == with_iwae


def _reference_per_image(model, unit, images, seed):
    """(ELBO nats, bits/dim) of each image from torch.distributions, z drawn as evaluate draws it (one batch)."""
    x = pixels(images)
    mu, logvar = model.encode(x)
    q = Normal(mu, (0.5 * logvar).exp())
    z = q.loc + q.scale * torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed))
    px = Normal(model.decode(z).double(), 0.1)
    kl = kl_divergence(q, Normal(0.0, 1.0)).sum(1).double()
    elbo = px.log_prob(x.double()).flatten(1).sum(1) - kl
    lo, hi = unit.grey_level_bins(images)
    log_pk = (px.cdf(hi) - px.cdf(lo)).log().flatten(1).sum(1)
    return elbo, -(log_pk - kl) / (N_PIXELS * math.log(2))


@torch.no_grad()
def test_standard_errors_are_the_spread_of_the_per_image_values(model, images):
    unit = fit_normalizer("unit", images)
    m = evaluate(model, unit, images, seed=5)
    elbo, bits = _reference_per_image(model, unit, images, seed=5)
    assert m.elbo_nats == pytest.approx(elbo.mean().item(), rel=1e-5)
    assert m.elbo_se == pytest.approx(statistics.stdev(elbo.tolist()) / math.sqrt(24), rel=1e-4)
    assert m.bits_per_dim == pytest.approx(bits.mean().item(), rel=1e-6)
    assert m.bits_per_dim_se == pytest.approx(statistics.stdev(bits.tolist()) / math.sqrt(24), rel=1e-4)
    assert 0 < m.elbo_se < abs(m.elbo_nats)


def test_psnr_is_the_mean_of_per_image_psnrs_and_the_pooled_one_is_kept():
    # Hand-worked: MSEs 0.01 and 0.0001 are 20 and 40 dB, mean 30 dB; pooled, (0.01 + 0.0001) / 2 = 0.00505 is
    # 22.97 dB. An exact image counts at the 8-bit rounding's PSNR, 10 log10(12 * 255^2) = 58.92 dB, not infinity.
    mse = torch.tensor([0.01, 0.0001])
    assert psnr_db(mse).mean().item() == pytest.approx(30.0)
    assert psnr_db(mse.mean()).item() == pytest.approx(22.967, abs=1e-3)
    assert psnr_db(torch.tensor(0.0)).item() == pytest.approx(58.92, abs=1e-2)


@torch.no_grad()
def test_evaluate_reports_the_mean_and_pooled_psnr_of_a_hand_built_decoder():
    # An MLP whose decoder outputs 0.5 everywhere (weights 0, bias 0.5, linear output on unit data): an image of
    # grey 128 misses by 0.5/255 (MSE 3.84e-6, 54.15 dB), a black one by 0.5 (MSE 0.25, 6.02 dB).
    model = build_model(ModelConfig(arch="mlp", channels=1, image_size=28, latent_dim=2, hidden_dim=8,
                                    output_activation="linear"), "gaussian", 0.1, seed=0).eval()
    last = model.decoder[2]
    last.weight.zero_()
    last.bias.fill_(0.5)
    images = torch.stack([torch.full((1, 28, 28), 128), torch.zeros(1, 28, 28)]).to(torch.uint8)
    m = evaluate(model, fit_normalizer("unit", images), images)
    mses = [(0.5 / 255) ** 2, 0.25]
    assert m.mse == pytest.approx(sum(mses) / 2, rel=1e-5)
    assert m.psnr_db == pytest.approx((54.151 + 6.021) / 2, abs=2e-3)  # 30.09 dB
    assert m.psnr_pooled_db == pytest.approx(-10 * math.log10(sum(mses) / 2), abs=1e-4)  # 9.03 dB


def test_metrics_saved_before_the_standard_errors_still_build():
    old = dict(dataset="sprites", n_test=10, elbo_nats=-100.0, recon_nats=90.0, kl_nats=10.0, iwae_nats=None,
               iwae_k=0, bits_per_dim=2.0, bits_per_dim_note="", mse=0.01, psnr_db=20.0, active_units=5,
               kl_per_dim=[1.0], posterior_var=[1.0], posterior_sigma=[0.5], posterior_collapse=False,
               frac_targets_unreachable=0.0, frac_outputs_saturated=0.0, effective_beta=1.0)
    m = EvalMetrics(**old)
    assert m.elbo_se is None and m.psnr_pooled_db is None
    assert EvalMetrics(**m.to_dict()) == m


@pytest.fixture(scope="module")
def repeated(model, images):
    """The same model and images evaluated with 30 seeds: the spread of the estimates is their Monte-Carlo error."""
    unit = fit_normalizer("unit", images)
    return [evaluate(model, unit, images, iwae_k=8, seed=s) for s in range(0, 90, 3)]


@pytest.mark.parametrize("estimate, mc_se", [("elbo_nats", "elbo_mc_se"), ("iwae_nats", "iwae_mc_se"),
                                             ("bits_per_dim", "bits_per_dim_mc_se"),
                                             ("iwae_bits_per_dim", "iwae_bits_per_dim_mc_se")])
def test_the_monte_carlo_error_is_the_spread_over_seeds(repeated, estimate, mc_se):
    spread = statistics.stdev(getattr(m, estimate) for m in repeated)  # 30 seeds: itself known to ~13%
    reported = statistics.mean(getattr(m, mc_se) for m in repeated)
    assert 0.6 * spread < reported < 1.5 * spread


def test_the_monte_carlo_error_is_reported_apart_from_the_spread_over_images(repeated):
    m = repeated[0]
    assert m.elbo_mc_se < m.elbo_se / 10 and m.bits_per_dim_mc_se < m.bits_per_dim_se / 10
    assert {"elbo_mc_se", "iwae_mc_se", "bits_per_dim_mc_se", "iwae_bits_per_dim_mc_se"} <= set(m.to_dict())
    assert "per_image" not in m.to_dict()  # the per-image values stay in memory, for paired comparisons
    assert m.per_image.elbo.mean().item() == pytest.approx(m.elbo_nats)
    assert m.per_image.bits.mean().item() == pytest.approx(m.bits_per_dim)
    assert m.per_image.psnr.mean().item() == pytest.approx(m.psnr_db)
