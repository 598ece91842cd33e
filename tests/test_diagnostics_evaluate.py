"""evaluate()'s metrics: output range fractions, the ELBO's terms, the equivalent beta, and bits/dim: a discrete
likelihood of the 8-bit images, never negative, one number across normalizations, and the continuous density's
number when sigma is wide."""
import math

import pytest
import torch
from torch.distributions import Normal

from vae_core.config import DataConfig, LossConfig, RunConfig, TrainConfig
from vae_core.data.datasets import load_dataset
from vae_core.data.base import pixels
from vae_core.model.evaluate import BERNOULLI_BPD_NOTE, bits_per_dim, evaluate, range_fractions
from vae_core.model.likelihoods import discrete_log_prob
from vae_core.data.normalize import fit_normalizer
from vae_core.model.objective import effective_beta, loss_terms
from tests.helpers import reference_log_mass, sprite_model


@pytest.fixture(scope="module")
def sprites_train():
    return load_dataset(DataConfig(n_train=512), "train").images


# ----------------------------------------------------------------------------- range fractions


def test_range_fractions_tanh():
    x = torch.tensor([-1.5, -1.0, -0.5, 0.0, 0.99, 1.0, 2.0])  # -1.5 and 2.0 lie outside [-1, 1]
    x_hat = torch.tensor([-0.9995, 0.0, 0.9999, 0.5])  # -0.9995 and 0.9999 are within 1e-3 of a bound
    unreachable, saturated = range_fractions(x, x_hat, "tanh")
    assert unreachable == pytest.approx(2 / 7)
    assert saturated == pytest.approx(2 / 4)


def test_range_fractions_sigmoid():
    x = torch.tensor([[-0.1, 0.0, 0.5], [1.0, 1.2, 0.3]])  # -0.1 and 1.2 outside [0, 1]; the bounds are inside
    x_hat = torch.tensor([0.0005, 0.5, 0.9995, 0.002, 0.998])  # 0.0005 and 0.9995 within 1e-3 of a bound
    unreachable, saturated = range_fractions(x, x_hat, "sigmoid")
    assert unreachable == pytest.approx(2 / 6)
    assert saturated == pytest.approx(2 / 5)


def test_range_fractions_linear_has_no_bounds():
    x = torch.tensor([-1e6, -3.0, 0.0, 7.0, 1e6])
    assert range_fractions(x, x.clone(), "linear") == (0.0, 0.0)


# ----------------------------------------------------------------------------- evaluate()

CONTINUOUS = ["continuous_bernoulli", "gaussian", "gaussian_learned", "gaussian_optimal", "gaussian_pixel", "laplace"]


@pytest.mark.parametrize("likelihood", ["bernoulli"] + CONTINUOUS)
def test_evaluate_metrics(likelihood, sprites_test):
    # sigma 0.1 makes log p(x|z) of the untrained model vary with z, so IWAE_16 - ELBO is several nats
    model = sprite_model(likelihood, sigma=0.1)
    unit = fit_normalizer("unit", sprites_test)
    loss = LossConfig(likelihood=likelihood, sigma=0.1, beta=4.0, recon_reduction="mean")
    config = RunConfig(model=model.cfg, loss=loss, train=TrainConfig(batch_size=16))
    iwae_k = 16 if likelihood in ("gaussian", "laplace") else 0
    m = evaluate(model, unit, sprites_test, dataset="sprites", config=config, steps=50, iwae_k=iwae_k, batch_size=32)
    assert m.n_test == 64 and m.dataset == "sprites"
    assert m.elbo_nats == pytest.approx(-(m.recon_nats + m.kl_nats), rel=1e-6)
    if iwae_k:
        assert m.iwae_k == 16 and m.iwae_nats >= m.elbo_nats
    else:
        assert m.iwae_nats is None and m.iwae_k == 0
    if likelihood == "bernoulli":
        assert m.bits_per_dim is None and m.bits_per_dim_note == BERNOULLI_BPD_NOTE and m.bits_per_dim_note
        assert m.iwae_bits_per_dim is None
    else:
        assert math.isfinite(m.bits_per_dim) and m.bits_per_dim >= 0 and m.bits_per_dim_note == ""
        if iwae_k:  # a tighter bound on -log P(k): fewer bits
            assert 0 <= m.iwae_bits_per_dim <= m.bits_per_dim
        else:
            assert m.iwae_bits_per_dim is None
    # the posterior: one entry per latent dimension, from the encoder directly
    mu, logvar = model.encode(pixels(sprites_test))
    torch.testing.assert_close(torch.tensor(m.posterior_sigma), (0.5 * logvar).exp().mean(0), atol=1e-5, rtol=1e-5)
    assert len(m.posterior_sigma) == len(m.kl_per_dim) == len(m.posterior_var) == 4
    assert all(0 < s < math.inf for s in m.posterior_sigma)
    torch.testing.assert_close(torch.tensor(m.posterior_var), mu.var(0, correction=0), atol=1e-5, rtol=1e-4)
    assert sum(m.kl_per_dim) == pytest.approx(m.kl_nats, rel=1e-5)
    assert m.effective_beta == pytest.approx(effective_beta(loss, 3 * 32 * 32, 4, 16)) == pytest.approx(4 * 3072)
    assert m.frac_targets_unreachable == 0.0  # sigmoid on unit data: every target reachable
    assert 0 <= m.frac_outputs_saturated <= 1


def test_evaluate_reports_the_equivalent_beta_of_the_last_step_with_the_batch(sprites_test):
    # mse_loss(reduction="sum") + 100 * KL.mean(), B = 16, L = 4: beta_eff = 100 / (16 * 4) = 1.5625; a linear
    # warm-up over 100 steps had reached 0.5 at the 51st step (index 50), so the run trained at 0.78125.
    model = sprite_model("gaussian", sigma=0.707)
    loss = LossConfig(likelihood="gaussian", sigma=0.707, beta=100, recon_batch_reduction="sum", kl_reduction="mean",
                      kl_schedule="linear", kl_warmup_steps=100)
    config = RunConfig(model=model.cfg, loss=loss, train=TrainConfig(batch_size=16))
    m = evaluate(model, fit_normalizer("unit", sprites_test), sprites_test, config=config, steps=51)
    assert m.effective_beta == pytest.approx(0.78125)
    assert evaluate(model, fit_normalizer("unit", sprites_test), sprites_test).effective_beta is None


def test_evaluate_elbo_is_the_per_image_mean_of_the_reported_terms(sprites_test):
    # evaluate() draws the ELBO's z from a generator seeded with its seed: the same draws by hand give the same
    # numbers.
    model = sprite_model("gaussian", sigma=0.3)
    unit = fit_normalizer("unit", sprites_test)
    m = evaluate(model, unit, sprites_test, seed=3)
    with torch.no_grad():
        terms = loss_terms(model, pixels(sprites_test), LossConfig(likelihood="gaussian", sigma=0.3),
                           generator=torch.Generator().manual_seed(3))
    assert m.recon_nats == pytest.approx(terms.recon_nats.mean().item(), rel=1e-5)
    assert m.kl_nats == pytest.approx(terms.kl_nats.mean().item(), rel=1e-5)
    assert m.elbo_nats == pytest.approx(terms.elbo_nats.mean().item(), rel=1e-5)
    # bits/dim: the same z's grey-level masses from torch's Normal CDF, and the same analytic KL
    out = terms.out
    px = Normal(out.x_hat.double(), out.log_sigma.double().exp())
    log_pk = reference_log_mass(px, *unit.grey_level_bins(sprites_test))
    assert m.bits_per_dim == pytest.approx(bits_per_dim(-(log_pk - terms.kl_nats).mean().item(), 3 * 32 * 32),
                                           rel=1e-6)
    assert m.effective_beta is None  # no loss config given
    assert evaluate(model, unit, sprites_test, seed=3) == m  # repeatable


def test_evaluate_counts_zscored_sprites_a_tanh_cannot_reach(sprites_train, sprites_test):
    zscore = fit_normalizer("zscore", sprites_train)  # fitted on the training split, as prepare_data does
    model = sprite_model("gaussian", sigma=0.3, output_activation="tanh")
    m = evaluate(model, zscore, sprites_test)
    x = zscore.forward(pixels(sprites_test))
    direct = ((x < -1) | (x > 1)).double().mean().item()
    assert m.frac_targets_unreachable == pytest.approx(direct, rel=1e-9)
    # mostly black sprites: the shapes' bright channels sit ~5 standard deviations up, beyond tanh's 1
    assert direct > 0.03
    assert ((x > 1).double().mean().item()) == pytest.approx(direct)  # all of it is the positive tail
    # the same data under a linear output: nothing unreachable, nothing saturated
    linear = evaluate(sprite_model("gaussian", sigma=0.3, output_activation="linear"), zscore, sprites_test)
    assert linear.frac_targets_unreachable == 0.0 and linear.frac_outputs_saturated == 0.0


def test_evaluate_counts_saturated_outputs(sprites_test):
    # Push the sigmoid decoder's last bias per channel to +20, -20, 0: the red channel's outputs sit
    # within 1e-3 of 1, the green's of 0, the blue's in between, so about 2/3 are saturated.
    model = sprite_model("gaussian", sigma=0.3)
    with torch.no_grad():
        model.decoder[-1].bias.copy_(torch.tensor([20.0, -20.0, 0.0]))
        outputs = torch.sigmoid(model.decode_logits(model.encode(pixels(sprites_test))[0]))
    direct = ((outputs < 1e-3) | (1 - outputs < 1e-3)).double().mean().item()
    assert direct == pytest.approx(2 / 3, abs=0.01)
    m = evaluate(model, fit_normalizer("unit", sprites_test), sprites_test)
    assert m.frac_outputs_saturated == pytest.approx(direct, rel=1e-9)


# ----------------------------------------------------------------------------- bits/dim


def test_bin_masses_are_the_same_for_one_distribution_under_every_normalization():
    # A Gaussian on pixels p, written in unit, symmetric and zscore (data scales 1, 10, 0.1) coordinates:
    # x = (p - shift_c) / scale_c per channel makes it N((m - shift_c) / scale_c, sigma / scale_c) in x, and
    # maps each grey level's bin onto its bin in x: the same masses, so one bits/dim, whatever the nats in x.
    g = torch.Generator().manual_seed(0)
    images = torch.cat([torch.randint(0, 100, (20, 1, 4, 4), generator=g),
                        torch.randint(50, 256, (20, 1, 4, 4), generator=g),
                        torch.randint(0, 256, (20, 1, 4, 4), generator=g)], 1).to(torch.uint8)
    images[0, :, 0, 0], images[0, :, 0, 1] = 0, 255  # the open bins too
    mean_p, sigma_p = torch.full((20, 3, 4, 4), 0.4, dtype=torch.float64), 0.25
    masses = {}
    for kind, scale in (("unit", 1.0), ("symmetric", 1.0), ("zscore", 1.0), ("zscore", 10.0), ("unit", 0.1)):
        norm = fit_normalizer(kind, images, data_scale=scale)
        a = torch.tensor(norm.scale, dtype=torch.float64).view(-1, 1, 1)
        log_sigma = torch.log(sigma_p / a).expand(mean_p.shape)
        masses[kind, scale] = discrete_log_prob("gaussian_pixel", *norm.grey_level_bins(images),
                                                norm.forward(mean_p), None, log_sigma)
    unit = masses["unit", 1.0]
    for key, m in masses.items():
        torch.testing.assert_close(m, unit, atol=1e-12, rtol=1e-12, msg=str(key))
    assert len(set(fit_normalizer("zscore", images, data_scale=10).scale)) == 3  # three different scales


@pytest.mark.parametrize("likelihood", CONTINUOUS)
@pytest.mark.parametrize("sharp", [False, True])
def test_bits_per_dim_is_never_negative(likelihood, sharp, sprites_test):
    # Untrained models on sprites; and models made nearly perfect on black images: every output at black,
    # sigma at its floor (a quarter of a grey level), the continuous Bernoulli's lambda near 0. There a
    # density exceeds 255 per unit and the old density-based number went negative (as the zoo's continuous
    # Bernoulli did: -5.9); a mass cannot exceed 1.
    unit = fit_normalizer("unit", sprites_test)
    model = sprite_model(likelihood, sigma=1e-3 if sharp else 0.1, output_activation="linear" if sharp else "sigmoid")
    images = torch.zeros_like(sprites_test) if sharp else sprites_test
    if sharp:
        with torch.no_grad():
            last = model.decoder[-1]
            last.weight.zero_()
            last.bias[:3] = -1000.0 if likelihood == "continuous_bernoulli" else 0.0
            last.bias[3:] = -1e3  # gaussian_pixel's log sigmas: at the floor
    m = evaluate(model, unit, images, iwae_k=4)
    assert m.bits_per_dim >= 0 and m.iwae_bits_per_dim >= 0
    if sharp:  # the open bin below grey level 1/2 holds 86% (continuous Bernoulli) to 97.5% of the mass
        assert m.bits_per_dim < 0.25
        density_based = -(m.elbo_nats - 3 * 32 * 32 * math.log(255)) / (3 * 32 * 32 * math.log(2))
        assert density_based < 0


@pytest.mark.parametrize("kind,scale", [("symmetric", 1.0), ("zscore", 10.0)])
def test_a_wide_gaussian_gives_the_density_based_bits_per_dim(kind, scale, sprites_test):
    # With sigma many bins wide and no pixel in an open bin, a bin's mass is its density times its width
    # (to width^2 / (24 sigma^2)), so bits/dim is the continuous ELBO moved to grey levels by the
    # normalization's log-Jacobian, -(ELBO - D log 255 - H W sum_c log scale_c) / (D log 2): the old number.
    images = sprites_test.clamp(1, 254)  # (64, 3, 32, 32): no 0s and 255s
    norm = fit_normalizer(kind, images, data_scale=scale)
    model = sprite_model("gaussian", sigma=0.5 * max(norm.scale) ** -1)  # ~0.5 in pixels: 127 grey levels
    m = evaluate(model, norm, images)
    log_det = 32 * 32 * sum(math.log(255 * c) for c in norm.scale)
    density_based = -(m.elbo_nats - log_det) / (3 * 32 * 32 * math.log(2))
    assert m.bits_per_dim == pytest.approx(density_based, abs=1e-5)
