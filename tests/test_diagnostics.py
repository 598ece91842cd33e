"""Evaluation diagnostics: output range fractions, the IWAE bound, evaluate()'s metrics, posterior
collapse, and bits/dim across normalizations."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, ContinuousBernoulli, Laplace, Normal

from vae_core.config import DataConfig, LossConfig, ModelConfig
from vae_core.data import load_dataset, pixels
from vae_core.evaluate import (BERNOULLI_BPD_NOTE, bits_per_dim, evaluate, iwae_bound, posterior_collapse,
                               range_fractions)
from vae_core.models import build_model
from vae_core.normalize import fit_normalizer
from vae_core.objective import effective_beta, loss_terms

SPRITE_MODEL = dict(channels=3, image_size=32, latent_dim=4, width=8, depth=3)


@pytest.fixture(scope="module")
def sprites_test():
    return load_dataset(DataConfig(n_test=64), "test").images  # (64, 3, 32, 32) uint8


@pytest.fixture(scope="module")
def sprites_train():
    return load_dataset(DataConfig(n_train=512), "train").images


def _model(likelihood="gaussian", sigma=0.1, seed=0, **kw):
    torch.manual_seed(seed)
    return build_model(ModelConfig(**{**SPRITE_MODEL, **kw}), likelihood, sigma).eval()


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


# ----------------------------------------------------------------------------- IWAE


def _reference_iwae(model, x, k, per):
    """log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x) with torch.distributions, one sample at a time.

    per: how many samples iwae_bound draws at once (the RNG stream depends on the draws' shapes)."""
    mu, logvar = model.encode(x)
    q = Normal(mu, (0.5 * logvar).exp())
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    z_all = torch.cat([torch.randn(min(per, k - i), *mu.shape) for i in range(0, k, per)])  # (k, B, L)
    log_w = []
    for z_eps in z_all:
        z = q.loc + q.scale * z_eps
        logits = model.decode_logits(z)
        x_hat = model.out_act(logits)
        if model.likelihood == "bernoulli":
            px = Bernoulli(logits=logits, validate_args=False)
        elif model.likelihood == "continuous_bernoulli":
            px = ContinuousBernoulli(logits=logits)
        elif model.likelihood == "laplace":
            px = Laplace(x_hat, model.log_sigma.exp())
        else:
            px = Normal(x_hat, model.decode_log_sigma(z).exp())
        log_w.append(px.log_prob(x).flatten(1).sum(1) + prior.log_prob(z).sum(1) - q.log_prob(z).sum(1))
    return torch.logsumexp(torch.stack(log_w), 0) - math.log(k)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian", "gaussian_pixel",
                                        "laplace"])
@torch.no_grad()
def test_iwae_bound_matches_a_direct_implementation(likelihood, sprites_test):
    model = _model(likelihood, sigma=0.2).double()  # float64 throughout: a tolerance of 1e-8 nats
    x = pixels(sprites_test[:3]).double()  # three different images: a mix-up of samples and images would show
    torch.manual_seed(7)
    ours = iwae_bound(model, x, 3)
    torch.manual_seed(7)
    ref = _reference_iwae(model, x, 3, per=3)  # the default chunk decodes all 3 samples at once
    assert ours.shape == (3,)
    torch.testing.assert_close(ours, ref, atol=1e-8, rtol=0)
    # decoding in chunks of 2 samples (chunk // batch = 6 // 3): 2 + 1 draws, logsumexp over all 3
    torch.manual_seed(7)
    chunked = iwae_bound(model, x, 3, chunk=6)
    torch.manual_seed(7)
    torch.testing.assert_close(chunked, _reference_iwae(model, x, 3, per=2), atol=1e-8, rtol=0)
    assert (chunked - ours).abs().max() > 1e-6  # other draws: the comparison above is not vacuous


@torch.no_grad()
def test_iwae_with_one_sample_is_the_elbo_in_expectation(sprites_test):
    # IWAE_1 = log p(x|z) + log p(z) - log q(z|x); the ELBO estimate = log p(x|z) - KL (analytic).
    # With the same seed both use the same z, so their difference is log p(z) - log q(z|x) + KL,
    # whose expectation is 0: its mean over n draws must be 0 within 4 standard errors.
    model = _model("gaussian", sigma=0.1)
    n, b = 200, 4
    x = pixels(sprites_test[:b]).repeat(n, 1, 1, 1)  # row i * b + j is image j, draw i
    torch.manual_seed(0)
    iw = iwae_bound(model, x, 1).view(n, b)
    torch.manual_seed(0)
    elbo = loss_terms(model, x, LossConfig(likelihood="gaussian", sigma=0.1)).elbo_nats.view(n, b)
    diff = iw - elbo
    se = diff.std(0) / math.sqrt(n)
    assert (diff.mean(0).abs() < 4 * se + 1e-3).all(), (diff.mean(0), se)
    assert (diff.std(0) > 0).all()  # not identical per draw: the KL is analytic, log q - log p is not


@torch.no_grad()
def test_iwae_rises_with_k_and_bounds_the_elbo(sprites_test):
    # Burda et al. 2015, Thm 1: E[IWAE_k] >= E[IWAE_m] for k > m, and IWAE_1 is the ELBO. A small-sigma
    # Gaussian makes log p(x|z) vary with z, so the gains (several nats) dwarf the noise.
    model = _model("gaussian", sigma=0.1)
    n, b = 60, 4
    x = pixels(sprites_test[:b]).repeat(n, 1, 1, 1)
    torch.manual_seed(1)
    elbo = loss_terms(model, x, LossConfig(likelihood="gaussian", sigma=0.1)).elbo_nats.view(n, b).mean(1)
    bounds = {}
    for k in (1, 5, 25):
        torch.manual_seed(1)
        bounds[k] = iwae_bound(model, x, k).view(n, b).mean(1)  # (n,) mean over the images
    for lo, hi in ((1, 5), (5, 25)):
        gain = bounds[hi] - bounds[lo]
        se = gain.std() / math.sqrt(n)
        assert gain.mean() > 3 * se, (lo, hi, gain.mean(), se)
    for k in (5, 25):
        gap = bounds[k] - elbo
        assert gap.mean() > 3 * gap.std() / math.sqrt(n)


# ----------------------------------------------------------------------------- evaluate()

CONTINUOUS = ["continuous_bernoulli", "gaussian", "gaussian_learned", "gaussian_optimal", "gaussian_pixel", "laplace"]


@pytest.mark.parametrize("likelihood", ["bernoulli"] + CONTINUOUS)
def test_evaluate_metrics(likelihood, sprites_test):
    # sigma 0.1 makes log p(x|z) of the untrained model vary with z, so IWAE_16 - ELBO is several nats
    model = _model(likelihood, sigma=0.1)
    unit = fit_normalizer("unit", sprites_test)
    loss = LossConfig(likelihood=likelihood, sigma=0.1, beta=4.0, recon_reduction="mean")
    iwae_k = 16 if likelihood in ("gaussian", "laplace") else 0
    m = evaluate(model, unit, sprites_test, dataset="sprites", loss=loss, iwae_k=iwae_k, batch_size=32)
    assert m.n_test == 64 and m.dataset == "sprites"
    assert m.elbo_nats == pytest.approx(-(m.recon_nats + m.kl_nats), rel=1e-6)
    if iwae_k:
        assert m.iwae_k == 16 and m.iwae_nats >= m.elbo_nats
    else:
        assert m.iwae_nats is None and m.iwae_k == 0
    if likelihood == "bernoulli":
        assert m.bits_per_dim is None and m.bits_per_dim_note == BERNOULLI_BPD_NOTE and m.bits_per_dim_note
    else:
        assert m.bits_per_dim == pytest.approx(bits_per_dim(m.elbo_nats, unit, (3, 32, 32)), rel=1e-9)
        assert math.isfinite(m.bits_per_dim) and m.bits_per_dim_note == ""
    # the posterior: one entry per latent dimension, from the encoder directly
    mu, logvar = model.encode(pixels(sprites_test))
    torch.testing.assert_close(torch.tensor(m.posterior_sigma), (0.5 * logvar).exp().mean(0), atol=1e-5, rtol=1e-5)
    assert len(m.posterior_sigma) == len(m.kl_per_dim) == len(m.posterior_var) == 4
    assert all(0 < s < math.inf for s in m.posterior_sigma)
    torch.testing.assert_close(torch.tensor(m.posterior_var), mu.var(0, correction=0), atol=1e-5, rtol=1e-4)
    assert sum(m.kl_per_dim) == pytest.approx(m.kl_nats, rel=1e-5)
    assert m.effective_beta == pytest.approx(effective_beta(loss, 3 * 32 * 32, 4)) == pytest.approx(4 * 3072)
    assert m.frac_targets_unreachable == 0.0  # sigmoid on unit data: every target reachable
    assert 0 <= m.frac_outputs_saturated <= 1


def test_evaluate_elbo_is_the_per_image_mean_of_the_reported_terms(sprites_test):
    # evaluate() draws z with its seed inside fork_rng: the same draws by hand give the same numbers.
    model = _model("gaussian", sigma=0.3)
    unit = fit_normalizer("unit", sprites_test)
    m = evaluate(model, unit, sprites_test, seed=3)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        with torch.no_grad():
            terms = loss_terms(model, pixels(sprites_test), LossConfig(likelihood="gaussian", sigma=0.3))
    assert m.recon_nats == pytest.approx(terms.recon_nats.mean().item(), rel=1e-5)
    assert m.kl_nats == pytest.approx(terms.kl_nats.mean().item(), rel=1e-5)
    assert m.elbo_nats == pytest.approx(terms.elbo_nats.mean().item(), rel=1e-5)
    assert m.effective_beta is None  # no loss config given
    assert evaluate(model, unit, sprites_test, seed=3) == m  # repeatable


def test_evaluate_counts_zscored_sprites_a_tanh_cannot_reach(sprites_train, sprites_test):
    zscore = fit_normalizer("zscore", sprites_train)  # fitted on the training split, as prepare_data does
    model = _model("gaussian", sigma=0.3, output_activation="tanh")
    m = evaluate(model, zscore, sprites_test)
    x = zscore.forward(pixels(sprites_test))
    direct = ((x < -1) | (x > 1)).double().mean().item()
    assert m.frac_targets_unreachable == pytest.approx(direct, rel=1e-9)
    # mostly black sprites: the shapes' bright channels sit ~5 standard deviations up, beyond tanh's 1
    assert direct > 0.03
    assert ((x > 1).double().mean().item()) == pytest.approx(direct)  # all of it is the positive tail
    # the same data under a linear output: nothing unreachable, nothing saturated
    linear = evaluate(_model("gaussian", sigma=0.3, output_activation="linear"), zscore, sprites_test)
    assert linear.frac_targets_unreachable == 0.0 and linear.frac_outputs_saturated == 0.0


def test_evaluate_counts_saturated_outputs(sprites_test):
    # Push the sigmoid decoder's last bias per channel to +20, -20, 0: the red channel's outputs sit
    # within 1e-3 of 1, the green's of 0, the blue's in between, so about 2/3 are saturated.
    model = _model("gaussian", sigma=0.3)
    with torch.no_grad():
        model.decoder[-1].bias.copy_(torch.tensor([20.0, -20.0, 0.0]))
        outputs = torch.sigmoid(model.decode_logits(model.encode(pixels(sprites_test))[0]))
    direct = ((outputs < 1e-3) | (1 - outputs < 1e-3)).double().mean().item()
    assert direct == pytest.approx(2 / 3, abs=0.01)
    m = evaluate(model, fit_normalizer("unit", sprites_test), sprites_test)
    assert m.frac_outputs_saturated == pytest.approx(direct, rel=1e-9)


# ----------------------------------------------------------------------------- posterior collapse


def test_posterior_collapse():
    assert posterior_collapse([0.001] * 10)
    assert not posterior_collapse([0.001] * 9 + [3.0])  # one dimension carries 3 nats: z is not ignored
    assert not posterior_collapse([0.001] * 8 + [3.0, 2.0])
    assert not posterior_collapse([0.5, 1.0, 2.0])


# ----------------------------------------------------------------------------- bits/dim


def test_bits_per_dim_is_the_same_for_one_density_under_every_normalization():
    # A Gaussian density on pixels p, written in unit, symmetric and zscore (data scale 10) coordinates:
    # x = (p - shift_c) / scale_c per channel gives p_x = N(x; (m - shift_c) / scale_c, sigma / scale_c),
    # i.e. log p_x(x) = log p_p(p) + sum log scale_c: different nats, one bits/dim on grey levels k = 255 p.
    g = torch.Generator().manual_seed(0)
    images = torch.cat([torch.randint(0, 100, (20, 1, 4, 4), generator=g),
                        torch.randint(50, 256, (20, 1, 4, 4), generator=g),
                        torch.randint(0, 256, (20, 1, 4, 4), generator=g)], 1).to(torch.uint8)
    p = pixels(images[:3]).double()  # (3, 3, 4, 4)
    mean_p, sigma_p = torch.full_like(p, 0.4), torch.full_like(p, 0.25)
    ll_pixels = Normal(mean_p, sigma_p).log_prob(p).flatten(1).sum(1)
    expected = [-(ll - p[0].numel() * math.log(255)) / (p[0].numel() * math.log(2)) for ll in ll_pixels.tolist()]
    for kind, scale in (("unit", 1.0), ("symmetric", 1.0), ("zscore", 1.0), ("zscore", 10.0), ("unit", 10.0)):
        norm = fit_normalizer(kind, images, data_scale=scale)
        x, loc = norm.forward(p), norm.forward(mean_p)
        a = torch.tensor(norm.scale, dtype=torch.float64).view(-1, 1, 1)
        ll_x = Normal(loc, sigma_p / a).log_prob(x).flatten(1).sum(1)  # the same density, in x
        for ll, want in zip(ll_x.tolist(), expected):
            assert bits_per_dim(ll, norm, (3, 4, 4)) == pytest.approx(want, rel=1e-9), (kind, scale)
    zscore10 = fit_normalizer("zscore", images, data_scale=10)
    assert len(set(zscore10.scale)) == 3  # the channels really have different scales
