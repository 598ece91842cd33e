"""A lab: a question in its asker's words, the family of runs that answers it, what is measured on them, and
a conclusion computed from those measurements only.

A lab's design (LabSettings -> variants) is trained as one family in lockstep (sweep.FamilySpec), so the
variants share their images, batches, initial weights and noise: what differs between them is what the
design varies. Each variant's numbers are its run's own test evaluation (EvalMetrics, in metrics.json)
plus the lab's own measurements on test images (`extras`). `conclude` reads nothing else, so the same
lab on another seed or dataset writes other sentences, and where the numbers contradict the textbook
answer, a finding says so.
"""
from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from ..config import DataConfig, DatasetName, LossConfig, ModelConfig, RunConfig, TrainConfig
from ..evaluate import EvalMetrics
from ..runs import LoadedRun, RunLoadError, load_run, read_samples
from ..sweep import FamilySpec
from ..data import load_dataset
from ..train import make_run_config

# The family's training time, all variants together: with loading, evaluating and measuring, a lab answers
# in about a minute on a 2-core machine (bench/bench_labs.py).
LAB_BUDGET_S = 45.0
# Test images each variant is evaluated on and the lab measures: the same images for both (the whole split
# would cost minutes on MNIST); each estimate comes with its standard error.
LAB_TEST_IMAGES = 500
LAB_EPOCHS = 1000  # the time budget ends a lab's training; epochs only bound it


@dataclass(frozen=True)
class LabSettings:
    """What a person chooses before pressing the lab's button; with the lab's id, enough to rerun it."""
    dataset: DatasetName = "sprites"
    data_dir: str | None = None
    seed: int = 0  # the data subset, the initial weights, the batch order and the z noise
    budget_s: float = LAB_BUDGET_S
    images: DataConfig | None = None  # dataset "images": a person's images, how they become tensors, n_test

    def __post_init__(self) -> None:
        if (self.dataset == "images") != (self.images is not None):
            raise ValueError("A lab on your images needs them: pass --images PATH (a folder or a .zip).")

    def data(self, **changes: Any) -> DataConfig:
        """The lab's data: the dataset (or the person's images) at the lab's seed, with changes."""
        if self.images is not None:
            return dataclasses.replace(self.images, seed=self.seed, **changes)
        return DataConfig(dataset=self.dataset, data_dir=self.data_dir, seed=self.seed, n_test=LAB_TEST_IMAGES,
                          **changes)

    def command(self, lab_id: str) -> str:
        """The CLI line that reruns this lab."""
        data_dir = f" --data-dir {self.data_dir}" if self.data_dir else ""
        if self.images is not None:
            i = self.images
            data_dir = (f" --images {i.images} --image-size {i.image_size} --square {i.square} --color {i.color} "
                        f"--orientation {i.orientation} --test-share {i.test_share:g}")
        return (f"python -m vae_core lab {lab_id} --dataset {self.dataset}{data_dir} --seed {self.seed} "
                f"--budget {self.budget_s:g}")


@dataclass(frozen=True)
class Variant:
    key: str  # what the conclusion calls it: "tanh_z"
    label: str  # what a person reads: "tanh · z-score"
    config: RunConfig


@dataclass(frozen=True)
class Measured:
    """One variant's numbers: its run's test evaluation and the lab's own measurements (extras, by name)."""
    label: str
    metrics: EvalMetrics
    extras: Mapping[str, float] = field(default_factory=dict)
    config: RunConfig | None = None

    def value(self, key: str) -> float | None:
        """An extra by name, else an EvalMetrics field."""
        return self.extras[key] if key in self.extras else getattr(self.metrics, key)


Verdict = Literal["agrees", "disagrees", "measured", "missing"]  # against the textbook answer


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


@dataclass(frozen=True)
class LabRun:
    """A trained variant as the lab's own measurements see it."""
    key: str
    run: LoadedRun
    images: torch.Tensor  # (N, C, H, W) uint8 test images, N <= LAB_TEST_IMAGES

    @property
    def x(self) -> torch.Tensor:
        """The images normalized as this run normalizes them: (N, C, H, W)."""
        return self.run.normalizer.from_grey_levels(self.images)


Extras = Callable[[LabRun], dict[str, float]]
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
    extras: Extras | None = None
    pictures: Pictures | None = None  # images of a variant the lab shows beside its reconstructions
    # Existing run folders for the design's variants (e.g. a bundled run), so a page measures with no training
    instant: Callable[[LabSettings], tuple[Path, ...] | None] | None = None

    def family(self, settings: LabSettings) -> FamilySpec:
        variants = self.design(settings)
        return FamilySpec(f"lab:{self.id}", tuple(v.label for v in variants), tuple(v.config for v in variants),
                          tuple(v.key for v in variants))


# ----------------------------------------------------------------------------- building a design

def lab_images(data: DataConfig, test_images: int) -> DataConfig:
    """A lab's view of a person's images (their colour settled): at most LAB_TEST_IMAGES test images, fewer
    where the upload's test split is smaller."""
    return dataclasses.replace(data, n_test=min(LAB_TEST_IMAGES, test_images))


def base_config(settings: LabSettings, model: ModelConfig | None = None, loss: LossConfig | None = None,
                **data: Any) -> RunConfig:
    """A lab variant's config: the settings' data, seed and budget; model and loss as given."""
    data_cfg = settings.data(**data)
    train = TrainConfig(epochs=LAB_EPOCHS, time_budget_s=settings.budget_s, seed=settings.seed, num_threads=1)
    return make_run_config(data_cfg, model or ModelConfig(), loss or LossConfig(), train)


def vary(config: RunConfig, **sections: dict[str, Any]) -> RunConfig:
    """The config with fields of its sections replaced: vary(c, model={"output_activation": "tanh"})."""
    parts = {name: dataclasses.replace(getattr(config, name), **changes) for name, changes in sections.items()}
    return dataclasses.replace(config, **parts)


# ----------------------------------------------------------------------------- measuring a trained family

def test_images(run: LoadedRun, n: int = LAB_TEST_IMAGES) -> torch.Tensor:
    """The first n test images of the run's data (its carried samples where the dataset is gone, and always for a
    person's images: a process-wide cache must not hold anyone's upload)."""
    if run.config.data.dataset == "images":
        return _carried(run)[:n]
    try:
        # the images do not depend on how they are normalized: one cache entry for a family's variants
        return _test_split(dataclasses.replace(run.config.data, normalization="unit", data_scale=1.0))[:n]
    except (ValueError, OSError):
        if read_samples(run.path) is None:
            raise
        return _carried(run)[:n]


def _carried(run: LoadedRun) -> torch.Tensor:
    samples = read_samples(run.path)
    if samples is None:
        raise RunLoadError(f"{run.path} carries no test images, and its dataset is not on this machine.")
    return samples.images


@functools.lru_cache(maxsize=4)
def _test_split(data: DataConfig) -> torch.Tensor:
    """Cached: a family's variants share their data, and a lab reads it for each (uint8, treated as read-only).
    The test split alone: prepare_data would load (or generate) the training split too."""
    return load_dataset(data, "test").images


Family = dict[str, LabRun]  # a trained family's loaded runs with their test images, by variant key


def load_family(variants: Sequence[Variant], run_dirs: Sequence[Path | None]) -> Family:
    """Each saved variant's run, loaded once for measuring and picturing; one that cannot be loaded is left out."""
    family = {}
    for variant, run_dir in zip(variants, run_dirs):
        run = _load(run_dir)
        if run is not None:
            family[variant.key] = LabRun(variant.key, run, test_images(run))
    return family


def measure(lab: Lab, variants: Sequence[Variant], family: Family) -> dict[str, Measured]:
    """Each loaded variant's numbers, by key; a variant with no test evaluation is left out."""
    measured = {}
    for variant in variants:
        lab_run = family.get(variant.key)
        metrics = _metrics(lab_run.run.metrics.get("test")) if lab_run else None
        if metrics is None:
            continue
        extras = lab.extras(lab_run) if lab.extras else {}
        measured[variant.key] = Measured(variant.label, metrics, extras, lab_run.run.config)
    return measured


def _load(run_dir: Path | None) -> LoadedRun | None:
    if run_dir is None:
        return None
    try:
        return load_run(run_dir)
    except RunLoadError:
        return None


def _metrics(test: Any) -> EvalMetrics | None:
    """A run's stored test evaluation; fields it lacks take their defaults, fields this version lacks are dropped."""
    if not isinstance(test, dict) or not test:
        return None
    known = {f.name for f in dataclasses.fields(EvalMetrics)}
    try:
        return EvalMetrics(**{k: v for k, v in test.items() if k in known})
    except TypeError:  # a required field is missing: not an evaluation this version can read
        return None


def missing(measured: Mapping[str, Measured], *keys: str) -> Finding | None:
    """A finding saying which variants are absent (refused, diverged or never saved), or None if all are here."""
    gone = [k for k in keys if k not in measured]
    if not gone:
        return None
    named = ", ".join(KEY_MARK.format(key=k) for k in gone)  # run.conclude_family puts the labels in
    return Finding(f"No measurement for {named}: the variant was refused, diverged or was stopped before it was "
                   "evaluated, so the comparisons that need it are left out.", "missing")


KEY_MARK = "`{key}`"  # a variant's key in a finding's text, where the lab's runner writes its label
