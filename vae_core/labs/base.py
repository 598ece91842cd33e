"""A lab: a question in its asker's words, the family of runs that answers it, what is measured on them, and
a conclusion computed from those measurements only.

A lab's design (LabSettings -> variants) is trained as one family (sweep.FamilySpec) on several seeds
(LAB_SEEDS): on each seed the variants train in lockstep, sharing their images, batches, initial weights and
noise, so what differs between them is what the design varies. Each variant's numbers are its runs' own test
evaluations (EvalMetrics, in metrics.json) plus the lab's own measurements on test images (`Lab.own`), averaged
over the seeds, and its values image by image on each seed, which pair two variants (`evidence`). `conclude`
reads nothing else: a verdict holds only where every seed agrees in sign and the pooled paired difference
exceeds its noise; otherwise it says the question is not settled at this budget.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from vae_core.config import DataConfig, DataKind, DatasetName, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.data.sprites import SPRITES_TRAIN
from vae_core.model.evaluate import EvalMetrics
from vae_core.model.evaluate_vectors import VectorEvalMetrics
from vae_core.runs.folders import LoadedRun
from vae_core.training.sweeps import FAMILY_MAX_SEEDS, FamilySpec
from vae_core.training.trainer import make_run_config

# Test images each variant is evaluated on and the lab measures: the same images for both (the whole split
# would cost minutes on MNIST); each estimate comes with its standard error.
LAB_TEST_IMAGES = 500
LAB_BATCH = TrainConfig().batch_size  # every lab trains its variants on batches of this many images
LAB_SEEDS = 3  # a lab trains its family on this many seeds: a verdict holds only where every one agrees
LAB_PREFIX = "lab:"  # a lab's family is named "lab:<id>": its job, its manifest and its runs' sweep say so


def family_name(lab_id: str) -> str:
    """The name of a lab's family: "lab:zscore-tanh"."""
    return LAB_PREFIX + lab_id


def lab_id_of(family: str) -> str | None:
    """The lab whose family this is ("lab:zscore-tanh" -> "zscore-tanh"); None for a sweep of a field."""
    return family[len(LAB_PREFIX):] if family.startswith(LAB_PREFIX) else None


@dataclass(frozen=True)
class StepBudget:
    """A lab's default training length in optimizer steps, and the rate it was measured to train at."""
    steps: int
    steps_per_s: float  # the whole family in lockstep, sprites, one thread, a shared 2-core machine

    def seconds(self, steps: int | None = None) -> float:
        """The expected training time of `steps` (default: this budget's) at the measured rate."""
        return (self.steps if steps is None else steps) / self.steps_per_s


# Steps, not seconds: a wall-clock budget trains a different number of steps under another load, so a seed did
# not reproduce a lab. Chosen to take about the 45 s the time budget was (measured: bench/bench_labs.py --steps).
# Rates: run_lab's training steps per second on sprites, while other work shared the machine (bench/bench_labs.py).
# not-unit-vectors: on the bundled vectors; 6,000 steps let a learned σ, which Adam moves about lr = 1e-3 in log a
# step, get from 1 to the data's ~0.05 (about 3,000 steps); 3 seeds took 98 s to 358 s under the machine's load.
STEP_BUDGETS: dict[str, StepBudget] = {"zscore-tanh": StepBudget(160, 3.6), "grey-sigmoid": StepBudget(150, 3.5),
                                       "not-unit": StepBudget(390, 8.7), "sampled-z": StepBudget(1300, 28.6),
                                       "not-unit-vectors": StepBudget(6000, 150.0)}
LAB_STEPS = 160  # a lab without a measured budget, and LabSettings' default
# Training images a step budget may draw its subset from: sprites as the app generates them, the torchvision
# sets' training splits; a person's images say their own (LabSettings.train_images).
TRAIN_SPLIT = {"sprites": SPRITES_TRAIN, "mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}


@dataclass(frozen=True)
class LabSettings:
    """What a person chooses before pressing the lab's button; with the lab's id, enough to rerun it."""
    dataset: DatasetName = "sprites"
    data_dir: str | None = None
    seed: int = 0  # the first seed: the data subset, the initial weights, the batch order and the z noise
    steps: int = LAB_STEPS  # optimizer steps of every variant: the same settings reproduce a lab bit for bit
    images: DataConfig | None = None  # dataset "images": a person's images, how they become tensors, n_test
    train_images: int | None = None  # the size of the person's (or the vectors') training split (None: ample)
    seeds: int = LAB_SEEDS  # the family is trained on seed, seed + 1, ..., each in lockstep
    vectors: DataConfig | None = None  # dataset "vectors": the rows (a person's file, or the bundled), n_test

    def __post_init__(self) -> None:
        if (self.dataset == "images") != (self.images is not None):
            raise ValueError("A lab on your images needs them: pass --images PATH (a folder or a .zip).")
        if (self.dataset == "vectors") != (self.vectors is not None and self.train_images is not None):
            raise ValueError("A lab on vectors needs them read first (labs.rows.lab_vectors): their test rows and "
                             "the size of their training split.")
        if self.steps < 1:
            raise ValueError(f"A lab trains for at least one step, not {self.steps}.")
        if not 1 <= self.seeds <= FAMILY_MAX_SEEDS:
            raise ValueError(f"A lab trains on 1 to {FAMILY_MAX_SEEDS} seeds, not {self.seeds}.")

    @property
    def seed_list(self) -> tuple[int, ...]:
        return tuple(range(self.seed, self.seed + self.seeds))

    def at_seed(self, seed: int) -> "LabSettings":
        """These settings on one seed: what one lockstep group of the family is designed from."""
        return dataclasses.replace(self, seed=seed, seeds=1)

    @property
    def kind(self) -> DataKind:
        return "vectors" if self.dataset == "vectors" else "images"

    @property
    def private(self) -> bool:
        """A person's own data (images, or a file of vectors): its measurements stay in their browser's session."""
        return self.images is not None or (self.vectors is not None and self.vectors.vectors is not None)

    def data(self, **changes: Any) -> DataConfig:
        """The lab's data: the dataset (or the person's images or vectors) at the lab's seed, with changes."""
        if (own := self.images or self.vectors) is not None:
            return dataclasses.replace(own, seed=self.seed, **changes)
        return DataConfig(dataset=self.dataset, data_dir=self.data_dir, seed=self.seed, n_test=LAB_TEST_IMAGES,
                          **changes)

    def command(self, lab_id: str) -> str:
        """The CLI line that reruns this lab."""
        data_dir = f" --data-dir {self.data_dir}" if self.data_dir else ""
        if self.images is not None:
            i = self.images
            data_dir = (f" --images {i.images} --image-size {i.image_size} --square {i.square} --color {i.color} "
                        f"--orientation {i.orientation} --test-share {i.test_share:g}")
        if self.vectors is not None and self.vectors.vectors:
            data_dir = f" --vectors {self.vectors.vectors} --test-share {self.vectors.test_share:g}"
        return (f"python -m vae_core lab {lab_id} --dataset {self.dataset}{data_dir} --seed {self.seed} "
                f"--seeds {self.seeds} --steps {self.steps}")


@dataclass(frozen=True)
class Variant:
    key: str  # what the conclusion calls it: "tanh_z"
    label: str  # what a person reads: "tanh · z-score"
    config: RunConfig


@dataclass(frozen=True)
class ImageValues:
    """One seed's values of a variant image by image, (N,) each in test-image order: what pairs two variants."""
    elbo: torch.Tensor  # nats
    bits: torch.Tensor | None  # bits/dim of the 8-bit images; None where the likelihood has none
    psnr: torch.Tensor  # dB
    kl: torch.Tensor  # nats
    extras: Mapping[str, torch.Tensor] = field(default_factory=dict)  # the lab's own (OwnMeasures.per_image); nan: none

    def get(self, measure: str) -> torch.Tensor | None:
        return getattr(self, measure) if measure in BASE_MEASURES else self.extras.get(measure)


BASE_MEASURES = ("elbo", "bits", "psnr", "kl")
PairedMeasure = str  # one of BASE_MEASURES, or a name of the lab's own per-image values (OwnMeasures.per_image)


@dataclass(frozen=True)
class Measured:
    """One variant's numbers: its run's test evaluation and the lab's own measurements (extras, by name)."""
    label: str
    metrics: EvalMetrics | VectorEvalMetrics
    extras: Mapping[str, float] = field(default_factory=dict)
    config: RunConfig | None = None
    # one per seed, in seed order, on the same test images for every variant; None where that seed's run is missing
    per_image: tuple[ImageValues | None, ...] = ()
    per_seed: tuple[Mapping[str, float] | None, ...] = ()  # each seed's extras, in seed order (None: missing)

    def value(self, key: str) -> float | None:
        """An extra by name, else an EvalMetrics field (means over the seeds)."""
        return self.extras[key] if key in self.extras else getattr(self.metrics, key)

    def seed_values(self, key: str) -> list[float]:
        """An extra's value on each seed it was measured on."""
        return [e[key] for e in self.per_seed if e is not None and key in e]


# Against the textbook answer; "not settled": the difference is within its noise or the seeds disagree in sign.
# "measured": a number or a calculation, which cannot disagree with anything.
Verdict = Literal["agrees", "disagrees", "not settled", "measured", "missing"]
NOT_SETTLED: Verdict = "not settled"


@dataclass(frozen=True)
class Finding:
    text: str  # one sentence (Markdown), every number in it measured
    verdict: Verdict = "measured"


@dataclass(frozen=True)
class Column:
    label: str  # "PSNR (dB)"
    key: str  # Measured.value's key
    fmt: str = ".3g"
    better: Literal["higher", "lower", "neither"] = "neither"
    paired: PairedMeasure | None = None  # its values image by image: a best is marked only beyond their noise


@dataclass(frozen=True)
class LabRun:
    """A trained variant as the lab's own measurements see it."""
    key: str
    run: LoadedRun
    images: torch.Tensor  # (N, C, H, W) uint8 test images, N <= LAB_TEST_IMAGES; vectors: (N, D) float32 raw rows
    seed: int = 0

    @property
    def x(self) -> torch.Tensor:
        """The images (rows) normalized as this run normalizes them: (N, C, H, W) or (N, D)."""
        return self.run.normalizer.from_stored(self.images)


@dataclass(frozen=True)
class OwnMeasures:
    """A lab's own measurements of one variant on one seed, taken together so what they share is computed once."""
    means: dict[str, float] = field(default_factory=dict)  # for the table and the sentences, by name
    per_image: dict[str, torch.Tensor] = field(default_factory=dict)  # (N,) each, paired by evidence(); nan: none


Own = Callable[[LabRun], OwnMeasures]
Conclude = Callable[[Mapping[str, Measured]], list[Finding]]
Pictures = Callable[[LabRun], list[tuple[str, torch.Tensor]]]  # (caption, (N, C, H, W) pixels in [0, 1]) rows


@dataclass(frozen=True)
class Lab:
    id: str  # in the URL and the CLI: "zscore-tanh"
    title: str
    question: str  # as the person asks it
    textbook: str  # the usual answer, which the measurements confirm or contradict
    design: Callable[[LabSettings], tuple[Variant, ...]]
    columns: tuple[Column, ...]
    conclude: Conclude
    own: Own | None = None  # the lab's own measurements, beside each run's test evaluation
    pictures: Pictures | None = None  # images of a variant the lab shows beside its reconstructions
    # Existing run folders for the design's variants (e.g. a bundled run), so a page measures with no training
    instant: Callable[[LabSettings], tuple[Path, ...] | None] | None = None
    kind: DataKind = "images"  # the data it runs on: images, or rows of numbers

    def variants(self, settings: LabSettings) -> tuple[Variant, ...]:
        """The design's variants, as the conclusion and the table name them (on the first seed)."""
        return self.design(settings.at_seed(settings.seed))

    def family(self, settings: LabSettings) -> FamilySpec:
        """The design on each seed, seed by seed; with several seeds, each label and key names its seed."""
        several = settings.seeds > 1
        seeded = [(s, v) for s in settings.seed_list for v in self.design(settings.at_seed(s))]
        labels = tuple(f"{v.label} · seed {s}" if several else v.label for s, v in seeded)
        keys = tuple(f"{v.key}-s{s}" if several else v.key for s, v in seeded)
        return FamilySpec(family_name(self.id), labels, tuple(v.config for _, v in seeded), keys)

    @property
    def budget(self) -> StepBudget:
        """The lab's default steps and its measured rate."""
        return STEP_BUDGETS.get(self.id, StepBudget(LAB_STEPS, STEP_BUDGETS["zscore-tanh"].steps_per_s))

    def settings(self, **fields: Any) -> LabSettings:
        """LabSettings at this lab's default step budget, with fields given."""
        return LabSettings(**{"steps": self.budget.steps, **fields})


# ----------------------------------------------------------------------------- building a design

def lab_images(data: DataConfig, test_images: int) -> DataConfig:
    """A lab's view of a person's images (their colour settled): at most LAB_TEST_IMAGES test images, fewer
    where the upload's test split is smaller."""
    return dataclasses.replace(data, n_test=min(LAB_TEST_IMAGES, test_images))


@dataclass(frozen=True)
class StepPlan:
    """How a step budget is trained: epochs over a seeded training subset of n_train images."""
    epochs: int
    n_train: int

    def steps(self, batch_size: int = LAB_BATCH) -> int:
        return self.epochs * math.ceil(self.n_train / batch_size)


def step_plan(steps: int, batch_size: int = LAB_BATCH, available: int | None = None) -> StepPlan:
    """Epochs and a subset size that train `steps` steps (the trainer stops only at a time or an epoch's end);
    within a smaller split, whole epochs, so the total is rounded up to a multiple of the epochs."""
    wanted = steps * batch_size
    epochs = 1 if available is None or wanted <= available else math.ceil(wanted / available)
    return StepPlan(epochs, min(math.ceil(steps / epochs) * batch_size, available or wanted))


def base_config(settings: LabSettings, model: ModelConfig | None = None, loss: LossConfig | None = None,
                batch_size: int = LAB_BATCH, **data: Any) -> RunConfig:
    """A lab variant's config: the settings' data, seed and step budget; model and loss as given."""
    plan = step_plan(settings.steps, batch_size, settings.train_images or TRAIN_SPLIT.get(settings.dataset))
    data_cfg = settings.data(n_train=plan.n_train, **data)
    train = TrainConfig(epochs=plan.epochs, time_budget_s=None, seed=settings.seed, num_threads=1,
                        batch_size=batch_size)
    return make_run_config(data_cfg, model or ModelConfig(), loss or LossConfig(), train)


def vary(config: RunConfig, **sections: dict[str, Any]) -> RunConfig:
    """The config with fields of its sections replaced: vary(c, model={"output_activation": "tanh"})."""
    parts = {name: dataclasses.replace(getattr(config, name), **changes) for name, changes in sections.items()}
    return dataclasses.replace(config, **parts)


def missing(measured: Mapping[str, Measured], *keys: str) -> Finding | None:
    """A finding saying which variants are absent (refused, diverged or never saved), or None if all are here."""
    gone = [k for k in keys if k not in measured]
    if not gone:
        return None
    named = ", ".join(KEY_MARK.format(key=k) for k in gone)  # run.conclude_family puts the labels in
    return Finding(f"No measurement for {named}: the variant was refused, diverged or was stopped before it was "
                   "evaluated, so the comparisons that need it are left out.", "missing")


KEY_MARK = "`{key}`"  # a variant's key in a finding's text, where the lab's runner writes its label
