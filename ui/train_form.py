"""The Train page's configuration form, its verdicts, and the background job's handle in the session."""
from __future__ import annotations

import dataclasses

import streamlit as st

from ui.state import JOB_KEY
from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig, field_options
from vae_core.data import DatasetNotFoundError
from vae_core.jobs import TrainingJob
from vae_core.likelihoods import ACTIVATION_RANGE, DESCRIPTIONS, Verdict, compatibility, compatibility_matrix
from vae_core.objective import effective_beta, implied_sigma
from vae_core.runs import default_runs_dir
from vae_core.train import TargetRange, make_run_config, target_range

TRAIN_THREADS = 1  # of the 2 cores: one trains, one keeps the server and the other sessions responsive
DATA_SCALES = [0.01, 0.1, 1.0, 10.0, 100.0]


@st.cache_data(max_entries=32, show_spinner="Measuring the normalized data…")
def load_target_range(data: DataConfig) -> TargetRange:
    """Cached: fitting a normalization means loading the training split; results are small."""
    return target_range(data)


def _select(col, label: str, cls: type, name: str, key: str, help: str | None = None, **kw) -> str:
    options = field_options(cls, name)
    return col.selectbox(label, options, index=options.index(getattr(cls(), name)), key=key, help=help, **kw)


def data_config_ui() -> DataConfig:
    st.markdown("**Data**")
    c1, c2, c3, c4 = st.columns(4)
    dataset = _select(c1, "Dataset", DataConfig, "dataset", "cfg_dataset",
                      "sprites are generated in code; the others load from the data folder.")
    normalization = _select(c2, "Normalization", DataConfig, "normalization", "cfg_normalization",
                            "unit: [0, 1]; symmetric: [-1, 1]; zscore: per-channel mean 0, std 1 (training split).")
    scale = c3.select_slider("Scale the normalized data", DATA_SCALES, value=1.0, key="cfg_data_scale",
                             format_func=lambda v: f"×{v:g}",
                             help="Multiplies the normalized values: the KL does not notice, the reconstruction term does.")
    n_train = c4.number_input("Training images (0 = all)", 0, 60_000, 5000, step=500, key="cfg_n_train")
    kw = {}
    if dataset == "sprites":
        kw["image_size"] = st.radio("Sprite size", [32, 64], horizontal=True, key="cfg_image_size")
    else:
        c5, c6 = st.columns([3, 1])
        kw["data_dir"] = c5.text_input("Data folder", "", key="cfg_data_dir",
                                       placeholder="empty: $VAE_LAB_DATA, else ./data") or None
        kw["download"] = c6.checkbox("Download if missing", False, key="cfg_download")
    return DataConfig(dataset=dataset, normalization=normalization, data_scale=scale, n_train=n_train or None, **kw)


def model_config_ui() -> ModelConfig:
    st.markdown("**Model**")
    c1, c2, c3 = st.columns(3)
    arch = _select(c1, "Architecture", ModelConfig, "arch", "cfg_arch", "conv: a small DCGAN-like VAE; mlp: 784-400-20 style.")
    activation = _select(c2, "Decoder output activation", ModelConfig, "output_activation", "cfg_output_activation")
    latent_dim = c3.number_input("Latent dimensions", 1, 256, 10, key="cfg_latent_dim")
    with st.expander("Architecture details"):
        c4, c5, c6, c7, c8 = st.columns(5)
        width = c4.number_input("Conv width (first block)", 4, 256, 32, key="cfg_width")
        depth = c5.number_input("Conv blocks", 1, 5, 3, key="cfg_depth")
        hidden = c6.number_input("MLP hidden units", 8, 4096, 400, key="cfg_hidden_dim")
        hidden_act = _select(c7, "Hidden activation", ModelConfig, "hidden_activation", "cfg_hidden_activation")
        out_norm = _select(c8, "Before the output activation", ModelConfig, "output_norm", "cfg_output_norm",
                           "batchnorm: a BatchNorm2d right before the output activation.")
    return ModelConfig(arch=arch, output_activation=activation, latent_dim=latent_dim, width=width, depth=depth,
                       hidden_dim=hidden, hidden_activation=hidden_act, output_norm=out_norm)


def loss_config_ui() -> LossConfig:
    st.markdown("**Loss**")
    c1, c2, c3 = st.columns(3)
    likelihood = _select(c1, "Likelihood p(x|z)", LossConfig, "likelihood", "cfg_likelihood",
                         format_func=lambda name: name, help="\n\n".join(f"**{k}**: {v}" for k, v in DESCRIPTIONS.items()))
    label = {"laplace": "Laplace scale b (fixed)", "gaussian_learned": "Gaussian σ (initial; learned)"}.get(
        likelihood, "Gaussian σ (fixed; 0.707 = mse_loss with sum)")
    sigma = c2.number_input(label, 0.001, 1000.0, 0.1, format="%.3f", key="cfg_sigma",
                            disabled=likelihood not in ("gaussian", "gaussian_learned", "laplace"))
    beta = c3.number_input("β (coefficient on the KL term)", 0.0, 10_000.0, 1.0, step=0.5, key="cfg_beta")
    with st.expander("How the training loss reduces and weighs its terms"):
        d1, d2, d3, d4 = st.columns(4)
        recon_red = _select(d1, "Reconstruction over pixels", LossConfig, "recon_reduction", "cfg_recon_reduction",
                            "sum: the ELBO; mean: the default of mse_loss and binary_cross_entropy.")
        kl_red = _select(d2, "KL over latent dimensions", LossConfig, "kl_reduction", "cfg_kl_reduction")
        recon_coef = d3.number_input("Coefficient on the reconstruction", 1e-6, 1e6, 1.0, key="cfg_recon_coef")
        z_samples = d4.number_input("z samples per input", 1, 64, 1, key="cfg_z_samples")
        e1, e2, e3, e4 = st.columns(4)
        schedule = _select(e1, "KL schedule", LossConfig, "kl_schedule", "cfg_kl_schedule",
                           "linear: warm-up from 0 to β; cyclical: repeated ramps (Fu et al. 2019).")
        warmup = e2.number_input("Warm-up / cycle length (steps)", 1, 1_000_000, 1000, key="cfg_kl_warmup_steps",
                                 disabled=schedule == "constant")
        ramp = e3.number_input("Cyclical: share of a cycle ramping", 0.01, 1.0, 0.5, key="cfg_kl_ramp_fraction",
                               disabled=schedule != "cyclical")
        free_bits = e4.number_input("Free bits (nats per dimension)", 0.0, 100.0, 0.0, step=0.1, key="cfg_free_bits",
                                    help="Kingma et al. 2016: no KL pressure on a dimension below this many nats.")
    return LossConfig(likelihood=likelihood, sigma=sigma, beta=beta, recon_coef=recon_coef,
                      recon_reduction=recon_red, kl_reduction=kl_red, kl_schedule=schedule,
                      kl_warmup_steps=warmup, kl_ramp_fraction=ramp, free_bits=free_bits, z_samples=z_samples)


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


def loss_balance_ui(config: RunConfig) -> None:
    """What the chosen reductions and coefficients amount to, as the beta of a proper ELBO."""
    loss, m = config.loss, config.model
    n_pixels = m.channels * m.image_size**2
    beta_eff = effective_beta(loss, n_pixels, m.latent_dim)
    text = (f"**Equivalent β of the proper ELBO: {beta_eff:.4g}** (β = {loss.beta:g} × KL factor "
            f"{'1' if loss.kl_reduction == 'sum' else f'1/{m.latent_dim}'} ÷ (coefficient {loss.recon_coef:g} × "
            f"reconstruction factor {'1' if loss.recon_reduction == 'sum' else f'1/{n_pixels}'}), "
            f"with {n_pixels} pixel values and {m.latent_dim} latent dimensions per image).")
    sigma = implied_sigma(loss, n_pixels, m.latent_dim)
    if sigma is not None:
        text += (f" For this Gaussian with σ = {loss.sigma:g}, the loss is a proper ELBO (β = 1) with "
                 f"**σ = {sigma:.4g}** in normalized units.")
    text += " Reported terms stay in proper nats whatever these settings."
    st.info(text)


def verdict_ui(config: RunConfig) -> Verdict | None:
    """Show whether activation x normalization x likelihood works, is mismatched, or is refused."""
    try:
        measured = load_target_range(config.data)
    except (DatasetNotFoundError, ValueError) as e:
        if not config.data.download:
            st.error(str(e))
            return None
        measured = None
    target = (measured.lo, measured.hi) if measured else None
    act = config.model.output_activation
    v = compatibility(act, config.data.normalization, config.loss.likelihood, target)
    combo = f"{act} output · {config.data.normalization} data ×{config.data.data_scale:g} · {config.loss.likelihood}"
    if v.status == "works":
        st.success(f"**Works:** {combo}.")
    elif v.status == "mismatched":
        frac = measured.frac_outside[act] if measured else None
        lo, hi = ACTIVATION_RANGE[act]
        share = f" On this data **{frac:.1%} of the normalized target values lie outside ({lo:g}, {hi:g})**." \
            if frac is not None else ""
        st.warning(f"**Mismatched:** {combo}.{share} {v.reason}")
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


STATUS_STYLE = {"works": "background-color: #e3f4e3", "mismatched": "background-color: #fff1cc",
                "refused": "background-color: #f9d6d5"}


def compatibility_matrix_ui(data: DataConfig) -> None:
    """Every output activation x normalization x likelihood cell for this dataset: works / mismatched / refused."""
    import pandas as pd  # streamlit's own dependency; only this table needs it

    ranges = {}
    for norm in field_options(DataConfig, "normalization"):
        try:
            measured = load_target_range(dataclasses.replace(data, normalization=norm))
            ranges[norm] = (measured.lo, measured.hi)
        except (DatasetNotFoundError, ValueError):
            pass
    matrix = compatibility_matrix(ranges)
    table = pd.DataFrame({f"{act} · {norm}": {lik: cells[(act, norm)].status for lik, cells in matrix.items()}
                          for act, norm in next(iter(matrix.values()))})
    st.dataframe(table.style.map(lambda s: STATUS_STYLE.get(s, "")), width="stretch")
    st.caption(f"Columns: output activation · normalization (×{data.data_scale:g}); rows: likelihood. Ranges measured "
               f"on {data.dataset}. Choose a combination in the form to read why its cell says what it says.")
