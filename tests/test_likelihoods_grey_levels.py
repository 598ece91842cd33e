"""Grey-level bin masses log P(k|z): the 256 levels' masses sum to 1 under every likelihood and normalization, match
torch.distributions' CDFs and numerical integration, and stay finite and exact far in the tails (mpmath)."""
import math

import pytest
import torch
from torch.distributions import ContinuousBernoulli, Laplace, Normal

from vae_core.model.likelihoods import continuous_bernoulli_log_prob, discrete_log_prob, log_prob
from vae_core.data.normalize import Normalizer, fit_normalizer

F64 = torch.float64


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
    # its 1e-6 switch), against the trapezoid rule on each bin of the library's own density (tested in
    # test_likelihoods_densities.py).
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
