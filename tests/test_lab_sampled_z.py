"""Lab 4 (MSE against a sampled z's decoding): its design and instant run, the measurements by hand and on a tiny
model, and conclusions drawn from hand-built measurements."""
import dataclasses
import math
from pathlib import Path

import pytest
import torch

from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig
from vae_core.data.normalize import Normalizer
from vae_core.labs import lab, sampled_z
from vae_core.labs.base import ImageValues, LabRun, LabSettings, Measured
from vae_core.model.evaluate import EvalMetrics
from vae_core.model.vae import build_model
from vae_core.runs.folders import LoadedRun, bundled_models_dir, read_config

SETTINGS = LabSettings()


def test_design_is_the_bundled_sprites_model():
    (variant,) = lab("sampled-z").design(SETTINGS)
    bundled, _ = read_config(bundled_models_dir() / "sprites-sigmoid-unit-gaussian")
    assert sampled_z.same_model(variant.config, bundled)
    assert (variant.config.loss.likelihood, variant.config.loss.sigma) == ("gaussian", 0.1)
    assert not sampled_z.same_model(variant.config, dataclasses.replace(bundled, loss=LossConfig("bernoulli")))


def test_instant_is_the_bundled_run_on_sprites_and_none_elsewhere():
    assert lab("sampled-z").instant(SETTINGS) == (bundled_models_dir() / "sprites-sigmoid-unit-gaussian",)
    assert lab("sampled-z").instant(LabSettings(dataset="mnist")) is None
    assert lab("sampled-z").instant(LabSettings(seed=1)) is None  # the bundled run is seed 0's
    assert lab("zscore-tanh").instant is None


# ----------------------------------------------------------------------------- the measurements by hand

def test_gaussian_nll_with_its_constant_is_torch_normal():
    g = torch.Generator().manual_seed(0)
    x, x_hat = torch.rand(3, 2, 4, 4, generator=g), torch.rand(3, 2, 4, 4, generator=g)
    expected = -torch.distributions.Normal(x_hat, 0.1).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(sampled_z.gaussian_nll(x, x_hat, 0.1), expected, rtol=1e-5)
    assert sampled_z.nll_constant(0.1) == pytest.approx(math.log(0.1) + 0.5 * math.log(2 * math.pi))


def test_spread_and_nearest_other():
    logvar = torch.log(torch.tensor([[0.09, 0.16]]))
    assert sampled_z.posterior_spread(logvar).item() == pytest.approx(0.5)
    points = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]])
    assert sampled_z.nearest_other(points).tolist() == pytest.approx([1.0, math.sqrt(18), 1.0])


def test_nearest_self_share():
    images = torch.eye(4)  # four images of four pixels
    assert sampled_z.nearest_self_share(images.unsqueeze(0), images) == 1.0
    all_first = images[0].expand(2, 4, 4)  # every decoding is image 0: only image 0's own are nearest to it
    assert sampled_z.nearest_self_share(all_first, images) == 0.25


# ----------------------------------------------------------------------------- on a tiny model

def _tiny() -> LabRun:
    config = RunConfig(DataConfig(), ModelConfig(width=4, depth=1, latent_dim=2), LossConfig("gaussian", sigma=0.1))
    model = build_model(config.model, "gaussian", 0.1, seed=0).eval()
    images = torch.randint(0, 256, (6, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return LabRun("model", LoadedRun(Path("tiny"), config, Normalizer("unit", (0.0,) * 3, (1.0,) * 3), model, {}),
                  images)


def test_extras_with_a_posterior_of_no_spread_decode_samples_as_the_mean():
    lab_run = _tiny()
    with torch.no_grad():
        lab_run.run.model.fc_logvar.weight.zero_()
        lab_run.run.model.fc_logvar.bias.fill_(-60.0)  # sigma = e^-30
    e = sampled_z.own(lab_run).means
    assert e["spread"] < 1e-12 and e["spread_over_gap"] < 1e-10
    assert e["share_self"] == e["share_self_mean"] and e["mse_sampled"] == pytest.approx(e["mse_mean"])
    assert e["nll_formula"] == pytest.approx(e["recon_term"], rel=1e-5)
    assert e["nll_constant"] == pytest.approx(3072 * (math.log(0.1) + 0.5 * math.log(2 * math.pi)), rel=1e-6)
    assert e["nll_sse_term"] + e["nll_constant"] == pytest.approx(e["nll_formula"])


def test_sample_decodings_are_pixels_beside_the_inputs():
    lab_run = _tiny()
    d = sampled_z.sample_decodings(lab_run.run, lab_run.images[:2], 3, seed=1)
    assert d.inputs.shape == d.means.shape == (2, 3, 32, 32) and d.samples.shape == (2, 3, 3, 32, 32)
    assert 0 <= d.samples.min() and d.samples.max() <= 1
    assert torch.equal(d.inputs, lab_run.images[:2].float() / 255)
    again = sampled_z.sample_decodings(lab_run.run, lab_run.images[:2], 3, seed=1)
    assert torch.equal(d.samples, again.samples)  # seeded


# ----------------------------------------------------------------------------- conclusions from hand-built numbers

def _measured(**changes) -> dict[str, Measured]:
    e = {"spread": 0.1, "gap": 1.8, "spread_over_gap": 0.1 / 1.8, "share_self": 0.97, "share_self_mean": 0.98,
         "mse_sampled": 0.0033, "mse_mean": 0.0032, "sigma": 0.1, "dims": 3072.0, "nll_constant": -4250.6,
         "nll_sse_term": 500.0, "nll_formula": -3750.6, "recon_term": -3750.6} | changes
    metrics = EvalMetrics("sprites", 100, 3700.0, -3750.0, 50.0, None, 0, 1.5, "", 0.0032, 25.0, 10, [], [], [],
                          False, 0.0, 0.0, 1.0)
    return {"model": Measured("model", metrics, e, per_image=tuple(_values(e, seed) for seed in range(3)))}


def _values(e: dict, seed: int) -> ImageValues:
    """100 test images whose margins average what the extras say, with noise of their own on each seed."""
    g = torch.Generator().manual_seed(seed)
    around = lambda mean, spread: mean + spread * torch.randn(100, generator=g, dtype=torch.float64)  # noqa: E731
    zero = torch.zeros(100, dtype=torch.float64)
    return ImageValues(zero, None, zero, zero, {
        sampled_z.SPREAD_EXCESS: around(e["spread"] - e["gap"], 0.2),
        sampled_z.SELF_SHARE: around(e["share_self"], 0.05),
        sampled_z.MSE_EXCESS: around(e["mse_sampled"] - sampled_z.SAMPLED_MSE_RATIO * e["mse_mean"], 0.001)})


def test_conclusion_agrees_and_writes_the_numbers():
    findings = sampled_z.conclude(_measured())
    assert [f.verdict for f in findings] == ["agrees", "agrees", "measured", "agrees"]  # the NLL: a calculation
    assert findings[2].text.startswith("A calculation, not a test")
    assert "97.0%" in findings[1].text and "-3,750.6 nats" in findings[2].text and "1.03×" in findings[3].text


def test_a_wide_posterior_few_samples_near_x_and_another_nll_disagree():
    m = _measured(spread=2.0, spread_over_gap=2.0 / 1.8, share_self=0.2, recon_term=-3000.0, mse_sampled=0.01)
    assert [f.verdict for f in sampled_z.conclude(m)] == ["disagrees"] * 4
    unsure = _measured(share_self=0.505, mse_sampled=0.0048)  # each margin within its noise of the line
    assert [f.verdict for f in sampled_z.conclude(unsure)][1::2] == ["not settled"] * 2


def test_swapping_the_sampled_and_mean_measurements_changes_the_findings():
    m, swapped = _measured(share_self=0.3), _measured(share_self=0.98, share_self_mean=0.3)
    assert sampled_z.conclude(m)[1].verdict == "disagrees" and sampled_z.conclude(swapped)[1].verdict == "agrees"


def test_a_missing_variant_gives_a_missing_finding():
    assert [f.verdict for f in sampled_z.conclude({})] == ["missing"]


def test_the_per_image_margins_average_to_the_tables_numbers_on_the_bundled_run():
    """own() measures the table and the pairs on the same samples: each claim's margin, image by image, means the table's."""
    from vae_core.labs.measure import load_family

    (variant,) = lab("sampled-z").design(SETTINGS)
    lab_run = load_family([variant], [bundled_models_dir() / "sprites-sigmoid-unit-gaussian"])["model"][0]
    lab_run = dataclasses.replace(lab_run, images=lab_run.images[:120])
    found = sampled_z.own(lab_run)
    e, p = found.means, found.per_image
    assert {k: v.shape for k, v in p.items()} == {k: (120,) for k in p}
    assert p[sampled_z.SELF_SHARE].mean().item() == pytest.approx(e["share_self"], abs=1e-9)
    excess = e["mse_sampled"] - sampled_z.SAMPLED_MSE_RATIO * e["mse_mean"]
    assert p[sampled_z.MSE_EXCESS].mean().item() == pytest.approx(excess, rel=1e-5, abs=1e-9)
    assert p[sampled_z.SPREAD_EXCESS].mean().item() == pytest.approx(e["spread"] - e["gap"], rel=1e-5)
