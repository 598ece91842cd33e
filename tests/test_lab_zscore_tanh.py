"""Lab 1 (z-scored inputs and a tanh output): its design, the scale probe on a tiny model against
torch.distributions, and conclusions drawn from hand-built measurements (swap them and they change)."""
import dataclasses
import math
from pathlib import Path

import pytest
import torch
from torch.distributions import Normal

from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig
from vae_core.data.normalize import Normalizer
from vae_core.labs import lab, zscore_tanh
from vae_core.labs.base import NOT_SETTLED, ImageValues, LabRun, LabSettings, Measured
from vae_core.model.evaluate import EvalMetrics
from vae_core.model.vae import build_model
from vae_core.runs.folders import LoadedRun

SETTINGS = LabSettings()


def test_design_three_ranges_with_a_fitted_sigma_and_three_scales_with_a_fixed_one():
    variants = {v.key: v.config for v in lab("zscore-tanh").design(SETTINGS)}
    assert list(variants) == ["tanh_z", "linear_z", "tanh_sym", "fixed_x0.1", "fixed_x1", "fixed_x10"]
    assert [(c.model.output_activation, c.data.normalization) for c in list(variants.values())[:3]] == [
        ("tanh", "zscore"), ("linear", "zscore"), ("tanh", "symmetric")]
    assert {variants[k].loss.likelihood for k in ("tanh_z", "linear_z", "tanh_sym")} == {"gaussian_optimal"}
    for c in (0.1, 1, 10):
        config = variants[f"fixed_x{c:g}"]
        assert config.data.data_scale == c and config.loss.likelihood == "gaussian"
        assert config.loss.sigma == zscore_tanh.SIGMA and config.model.output_activation == "linear"


def _probed_run() -> LabRun:
    config = RunConfig(DataConfig(normalization="zscore"), ModelConfig(width=4, depth=1, latent_dim=2,
                                                                       output_activation="linear"),
                       LossConfig("gaussian", sigma=zscore_tanh.SIGMA))
    model = build_model(config.model, "gaussian", zscore_tanh.SIGMA, seed=0).eval()
    images = torch.randint(0, 256, (3, 3, 32, 32), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    normalizer = Normalizer("zscore", (0.5,) * 3, (0.25,) * 3)
    return LabRun(zscore_tanh.PROBED, LoadedRun(Path("tiny"), config, normalizer, model, {"steps": 5}), images)


def test_the_probe_scales_the_reconstruction_term_and_leaves_the_kl():
    lab_run = _probed_run()
    e = zscore_tanh.own(lab_run).means
    model, x = lab_run.run.model, lab_run.x
    with torch.no_grad():
        mu, logvar = model.encode(x)
        x_hat = model.decode(mu)
        q = Normal(mu, (0.5 * logvar).exp())
        kl = torch.distributions.kl_divergence(q, Normal(0.0, 1.0)).sum(1).mean().item()
    assert e["probe_kl"] == pytest.approx(kl, rel=1e-5)
    for c in zscore_tanh.SCALES:  # against torch.distributions, every constant included
        expected = -Normal(c * x_hat, zscore_tanh.SIGMA).log_prob(c * x).flatten(1).sum(1).mean().item()
        assert e[f"probe_recon_x{c:g}"] == pytest.approx(expected, rel=1e-5)
    assert e["probe_sse_x10"] == pytest.approx(100 * e["probe_sse_x1"]) == pytest.approx(1e4 * e["probe_sse_x0.1"])
    d = x[0].numel()  # the constant part: D (log sigma + 0.5 log 2 pi) at scale 1
    constant = d * (math.log(zscore_tanh.SIGMA) + 0.5 * math.log(2 * math.pi))
    assert e["probe_recon_x1"] == pytest.approx(e["probe_sse_x1"] + constant, rel=1e-5)
    assert e["beta_of_scale"] == 1.0


def _metrics(psnr: float, bits: float, kl: float, unreachable: float = 0.0) -> EvalMetrics:
    return EvalMetrics("sprites", 100, -1000.0 - kl, 1000.0, kl, None, 0, bits, "", 0.01, psnr, 10, [], [], [],
                       False, unreachable, 0.0, 1.0)


N_IMAGES = 100
# each test image's own difficulty, shared by every variant: what pairing cancels
HARDNESS = torch.randn(N_IMAGES, generator=torch.Generator().manual_seed(7), dtype=torch.float64)


def _values(psnr: float, bits: float, kl: float, noise: float = 0.01, seed: int = 0) -> ImageValues:
    """Per-image values around the means, each image's hardness shared, plus independent noise of this size."""
    g = torch.Generator().manual_seed(seed)

    def around(mean: float, spread: float) -> torch.Tensor:
        jitter = torch.randn(N_IMAGES, generator=g, dtype=torch.float64)
        return mean + spread * HARDNESS + noise * abs(mean) * (jitter - jitter.mean())

    return ImageValues(around(-1000.0 - kl, 50.0), around(bits, 0.5), around(psnr, 2.0), around(kl, 5.0))


def _variant(label: str, psnr: float, bits: float, kl: float, extras: dict | None = None, unreachable: float = 0.0,
             noise: float = 0.01) -> Measured:
    return Measured(label, _metrics(psnr, bits, kl, unreachable), extras or {},
                    per_image=(_values(psnr, bits, kl, noise),))


def _measured() -> dict[str, Measured]:
    probe = {"probe_kl": 50.0, "beta_of_scale": 1.0,
             **{f"probe_recon_x{c:g}": 10.0 * c**2 for c in zscore_tanh.SCALES},
             **{f"probe_sse_x{c:g}": 5.0 * c**2 for c in zscore_tanh.SCALES}}
    return {"tanh_z": _variant("tanh · z-score", 17.0, 3.0, 90.0, unreachable=0.049),
            "linear_z": _variant("linear · z-score", 20.0, 2.0, 180.0),
            "tanh_sym": _variant("tanh · [-1, 1]", 18.0, 2.5, 92.0),
            "fixed_x0.1": _variant("×0.1", 20.0, 1.5, 25.0, {"beta_of_scale": 100.0}),
            "fixed_x1": _variant("×1", 20.0, 2.0, 187.0, probe),
            "fixed_x10": _variant("×10", 18.0, 9.0, 3651.0, {"beta_of_scale": 0.01})}


def test_conclusion_agrees_with_the_textbook_when_the_numbers_do():
    findings = zscore_tanh.conclude(_measured())
    assert [f.verdict for f in findings] == ["measured", "agrees", "agrees", "measured", "agrees"]
    assert "**4.9%**" in findings[0].text and "**17.00 dB** against **20.00 dB**" in findings[1].text
    assert "+1.0000 ± 0.00" in findings[1].text and "bits/dim (paired SE over 100 images, 1 seed)" in findings[1].text
    assert "25.0, 187.0 and 3651.0 nats" in findings[4].text


def test_the_probe_is_a_calculation_without_a_verdict():
    probe = zscore_tanh.conclude(_measured())[3]
    assert probe.verdict == "measured" and probe.text.startswith("A calculation, not a test")


def test_a_difference_within_its_noise_is_not_settled_and_says_what_would_settle_it():
    m = _measured()  # the textbook's direction, but the images' own noise swamps a 0.01 bits/dim, 0.05 dB gap
    m["tanh_z"] = _variant("tanh · z-score", 19.95, 2.01, 90.0, unreachable=0.049, noise=2.0)
    finding = zscore_tanh.conclude(m)[1]
    assert finding.verdict == NOT_SETTLED and "not settled at this budget" in finding.text
    assert "more steps (--steps) or more seeds" in finding.text and " ± " in finding.text


def _seeds(label: str, psnr: float, bits: float, kl: float, bits_by_seed: tuple[float, ...]) -> Measured:
    return Measured(label, _metrics(psnr, bits, kl), per_image=tuple(_values(psnr, b, kl, seed=i)
                                                                     for i, b in enumerate(bits_by_seed)))


def test_seeds_that_agree_in_sign_settle_and_seeds_that_do_not_leave_it_open():
    m = _measured()
    m["linear_z"] = _seeds("linear · z-score", 20.0, 2.0, 180.0, (2.0, 2.0, 2.0))
    m["tanh_z"] = _seeds("tanh · z-score", 17.0, 3.0, 90.0, (3.0, 2.9, 3.1))
    assert zscore_tanh.conclude(m)[1].verdict == "agrees"
    assert "3 seeds; per seed + + +" in zscore_tanh.conclude(m)[1].text
    m["tanh_z"] = _seeds("tanh · z-score", 17.0, 3.0, 90.0, (3.0, 2.9, 1.5))  # one seed the other way
    finding = zscore_tanh.conclude(m)[1]
    assert finding.verdict == NOT_SETTLED and "the seeds disagree in sign" in finding.text
    assert "per seed + + −" in finding.text


def test_swapping_tanh_and_linear_or_the_scales_turns_the_verdicts():
    m = _measured()
    swapped = {**m, "tanh_z": dataclasses.replace(m["linear_z"]), "linear_z": dataclasses.replace(m["tanh_z"])}
    assert zscore_tanh.conclude(swapped)[1].verdict == "disagrees"
    scales = {**m, "fixed_x0.1": m["fixed_x10"], "fixed_x10": m["fixed_x0.1"]}
    assert zscore_tanh.conclude(scales)[4].verdict == "disagrees"
    assert zscore_tanh.conclude(scales) != zscore_tanh.conclude(m)


def test_a_missing_variant_is_named_and_the_rest_still_concludes():
    m = _measured()
    del m["tanh_sym"]
    findings = zscore_tanh.conclude(m)
    assert [f.verdict for f in findings].count("missing") == 1 and "tanh_sym" in findings[2].text
    assert findings[1].verdict == "agrees"


def test_fit_measures_that_disagree_say_so_instead_of_a_verdict():
    m = _measured()
    m["tanh_sym"] = _variant("tanh · [-1, 1]", 19.0, 3.5, 92.0)  # higher PSNR, more bits than tanh_z
    finding = zscore_tanh.conclude(m)[2]
    assert finding.verdict == "not settled" and "is better by one measure and worse by the other than" in finding.text
    assert "**19.00 dB** against **17.00 dB**" in finding.text
