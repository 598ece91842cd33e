"""Frozen, validated configuration: what a run is, in four parts (data, model, loss, training).

Each field declares once, in its metadata (a FieldSpec), its label, its help and, for a number, its
range: the validator, the CLI's --help and the app's form all read it there. A bad value raises
ValueError naming the field, the value and what is allowed, so the CLI and the app can show the
sentence as it is.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

DatasetName = Literal["sprites", "mnist", "fashion_mnist", "cifar10", "images", "vectors"]
DataKind = Literal["images", "vectors"]  # what a dataset's samples are: images, or rows of numbers
Square = Literal["crop", "pad"]
ImageColor = Literal["grey", "rgb"]  # what a person's images turned out to be
Color = Literal["auto", ImageColor]  # auto: RGB unless every image is grey
Orientation = Literal["exif", "stored"]
Normalization = Literal["unit", "symmetric", "zscore"]  # images
VectorNormalization = Literal["none", "zscore"]  # unit and symmetric assume pixels in [0, 1]; vectors are unbounded
NormalizationName = Literal[Normalization, VectorNormalization]  # what DataConfig.normalization may hold
NORMALIZATIONS = {"images": get_args(Normalization), "vectors": get_args(VectorNormalization)}  # by DataKind
OutputActivation = Literal["sigmoid", "tanh", "linear"]
UnitLikelihood = Literal["bernoulli", "continuous_bernoulli"]  # densities on [0, 1] only
LikelihoodName = Literal[UnitLikelihood, "gaussian", "gaussian_learned", "gaussian_optimal", "gaussian_pixel",
                         "gaussian_feature", "laplace"]
Architecture = Literal["conv", "mlp"]
HiddenActivation = Literal["leaky_relu", "relu"]
OutputNorm = Literal["none", "batchnorm"]
Reduction = Literal["sum", "mean"]
KLSchedule = Literal["constant", "linear", "cyclical"]
ReconMode = Literal["mean", "sample"]
FieldKind = Literal["integer", "number", "choice", "other"]
Device = Literal["auto", "cpu", "cuda", "mps"]
Precision = Literal["float32", "bf16"]
LRSchedule = Literal["constant", "cosine"]

SPEC = "spec"  # the key of a FieldSpec in a dataclass field's metadata
MAX_SEED = 2**31 - 1
MAX_FEATURES = 100_000  # a bound on an untrusted config, not the loader's limit (VectorLimits.columns, far lower)


@dataclass(frozen=True)
class FieldSpec:
    """How a person meets one config field: its label and help; for a number, the allowed range."""
    label: str
    help: str = ""
    lo: float | None = None  # numbers: the smallest allowed value
    hi: float | None = None  # numbers: the largest allowed value
    step: float | None = None  # the form's +/- step (None: 1 for an integer, 0.1 for a number)
    options: tuple[Any, ...] = ()  # a number that takes only these values (Literal fields list theirs in the type)
    none_means: str = ""  # an optional field: what None stands for ("all", "no limit")


def spec(default: Any, label: str, help: str = "", **details: Any) -> Any:
    """A dataclass field whose default and FieldSpec are declared together."""
    return field(default=default, metadata={SPEC: FieldSpec(label, help, **details)})


@dataclass(frozen=True)
class FieldInfo:
    """A config field as the validator, the CLI and the form see it: spec plus what its type says."""
    name: str
    kind: FieldKind
    optional: bool  # the type admits None
    default: Any
    spec: FieldSpec
    options: tuple[Any, ...] = ()  # choice: the allowed values


def _strip_none(hint: Any) -> tuple[Any, bool]:
    args = [a for a in get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0], True
    return hint, False


def _field_info(f: dataclasses.Field, hint: Any) -> FieldInfo:
    base, optional = _strip_none(hint)
    spec_ = f.metadata.get(SPEC) or FieldSpec(f.name)
    if typing.get_origin(base) is Literal or spec_.options:
        kind, options = "choice", get_args(base) or spec_.options
    else:
        kind, options = {int: "integer", float: "number"}.get(base, "other"), ()
    return FieldInfo(f.name, kind, optional, f.default, spec_, options)


@functools.cache
def fields_info(cls: type) -> dict[str, FieldInfo]:
    """Every field of a config section, in declaration order, with its spec and kind."""
    hints = typing.get_type_hints(cls)
    return {f.name: _field_info(f, hints[f.name]) for f in dataclasses.fields(cls)}


def _bound(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def range_text(info: FieldInfo) -> str:
    """'an integer from 1 to 10000': the allowed range of a number field, in words."""
    kind = "an integer" if info.kind == "integer" else "a number"
    return f"{kind} from {_bound(info.spec.lo)} to {_bound(info.spec.hi)}"


def _number_error(info: FieldInfo, value: Any) -> str | None:
    integer = info.kind == "integer"
    bad_type = isinstance(value, bool) or not isinstance(value, int if integer else (int, float))
    if bad_type or (not integer and not math.isfinite(value)) or not info.spec.lo <= value <= info.spec.hi:
        return f"{info.name}={value!r} is out of range; it must be {range_text(info)}."
    return None


def _choice_error(info: FieldInfo, value: Any) -> str | None:
    if any(value == o and type(value) is type(o) for o in info.options):  # 3.0 or True is not the option 3 or 1
        return None
    return f"{info.name}={value!r} is not an option; pick one of {', '.join(map(repr, info.options))}."


def check_field(cls: type, name: str, value: Any) -> str | None:
    """Why `value` is refused for field `name` of `cls` (the validator's own sentence), or None if it is allowed."""
    info = fields_info(cls)[name]
    if value is None and info.optional:
        return None
    if info.kind == "choice":
        return _choice_error(info, value)
    if info.spec.lo is not None:
        return _number_error(info, value)
    return None


def _validate(obj: object) -> None:
    """Check every field of a config section against its spec; the first refusal raises."""
    for name in fields_info(type(obj)):
        message = check_field(type(obj), name, getattr(obj, name))
        if message:
            raise ValueError(message)


@dataclass(frozen=True)
class DataConfig:
    dataset: DatasetName = spec("sprites", "Dataset", "sprites are generated in code; mnist, fashion_mnist and "
                                "cifar10 load from the data folder; images are your own (a folder or a .zip); "
                                "vectors are rows of numbers (a CSV or .npy, else the bundled ones).")
    image_size: int = spec(32, "Image size", "sprites and your images, in pixels; torchvision sets come at their "
                           "own size.", options=(28, 32, 64))
    images: str | None = spec(None, "Your images", "a folder or a .zip of PNG, JPEG, BMP, WebP, GIF or TIFF "
                              "images: class folders, train/ and test/ folders, or one flat folder.",
                              none_means="none")
    vectors: str | None = spec(None, "Your vectors", "dataset vectors: a CSV or .npy file, one row a sample, its "
                               "numeric columns the features.", none_means="the bundled vectors")
    square: Square = spec("crop", "Making images square", "your images: crop the centre square, or pad the "
                          "shorter side with black.")
    color: Color = spec("auto", "Grey or RGB", "your images: auto is RGB unless every image is grey.")
    orientation: Orientation = spec("exif", "Orientation", "your images: exif turns photos upright as their "
                                    "EXIF tag says; stored keeps the pixels as stored.")
    test_share: float = spec(0.1, "Test share", "your images without train/ and test/ folders: the seeded "
                             "share held out for testing.", lo=0.01, hi=0.5, step=0.05)
    n_train: int | None = spec(None, "Training samples", "images or rows: a seeded random subset of the training split.",
                               lo=1, hi=10_000_000, step=500, none_means="all")
    n_test: int | None = spec(None, "Test samples", "images or rows: a seeded random subset of the test split.",
                              lo=1, hi=10_000_000, step=500, none_means="all")
    normalization: NormalizationName = spec("unit", "Normalization", "unit: [0, 1]; symmetric: [-1, 1]; zscore: "
                                            "per-channel (vectors: per-feature) mean 0, std 1 (training split); "
                                            "none: vectors as they are.")
    data_dir: str | None = spec(None, "Data folder", "where mnist, fashion_mnist and cifar10 live.",
                                none_means="$VAE_LAB_DATA, else ./data")
    download: bool = spec(False, "Download if missing", "torchvision sets only; never implicit.")
    seed: int = spec(0, "Data seed", "sprites generation and the choice of subsets.", lo=0, hi=MAX_SEED)
    data_scale: float = spec(1.0, "Scale the normalized data", "multiplies the normalized values (×10, ×0.1): the "
                             "KL does not notice, the reconstruction term does.", lo=1e-3, hi=1e3)

    def __post_init__(self) -> None:
        _validate(self)
        if (self.dataset == "images") != bool(self.images):
            raise ValueError("dataset='images' needs images=PATH (a folder or a .zip of images), and images=PATH "
                             "needs dataset='images'.")
        if self.vectors and self.dataset != "vectors":
            raise ValueError("vectors=PATH needs dataset='vectors' (leave vectors out for the bundled vectors).")
        if problem := _normalization_problem(self):
            raise ValueError(problem)

    @property
    def kind(self) -> DataKind:
        """What the dataset's samples are: images, or rows of numbers."""
        return dataset_kind(self.dataset)


def dataset_kind(dataset: str) -> DataKind:  # every dataset is of images but the vectors
    return "vectors" if dataset == "vectors" else "images"


def _normalization_problem(data: DataConfig) -> str | None:
    """Why data's normalization does not fit its kind of data (None: it fits)."""
    if data.normalization in NORMALIZATIONS[data.kind]:
        return None
    if data.kind == "vectors":
        return (f"normalization={data.normalization!r} is an image idea: it assumes values in [0, 1], as pixels are, "
                "and rows of numbers are unbounded. For vectors pick 'zscore' (each feature to mean 0, std 1) or "
                "'none' (the numbers as they are).")
    return (f"normalization={data.normalization!r} is for vectors. For images pick 'unit' (the pixels as they are, "
            "in [0, 1]), 'symmetric' or 'zscore'.")


@dataclass(frozen=True)
class ModelConfig:
    arch: Architecture = spec("conv", "Architecture", "conv: a small DCGAN-like VAE; mlp: 784-400-20 style.")
    channels: int = spec(3, "Image channels", "1 (grey) or 3 (RGB); set from the data.", options=(1, 3))
    image_size: int = spec(32, "Image size", "height = width, in pixels; set from the data.", options=(28, 32, 64))
    latent_dim: int = spec(10, "Latent dimensions", "the size of z.", lo=1, hi=256)
    width: int = spec(32, "Conv width (first block)", "conv: channels of the first block, doubled per block.",
                      lo=4, hi=256, step=4)
    depth: int = spec(3, "Conv blocks", "conv: stride-2 blocks.", lo=1, hi=5)
    hidden_dim: int = spec(400, "MLP hidden units", "mlp: the hidden layer (784-400-20 is PyTorch's example).",
                           lo=8, hi=4096, step=50)
    mlp_layers: int = spec(1, "MLP hidden layers", "mlp: hidden layers in the encoder, and as many in the decoder.",
                           lo=1, hi=4)
    output_activation: OutputActivation = spec("sigmoid", "Decoder output activation",
                                               "what maps the decoder's last layer to the output's range.")
    hidden_activation: HiddenActivation = spec("leaky_relu", "Hidden activation", "leaky_relu has slope 0.2.")
    output_norm: OutputNorm = spec("none", "Before the output activation",
                                   "batchnorm: a BatchNorm2d right before the output activation.")
    features: int | None = spec(None, "Features", "vectors: D, the features in a row; set from the data.", lo=1,
                                hi=MAX_FEATURES, none_means="images")

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True)
class LossConfig:
    likelihood: LikelihoodName = spec("bernoulli", "Likelihood p(x|z)", "how the decoder's output scores the data.")
    sigma: float = spec(0.1, "Gaussian σ or Laplace scale b", "gaussian: the fixed std (initial if learned); laplace: "
                        "the scale b; in normalized units (0.707 with a sum = mse_loss).", lo=1e-3, hi=1e3, step=0.01)
    beta: float = spec(1.0, "β (coefficient on the KL term)", "on the KL term of the training loss (1 with sums = "
                       "the ELBO).", lo=0.0, hi=1e4, step=0.5)
    recon_coef: float = spec(1.0, "Coefficient on the reconstruction", "on the reconstruction term of the "
                             "training loss.", lo=1e-6, hi=1e6, step=0.1)
    recon_reduction: Reduction = spec("sum", "Reconstruction over pixels", "sum: the ELBO; mean: the default of "
                                      "mse_loss and binary_cross_entropy (which also average over the batch).")
    kl_reduction: Reduction = spec("sum", "KL over latent dimensions", "sum: the ELBO; mean: divides by the "
                                   "number of latent dimensions.")
    recon_batch_reduction: Reduction = spec("mean", "Reconstruction over the batch", "mean: a loss per image, the "
                                            "ELBO's scale; sum: what mse_loss(reduction=\"sum\") does, so every "
                                            "other term weighs batch-size times less.")
    kl_batch_reduction: Reduction = spec("mean", "KL over the batch", "mean: a KL per image, the ELBO's scale; sum: "
                                         "the KL weighs batch-size times more.")
    kl_schedule: KLSchedule = spec("constant", "KL schedule", "how β ramps: linear warm-up from 0 to β, or "
                                   "cyclical: repeated ramps (Fu et al. 2019).")
    kl_warmup_steps: int = spec(1000, "Warm-up / cycle length (steps)", "linear: steps from 0 to β; cyclical: the "
                                "length of one cycle.", lo=1, hi=10_000_000, step=100)
    kl_ramp_fraction: float = spec(0.5, "Cyclical: share of a cycle ramping", "cyclical: the share of each cycle "
                                   "spent ramping up.", lo=0.01, hi=1.0, step=0.05)
    free_bits: float = spec(0.0, "Free bits (nats per dimension)", "Kingma et al. 2016: no KL pressure on a "
                            "dimension below this many nats; 0 = off.", lo=0.0, hi=100.0, step=0.1)
    z_samples: int = spec(1, "z samples per input", "samples of z per input in the training loss.", lo=1, hi=64)

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = spec(5, "Epochs", "passes over the training images.", lo=1, hi=10_000)
    time_budget_s: float | None = spec(None, "Time budget, s", "stop after this many seconds, whatever the epoch.",
                                       lo=0.1, hi=7 * 24 * 3600, step=10.0, none_means="no limit")
    batch_size: int = spec(64, "Batch size", "images per optimizer step.", lo=1, hi=8192, step=16)
    lr: float = spec(1e-3, "Learning rate", "Adam's step size.", lo=1e-7, hi=1.0, step=1e-4)
    lr_schedule: LRSchedule = spec("constant", "Learning-rate schedule", "cosine: from the learning rate down to 0 "
                                   "over the run's epochs, or over its time budget where that ends first.")
    seed: int = spec(0, "Seed", "initial weights, batch order and z samples.", lo=0, hi=MAX_SEED)
    num_threads: int | None = spec(None, "Training threads", "torch intra-op threads for training.",
                                   lo=1, hi=256, none_means="torch's default")
    device: Device = spec("auto", "Device", "auto: a CUDA GPU, else Apple's MPS, else the CPU; where the run "
                          "trains, not what it learns.")
    precision: Precision = spec("float32", "Precision", "bf16: the network's products in bfloat16 (autocast; "
                                "GPUs gain, most CPUs lose speed); weights and reported terms stay float32.")

    def __post_init__(self) -> None:
        _validate(self)


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if problem := _kind_problem(self):
            raise ValueError(problem)

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
            parts[f.name] = _section_from_dict(SECTIONS[f.name], section, f.name)
        extra = set(d) - set(parts)
        if extra:
            raise ValueError(f"config has unknown sections {sorted(extra)}; expected data, model, loss, train.")
        return cls(**parts)


def _kind_problem(config: RunConfig) -> str | None:
    """Why the model or the likelihood does not fit the kind of data (None: they fit); see _normalization_problem."""
    model, likelihood = config.model, config.loss.likelihood
    if config.data.kind == "images":
        return None if model.features is None else "model.features is for vectors; images have channels and sizes."
    if model.features is None:
        return "dataset='vectors' needs model.features, the number of features (make_run_config sets it from the data)."
    if model.arch == "conv":
        return ("arch='conv' convolves over an image's neighbouring pixels; a row of numbers has no neighbours. For "
                "vectors pick arch='mlp' (its width: hidden_dim; its depth: mlp_layers).")
    if likelihood in get_args(UnitLikelihood):
        return (f"likelihood={likelihood!r} is a distribution on [0, 1], a pixel's brightness; vectors are unbounded "
                "rows of numbers, where it is no log-likelihood. Pick a Gaussian (gaussian, gaussian_learned, "
                "gaussian_optimal, gaussian_feature) or laplace.")
    return None


# What a run makes of its images, not which they are: normalization, scale, train size (test is drawn apart).
NOT_THE_TEST_IMAGES = ("normalization", "data_scale", "n_train")


def images_only(data: DataConfig) -> DataConfig:
    """data with the fields that do not change its test images at their defaults: one cache key per set of them."""
    defaults = {name: DataConfig.__dataclass_fields__[name].default for name in NOT_THE_TEST_IMAGES}
    return dataclasses.replace(data, **defaults | ({"normalization": "none"} if data.kind == "vectors" else {}))


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "loss": LossConfig, "train": TrainConfig}
# Fields older run folders carry that nothing reads any more: dropped when such a run is read.
RETIRED_FIELDS: dict[str, frozenset[str]] = {"train": frozenset({"eval_every"})}


def _section_from_dict(cls: type, section: Any, name: str) -> Any:
    if not isinstance(section, dict):
        raise ValueError(f"config section {name!r} must be a JSON object.")
    known = {f.name for f in dataclasses.fields(cls)}
    section = {k: v for k, v in section.items() if k not in RETIRED_FIELDS.get(name, ())}
    unknown = set(section) - known
    if unknown:
        raise ValueError(f"config section {name!r} has unknown fields {sorted(unknown)}.")
    try:
        return cls(**section)
    except TypeError as e:  # e.g. a list where a number belongs
        raise ValueError(f"config section {name!r}: {e}") from None


FieldPath = str  # "section.name", e.g. "model.output_activation": a field of a RunConfig


def field_info(path: FieldPath) -> FieldInfo:
    """The FieldInfo of a RunConfig field named by its path."""
    section, name = path.split(".")
    return fields_info(SECTIONS[section])[name]


def field_value(config: RunConfig, path: FieldPath) -> Any:
    section, name = path.split(".")
    return getattr(getattr(config, section), name)


def with_value(config: RunConfig, path: FieldPath, value: Any) -> RunConfig:
    """The config with one field changed (validated, as any config; derived fields left as they are)."""
    section, name = path.split(".")
    return dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **{name: value})})


def field_options(cls: type, name: str) -> tuple[Any, ...]:
    """The allowed values of a choice field (a Literal, or a number with options), for select boxes and CLI choices."""
    return fields_info(cls)[name].options

# Where a dataset's defaults differ from the fields' own (the CLI applies them to the flags not given; a run records
# every value). MNIST's: PyTorch's example's Bernoulli VAE, to a test -ELBO ≤ 100 nats in a minute (bench_mnist.py).
DATASET_DEFAULTS: dict[str, dict[FieldPath, Any]] = {
    "mnist": {"model.arch": "mlp", "model.hidden_dim": 512, "model.mlp_layers": 2, "model.latent_dim": 16,
              "train.epochs": 100, "train.batch_size": 128, "train.lr": 4e-3, "train.lr_schedule": "cosine"},
    # A dense VAE, a small code (the asker's: 5), linear output, learned σ: conv, Bernoulli and unit are refused.
    "vectors": {"data.normalization": "zscore", "model.arch": "mlp", "model.hidden_dim": 64, "model.mlp_layers": 2,
                "model.latent_dim": 5, "model.output_activation": "linear", "loss.likelihood": "gaussian_learned",
                "loss.sigma": 1.0, "train.epochs": 20, "train.batch_size": 128},
}


def default_for(path: FieldPath, dataset: str) -> Any:
    """A field's default for a dataset: DATASET_DEFAULTS, else the field's own."""
    return DATASET_DEFAULTS.get(dataset, {}).get(path, field_info(path).default)
