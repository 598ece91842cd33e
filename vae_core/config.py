"""Frozen, validated configuration: what a run is, in four parts (data, model, loss, training).

A bad value raises ValueError naming the field, the value and what is allowed, so the CLI and the
app can show the sentence as it is.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

DatasetName = Literal["sprites", "mnist", "fashion_mnist", "cifar10"]
Normalization = Literal["unit", "symmetric", "zscore"]
OutputActivation = Literal["sigmoid", "tanh", "linear"]
LikelihoodName = Literal["bernoulli", "continuous_bernoulli", "gaussian", "gaussian_learned",
                         "gaussian_optimal", "gaussian_pixel", "laplace"]
Architecture = Literal["conv", "mlp"]
HiddenActivation = Literal["leaky_relu", "relu"]
OutputNorm = Literal["none", "batchnorm"]
Reduction = Literal["sum", "mean"]
KLSchedule = Literal["constant", "linear", "cyclical"]
ReconMode = Literal["mean", "sample"]


def _check_choice(obj: object, name: str, options: Any) -> None:
    value = getattr(obj, name)
    allowed = get_args(options)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not an option; pick one of {', '.join(map(repr, allowed))}.")


def _check_range(obj: object, name: str, lo: float, hi: float, *, integer: bool = False,
                 optional: bool = False) -> None:
    value = getattr(obj, name)
    if value is None and optional:
        return
    kind = "an integer" if integer else "a number"
    bad_type = isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
    if bad_type or (not integer and not math.isfinite(value)) or not lo <= value <= hi:
        raise ValueError(f"{name}={value!r} is out of range; it must be {kind} from {lo:g} to {hi:g}.")


@dataclass(frozen=True)
class DataConfig:
    dataset: DatasetName = "sprites"
    image_size: int = 32  # sprites only (32 or 64); torchvision sets come at their own size
    n_train: int | None = None  # random subset of the training split; None = all of it
    n_test: int | None = None
    normalization: Normalization = "unit"
    data_dir: str | None = None  # None: $VAE_LAB_DATA, else ./data
    download: bool = False  # torchvision sets only; never implicit
    seed: int = 0  # sprites generation and subset choice
    data_scale: float = 1.0  # multiplies the normalized data (x10, x0.1): moves the recon/KL balance

    def __post_init__(self) -> None:
        _check_choice(self, "dataset", DatasetName)
        _check_choice(self, "normalization", Normalization)
        _check_range(self, "data_scale", 1e-3, 1e3)
        if self.image_size not in (32, 64):
            raise ValueError(f"image_size={self.image_size!r} is not supported; sprites come at 32 or 64 pixels.")
        _check_range(self, "n_train", 1, 10_000_000, integer=True, optional=True)
        _check_range(self, "n_test", 1, 10_000_000, integer=True, optional=True)
        _check_range(self, "seed", 0, 2**31 - 1, integer=True)


@dataclass(frozen=True)
class ModelConfig:
    arch: Architecture = "conv"
    channels: int = 3  # image channels, set from the data
    image_size: int = 32  # image height = width, set from the data
    latent_dim: int = 10
    width: int = 32  # conv: channels of the first block, doubled per block
    depth: int = 3  # conv: stride-2 blocks
    hidden_dim: int = 400  # mlp: the hidden layer (784-400-20 is PyTorch's example)
    output_activation: OutputActivation = "sigmoid"
    hidden_activation: HiddenActivation = "leaky_relu"  # leaky_relu has slope 0.2
    output_norm: OutputNorm = "none"  # batchnorm: BatchNorm2d right before the output activation

    def __post_init__(self) -> None:
        _check_choice(self, "arch", Architecture)
        _check_choice(self, "output_activation", OutputActivation)
        _check_choice(self, "hidden_activation", HiddenActivation)
        _check_choice(self, "output_norm", OutputNorm)
        if self.channels not in (1, 3):
            raise ValueError(f"channels={self.channels!r}: images must have 1 (grey) or 3 (RGB) channels.")
        if self.image_size not in (28, 32, 64):
            raise ValueError(f"image_size={self.image_size!r} is not supported; use 28, 32 or 64 pixels.")
        _check_range(self, "latent_dim", 1, 256, integer=True)
        _check_range(self, "width", 4, 256, integer=True)
        _check_range(self, "depth", 1, 5, integer=True)
        _check_range(self, "hidden_dim", 8, 4096, integer=True)


@dataclass(frozen=True)
class LossConfig:
    likelihood: LikelihoodName = "bernoulli"
    sigma: float = 0.1  # gaussian: the fixed std (initial if learned); laplace: the scale b; normalized units
    beta: float = 1.0  # the coefficient on the KL term of the training loss (1 with sums = the ELBO)
    recon_coef: float = 1.0  # the coefficient on the reconstruction term of the training loss
    recon_reduction: Reduction = "sum"  # over pixels: sum (the ELBO) or mean (mse_loss's default)
    kl_reduction: Reduction = "sum"  # over latent dimensions
    kl_schedule: KLSchedule = "constant"  # how beta ramps: linear warm-up, or cyclical (Fu et al. 2019)
    kl_warmup_steps: int = 1000  # linear: steps from 0 to beta; cyclical: the length of one cycle
    kl_ramp_fraction: float = 0.5  # cyclical: the share of each cycle spent ramping up
    free_bits: float = 0.0  # nats per latent dimension (Kingma et al. 2016); 0 = off
    z_samples: int = 1  # samples of z per input in the training loss

    def __post_init__(self) -> None:
        _check_choice(self, "likelihood", LikelihoodName)
        _check_choice(self, "recon_reduction", Reduction)
        _check_choice(self, "kl_reduction", Reduction)
        _check_choice(self, "kl_schedule", KLSchedule)
        _check_range(self, "sigma", 1e-3, 1e3)
        _check_range(self, "beta", 0.0, 1e4)
        _check_range(self, "recon_coef", 1e-6, 1e6)
        _check_range(self, "kl_warmup_steps", 1, 10_000_000, integer=True)
        _check_range(self, "kl_ramp_fraction", 0.01, 1.0)
        _check_range(self, "free_bits", 0.0, 100.0)
        _check_range(self, "z_samples", 1, 64, integer=True)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5
    time_budget_s: float | None = None  # stop after this many seconds, whatever the epoch
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    num_threads: int | None = None  # torch intra-op threads for training; None leaves torch's default
    eval_every: int = 0  # steps between test-set snapshots in the history; 0 = never

    def __post_init__(self) -> None:
        _check_range(self, "epochs", 1, 10_000, integer=True)
        _check_range(self, "time_budget_s", 0.1, 7 * 24 * 3600, optional=True)
        _check_range(self, "batch_size", 1, 8192, integer=True)
        _check_range(self, "lr", 1e-7, 1.0)
        _check_range(self, "seed", 0, 2**31 - 1, integer=True)
        _check_range(self, "num_threads", 1, 256, integer=True, optional=True)
        _check_range(self, "eval_every", 0, 10_000_000, integer=True)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunConfig":
        """Rebuild from JSON; unknown keys and wrong types raise ValueError (checkpoints are untrusted)."""
        if not isinstance(d, dict):
            raise ValueError("config must be a JSON object with data, model, loss and train sections.")
        parts = {}
        for f in dataclasses.fields(cls):
            section = d.get(f.name, {})
            parts[f.name] = _section_from_dict(_SECTIONS[f.name], section, f.name)
        extra = set(d) - set(parts)
        if extra:
            raise ValueError(f"config has unknown sections {sorted(extra)}; expected data, model, loss, train.")
        return cls(**parts)


_SECTIONS = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig}


def _section_from_dict(cls: type, section: Any, name: str) -> Any:
    if not isinstance(section, dict):
        raise ValueError(f"config section {name!r} must be a JSON object.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(section) - known
    if unknown:
        raise ValueError(f"config section {name!r} has unknown fields {sorted(unknown)}.")
    try:
        return cls(**section)
    except TypeError as e:  # e.g. a list where a number belongs
        raise ValueError(f"config section {name!r}: {e}") from None


def field_options(cls: type, name: str) -> tuple[str, ...]:
    """The allowed strings of a Literal field, for select boxes and CLI choices."""
    hints = typing.get_type_hints(cls)
    return get_args(hints[name])
