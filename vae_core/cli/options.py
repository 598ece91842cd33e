"""The options every command shares: a config's fields as flags, generated from the config dataclasses, so the
CLI has every option the app has, named after the fields (`--output-activation`, `--latent-dim`, ...)."""
from __future__ import annotations

import argparse
import typing
from typing import Any

from vae_core.config import DATASET_DEFAULTS, SECTIONS, FieldInfo, RunConfig, default_for, fields_info, range_text

# Fields the CLI names differently (unit in the name, or a clash between sections).
FLAG_NAMES = {("train", "time_budget_s"): "--time-budget", ("data", "seed"): "--data-seed"}


DERIVED = {("model", "channels"), ("model", "image_size"), ("model", "features")}  # set from the data, not by hand


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> typing.NoReturn:  # one line, not the whole usage block
        self.exit(2, f"{self.prog}: error: {message}\n")


def add_config_options(parser: argparse.ArgumentParser) -> None:
    for section, cls in SECTIONS.items():
        group = parser.add_argument_group(section)
        for info in fields_info(cls).values():
            if (section, info.name) in DERIVED:
                continue
            group.add_argument(option_flag(section, info.name), dest=f"{section}.{info.name}",
                               default=argparse.SUPPRESS, help=option_help(info), **arg_type(info))


def option_flag(section: str, name: str) -> str:
    """The command-line flag of a config field: --latent-dim for latent_dim, unless FLAG_NAMES renames it."""
    return FLAG_NAMES.get((section, name), "--" + name.replace("_", "-"))


def option_help(info: FieldInfo) -> str:
    """The --help line of a config option, from the field's spec: help, range, default."""
    default = info.spec.none_means if info.default is None and info.spec.none_means else info.default
    parts = [info.spec.help.rstrip(".") or info.spec.label]
    if info.kind in ("integer", "number") and info.spec.lo is not None:
        parts.append(range_text(info))
    return f"{'; '.join(parts)} (default: {default})".replace("%", "%%")  # argparse formats help with %


def arg_type(info: FieldInfo) -> dict[str, Any]:
    if info.kind == "choice":
        return {"choices": info.options, "type": type(info.options[0])}
    if isinstance(info.default, bool):
        return {"action": argparse.BooleanOptionalAction}
    return {"type": {"integer": int, "number": float}.get(info.kind, str), "metavar": info.name.upper()}


def config_from_args(ns: argparse.Namespace) -> RunConfig:
    """The RunConfig the options describe; the model's image shape (vectors: features) comes from the dataset."""
    from vae_core.training.trainer import make_run_config

    given: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for key, value in vars(ns).items():
        if "." in key:
            section, name = key.split(".", 1)
            given[section][name] = value
    dataset = given["data"].get("dataset", default_for("data.dataset", ""))
    for path, value in DATASET_DEFAULTS.get(dataset, {}).items():  # the dataset's own, where not given
        section, name = path.split(".")
        given[section].setdefault(name, value)
    return make_run_config(*(SECTIONS[s](**given[s]) for s in SECTIONS))


def dataset_defaults_text() -> str:
    """The epilog of train --help: the defaults a dataset changes (DATASET_DEFAULTS)."""
    lines = [f"--dataset {dataset} changes these defaults: " + ", ".join(
        f"{option_flag(*path.split('.'))} {value}" for path, value in values.items())
        for dataset, values in DATASET_DEFAULTS.items()]
    return " ".join(lines) + (". Under torchrun --batch-size is each process's; the run's batch is N times it."
                              if lines else "")
