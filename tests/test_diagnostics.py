"""Evaluation diagnostics: output range fractions, the IWAE bound, evaluate()'s metrics, posterior
collapse, and bits/dim: a discrete likelihood of the 8-bit images, never negative, one number across
normalizations, and the continuous density's number when sigma is wide."""
import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest
from torch.distributions import Bernoulli, ContinuousBernoulli, Laplace, Normal

from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.data.datasets import load_dataset
from vae_core.data.base import pixels
from vae_core.model.evaluate import (ACTIVE_UNIT_THRESHOLD, BERNOULLI_BPD_NOTE, COLLAPSE_KL, COLLAPSE_MIN_STEPS, bits_per_dim,
                               count_active_units, evaluate, iwae_bound, kl_collapse_alarm, posterior_collapse,
                               range_fractions)
from vae_core.model.likelihoods import discrete_log_prob
from vae_core.model.vae import build_model
from vae_core.data.normalize import fit_normalizer
from vae_core.model.objective import effective_beta, loss_terms
from vae_core.runs.folders import bundled_models_dir, load_run
from ui.sidebar import run_summary
from vae_plots import views

ROOT = Path(__file__).resolve().parents[1]

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


def _reference_log_mass(px, lo, hi):
    """(B,) log P(k|z) per image: each pixel's bin mass as a difference of torch's CDFs (float64 here)."""
    if isinstance(px, ContinuousBernoulli):  # its support is [0, 1]
        lo, hi = lo.clamp(0, 1), hi.clamp(0, 1)
    return (px.cdf(hi) - px.cdf(lo)).log().flatten(1).sum(1)


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
            log_w_discrete.append(_reference_log_mass(px, *bins) + log_ratio)
    discrete = torch.logsumexp(torch.stack(log_w_discrete), 0) - math.log(k) if bins is not None else None
    return torch.logsumexp(torch.stack(log_w), 0) - math.log(k), discrete


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli", "gaussian", "gaussian_pixel",
                                        "laplace"])
@torch.no_grad()
def test_iwae_bound_matches_a_direct_implementation(likelihood, sprites_test):
    model = _model(likelihood, sigma=0.2).double()  # float64 throughout: a tolerance of 1e-8 nats
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
    model = _model("gaussian", sigma=0.1)
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
    model = _model("gaussian", sigma=0.1)
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


# ----------------------------------------------------------------------------- evaluate()

CONTINUOUS = ["continuous_bernoulli", "gaussian", "gaussian_learned", "gaussian_optimal", "gaussian_pixel", "laplace"]


@pytest.mark.parametrize("likelihood", ["bernoulli"] + CONTINUOUS)
def test_evaluate_metrics(likelihood, sprites_test):
    # sigma 0.1 makes log p(x|z) of the untrained model vary with z, so IWAE_16 - ELBO is several nats
    model = _model(likelihood, sigma=0.1)
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
    model = _model("gaussian", sigma=0.707)
    loss = LossConfig(likelihood="gaussian", sigma=0.707, beta=100, recon_batch_reduction="sum", kl_reduction="mean",
                      kl_schedule="linear", kl_warmup_steps=100)
    config = RunConfig(model=model.cfg, loss=loss, train=TrainConfig(batch_size=16))
    m = evaluate(model, fit_normalizer("unit", sprites_test), sprites_test, config=config, steps=51)
    assert m.effective_beta == pytest.approx(0.78125)
    assert evaluate(model, fit_normalizer("unit", sprites_test), sprites_test).effective_beta is None


def test_evaluate_elbo_is_the_per_image_mean_of_the_reported_terms(sprites_test):
    # evaluate() draws the ELBO's z from a generator seeded with its seed: the same draws by hand give the same
    # numbers.
    model = _model("gaussian", sigma=0.3)
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
    log_pk = _reference_log_mass(px, *unit.grey_level_bins(sprites_test))
    assert m.bits_per_dim == pytest.approx(bits_per_dim(-(log_pk - terms.kl_nats).mean().item(), 3 * 32 * 32),
                                           rel=1e-6)
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
    # posterior_collapse reads Cov_x(E_q[z_u]) per dimension (EvalMetrics.posterior_var): collapsed = none active
    assert posterior_collapse([0.001] * 10)
    assert not posterior_collapse([0.001] * 9 + [3.0])  # one active unit: z is not ignored
    assert not posterior_collapse([0.001] * 8 + [3.0, 2.0])
    assert not posterior_collapse([0.5, 1.0, 2.0])
    assert posterior_collapse([ACTIVE_UNIT_THRESHOLD] * 4)  # active is strictly over the threshold (Burda et al.)
    assert count_active_units([0.001, 0.02, ACTIVE_UNIT_THRESHOLD, 3.0]) == 2
    assert not posterior_collapse([0.001] * 10, steps=COLLAPSE_MIN_STEPS - 1)  # too early to say
    assert posterior_collapse([0.001] * 10, steps=COLLAPSE_MIN_STEPS)


def test_the_live_alarm_is_named_for_the_kl_it_reads():
    """A step's metrics hold the KL per dimension only: the live alarm sees a posterior at the prior."""
    assert kl_collapse_alarm([0.001] * 10, steps=5000) and not kl_collapse_alarm([0.001] * 10, steps=3)
    assert not kl_collapse_alarm([0.001] * 9 + [COLLAPSE_KL])  # one dimension carries COLLAPSE_KL nats
    assert not kl_collapse_alarm([])


COLLAPSED_ZOO = ("sprites-sigmoid-symmetric-gaussian", "sprites-sigmoid-symmetric-gaussian_learned")


@pytest.fixture(scope="module")
def zoo_test_images():
    return load_dataset(DataConfig(n_test=500), "test").images  # the zoo's sprites test split, its first 500


def _zoo(name: str, images: torch.Tensor):
    run = load_run(bundled_models_dir() / name)
    return run, evaluate(run.model, run.normalizer, images, dataset="sprites", config=run.config,
                         steps=run.metrics["steps"])


@pytest.mark.parametrize("name", COLLAPSED_ZOO)
def test_a_posterior_that_pays_kl_but_never_moves_with_x_is_collapsed(name, zoo_test_images):
    """The sigmoid output on symmetric data (PSNR 6 dB): every dimension pays over COLLAPSE_KL nats, so a KL
    rule calls it used, yet no posterior mean moves with the image: 0 active units, a collapse."""
    run, m = _zoo(name, zoo_test_images)
    assert m.active_units == 0 and max(m.posterior_var) < ACTIVE_UNIT_THRESHOLD
    assert min(m.kl_per_dim) > COLLAPSE_KL  # what the KL rule saw: no dimension under 0.01 nats
    assert m.psnr_db < 10
    assert m.posterior_collapse
    verdict = views.collapse_verdict(run, m)
    assert verdict.alarm and verdict.note == ""
    assert "0 of 10 latent dimensions are active" in views.collapse_message(m)
    assert run.metrics["test"]["active_units"] == 0  # the bundled metrics agree on the count


@pytest.fixture
def collapsed_with_free_bits(tmp_path) -> Path:
    """The sigmoid/symmetric zoo run, its config saying free bits of 0.5 nats (its KL: 9 dimensions under them),
    its metrics.json the stale flag of a KL-based judgement (posterior_collapse false)."""
    run_dir = tmp_path / "runs" / "collapsed-free-bits"
    shutil.copytree(bundled_models_dir() / COLLAPSED_ZOO[0], run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config["run"]["loss"]["free_bits"] = 0.5
    (run_dir / "config.json").write_text(json.dumps(config))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["test"]["posterior_collapse"] = False
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def test_the_diagnostics_page_judges_collapse_from_active_units(collapsed_with_free_bits, monkeypatch):
    """The page's alarm, its KL legend and its β, for a run whose saved metrics.json says posterior_collapse false."""
    monkeypatch.setenv("VAE_LAB_RUNS", str(collapsed_with_free_bits.parent))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["run_path"] = str(collapsed_with_free_bits)
    at.run()
    at.switch_page("app_pages/diagnostics.py").run()
    assert not at.exception
    assert any("0 of 10 latent dimensions are active" in e.value for e in at.error)
    cards = {m.label: m.value for m in at.metric}
    assert cards["Active units"] == "0 / 10"
    kl = json.loads(next(c for c in at.get("plotly_chart") if "diag_kl" in c.proto.id).proto.spec)
    names = [t["name"] for t in kl["data"]]
    assert names == ["KL ≥ 0.01 nats: 10", "KL < 0.01 nats: 0"] and not any("active" in n for n in names)
    assert any("β = 0 on 9 of 10 dimensions" in c.value and "β = 1 on the other 1" in c.value for c in at.caption)
    summary = run_summary(load_run(collapsed_with_free_bits))
    assert "equivalent β at its last step: β = 0 on 9 of 10 dimensions" in summary


def test_a_used_latent_space_is_not_collapsed(zoo_test_images):
    run, m = _zoo("sprites-sigmoid-unit-gaussian", zoo_test_images)
    assert m.active_units == 10 and not m.posterior_collapse and not views.collapse_verdict(run, m).alarm


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
    model = _model(likelihood, sigma=1e-3 if sharp else 0.1, output_activation="linear" if sharp else "sigmoid")
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
    model = _model("gaussian", sigma=0.5 * max(norm.scale) ** -1)  # ~0.5 in pixels: 127 grey levels
    m = evaluate(model, norm, images)
    log_det = 32 * 32 * sum(math.log(255 * c) for c in norm.scale)
    density_based = -(m.elbo_nats - log_det) / (3 * 32 * 32 * math.log(2))
    assert m.bits_per_dim == pytest.approx(density_based, abs=1e-5)
