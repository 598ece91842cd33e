"""A family's plan, fixed before it runs: its id, each variant's config and the run folder it will be saved to.

Planned once, where the job is asked for (a form, the CLI, a lab), and handed down to the job and its worker.
"""
from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vae_core.config import RunConfig
from vae_core.runs.folders import run_name
from vae_core.runs.manifest import manifest_path
from vae_core.training.sweeps import Family, FamilySpec, format_value, sweep_configs


def new_sweep_id(spec: Family) -> str:
    """A readable, unique-enough id: time, swept field (or family name), a random suffix."""
    name = _UNSAFE.sub("-", spec.name)
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{uuid.uuid4().hex[:6]}"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SweepPlan:
    """A family fixed before it runs: its id, the variants' configs and the folders they will be saved to."""
    id: str
    field: str  # the swept field ("section.name"), or a FamilySpec's name
    values: tuple[Any, ...]  # the swept values, or a FamilySpec's labels
    labels: tuple[str, ...]
    configs: tuple[RunConfig, ...]
    run_dirs: tuple[Path, ...]  # directly under the runs dir; a refused variant's is never written
    manifest: Path


def plan_sweep(base: RunConfig, spec: Family, runs_dir: Path,
               sweep_id: str | None = None) -> SweepPlan:
    """The family's configs (ValueError naming a bad variant), a fresh id and one new folder per variant."""
    configs = tuple(sweep_configs(base, spec))
    sweep_id = sweep_id or new_sweep_id(spec)
    names = (_variant_folder(c, spec, v) for c, v in zip(configs, spec.values))
    return SweepPlan(sweep_id, spec.field, spec.values, spec.labels, configs,
                     tuple(Path(runs_dir) / n for n in names), manifest_path(runs_dir, sweep_id))


def _variant_folder(config: RunConfig, spec: Family, value: Any) -> str:
    """run_name's folder, with the variant's value (a family's key or label) appended where the name does not
    show it already."""
    if isinstance(spec, FamilySpec) and spec.keys:
        value = spec.keys[spec.labels.index(value)]
    folder, shown = run_name(config), _UNSAFE.sub("_", format_value(value)).strip("_")
    if isinstance(spec, FamilySpec):
        return f"{folder}-{shown}"
    return folder if shown in folder.split("-") else f"{folder}-{spec.name}-{shown}"
