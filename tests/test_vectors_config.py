"""What a run on vectors may be: the image ideas refused with their reasons, in the config and on the command line;
the tanh decoder on z-scored vectors is trained and called mismatched, not refused."""
from __future__ import annotations

import contextlib
import dataclasses
import io

import pytest
import torch

from vae_core.cli.main import main
from vae_core.config import (DATASET_DEFAULTS, DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig,
                             field_options)
from vae_core.data.vector_normalize import fit_vector_normalizer
from vae_core.model.vae import build_model
from vae_core.training.trainer import Trainer, make_run_config

VECTORS = DataConfig(dataset="vectors", normalization="zscore")
DENSE = ModelConfig(arch="mlp", features=6, latent_dim=2, hidden_dim=16, output_activation="linear")
GAUSSIAN = LossConfig(likelihood="gaussian_learned")


def _cli(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


@pytest.mark.parametrize("normalization", ["unit", "symmetric"])
def test_image_normalizations_are_refused_for_vectors_saying_why(normalization):
    with pytest.raises(ValueError, match=f"normalization='{normalization}' is an image idea: it assumes values in "
                       r"\[0, 1\].*pick 'zscore'.*or 'none'"):
        DataConfig(dataset="vectors", normalization=normalization)


def test_none_is_for_vectors_only_and_a_vectors_file_needs_the_vectors_dataset():
    with pytest.raises(ValueError, match="normalization='none' is for vectors. For images pick 'unit'"):
        DataConfig(dataset="sprites", normalization="none")
    with pytest.raises(ValueError, match="vectors=PATH needs dataset='vectors'"):
        DataConfig(dataset="sprites", vectors="rows.csv")
    assert DataConfig(dataset="vectors", normalization="none").kind == "vectors"
    assert DataConfig().kind == "images"
    assert "none" in field_options(DataConfig, "normalization")


def test_the_conv_architecture_is_refused_for_vectors_saying_why():
    with pytest.raises(ValueError, match="arch='conv' convolves over an image's neighbouring pixels.*pick arch='mlp'"):
        RunConfig(VECTORS, dataclasses.replace(DENSE, arch="conv"), GAUSSIAN)


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous_bernoulli"])
def test_the_bernoulli_likelihoods_are_refused_for_vectors_saying_why(likelihood):
    with pytest.raises(ValueError, match=f"likelihood='{likelihood}' is a distribution on \\[0, 1\\].*vectors are "
                       "unbounded.*Pick a Gaussian"):
        RunConfig(VECTORS, DENSE, LossConfig(likelihood=likelihood))


def test_the_feature_count_belongs_to_vectors_alone():
    with pytest.raises(ValueError, match="needs model.features"):
        RunConfig(VECTORS, dataclasses.replace(DENSE, features=None), GAUSSIAN)
    with pytest.raises(ValueError, match="model.features is for vectors"):
        RunConfig(DataConfig(), DENSE, GAUSSIAN)
    with pytest.raises(ValueError, match="features=0 is out of range"):
        ModelConfig(features=0)


@pytest.mark.parametrize("flags,message", [
    (["--arch", "conv"], "arch='conv' convolves"),
    (["--normalization", "unit"], "normalization='unit' is an image idea"),
    (["--likelihood", "bernoulli"], "likelihood='bernoulli' is a distribution on [0, 1]"),
])
def test_the_command_line_refuses_them_in_one_line(tmp_path, flags, message):
    code, err = _cli("train", "--dataset", "vectors", "--n-train", "64", *flags, "--out", str(tmp_path / "r"))
    assert code == 2
    assert err.startswith("python -m vae_core: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_vectors_have_defaults_of_their_own_that_the_refusals_allow():
    defaults = DATASET_DEFAULTS["vectors"]
    config = make_run_config(DataConfig(dataset="vectors", normalization=defaults["data.normalization"]),
                             ModelConfig(arch=defaults["model.arch"]),
                             LossConfig(likelihood=defaults["loss.likelihood"]), TrainConfig())
    assert config.model.features == 12  # the bundled vectors' features, read from the data


def test_a_tanh_decoder_on_z_scored_vectors_trains_and_is_called_mismatched():
    rows = torch.randn(64, 6) * 3 + 10
    normalizer = fit_vector_normalizer("zscore", rows)
    config = RunConfig(VECTORS, dataclasses.replace(DENSE, output_activation="tanh"), GAUSSIAN,
                       TrainConfig(epochs=1, batch_size=32))
    trainer = Trainer(config, rows, normalizer)
    assert trainer.verdict.status == "mismatched"
    assert "tanh output can only produce values in (-1, 1)" in trainer.verdict.reason
    assert len(list(trainer.steps())) == 2
    raw = Trainer(dataclasses.replace(config, data=DataConfig(dataset="vectors", normalization="none")), rows,
                  fit_vector_normalizer("none", rows))
    assert raw.verdict.status == "mismatched" and "the raw targets span" in raw.verdict.reason


def test_a_sigma_per_feature_is_one_learned_parameter_a_feature_and_a_pixel_for_images():
    vectors = build_model(DENSE, "gaussian_feature", 0.5, seed=0)
    assert vectors.log_sigma.shape == (6,) and vectors.log_sigma.requires_grad
    out = vectors(torch.randn(4, 6))
    assert out.x_hat.shape == (4, 6) and out.log_sigma.shape == (6,)
    assert vectors.decoder_log_sigma() is None  # no shared sigma
    images = build_model(ModelConfig(arch="mlp", channels=1, image_size=28, hidden_dim=16), "gaussian_feature", 0.5)
    assert images.log_sigma.shape == (1, 28, 28)
    assert images(torch.rand(2, 1, 28, 28)).log_sigma.shape == (1, 28, 28)
