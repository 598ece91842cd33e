"""Sweeps: a family of runs that differ in one config field, trained in lockstep.

The variants of a sweep share their images, their batch order and their length (SHARED_FIELDS), and
each one starts from the weights and draws the z noise that the same config trained alone would, so
a variant trained in a sweep equals it trained alone, bit for bit. What a sweep varies is what the
model, the loss, the normalization or the optimizer's step size make of those same batches.

A family can also be given whole (FamilySpec: a lab's design, whose variants differ in several fields);
it trains the same way. A family may repeat its design on several seeds: each seed's variants are a lockstep
group (they share images, order and initial weights), and the groups take their steps in turn
(training/lockstep.py), so each variant still equals it trained alone. Its plan: jobs/plan.py; its manifest:
runs/manifest.py.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from vae_core.config import (SECTIONS, FieldInfo, FieldPath, RunConfig, check_field, field_info, field_value,
                             fields_info, with_value)
from vae_core.training.trainer import make_run_config

SWEEP_MAX_VARIANTS = 6  # one job trains them all on one core: more would starve each variant of steps
FAMILY_MAX_SEEDS = 5  # lockstep groups of a family, one per seed: its job trains them all, in turn
SEED_FIELDS: tuple[FieldPath, ...] = ("data.seed", "train.seed")  # what sets a family's lockstep groups apart

_IMAGES = "it changes the images"
_ORDER = "it changes the batch order"
# What the variants of a sweep must share, and why each field cannot be swept in lockstep.
SHARED_FIELDS: dict[FieldPath, str] = {
    "data.dataset": _IMAGES, "data.image_size": _IMAGES, "data.n_train": _IMAGES, "data.n_test": _IMAGES,
    "data.seed": _IMAGES, "data.data_dir": _IMAGES, "data.download": _IMAGES, "data.images": _IMAGES,
    "data.square": _IMAGES, "data.color": _IMAGES, "data.orientation": _IMAGES, "data.test_share": _IMAGES,
    "model.channels": "it is set from the data", "model.image_size": "it is set from the data",
    "train.batch_size": _ORDER, "train.seed": _ORDER + " (and the initial weights)",
    "train.epochs": "the variants train for the same number of steps",
    "train.time_budget_s": "the variants train for the same number of steps",
    "train.num_threads": "the variants share one job and its threads",
    "train.device": "the variants share one job and its device",
}


def sweepable_fields() -> tuple[FieldPath, ...]:
    """Every field a sweep can vary, as "section.name", in the config's own order."""
    paths = (f"{s}.{n}" for s, cls in SECTIONS.items() for n in fields_info(cls))
    return tuple(p for p in paths if p not in SHARED_FIELDS and field_info(p).kind != "other")


def _known(path: str) -> bool:
    section, _, name = path.partition(".")
    return section in SECTIONS and name in fields_info(SECTIONS[section])


def resolve_field(name: str) -> FieldPath:
    """ "output_activation" -> "model.output_activation" (a dotted path is checked); raise ValueError if the
    field is unknown, ambiguous or cannot be swept."""
    if "." in name:
        matches = [name] if _known(name) else []
    else:
        matches = [f"{s}.{name}" for s in SECTIONS if _known(f"{s}.{name}")]
    if not matches:
        raise ValueError(f"{name!r} is not a config field; a sweep can vary {', '.join(sweepable_fields())}.")
    if len(matches) > 1:
        raise ValueError(f"{name!r} names several fields ({', '.join(matches)}): write section.name.")
    if matches[0] not in sweepable_fields():
        why = SHARED_FIELDS.get(matches[0], "it is not a choice or a number")
        raise ValueError(f"{matches[0]} cannot be swept in lockstep: {why}. A sweep can vary "
                         f"{', '.join(sweepable_fields())}.")
    return matches[0]


def _typed(info: FieldInfo, value: Any) -> Any:
    """A value as the field holds it: text parsed by the field's kind; an int for a float field made a float."""
    if isinstance(value, str):
        if info.optional and value.strip().lower() == "none":
            return None
        return _parse(info, value.strip())
    if info.kind == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _parse(info: FieldInfo, text: str) -> Any:
    """Text -> the field's type; text that does not parse is returned as is (the validator then refuses it)."""
    if info.kind == "choice":
        return next((o for o in info.options if str(o) == text), text)
    try:
        return int(text) if info.kind == "integer" else float(text)
    except ValueError:
        return text


def format_value(value: Any) -> str:
    """How a swept value reads in labels and on the command line: 0.001, 4, tanh."""
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class SweepSpec:
    """One field and the values its variants take; validated (and text values parsed) on construction."""
    field: FieldPath  # "section.name"; a bare name ("beta") is resolved to its section
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        path = resolve_field(self.field)
        info = field_info(path)
        values = tuple(_typed(info, v) for v in self.values)
        _check_values(path, values)
        object.__setattr__(self, "field", path)
        object.__setattr__(self, "values", values)

    @property
    def section(self) -> str:
        return self.field.split(".")[0]

    @property
    def name(self) -> str:
        return self.field.split(".")[1]

    @property
    def labels(self) -> tuple[str, ...]:
        """One per variant: "output_activation=tanh"."""
        return tuple(f"{self.name}={format_value(v)}" for v in self.values)


def _check_values(path: FieldPath, values: tuple[Any, ...]) -> None:
    if not 2 <= len(values) <= SWEEP_MAX_VARIANTS:
        raise ValueError(f"A sweep of {path} needs 2 to {SWEEP_MAX_VARIANTS} values; it got {len(values)}.")
    section, name = path.split(".")
    for value in values:
        message = check_field(SECTIONS[section], name, value)
        if message:
            raise ValueError(f"Sweep of {path}: {message}")
    repeated = sorted({format_value(v) for i, v in enumerate(values) if v in values[:i]})
    if repeated:
        raise ValueError(f"Sweep of {path}: {', '.join(repeated)} is given more than once; each value once.")


@dataclass(frozen=True)
class FamilySpec:
    """Variants given as whole configs, e.g. a lab's design, whose variants may differ in several fields;
    they train in lockstep as a sweep's do. `values` are the labels (a manifest lists them)."""
    name: str  # "lab:zscore-tanh": the manifest's field, and part of the family's id
    labels: tuple[str, ...]  # one per variant, unique: "tanh · z-score"
    configs: tuple[RunConfig, ...]
    keys: tuple[str, ...] = ()  # short names for the run folders ("tanh_z"); the labels where not given

    def __post_init__(self) -> None:
        groups = lockstep_groups(self.configs)
        if len(self.labels) != len(self.configs) or not self.configs or len(groups) > FAMILY_MAX_SEEDS or \
                max(map(len, groups)) > SWEEP_MAX_VARIANTS:
            raise ValueError(f"A family needs 1 to {SWEEP_MAX_VARIANTS} variants on each of 1 to {FAMILY_MAX_SEEDS} "
                             f"seeds, one label each; {self.name} has {len(self.configs)} configs on {len(groups)} "
                             f"seeds and {len(self.labels)} labels.")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"The variants of {self.name} need distinct labels: {', '.join(self.labels)}.")
        check_lockstep([_unseeded(c) for c in self.configs])

    @property
    def field(self) -> str:
        return self.name

    @property
    def values(self) -> tuple[str, ...]:
        return self.labels


Family = SweepSpec | FamilySpec  # what a job may be asked to train in lockstep


def parse_sweep(text: str) -> SweepSpec:
    """ "output_activation=sigmoid,tanh,linear" -> SweepSpec; raise ValueError saying what is wrong."""
    field_name, sep, values = text.partition("=")
    if not sep or not field_name.strip() or not values.strip():
        raise ValueError(f"The sweep {text!r} should read FIELD=VALUE,VALUE,..., e.g. "
                         "output_activation=sigmoid,tanh,linear.")
    return SweepSpec(field_name.strip(), tuple(values.split(",")))


def sweep_configs(base: RunConfig, spec: Family) -> list[RunConfig]:
    """One config per variant: the base with the swept field set (derived fields recomputed); a family's own
    configs with the base's training section, which the variants share (so a capped time budget holds)."""
    if isinstance(spec, FamilySpec):  # each keeps its seed: a family's lockstep groups differ in it
        return [dataclasses.replace(c, train=dataclasses.replace(base.train, seed=c.train.seed)) for c in spec.configs]
    return [_variant_config(base, spec, value, label) for value, label in zip(spec.values, spec.labels)]


def _variant_config(base: RunConfig, spec: SweepSpec, value: Any, label: str) -> RunConfig:
    try:
        varied = with_value(base, spec.field, value)
        return make_run_config(varied.data, varied.model, varied.loss, varied.train)
    except ValueError as e:
        raise ValueError(f"Variant {label} of the sweep is invalid: {e}") from None


def check_lockstep(configs: Sequence[RunConfig]) -> None:
    """Raise ValueError if the configs differ in a field that variants trained together must share."""
    first = configs[0]
    for path, why in SHARED_FIELDS.items():
        section, name = path.split(".")
        if any(getattr(getattr(c, section), name) != getattr(getattr(first, section), name) for c in configs):
            raise ValueError(f"These configs cannot train in lockstep: they differ in {path}, and {why}.")


def lockstep_groups(configs: Sequence[RunConfig]) -> tuple[tuple[int, ...], ...]:
    """The configs' indices grouped by their seeds (SEED_FIELDS), in order of first appearance."""
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(tuple(field_value(c, path) for path in SEED_FIELDS), []).append(i)
    return tuple(tuple(g) for g in groups.values())


def _unseeded(config: RunConfig) -> RunConfig:
    """The config at seed 0: what is left for the lockstep check once the groups' seeds are set aside."""
    return dataclasses.replace(config, data=dataclasses.replace(config.data, seed=0),
                               train=dataclasses.replace(config.train, seed=0))
