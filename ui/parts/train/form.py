"""The Train page's configuration form and its verdicts: what the settings amount to, and whether they work."""
from __future__ import annotations

import dataclasses
from typing import Any

import streamlit as st

from ui.form_fields import apply_config_to_form, remember_form, reset_form, restore_form
from ui.my_images import chosen_images, images_target_range, read
from ui.parts.train.fields import DATA_SCALES, FieldReader, FormResult
from ui.parts.train.vectors import (VECTOR_ARCH, VECTOR_LIKELIHOODS, VectorReach, form_datasets, keep_in, kind_now,
                                    on_dataset_change, vectors_data_ui, vectors_target_range)
from ui.state import current_run
from vae_core.config import NORMALIZATIONS, DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.data.base import DatasetNotFoundError
from vae_core.data.images.dataset import is_private
from vae_core.data.images.source import UploadRefused
from vae_core.host import HostSettingError, HostSettings
from vae_core.model.compatibility import ACTIVATION_RANGE, Verdict, compatibility, compatibility_matrix
from vae_core.model.likelihoods import LIKELIHOODS
from vae_core.model.loss_code import loss_code
from vae_core.model.objective import effective_beta, free_bits_words, implied_sigma, reduction_factors
from vae_core.model.reach import TargetRange, target_range

ASK_THE_HOST = ("On this server the data folder and downloads are the host's settings: ask the host to put the "
                "dataset there, or to allow downloads.")
TRAIN_THREADS = 1  # one core per job: the host's job slots share the CPU, and the pages need a core too


def load_target_range(data: DataConfig) -> TargetRange | VectorReach:
    """What the normalization does to this data; a person's images are measured from this session's read of them
    (reading them again for every normalization would take seconds each)."""
    if data.kind == "vectors":
        return vectors_target_range(data)
    return images_target_range(data) if is_private(data) else _load_target_range(data)


@st.cache_data(max_entries=32, show_spinner="Measuring the normalized data…")
def _load_target_range(data: DataConfig) -> TargetRange:
    """Cached: fitting a normalization means loading the training split; results are small."""
    return target_range(data)


def host_settings() -> HostSettings | None:
    """The host's settings (data folder, downloads); None, with the reason shown, if the host mis-set one."""
    try:
        return HostSettings.from_env()
    except HostSettingError as e:
        st.error(f"{e} Ask the host to correct it; until then this server downloads nothing.")
        return None


def host_data_ui(dataset: str, host: HostSettings | None) -> None:
    """Where a torchvision set comes from on this server: the host's folder, not the student's."""
    if host is None:
        return
    downloads = "may download it if it is missing" if host.allow_download else "does not download missing data"
    st.caption(f"{dataset} loads from the host's data folder `{host.data_dir.absolute()}`; this server "
               f"{downloads}. The host sets both (VAE_LAB_DATA, VAE_LAB_ALLOW_DOWNLOAD).")


def data_config_ui(form: FieldReader) -> DataConfig | None:
    st.markdown("**Data**")
    c1, c2, c3, c4 = st.columns(4)
    kind = kind_now()
    if kind == "vectors":
        keep_in("data", "normalization", NORMALIZATIONS["vectors"])
    dataset = form.select(c1, "data", "dataset", options=form_datasets(), on_change=on_dataset_change)
    normalization = form.select(c2, "data", "normalization", options=NORMALIZATIONS[kind])
    scale = form.slider(c3, "data", "data_scale", DATA_SCALES)
    n_train = form.number(c4, "data", "n_train")
    if kind == "vectors":
        return vectors_data_ui(form, dataset, normalization=normalization, data_scale=scale, n_train=n_train)
    if dataset == "images":
        return images_data_ui(form, normalization=normalization, data_scale=scale, n_train=n_train)
    if dataset == "sprites":
        return form.build(DataConfig, dataset=dataset, normalization=normalization, data_scale=scale,
                          n_train=n_train, image_size=form.radio(st, "data", "image_size"))
    host = host_settings()
    host_data_ui(dataset, host)
    return form.build(DataConfig, dataset=dataset, normalization=normalization, data_scale=scale, n_train=n_train,
                      download=bool(host and host.allow_download))


NO_IMAGES = "No images of yours on this server yet: upload a .zip on the Your data page."


def images_data_ui(form: FieldReader, **values: Any) -> DataConfig | None:
    """The images this browser chose on the Your data page, with the form's normalization and subset."""
    chosen = chosen_images()
    try:
        r = read(chosen) if chosen else None
    except (UploadRefused, OSError) as e:
        r, problem = None, str(e)
    else:
        problem = NO_IMAGES
    if r is None:
        form.refuse_missing_upload("Your images", problem)
        return None
    st.caption(f"**Your images:** {r.images.summary()} Used as {r.chosen.color}, {r.chosen.image_size} × "
               f"{r.chosen.image_size} pixels: change that on the Your data page.")
    if form.refused_n_train(values["n_train"], len(r.images.train), "images"):
        return None
    return form.build(DataConfig, **{**dataclasses.asdict(r.chosen), **values})


def model_config_ui(form: FieldReader) -> ModelConfig | None:
    st.markdown("**Model**")
    c1, c2, c3 = st.columns(3)
    vectors = kind_now() == "vectors"
    if vectors:
        keep_in("model", "arch", (VECTOR_ARCH,))
    arch = form.select(c1, "model", "arch", options=(VECTOR_ARCH,) if vectors else None,
                       help="Rows of numbers train a dense VAE (mlp): a row has no neighbouring pixels to convolve."
                       if vectors else None)
    activation = form.select(c2, "model", "output_activation")
    latent_dim = form.number(c3, "model", "latent_dim")
    details = ("hidden_dim", "mlp_layers") if vectors else ("width", "depth", "hidden_dim", "mlp_layers")
    with st.expander("Architecture details", expanded=vectors or form.refused_now("model", *details)):
        values = _architecture_ui(form, arch, vectors)
    return form.build(ModelConfig, arch=arch, output_activation=activation, latent_dim=latent_dim, **values)


def _architecture_ui(form: FieldReader, arch: str, vectors: bool) -> dict[str, Any]:
    """Widths, depths and activations; conv's fields are hidden for vectors (and left at their defaults)."""
    conv, mlp = ("used", "unused") if arch == "conv" else ("unused", "used")
    cols = st.columns(4 if vectors else 6)
    values = {} if vectors else {"width": form.number(cols[0], "model", "width", use=conv),
                                 "depth": form.number(cols[1], "model", "depth", use=conv)}
    c6, c7, c8, c9 = cols[-4:]
    return values | {"hidden_dim": form.number(c6, "model", "hidden_dim", use=mlp),
                     "mlp_layers": form.number(c7, "model", "mlp_layers", use=mlp),
                     "hidden_activation": form.select(c8, "model", "hidden_activation"),
                     "output_norm": form.select(c9, "model", "output_norm")}


def loss_config_ui(form: FieldReader) -> LossConfig | None:
    st.markdown("**Loss**")
    c1, c2, c3 = st.columns(3)
    likelihoods = VECTOR_LIKELIHOODS if kind_now() == "vectors" else tuple(LIKELIHOODS)
    if kind_now() == "vectors":
        keep_in("loss", "likelihood", VECTOR_LIKELIHOODS)
    likelihood = form.select(c1, "loss", "likelihood", format_func=lambda name: name, options=likelihoods,
                             help="\n\n".join(f"**{k}**: {LIKELIHOODS[k].description}" for k in likelihoods))
    lik = LIKELIHOODS.get(likelihood)
    sigma = form.number(c2, "loss", "sigma", label=lik.sigma_label if lik else None,
                        use="used" if lik and lik.reads_sigma else "unused")
    beta = form.number(c3, "loss", "beta")
    terms = ("recon_coef", "z_samples", "kl_warmup_steps", "kl_ramp_fraction", "free_bits")
    with st.expander("How the training loss reduces and weighs its terms", expanded=form.refused_now("loss", *terms)):
        d1, d2, d3, d4 = st.columns(4)
        recon_red = form.select(d1, "loss", "recon_reduction")
        recon_batch = form.select(d2, "loss", "recon_batch_reduction")
        kl_red = form.select(d3, "loss", "kl_reduction")
        kl_batch = form.select(d4, "loss", "kl_batch_reduction")
        f1, f2, _, _ = st.columns(4)
        recon_coef = form.number(f1, "loss", "recon_coef")
        z_samples = form.number(f2, "loss", "z_samples")
        e1, e2, e3, e4 = st.columns(4)
        schedule = form.select(e1, "loss", "kl_schedule")
        warmup = form.number(e2, "loss", "kl_warmup_steps", use="unused" if schedule == "constant" else "used")
        ramp = form.number(e3, "loss", "kl_ramp_fraction", use="used" if schedule == "cyclical" else "unused")
        free_bits = form.number(e4, "loss", "free_bits")
    return form.build(LossConfig, likelihood=likelihood, sigma=sigma, beta=beta, recon_coef=recon_coef,
                      recon_reduction=recon_red, recon_batch_reduction=recon_batch, kl_reduction=kl_red,
                      kl_batch_reduction=kl_batch, kl_schedule=schedule, kl_warmup_steps=warmup,
                      kl_ramp_fraction=ramp, free_bits=free_bits, z_samples=z_samples)


def train_config_ui(form: FieldReader) -> TrainConfig | None:
    st.markdown("**Training**")
    c1, c2, c3 = st.columns(3)  # two rows of three: six to a row cut their labels on a 1024-pixel projector
    c4, c5, c6 = st.columns(3)
    values = {name: form.number(col, "train", name)
              for col, name in zip((c1, c2, c3, c4, c6), ("epochs", "time_budget_s", "batch_size", "lr", "seed"))}
    schedule = form.select(c5, "train", "lr_schedule")
    return form.build(TrainConfig, **values, lr_schedule=schedule, num_threads=TRAIN_THREADS)


def _use_loaded_settings() -> None:
    apply_config_to_form(current_run().config)


def form_header_ui() -> None:
    st.caption("This browser remembers these settings across pages and reloads; after a run they show what it used.")
    with st.container(horizontal=True):  # each button whole at 1024 pixels: a column would cut its words
        st.button("Use the loaded model's settings", key="cfg_use_loaded", on_click=_use_loaded_settings,
                  help="Fill the form with the settings the model loaded in the sidebar was trained with.")
        st.button("Reset to defaults", key="cfg_reset", on_click=reset_form, icon=":material/restart_alt:",
                  help="Every field back to its default (the settings a new browser starts with). Starts nothing.")


def run_config_ui() -> FormResult:
    """The whole form; a refused value shows its reason under its field, and the result lists the refusals."""
    restore_form()
    form_header_ui()
    form = FieldReader()
    parts = (data_config_ui(form), model_config_ui(form), loss_config_ui(form), train_config_ui(form))
    remember_form()
    return form.result(*parts)


def loss_balance_ui(config: RunConfig) -> None:
    """What the chosen reductions and coefficients amount to: the beta of a proper ELBO, in words and as code."""
    loss, m, batch = config.loss, config.model, config.train.batch_size
    n_pixels = m.features or m.channels * m.image_size**2  # a row's features, or an image's pixels
    f = reduction_factors(loss, n_pixels, m.latent_dim, batch)
    shown = loss_code(loss, n_pixels, m.latent_dim, batch, "image" if m.features is None else "row")
    text = (f"**Equivalent β of the proper ELBO: {effective_beta(loss, n_pixels, m.latent_dim, batch):.4g}** "
            f"= β {loss.beta:g} × KL factor {f.kl:.4g} ÷ (coefficient {loss.recon_coef:g} × reconstruction "
            f"factor {f.recon:.4g}). The reconstruction is {shown.recon_words}; the KL is {shown.kl_words}.")
    sigma = implied_sigma(loss, n_pixels, m.latent_dim, batch)
    if sigma is not None:
        text += (f" For this Gaussian with σ = {loss.sigma:g}, the loss is a proper ELBO (β = 1) with "
                 f"**σ = {sigma:.4g}** in normalized units.")
    if loss.free_bits > 0:  # no KL is known before training: say where the free bits will hold
        text += f" Before training no KL is known: {free_bits_words(loss.free_bits)} (no gradient on its KL)."
    st.info(text + " Reported terms stay in proper nats whatever these settings.")
    with st.expander("This loss as the PyTorch you would write"):
        st.code(shown.code, language="python")


def verdict_ui(config: RunConfig) -> Verdict | None:
    """Show whether activation x normalization x likelihood works, is mismatched, or is refused."""
    try:
        measured = load_target_range(config.data)
    except (DatasetNotFoundError, ValueError) as e:
        if not config.data.download:
            st.error(f"{e} {ASK_THE_HOST}" if isinstance(e, DatasetNotFoundError) else str(e))
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


STATUS_STYLE = {"works": "background-color: #e3f4e3", "mismatched": "background-color: #fff1cc",
                "refused": "background-color: #f9d6d5"}


def compatibility_matrix_ui(data: DataConfig) -> None:
    """Every output activation x normalization x likelihood cell for this dataset: works / mismatched / refused."""
    import pandas as pd  # streamlit's own dependency; only this table needs it

    ranges = {}
    for norm in NORMALIZATIONS[data.kind]:
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
