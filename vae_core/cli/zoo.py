"""python -m vae_core zoo build | list | table | refresh: the bundled family of runs (vae_core/zoo.py)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from vae_core.cli.options import Parser


def add_zoo_parser(sub: Any) -> None:
    from vae_core.config import DataConfig, field_options

    zoo = sub.add_parser("zoo", help="the zoo: one run per output activation x normalization x likelihood")
    cmds = zoo.add_subparsers(dest="zoo_command", required=True, parser_class=Parser)
    build = cmds.add_parser("build", help="train the zoo (one run folder per line on stdout)")
    build.add_argument("--dataset", default="sprites", choices=field_options(DataConfig, "dataset"))
    build.add_argument("--data-dir", help="where the dataset's files are (not sprites)")
    build.add_argument("--out", type=Path, help="where the run folders go (default: models/ for sprites and "
                       "vectors, else the runs folder)")
    build.add_argument("--workers", type=int, default=2, help="processes training at once (default: 2)")
    for name, what in (("list", "list the zoo's runs and their test metrics"),
                       ("table", "print the README's markdown table of the zoo"),
                       ("refresh", "evaluate the zoo's runs again with the current evaluation and rewrite their "
                        "test metrics (no training; one run folder per line on stdout)")):
        cmd = cmds.add_parser(name, help=what)
        cmd.add_argument("--dir", type=Path, help="where to look (default: models/ and the runs folder)")
    cmds.choices["list"].add_argument("--json", action="store_true", help="one JSON object per line")


def cmd_zoo(ns: argparse.Namespace) -> int:
    return {"build": _zoo_build, "list": _zoo_list, "table": _zoo_table, "refresh": _zoo_refresh}[ns.zoo_command](ns)


def _zoo_build(ns: argparse.Namespace) -> int:
    from vae_core.runs.folders import bundled_models_dir, default_runs_dir
    from vae_core.zoo import BUNDLED_ZOOS, build_zoo, check_workers, zoo_configs

    check_workers(ns.workers)
    out = ns.out or (bundled_models_dir() if ns.dataset in BUNDLED_ZOOS else default_runs_dir())
    entries = zoo_configs(ns.dataset, ns.data_dir)
    sys.stderr.write(f"training {len(entries)} runs into {out}, {ns.workers} at a time\n")
    start, count = time.monotonic(), iter(range(1, len(entries) + 1))

    def on_done(r) -> None:
        why = "" if r.status == "finished" else f": {r.message}"
        sys.stderr.write(f"[{next(count)}/{len(entries)}] {r.name}: {r.status} in {r.seconds:.0f} s "
                         f"({time.monotonic() - start:.0f} s in all){why}\n")
        if r.run_dir:
            sys.stdout.write(f"{r.run_dir}\n")
            sys.stdout.flush()

    results = build_zoo(entries, out, ns.workers, on_done)
    return 0 if all(r.status == "finished" for r in results) else 1


def _zoo_records(ns: argparse.Namespace) -> list:
    from vae_core.runs.folders import bundled_models_dir, default_runs_dir
    from vae_core.zoo import zoo_list

    return zoo_list(*([ns.dir] if ns.dir else [bundled_models_dir(), default_runs_dir()]))


def _zoo_list(ns: argparse.Namespace) -> int:
    for r in _zoo_records(ns):
        if ns.json:
            sys.stdout.write(json.dumps(r.to_dict()) + "\n")
        else:
            elbo = "ELBO ?" if r.elbo_nats is None else f"ELBO {r.elbo_nats:.1f}"
            sys.stdout.write(f"{r.status:>9}  {r.verdict:>10}  {elbo:>16}  {r.path}\n")
    return 0


def _zoo_table(ns: argparse.Namespace) -> int:
    from vae_core.zoo import zoo_table

    sys.stdout.write(zoo_table(_zoo_records(ns)) + "\n")
    return 0


def _zoo_refresh(ns: argparse.Namespace) -> int:
    from vae_core.zoo import refresh_run

    for r in _zoo_records(ns):
        if r.status == "running":  # its writer is alive and would overwrite the folder
            sys.stderr.write(f"skipped {r.path}: still training\n")
            continue
        start = time.monotonic()
        test = refresh_run(r.path)
        bpd = "—" if test["bits_per_dim"] is None else f"{test['bits_per_dim']:.3f}"
        sys.stderr.write(f"{r.name}: ELBO {test['elbo_nats']:.1f} nats, bits/dim {bpd} "
                         f"({time.monotonic() - start:.1f} s)\n")
        sys.stdout.write(f"{r.path}\n")
    return 0
