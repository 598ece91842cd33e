"""Families of runs: runs whose configurations differ in exactly one field.

A family is found from the run configs themselves (the bundled zoo, a person's runs, sweeps), never
from folder names. Fields a run does not use (σ under a Bernoulli likelihood, the MLP's width in a
conv model) and fields that do not change what is learned (the data folder, thread count) are set
aside before comparing, so "sigmoid vs tanh" is one difference however the runs were launched.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Iterable

from vae_core.config import NORMALIZATIONS, FieldPath, RunConfig, field_info, field_value
from vae_core.model.likelihoods import likelihood_spec
from vae_core.runs.listing import RunInfo

# Always offered by the toggle, in this order: the three choices every question is about.
TOGGLE_FIELDS: tuple[FieldPath, ...] = ("model.output_activation", "data.normalization", "loss.likelihood")
ALL_VALUES: frozenset[FieldPath] = frozenset(TOGGLE_FIELDS[:2])  # few options: show them all, runs or not
# Where a run was trained or on which machine: not a difference in what it learned.
INCIDENTAL: frozenset[FieldPath] = frozenset(
    {"data.data_dir", "data.download", "train.num_threads", "train.device"})


def field_label(path: FieldPath) -> str:
    """The field's label from its spec ("Decoder output activation")."""
    return field_info(path).spec.label


def _unused(config: RunConfig) -> set[FieldPath]:
    """Fields whose value this configuration never reads."""
    unused = {"model.hidden_dim", "model.mlp_layers"} if config.model.arch == "conv" else {"model.width", "model.depth"}
    if not likelihood_spec(config.loss.likelihood).reads_sigma:
        unused.add("loss.sigma")
    if config.loss.kl_schedule == "constant":
        unused.add("loss.kl_warmup_steps")
    if config.loss.kl_schedule != "cyclical":
        unused.add("loss.kl_ramp_fraction")
    if config.data.dataset != "sprites":
        unused.add("data.image_size")
    return unused


@functools.lru_cache(maxsize=4096)
def comparable(config: RunConfig) -> dict[FieldPath, Any]:
    """The fields that shape what a run learns, by path; unused and incidental ones left out. Treat as
    read-only: cached, because every page of every session compares the loaded run with every listed one."""
    skip = INCIDENTAL | _unused(config)
    return {f"{s}.{n}": v for s, section in dataclasses.asdict(config).items()
            for n, v in section.items() if f"{s}.{n}" not in skip}


def differences(a: RunConfig, b: RunConfig) -> set[FieldPath]:
    """The fields in which two runs differ; a field only one of them uses goes with the choice that uses it
    (a Gaussian's σ belongs to "Gaussian rather than Bernoulli", an MLP's width to "MLP rather than conv")."""
    ca, cb = comparable(a), comparable(b)
    return {k for k in ca.keys() & cb.keys() if ca[k] != cb[k]}


@dataclass(frozen=True)
class Sibling:
    value: Any  # the field's value in this member
    run: RunInfo | None  # the run that has it; None: no such run yet (the toggle shows it disabled)


@dataclass(frozen=True)
class FamilyAxis:
    """One field along which the loaded run has (or could have) siblings."""
    field: FieldPath
    current: Any  # the loaded run's value
    members: tuple[Sibling, ...]  # one per value, in the field's own order; the current one included

    def run_for(self, value: Any) -> RunInfo | None:
        return next((m.run for m in self.members if m.value == value), None)

    @property
    def missing(self) -> tuple[Any, ...]:
        return tuple(m.value for m in self.members if m.run is None)


def siblings(run: RunInfo, candidates: Iterable[RunInfo]) -> dict[FieldPath, dict[Any, RunInfo]]:
    """For each field, the runs that differ from `run` in that field alone, by value.

    `candidates` come in order of preference: where two runs share a value, the first one wins.
    """
    found: dict[FieldPath, dict[Any, RunInfo]] = {}
    for other in candidates:
        if other.config is None or other.path == run.path or run.config is None:
            continue
        diff = differences(run.config, other.config)
        if len(diff) == 1:
            path = diff.pop()
            found.setdefault(path, {}).setdefault(field_value(other.config, path), other)
    return found


def _options(config: RunConfig, path: FieldPath) -> tuple[Any, ...]:
    """The field's options for a run on this kind of data: images and vectors have normalizations of their own."""
    if path == "data.normalization":
        return NORMALIZATIONS[config.data.kind]
    return field_info(path).options


def _values(path: FieldPath, current: Any, present: Iterable[Any], options: tuple[Any, ...]) -> tuple[Any, ...]:
    """The toggle's values: the field's options where they are few, else the ones runs have."""
    if path in ALL_VALUES:
        return tuple(options)
    have = {current, *present}
    return tuple([o for o in options if o in have] if options else sorted(have, key=_sort_key))


def _sort_key(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, (int, float)) else (1, str(value))


def family_axes(run: RunInfo, candidates: Iterable[RunInfo]) -> list[FamilyAxis]:
    """The toggle's axes for a loaded run: the three choices always, then every other field that has siblings."""
    if run.config is None:
        return []
    found = siblings(run, candidates)
    paths = list(TOGGLE_FIELDS) + sorted(p for p in found if p not in TOGGLE_FIELDS)
    return [_axis(run, path, found.get(path, {})) for path in paths]


def _axis(run: RunInfo, path: FieldPath, by_value: dict[Any, RunInfo]) -> FamilyAxis:
    current = field_value(run.config, path)
    values = _values(path, current, by_value, _options(run.config, path))
    members = tuple(Sibling(v, run if v == current else by_value.get(v)) for v in values)
    return FamilyAxis(path, current, members)


def family_of(run: RunInfo, candidates: Iterable[RunInfo], path: FieldPath | None = None) -> list[RunInfo]:
    """The run and its siblings along one field (the one with most siblings if None), in the field's order."""
    axes = [a for a in family_axes(run, candidates) if len(a.members) - len(a.missing) > 1]
    if path is not None:
        axes = [a for a in axes if a.field == path]
    if not axes:
        return [run]
    best = max(axes, key=lambda a: len(a.members) - len(a.missing))
    return [m.run for m in best.members if m.run is not None]
