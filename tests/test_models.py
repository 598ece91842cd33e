"""Model building and forward passes, config validation, and the latent tools."""
import subprocess
import sys

import pytest
import torch

from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.model.latent import interpolate, project_2d, reconstruct, sample_prior, traverse
from vae_core.model.vae import ConvVAE, MLPVAE, build_model, count_parameters


# --- build -------------------------------------------------------------------------------------

@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3)])
@pytest.mark.parametrize("depth", [1, 3, 4])
def test_conv_vae_returns_exactly_the_input_size(size, channels, depth):
    model = build_model(ModelConfig(channels=channels, image_size=size, depth=depth, width=8), "gaussian")
    out = model(torch.rand(2, channels, size, size))
    assert isinstance(model, ConvVAE)
    assert out.x_hat.shape == (2, channels, size, size)
    assert out.mu.shape == out.logvar.shape == out.z.shape == (2, 10)


def test_mlp_vae_is_pytorchs_784_400_20():
    model = build_model(ModelConfig(arch="mlp", channels=1, image_size=28, latent_dim=20), "bernoulli")
    assert isinstance(model, MLPVAE)
    # 784*400+400 + 2*(400*20+20) + 20*400+400 + 400*784+784 (+ the unused fixed-sigma buffer)
    assert count_parameters(model) == 784 * 400 + 400 + 2 * (400 * 20 + 20) + 20 * 400 + 400 + 400 * 784 + 784


@pytest.mark.parametrize("activation,lo,hi", [("sigmoid", 0, 1), ("tanh", -1, 1)])
def test_output_activation_bounds_the_decoder_mean(activation, lo, hi):
    model = build_model(ModelConfig(output_activation=activation, width=8), "gaussian")
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.mul_(10)  # push the pre-activations far out
        z = torch.randn(4, 10) * 3
        logits, x_hat = model.decode_logits(z), model.decode(z)
    assert x_hat.min() >= lo and x_hat.max() <= hi
    assert logits.min() < lo and logits.max() > hi


def test_learned_sigma_is_a_parameter_and_fixed_sigma_is_not():
    learned = build_model(ModelConfig(width=8), "gaussian_learned", sigma=0.2)
    fixed = build_model(ModelConfig(width=8), "gaussian", sigma=0.2)
    assert any(p is learned.log_sigma for p in learned.parameters())
    assert not any(p is fixed.log_sigma for p in fixed.parameters())
    assert fixed.decoder_log_sigma().exp().item() == pytest.approx(0.2)
    assert build_model(ModelConfig(width=8), "bernoulli").decoder_log_sigma() is None


# --- config ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make,field", [
    (lambda: ModelConfig(latent_dim=0), "latent_dim"),
    (lambda: ModelConfig(output_activation="relu"), "output_activation"),
    (lambda: ModelConfig(image_size=30), "image_size"),
    (lambda: LossConfig(beta=-1), "beta"),
    (lambda: LossConfig(sigma=float("nan")), "sigma"),
    (lambda: LossConfig(likelihood="poisson"), "likelihood"),
    (lambda: TrainConfig(lr=5.0), "lr"),
    (lambda: TrainConfig(epochs=1.5), "epochs"),
    (lambda: DataConfig(dataset="imagenet"), "dataset"),
    (lambda: DataConfig(n_train=0), "n_train"),
])
def test_bad_config_values_name_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_run_config_round_trips_through_a_dict_and_refuses_unknown_fields():
    cfg = RunConfig(DataConfig(normalization="zscore"), ModelConfig(latent_dim=3), LossConfig(beta=4.0))
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    bad = cfg.to_dict()
    bad["model"]["evil"] = "__import__('os')"
    with pytest.raises(ValueError, match="unknown fields"):
        RunConfig.from_dict(bad)


# --- latent tools ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(ModelConfig(width=8, latent_dim=4), "gaussian").eval()


def test_reconstruct_from_mean_and_from_samples(model):
    x = torch.rand(3, 3, 32, 32)
    assert reconstruct(model, x).shape == (3, 3, 32, 32)
    samples = reconstruct(model, x, "sample", n_samples=5, seed=1)
    assert samples.shape == (5, 3, 3, 32, 32)
    assert not torch.equal(samples[0], samples[1])
    torch.testing.assert_close(samples, reconstruct(model, x, "sample", n_samples=5, seed=1))


def test_traverse_changes_only_the_chosen_dimension(model):
    z0 = torch.zeros(4)
    grid = traverse(model, z0, dims=[1, 3], values=[-2.0, 0.0, 2.0])
    assert grid.shape == (2, 3, 3, 32, 32)
    torch.testing.assert_close(grid[0, 1], grid[1, 1])  # value 0 on any dim is z0 itself
    torch.testing.assert_close(grid[0, 0], model.decode(torch.tensor([[0.0, -2.0, 0.0, 0.0]]))[0])


def test_interpolate_starts_and_ends_at_the_posterior_means(model):
    a, b = torch.rand(3, 32, 32), torch.rand(3, 32, 32)
    path = interpolate(model, a, b, steps=5)
    mu, _ = model.encode(torch.stack([a, b]))
    torch.testing.assert_close(path[0], model.decode(mu[:1])[0])
    torch.testing.assert_close(path[-1], model.decode(mu[1:])[0])


def test_sample_prior_is_seeded(model):
    torch.testing.assert_close(sample_prior(model, 6, seed=3), sample_prior(model, 6, seed=3))
    assert sample_prior(model, 6, seed=3).shape == (6, 3, 32, 32)


def test_project_2d_uses_pca_beyond_two_dimensions():
    torch.manual_seed(0)
    mu = torch.randn(500, 5) * torch.tensor([5.0, 0.1, 0.1, 0.1, 2.0])
    proj = project_2d(mu)
    assert proj.points.shape == (500, 2) and proj.explained is not None
    assert proj.explained[0] > 0.8 and proj.points[:, 0].var() > proj.points[:, 1].var()
    assert project_2d(mu[:, :2]).axis_names == ("z0", "z1")


# --- layering ----------------------------------------------------------------------------------

def test_importing_vae_core_does_not_import_streamlit():
    code = ("import sys, vae_core.cli.main, vae_plots.views, vae_core.jobs.training_job, vae_core.model.evaluate, vae_core.runs.folders; "
            "print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
