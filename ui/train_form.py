"""The Train page's configuration form and the background job's handle in the session."""
from __future__ import annotations

import dataclasses

import streamlit as st

from ui.state import JOB_KEY, load_test_images
from vae_core.config import (DataConfig, LossConfig, ModelConfig, TrainConfig, RunConfig, field_options)
from vae_core.data import DatasetNotFoundError
from vae_core.jobs import TrainingJob
from vae_core.likelihoods import Verdict, compatibility
from vae_core.normalize import fit_normalizer
from vae_core.runs import default_runs_dir
from vae_core.train import make_run_config

TRAIN_THREADS = 1  # of the 2 cores: one trains, one keeps the server and the other sessions responsive


def _select(col, label: str, cls: type, name: str, key: str, help: str | None = None) -> str:
    options = field_options(cls, name)
    default = options.index(getattr(cls(), name)) if name != "likelihood" else options.index("bernoulli")
    return col.selectbox(label, options, index=default, key=key, help=help)


def data_config_ui() -> DataConfig:
    st.markdown("**Data**")
    c1, c2, c3 = st.columns(3)
    dataset = _select(c1, "Dataset", DataConfig, "dataset", "cfg_dataset",
                      "sprites are generated in code; the others load from the data folder.")
    normalization = _select(c2, "Normalization", DataConfig, "normalization", "cfg_normalization",
                            "unit: [0, 1]; symmetric: [-1, 1]; zscore: per-channel mean 0, std 1 (training split).")
    n_train = c3.number_input("Training images (0 = all)", 0, 60_000, 5000, step=500, key="cfg_n_train")
    kw = {}
    if dataset == "sprites":
        kw["image_size"] = st.radio("Sprite size", [32, 64], horizontal=True, key="cfg_image_size")
    else:
        c4, c5 = st.columns([3, 1])
        kw["data_dir"] = c4.text_input("Data folder", "", key="cfg_data_dir",
                                       placeholder="empty: $VAE_LAB_DATA, else ./data") or None
        kw["download"] = c5.checkbox("Download if missing", False, key="cfg_download")
    return DataConfig(dataset=dataset, normalization=normalization, n_train=n_train or None, **kw)


def model_config_ui() -> ModelConfig:
    st.markdown("**Model**")
    c1, c2, c3 = st.columns(3)
    arch = _select(c1, "Architecture", ModelConfig, "arch", "cfg_arch", "conv: a small DCGAN-like VAE; mlp: 784-400-20 style.")
    activation = _select(c2, "Decoder output activation", ModelConfig, "output_activation", "cfg_output_activation")
    latent_dim = c3.number_input("Latent dimensions", 1, 256, 10, key="cfg_latent_dim")
    with st.expander("Layer sizes"):
        c4, c5, c6 = st.columns(3)
        width = c4.number_input("Conv width (first block)", 4, 256, 32, key="cfg_width")
        depth = c5.number_input("Conv blocks", 1, 5, 3, key="cfg_depth")
        hidden = c6.number_input("MLP hidden units", 8, 4096, 400, key="cfg_hidden_dim")
    return ModelConfig(arch=arch, output_activation=activation, latent_dim=latent_dim, width=width,
                       depth=depth, hidden_dim=hidden)


def loss_config_ui() -> LossConfig:
    st.markdown("**Loss**")
    c1, c2, c3 = st.columns(3)
    likelihood = _select(c1, "Likelihood p(x|z)", LossConfig, "likelihood", "cfg_likelihood",
                         "bernoulli: BCE; gaussian: MSE with a fixed sigma; gaussian_learned: one learned sigma (σ-VAE).")
    sigma = c2.number_input("Gaussian sigma (fixed, or initial if learned)", 0.001, 1000.0, 0.1,
                            format="%.3f", key="cfg_sigma", disabled=likelihood == "bernoulli")
    beta = c3.number_input("β (KL weight)", 0.0, 1000.0, 1.0, step=0.5, key="cfg_beta")
    return LossConfig(likelihood=likelihood, sigma=sigma, beta=beta)


def train_config_ui() -> TrainConfig:
    st.markdown("**Training**")
    c1, c2, c3, c4, c5 = st.columns(5)
    epochs = c1.number_input("Epochs", 1, 10_000, 3, key="cfg_epochs")
    budget = c2.number_input("Time budget, s (0 = none)", 0, 24 * 3600, 30, key="cfg_time_budget")
    batch = c3.number_input("Batch size", 1, 4096, 64, key="cfg_batch_size")
    lr = c4.number_input("Learning rate", 1e-6, 1.0, 1e-3, format="%.5f", key="cfg_lr")
    seed = c5.number_input("Seed", 0, 2**31 - 1, 0, key="cfg_seed")
    return TrainConfig(epochs=epochs, time_budget_s=budget or None, batch_size=batch, lr=lr, seed=seed,
                       num_threads=TRAIN_THREADS)


def run_config_ui() -> RunConfig | None:
    """The whole form; a value out of range shows its message and returns None."""
    try:
        return make_run_config(data_config_ui(), model_config_ui(), loss_config_ui(), train_config_ui())
    except ValueError as e:
        st.error(f"{e}")
        return None


def verdict_ui(config: RunConfig) -> Verdict | None:
    """Show whether activation x normalization x likelihood works, is mismatched, or is refused."""
    try:  # the real range of zscored data needs the data: estimated on the (cached) test split
        test = load_test_images(dataclasses.replace(config.data, n_test=None, download=False))
        ranges = fit_normalizer(config.data.normalization, test.images).reachable_range()
        target_range = (min(r[0] for r in ranges), max(r[1] for r in ranges))
    except (DatasetNotFoundError, ValueError) as e:
        if not config.data.download:
            st.error(str(e))
            return None
        target_range = None
    v = compatibility(config.model.output_activation, config.data.normalization, config.loss.likelihood,
                      target_range)
    combo = f"{config.model.output_activation} output · {config.data.normalization} data · {config.loss.likelihood}"
    if v.status == "works":
        st.success(f"**Works:** {combo}.")
    elif v.status == "mismatched":
        st.warning(f"**Mismatched:** {combo}. {v.reason}")
    else:
        st.error(f"**Refused:** {combo}. {v.reason}")
    return v


def current_job() -> TrainingJob | None:
    return st.session_state.get(JOB_KEY)


def start_job(config: RunConfig) -> TrainingJob:
    job = TrainingJob(config, default_runs_dir()).start()
    st.session_state[JOB_KEY] = job
    st.session_state["job_adopted"] = False
    return job
