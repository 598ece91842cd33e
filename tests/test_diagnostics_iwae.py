"""The IWAE bound: against a direct implementation with torch.distributions (its density and its grey-level bound),
the ELBO's value in expectation with one sample, and rising with k (Burda et al. 2015)."""
import math

import pytest
import torch
from torch.distributions import Bernoulli, ContinuousBernoulli, Laplace, Normal

from vae_core.config import LossConfig
from vae_core.data.base import pixels
from vae_core.model.evaluate import iwae_bound
from vae_core.data.normalize import fit_normalizer
from vae_core.model.objective import loss_terms
from tests.helpers import reference_log_mass, sprite_model


# ----------------------------------------------------------------------------- IWAE


def _decoder_distribution(model, z):
    """p(x|z) as a torch.distributions object."""
    logits = model.decode_logits(z)
    x_hat = model.out_act(logits)
    if model.likelihood == "bernoulli":
        return Bernoulli(logits=logits, validate_args=False)
    if model.likelihood == "continuous_bernoulli":  # lims: torch's exact CDF, not F(x) = x near lambda = 1/2
        return ContinuousBernoulli(logits=logits, lims=(0.5, 0.5), validate_args=False)
    if model.likelihood == "laplace":
        return Laplace(x_hat, model.log_sigma.exp())
    return Normal(x_hat, model.decode_log_sigma(z).exp())


def _reference_iwae(model, x, k, per, generator, bins=None):
    """log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x) with torch.distributions, one sample at a time, and with
    bins, the same with P(k|z_i) in place of p(x|z_i): (density bound, discrete bound or None).

    per: how many samples iwae_bound draws at once (the RNG stream depends on the draws' shapes), from
    `generator` in the model's dtype."""
    mu, logvar = model.encode(x)
    q = Normal(mu, (0.5 * logvar).exp())
    prior = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    z_all = torch.cat([torch.randn(min(per, k - i), *mu.shape, generator=generator, dtype=mu.dtype)
                       for i in range(0, k, per)])  # (k, B, L)
    log_w, log_w_discrete = [], []
    for z_eps in z_all:
        z = q.loc + q.scale * z_eps
        px = _decoder_distribution(model, z)
        log_ratio = prior.log_prob(z).sum(1) - q.log_prob(z).sum(1)
        log_w.append(px.log_prob(x).flatten(1).sum(1) + log_ratio)
        if bins is not None:
            log_w_discrete.append(reference_log_mass(px, *bins) + log_ratio)
    discrete = torch.logsumexp(torch.stack(log_w_discrete), 0) - math.log(k) if bins is not None else None
    return torch.logsumexp(torch.stack(log_w), 0) - math.log(k), discrete


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian", "gaussian_pixel",
                                        "laplace"])
@torch.no_grad()
def test_iwae_bound_matches_a_direct_implementation(likelihood, sprites_test):
    model = sprite_model(likelihood, sigma=0.2).double()  # float64 throughout: a tolerance of 1e-8 nats
    images = sprites_test[:3]  # three different images: a mix-up of samples and images would show
    x = pixels(images).double()
    bins = fit_normalizer("unit", images).grey_level_bins(images) if likelihood != "bernoulli" else None
    for chunk, per in ((4096, 3), (6, 2)):  # all 3 samples decoded at once; in chunks of 6 // 3 = 2, then 1
        ours = iwae_bound(model, x, 3, chunk=chunk, bins=bins, generator=torch.Generator().manual_seed(7))
        ref, ref_discrete = _reference_iwae(model, x, 3, per, torch.Generator().manual_seed(7), bins=bins)
        assert ours.nats.shape == (3,)
        torch.testing.assert_close(ours.nats, ref, atol=1e-8, rtol=0)
        if bins is None:
            assert ours.discrete_nats is None
        else:
            # rtol: torch's continuous Bernoulli CDF cancels near lambda = 1/2 (1e-12 relative per image here)
            torch.testing.assert_close(ours.discrete_nats, ref_discrete, atol=1e-8, rtol=1e-10)
            assert (ours.discrete_nats < 0).all()
        if chunk == 4096:
            whole = ours.nats
    assert (ours.nats - whole).abs().max() > 1e-6  # other draws: the comparison with chunks is not vacuous


@torch.no_grad()
def test_iwae_with_one_sample_is_the_elbo_in_expectation(sprites_test):
    # IWAE_1 = log p(x|z) + log p(z) - log q(z|x); the ELBO estimate = log p(x|z) - KL (analytic).
    # With the same seed both use the same z, so their difference is log p(z) - log q(z|x) + KL,
    # whose expectation is 0: its mean over n draws must be 0 within 4 standard errors.
    model = sprite_model("gaussian", sigma=0.1)
    n, b = 200, 4
    x = pixels(sprites_test[:b]).repeat(n, 1, 1, 1)  # row i * b + j is image j, draw i
    torch.manual_seed(0)
    iw = iwae_bound(model, x, 1).nats.view(n, b)
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
    model = sprite_model("gaussian", sigma=0.1)
    n, b = 60, 4
    x = pixels(sprites_test[:b]).repeat(n, 1, 1, 1)
    torch.manual_seed(1)
    elbo = loss_terms(model, x, LossConfig(likelihood="gaussian", sigma=0.1)).elbo_nats.view(n, b).mean(1)
    bounds = {}
    for k in (1, 5, 25):
        torch.manual_seed(1)
        bounds[k] = iwae_bound(model, x, k).nats.view(n, b).mean(1)  # (n,) mean over the images
    for lo, hi in ((1, 5), (5, 25)):
        gain = bounds[hi] - bounds[lo]
        se = gain.std() / math.sqrt(n)
        assert gain.mean() > 3 * se, (lo, hi, gain.mean(), se)
    for k in (5, 25):
        gap = bounds[k] - elbo
        assert gap.mean() > 3 * gap.std() / math.sqrt(n)
