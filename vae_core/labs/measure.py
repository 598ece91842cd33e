"""Measuring a trained family: each variant's runs loaded on every seed, their test evaluations and the lab's own
measurements (Lab.own) averaged over the seeds, and their values image by image on each seed (what pairs two
variants in evidence.py)."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vae_core.labs.base import LAB_TEST_IMAGES, ImageValues, Lab, LabRun, Measured, OwnMeasures, Variant
from vae_core.labs.rows import row_values, test_rows
from vae_core.model.evaluate import EvalMetrics, evaluate
from vae_core.model.evaluate_vectors import VectorEvalMetrics
from vae_core.model.objective import kl_per_dimension
from vae_core.runs.folders import LoadedRun, RunLoadError, load_run
from vae_core.runs.test_images import test_images

Family = dict[str, tuple[LabRun | None, ...]]  # a trained family's loaded runs by variant key, one per seed (None: missing)


def load_family(variants: Sequence[Variant], run_dirs: Sequence[Path | None], seeds: Sequence[int] = (0,)) -> Family:
    """Each saved variant's run on each seed (run_dirs seed by seed, as Lab.family orders them), loaded once for
    measuring and picturing; one that cannot be loaded is None, a variant with none is left out."""
    family = {}
    for i, variant in enumerate(variants):
        dirs = [run_dirs[k * len(variants) + i] if k * len(variants) + i < len(run_dirs) else None
                for k in range(len(seeds))]
        runs = tuple(LabRun(variant.key, run, _test_data(run), seed) if (run := _load(d)) else None
                     for d, seed in zip(dirs, seeds))
        if any(runs):
            family[variant.key] = runs
    return family


def _test_data(run: LoadedRun) -> torch.Tensor:
    """What a lab measures a run on: its test images (uint8), or for vectors its raw test rows."""
    if run.config.data.kind == "vectors":
        return test_rows(run, LAB_TEST_IMAGES)
    return test_images(run, LAB_TEST_IMAGES)


def first_run(family: Family, key: str) -> LabRun | None:
    """A variant's run on the first seed it was saved on: the one a page pictures."""
    return next((r for r in family.get(key, ()) if r is not None), None)


@dataclass(frozen=True)
class SeedMeasures:
    """One variant on one seed: its run's test evaluation, the lab's extras and its values image by image."""
    metrics: EvalMetrics | VectorEvalMetrics
    extras: dict[str, float]
    values: ImageValues


def measure(lab: Lab, variants: Sequence[Variant], family: Family) -> dict[str, Measured]:
    """Each loaded variant's numbers, by key, averaged over its seeds; one with no test evaluation is left out."""
    measured = {}
    for variant in variants:
        seeds = [_measure_seed(lab, r) for r in family.get(variant.key, ())]
        done = [s for s in seeds if s is not None]
        if done:
            measured[variant.key] = Measured(variant.label, mean_metrics([s.metrics for s in done]),
                                             mean_extras([s.extras for s in done]),
                                             first_run(family, variant.key).run.config,
                                             tuple(s.values if s else None for s in seeds),
                                             tuple(s.extras if s else None for s in seeds))
    return measured


def _measure_seed(lab: Lab, lab_run: LabRun | None) -> SeedMeasures | None:
    metrics = _metrics(lab_run.run.metrics.get("test"), _metrics_kind(lab_run.run)) if lab_run else None
    if metrics is None:
        return None
    own = lab.own(lab_run) if lab.own else OwnMeasures()
    return SeedMeasures(metrics, own.means, image_values(lab_run, own.per_image))


def _metrics_kind(run: LoadedRun) -> type[EvalMetrics] | type[VectorEvalMetrics]:
    return VectorEvalMetrics if run.config.data.kind == "vectors" else EvalMetrics


UNSAVED = ("per_image", "per_row")  # an evaluation's values image by image (row by row): never saved nor averaged


def mean_metrics(seeds: Sequence[EvalMetrics | VectorEvalMetrics]) -> EvalMetrics | VectorEvalMetrics:
    """Evaluations on several seeds, field by field: the mean; a standard error, that of the mean of independent
    estimates; a flag, a note, a name or a count that differs, the first seed's."""
    if len(seeds) == 1:
        return seeds[0]
    kind = type(seeds[0])
    return kind(**{f.name: _mean_field(f.name, [getattr(m, f.name) for m in seeds])
                   for f in dataclasses.fields(kind) if f.name not in UNSAVED})


def _mean_field(name: str, values: list[Any]) -> Any:
    if any(v is None for v in values):
        return None
    if all(v == values[0] for v in values):
        return values[0]
    if isinstance(values[0], list):
        numbers = all(isinstance(v, (int, float)) for row in values for v in row)  # not feature names
        return [sum(column) / len(values) for column in zip(*values)] if numbers else values[0]
    if isinstance(values[0], (bool, str)) or name in ("n_test", "iwae_k"):
        return values[0]
    if name.endswith("_se"):
        return math.sqrt(sum(v * v for v in values)) / len(values)
    return sum(values) / len(values)


def mean_extras(seeds: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The extras every seed measured, averaged over the seeds."""
    keys = set.intersection(*(set(e) for e in seeds)) if seeds else set()
    return {k: sum(e[k] for e in seeds) / len(seeds) for k in seeds[0] if k in keys} if seeds else {}


@torch.no_grad()
def image_values(lab_run: LabRun, own: Mapping[str, torch.Tensor] | None = None) -> ImageValues:
    """The variant evaluated again on the lab's test images, image by image (as training's evaluation: seed 0,
    so the means are the saved ones; metrics.json keeps no per-image values), with the lab's own."""
    run = lab_run.run
    if run.config.data.kind == "vectors":  # a row's ELBO per raw row; no bits (no bins), no PSNR (no peak)
        rows = row_values(run, lab_run.images)
        return ImageValues(rows.elbo, None, torch.full_like(rows.elbo, math.nan), rows.kl, dict(own or {}))
    found = evaluate(run.model, run.normalizer, lab_run.images).per_image
    mu, logvar = run.model.encode(lab_run.x)
    return ImageValues(found.elbo, found.bits, found.psnr, kl_per_dimension(mu, logvar).sum(1),
                       dict(own or {}))


def _load(run_dir: Path | None) -> LoadedRun | None:
    if run_dir is None:
        return None
    try:
        return load_run(run_dir)
    except RunLoadError:
        return None


def _metrics(test: Any, kind: type[EvalMetrics] | type[VectorEvalMetrics] = EvalMetrics
             ) -> EvalMetrics | VectorEvalMetrics | None:
    """A run's stored test evaluation; fields it lacks take their defaults, fields this version lacks are dropped."""
    if not isinstance(test, dict) or not test:
        return None
    known = {f.name for f in dataclasses.fields(kind)}
    try:
        return kind(**{k: v for k, v in test.items() if k in known})
    except TypeError:  # a required field is missing: not an evaluation this version can read
        return None
