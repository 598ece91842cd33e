"""Running a lab from start to conclusion without a page: train its family, measure it, conclude."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vae_core.jobs.plan import SweepPlan
from vae_core.jobs.progress import JobUpdate
from vae_core.jobs.training_job import run_in_foreground
from vae_core.labs.base import KEY_MARK, Finding, Lab, LabSettings, Measured, Variant
from vae_core.labs.measure import Family, load_family, measure


@dataclass(frozen=True)
class LabOutcome:
    lab: Lab
    settings: LabSettings
    variants: tuple[Variant, ...]
    run_dirs: tuple[Path | None, ...]  # per variant and seed, seed by seed (Lab.family); None: refused or not saved
    measured: dict[str, Measured]  # by variant key
    findings: tuple[Finding, ...]


def conclude_family(lab: Lab, settings: LabSettings, run_dirs: tuple[Path | None, ...],
                    family: Family | None = None) -> LabOutcome:
    """Measure a trained family (the variants in the design's order) and draw the lab's conclusion; family:
    its runs already loaded (load_family), for a caller that pictures them too."""
    variants = lab.variants(settings)
    family = load_family(variants, run_dirs, settings.seed_list) if family is None else family
    measured = measure(lab, variants, family)
    findings = tuple(_labelled(f, variants) for f in lab.conclude(measured))
    return LabOutcome(lab, settings, variants, run_dirs, measured, findings)


def _labelled(finding: Finding, variants: tuple[Variant, ...]) -> Finding:
    """The finding with each variant key it names (KEY_MARK) replaced by what a person reads: its label."""
    text = finding.text
    for v in variants:
        text = text.replace(KEY_MARK.format(key=v.key), f"“{v.label}”")
    return dataclasses.replace(finding, text=text)


def run_lab(lab: Lab, settings: LabSettings, runs_dir: Path, owner: str | None = None,
            on_update: Callable[[JobUpdate], None] | None = None) -> LabOutcome:
    """Train the lab's family in lockstep while the caller waits, then measure and conclude."""
    family = lab.family(settings)
    snap = run_in_foreground(family.configs[0], runs_dir, owner=owner, sweep=family, on_update=on_update)
    plan: SweepPlan = snap.sweep
    saved = tuple(Path(v.run_dir) if v.run_dir else None for v in snap.variants)
    return conclude_family(lab, settings, saved if len(saved) == len(plan.labels) else (None,) * len(plan.labels))
