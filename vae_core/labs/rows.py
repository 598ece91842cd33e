"""A lab on rows of numbers: the vectors as a lab reads them, each variant's test rows, and its values row by row
(the ELBO in nats per RAW row, log-Jacobian included, so variants on other normalizations compare)."""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import torch

from vae_core.config import DataConfig
from vae_core.data.datasets import load_dataset, load_splits
from vae_core.labs.base import LAB_TEST_IMAGES
from vae_core.model.evaluate_vectors import VectorEvalMetrics, evaluate_vectors
from vae_core.model.objective import kl_per_dimension
from vae_core.model.vae import VAE
from vae_core.runs.folders import LoadedRun


@dataclass(frozen=True)
class LabVectors:
    data: DataConfig  # the vectors as a lab uses them: at most LAB_TEST_IMAGES test rows
    train_rows: int  # the training split's size, which a step budget's subset is drawn from
    features: int  # D


def lab_vectors(data: DataConfig) -> LabVectors:
    """Read the vectors once (a file's, else the bundled): their test rows a lab measures and their sizes.
    ValueError or OSError (with the loader's reason) where they cannot be used."""
    train, test = load_splits(dataclasses.replace(data, n_train=None, n_test=None))
    chosen = dataclasses.replace(data, n_train=None, n_test=min(LAB_TEST_IMAGES, len(test)))
    return LabVectors(chosen, len(train), train.features)


def test_rows(run: LoadedRun, n: int) -> torch.Tensor:
    """The run's first n test rows, raw (N, D) float32: a person's file is read again (a process-wide cache must
    not hold anyone's rows), the bundled ones are cached."""
    data = run.config.data
    rows = load_dataset(data, "test").x if data.vectors else _bundled_test(data)
    return rows[:n]


@functools.lru_cache(maxsize=4)
def _bundled_test(data: DataConfig) -> torch.Tensor:
    """Cached: a family's variants share their rows (the bundled ones are generated; treat as read-only)."""
    return load_dataset(data, "test").x


def evaluate_rows(model: VAE, run: LoadedRun, rows: torch.Tensor) -> VectorEvalMetrics:
    """The test evaluation of `model` (the run's, or a copy with another σ) on raw rows, as training's (seed 0)."""
    names = tuple(f"f{j + 1}" for j in range(rows.shape[1]))  # names only label the per-feature lists
    return evaluate_vectors(model, run.normalizer, rows, names)


@dataclass(frozen=True)
class RowValues:
    """One variant on one seed, row by row: ELBO (nats per raw row) and KL (nats), (N,) each."""
    elbo: torch.Tensor
    kl: torch.Tensor


@torch.no_grad()
def row_values(run: LoadedRun, rows: torch.Tensor) -> RowValues:
    """Each test row's ELBO (as the run's own evaluation) and KL of its posterior."""
    found = evaluate_rows(run.model, run, rows).per_row
    mu, logvar = run.model.encode(run.normalizer.forward(rows))
    return RowValues(found.elbo, kl_per_dimension(mu, logvar).sum(1))
