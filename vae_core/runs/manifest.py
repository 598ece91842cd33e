"""A sweep's manifest: `<runs dir>/.sweeps/<sweep id>.json` lists the field (or a lab's name), the values and
each variant's run folder with its status. Each variant's own metrics.json carries the sweep id
(RunRecord.sweep), so a family is found without it; the manifest says how the whole family ended. The
folder starts with a dot, so runs.listing.list_runs and the cleanup of stale temporaries never look into it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SWEEPS_DIR = ".sweeps"  # under the runs dir; hidden, so it is never taken for a run folder
MANIFEST_FORMAT = "vae-lab-sweep/1"


def manifest_path(runs_dir: Path, sweep_id: str) -> Path:
    return Path(runs_dir) / SWEEPS_DIR / f"{sweep_id}.json"


@dataclass(frozen=True)
class ManifestVariant:
    label: str  # "output_activation=tanh"
    value: Any
    run: str | None  # the run folder's name, directly under the runs dir; None if it was never saved
    status: str  # a RunStatus, or "refused"
    message: str


@dataclass(frozen=True)
class SweepManifest:
    """What `<runs dir>/.sweeps/<id>.json` holds."""
    id: str
    field: str  # the swept field ("section.name"), or a lab's family name ("lab:zscore-tanh")
    values: tuple[Any, ...]
    status: str  # the job's: running while it trains, then finished, stopped, ...
    owner: str | None
    started: float | None  # unix time
    variants: tuple[ManifestVariant, ...]

    def run_dirs(self, runs_dir: Path) -> list[Path]:
        """The variants' run folders that were saved, in the sweep's order."""
        return [Path(runs_dir) / v.run for v in self.variants if v.run]

    def to_dict(self) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, **dataclasses.asdict(self)}


def write_manifest(path: Path, manifest: SweepManifest) -> Path:
    """Write atomically (a temporary file, then a rename): a reader sees the old manifest or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(json.dumps(manifest.to_dict(), indent=2), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


MAX_MANIFEST_BYTES = 2**20


def read_manifest(path: Path) -> SweepManifest:
    """Read and check a manifest (it is untrusted input); ValueError says what is wrong."""
    path = Path(path)
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ValueError(f"{path} is larger than 1 MB: not a VAE Lab sweep manifest.")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"expected format {MANIFEST_FORMAT!r}")
        variants = tuple(_manifest_variant(v) for v in raw["variants"])
        return SweepManifest(_text(raw["id"]), _text(raw["field"]), tuple(raw["values"]), _text(raw["status"]),
                             raw.get("owner") if isinstance(raw.get("owner"), str) else None,
                             raw.get("started") if isinstance(raw.get("started"), (int, float)) else None, variants)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} is not a valid sweep manifest ({e}).") from None


def _manifest_variant(raw: dict[str, Any]) -> ManifestVariant:
    run = raw["run"]
    if run is not None and (not isinstance(run, str) or "/" in run or "\\" in run or run.startswith(".")):
        raise ValueError(f"variant run {run!r} is not a folder name")  # never a path out of the runs dir
    return ManifestVariant(_text(raw["label"]), raw["value"], run, _text(raw["status"]), _text(raw["message"]))


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value


def list_sweeps(runs_dir: Path) -> list[SweepManifest]:
    """The readable manifests under a runs dir, newest first (an unreadable one is skipped)."""
    folder = Path(runs_dir) / SWEEPS_DIR
    found = []
    for path in folder.glob("*.json") if folder.is_dir() else ():
        try:
            found.append(read_manifest(path))
        except (ValueError, OSError):
            continue
    return sorted(found, key=lambda m: m.started or 0.0, reverse=True)
