"""Lab 2 (grey-sigmoid): its design, its background measurement on a known reconstruction, its conclusion."""
from __future__ import annotations

import dataclasses
import math
import zlib
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from vae_core.data.normalize import fit_normalizer
from vae_core.labs import grey_sigmoid as lab2
from vae_core.labs.base import ImageValues, LabRun, LabSettings, Measured
from vae_core.model.evaluate import EvalMetrics
from vae_core.model.objective import effective_beta
from vae_core.training.sweeps import SWEEP_MAX_VARIANTS, check_lockstep
from vae_core.training.trainer import check_compatibility

KEYS = ("asker", "asker_bn", "elbo_mse", "bernoulli", "bernoulli_bn", "cb")


def _variants(dataset: str = "sprites") -> dict:
    return {v.key: v for v in lab2.design(LabSettings(dataset=dataset))}


# ----------------------------------------------------------------------------- design

def test_design_has_the_six_variants_at_the_questions_sizes():
    variants = _variants()
    assert tuple(variants) == KEYS and len(variants) <= SWEEP_MAX_VARIANTS
    for v in variants.values():
        c = v.config
        assert (c.model.image_size, c.model.latent_dim, c.train.batch_size) == (64, 8, 64)
        assert (c.model.output_activation, c.data.normalization) == ("sigmoid", "unit")
        check_compatibility(c, fit_normalizer("unit", torch.zeros(2, 3, 4, 4, dtype=torch.uint8)))
    assert [k for k, v in variants.items() if v.config.model.output_norm == "batchnorm"] == ["asker_bn", "bernoulli_bn"]


def test_the_askers_loss_is_mse_summed_and_kl_averaged_times_100():
    loss = _variants()["asker"].config.loss
    assert (loss.likelihood, loss.sigma, loss.beta) == ("gaussian", pytest.approx(2**-0.5), 100.0)
    assert (loss.recon_reduction, loss.recon_batch_reduction) == ("sum", "sum")
    assert (loss.kl_reduction, loss.kl_batch_reduction) == ("mean", "mean")
    # by hand: the KL's mean over 8 dims is 1/8 of the sum; the MSE's sum over 64 images is 64 x the mean
    assert effective_beta(loss, 3 * 64 * 64, 8, 64) == pytest.approx(100 * (1 / 8) / 64) == pytest.approx(0.1953125)


def test_the_proper_elbos_are_sums_over_pixels_and_dims_means_over_the_batch_beta_1():
    variants = _variants()
    for key, likelihood in (("elbo_mse", "gaussian"), ("bernoulli", "bernoulli"), ("cb", "continuous_bernoulli")):
        loss = variants[key].config.loss
        assert loss.likelihood == likelihood and loss.beta == 1.0
        assert (loss.recon_reduction, loss.kl_reduction) == ("sum", "sum")
        assert (loss.recon_batch_reduction, loss.kl_batch_reduction) == ("mean", "mean")
        assert effective_beta(loss, 3 * 64 * 64, 8, 64) == 1.0
    assert variants["elbo_mse"].config.loss.sigma == pytest.approx(2**-0.5)


@pytest.mark.parametrize("dataset", ["sprites", "mnist", "cifar10"])
def test_the_design_trains_in_lockstep(dataset):
    check_lockstep(lab2.LAB.family(LabSettings(dataset=dataset, seeds=1)).configs)


def test_other_datasets_take_their_own_size():
    c = _variants("mnist")["asker"].config
    assert (c.model.channels, c.model.image_size, c.data.image_size) == (1, 28, 32)


def test_the_equivalent_beta_of_a_run_reads_its_config_and_steps():
    config = _variants()["asker"].config
    run = SimpleNamespace(config=config, metrics={"steps": 218, "test": {"kl_per_dim": [1.0] * 8}})
    assert lab2.run_equivalent_beta(LabRun("asker", run, torch.zeros(1))) == pytest.approx(100 / (64 * 8))


# ----------------------------------------------------------------------------- the background

class _Known(nn.Module):
    """A 'VAE' whose reconstruction of any batch is the given pixels (in [0, 1] space, unit normalization)."""

    def __init__(self, pixels: torch.Tensor):
        super().__init__()
        self.pixels = pixels

    def encode(self, x):
        return torch.zeros(len(x), 2), torch.zeros(len(x), 2)

    def decode(self, mu):
        return self.pixels

    def decode_logits(self, mu):
        return torch.logit(self.pixels.clamp(1e-6, 1 - 1e-6))

    def mean_of(self, logits):
        return self.pixels


def _lab_run(images: torch.Tensor, recon: torch.Tensor) -> LabRun:
    config = _variants()["asker"].config
    run = SimpleNamespace(model=_Known(recon), normalizer=fit_normalizer("unit", images), config=config,
                          metrics={"steps": 10, "test": {"kl_per_dim": [0.5] * 8}})
    return LabRun("asker", run, images)


def test_background_is_the_mean_grey_level_over_pixels_black_in_every_channel():
    images = torch.full((2, 3, 4, 4), 200, dtype=torch.uint8)
    images[:, :, :2] = 0  # the top half black: 16 pixels of 32
    images[:, 2, 0, 0] = 9  # not black in one channel: not background
    recon = torch.full((2, 3, 4, 4), 0.9)
    recon[:, :, :2] = 0.2  # 51 grey levels on the background
    recon[0, :, 1] = -0.5  # clamped to 0 in pixel space
    recon[:, :, 0, 0] = 1.0  # the excluded pixel: would raise the mean if counted
    found = lab2.own(_lab_run(images, recon)).means
    # 14 background pixels: image 0, 3 at 51 (row 0 less the corner) and 4 at 0 (row 1); image 1, 3 + 4 at 51
    assert found["background"] == pytest.approx((3 + 3 + 4) * 51 / 14)
    assert found["background_share"] == pytest.approx(14 / 32)
    assert found["equivalent_beta"] == pytest.approx(0.1953125)


def test_no_black_pixels_gives_nan_not_a_crash():
    images = torch.full((1, 3, 2, 2), 7, dtype=torch.uint8)
    found = lab2.own(_lab_run(images, torch.full((1, 3, 2, 2), 0.5))).means
    assert math.isnan(found["background"]) and found["background_share"] == 0
    findings = lab2.conclude({"asker": _measured("asker", math.nan)})
    assert findings[0].verdict == "missing"


# ----------------------------------------------------------------------------- the conclusion

def _metrics(psnr: float, active: int = 8, saturated: float = 0.5) -> EvalMetrics:
    return EvalMetrics(dataset="sprites", n_test=10, elbo_nats=-100.0, recon_nats=90.0, kl_nats=10.0,
                       iwae_nats=None, iwae_k=0, bits_per_dim=None, bits_per_dim_note="", mse=0.01, psnr_db=psnr,
                       active_units=active, kl_per_dim=[1.0] * 8, posterior_var=[1.0] * 8,
                       posterior_sigma=[0.5] * 8, posterior_collapse=False, frac_targets_unreachable=0.0,
                       frac_outputs_saturated=saturated, effective_beta=1.0)


def _values(key: str, seed: int, background: float, psnr: float) -> ImageValues:
    """50 test images around the given means, with noise of their own for each variant and seed."""
    g = torch.Generator().manual_seed(zlib.crc32(f"{key}/{seed}".encode()))
    around = lambda mean, spread: mean + spread * torch.randn(50, generator=g, dtype=torch.float64)  # noqa: E731
    zero = torch.zeros(50, dtype=torch.float64)
    return ImageValues(zero, None, around(psnr, 0.5), zero, {"background": around(background, 1.0)})


def _measured(key: str, background: float, psnr: float = 15.0, logit: float = -1.0) -> Measured:
    beta = 0.1953125 if key.startswith("asker") else 1.0
    extras = {"equivalent_beta": beta, "background": background, "background_logit": logit, "background_share": 0.9}
    return Measured(key, _metrics(psnr), extras, per_image=tuple(_values(key, i, background, psnr) for i in range(3)))


TEXTBOOK_WORLD = {"asker": (60.0, 14.0), "asker_bn": (40.0, 15.0), "elbo_mse": (62.0, 13.0), "bernoulli": (2.0, 18.0),
                  "bernoulli_bn": (30.0, 16.0), "cb": (25.0, 17.0)}


def _world(values: dict) -> dict[str, Measured]:
    return {k: _measured(k, bg, psnr) for k, (bg, psnr) in values.items()}


def _verdicts(findings) -> list[str]:
    return [f.verdict for f in findings]


def test_conclusion_in_the_textbooks_world():
    findings = lab2.conclude(_world(TEXTBOOK_WORLD))
    # grey list, beta (agrees), likelihood (agrees), BatchNorm (agrees: it helped but left it grey), BN with the
    # Bernoulli, continuous Bernoulli (grey mean: disagrees)
    assert _verdicts(findings) == ["measured", "agrees", "agrees", "agrees", "measured", "disagrees"]
    assert "**β = 0.195**" in findings[1].text and "**62.0**" in findings[1].text
    assert "BatchNorm before the sigmoid helps" in findings[3].text and "greys" in findings[4].text
    assert findings[0].text.index("elbo_mse **62.0**") < findings[0].text.index("asker **60.0**")  # greyest first
    assert "black: bernoulli **2.0**" in findings[0].text


def test_swapping_two_variants_measurements_changes_the_findings():
    swapped = dict(TEXTBOOK_WORLD, asker=TEXTBOOK_WORLD["bernoulli"], bernoulli=TEXTBOOK_WORLD["asker"])
    before, after = lab2.conclude(_world(TEXTBOOK_WORLD)), lab2.conclude(_world(swapped))
    assert [f.text for f in before] != [f.text for f in after]
    assert after[2].verdict == "measured"  # the Bernoulli is greyer than one squared error, darker than the other
    greyest = lab2.conclude(_world(dict(TEXTBOOK_WORLD, bernoulli=(70.0, 14.0))))
    assert greyest[2].verdict == "disagrees" and "not darker than the squared error's by 3" in greyest[2].text
    assert "does **not** help" in after[3].text  # asker_bn's 15 dB against the asker's 18


def test_the_numbers_decide_each_verdict():
    elbo_darker = lab2.conclude(_world(dict(TEXTBOOK_WORLD, elbo_mse=(5.0, 16.0))))
    assert elbo_darker[1].verdict == "disagrees"  # the ELBO's beta gives the black background
    all_black = lab2.conclude(_world(dict(TEXTBOOK_WORLD, asker=(3.0, 15.0), elbo_mse=(4.0, 15.0))))
    assert all_black[2].verdict == "disagrees" and "reaches black (under 10) here too" in all_black[2].text
    at_the_margin = lab2.conclude(_world(dict(TEXTBOOK_WORLD, elbo_mse=(57.0, 13.0))))  # 3 darker: can't tell
    assert at_the_margin[1].verdict == "not settled" and "not settled at this budget" in at_the_margin[1].text
    unseen = lab2.conclude(_world(dict(TEXTBOOK_WORLD, elbo_mse=(58.8, 13.0))))  # settled, but 1.2 levels
    assert unseen[1].verdict == "agrees" and "by 3 grey levels or more" in unseen[1].text
    bn_fixes = lab2.conclude(_world(dict(TEXTBOOK_WORLD, asker_bn=(4.0, 16.0))))
    assert bn_fixes[3].verdict == "disagrees" and len(bn_fixes) == 5  # no Bernoulli-BatchNorm aside then
    cb_black = lab2.conclude(_world(dict(TEXTBOOK_WORLD, cb=(3.0, 17.0))))
    assert cb_black[-1].verdict == "agrees"


def test_a_missing_variant_gives_a_missing_finding():
    world = _world(TEXTBOOK_WORLD)
    del world["elbo_mse"]
    findings = lab2.conclude(world)
    gone = [f for f in findings if f.verdict == "missing"]
    assert len(gone) == 2 and all("elbo_mse" in f.text for f in gone)  # the beta and the likelihood findings
    assert set(_verdicts(lab2.conclude({}))) == {"missing"}


def test_every_column_reads_a_measured_value():
    m = _measured("asker", 10.0)
    for column in lab2.LAB.columns:
        format(m.value(column.key), column.fmt)


def test_the_lab_is_registered():
    from vae_core.labs import lab
    assert lab("grey-sigmoid") is lab2.LAB
    assert dataclasses.is_dataclass(lab2.LAB)


def test_a_bernoulli_as_black_as_one_squared_error_loss_singles_nothing_out():
    # MNIST's run: the asker's loss 8.5, the ELBO with MSE 10.9 (grey), the Bernoulli 7.9: no verdict either way
    world = _world({**TEXTBOOK_WORLD, "asker": (8.5, 15.5), "elbo_mse": (10.9, 14.9), "bernoulli": (7.9, 15.5)})
    finding = next(f for f in lab2.conclude(world) if f.text.startswith("Bernoulli (BCE"))
    assert finding.verdict == "measured" and "does not single out the squared error" in finding.text


def test_images_without_a_black_background_are_not_asked_about_one():
    """CIFAR-10 has under 1% black pixels: a mean over them is not a background, and the lab says so."""
    world = _world(TEXTBOOK_WORLD)
    for m in world.values():
        m.extras["background_share"] = 0.004
    [finding] = lab2.conclude(world)
    assert finding.verdict == "missing" and "0.4% of these test pixels are black" in finding.text
    for m in world.values():
        m.extras["background_share"] = lab2.MIN_BACKGROUND_SHARE
    assert len(lab2.conclude(world)) > 1  # at the threshold, the lab answers


def test_each_images_background_averages_to_the_tables():
    images = torch.full((3, 1, 2, 2), 200, dtype=torch.uint8)
    images[0, :, 0] = 0  # two black pixels
    images[1, :, :, 0] = 0  # two more; image 2 has none
    recon = torch.full((3, 1, 2, 2), 0.4)
    recon[1] = 0.1
    found = lab2.own(_lab_run(images, recon)).per_image["background"]
    assert found[:2].tolist() == pytest.approx([0.4 * 255, 0.1 * 255]) and math.isnan(found[2].item())
    assert lab2.own(_lab_run(images, recon)).means["background"] == pytest.approx(0.25 * 255)  # images with black
