"""What a runs folder holds: each run's summary for a picker (no weights loaded), whether the process writing a
"running" run still lives, and the debris of saves that crashed, cleaned up."""
from __future__ import annotations

import glob
import logging
import math
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vae_core.config import RunConfig
from vae_core.runs.folders import (CONFIG, METRICS, WEIGHTS, RunLoadError, across_a_swap, read_config, read_json,
                                   title_problem)

log = logging.getLogger(__name__)


STALE_HEARTBEAT_MIN_S = 30.0  # a "running" run silent this long (or 3 checkpoint intervals) was interrupted


STALE_TEMPORARY_S = 3600.0  # a save's temporary folder this old is debris, whoever wrote it


def writer_fields() -> dict[str, Any]:
    """The pid, host and heartbeat that let a reader tell a live "running" run from an interrupted one."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "heartbeat": time.time()}


@dataclass(frozen=True)
class RunInfo:
    """What a run picker shows, read from config.json and metrics.json only (no weights)."""
    path: Path
    status: str  # a RunStatus, or "unknown" / "unreadable"
    created: float  # unix time the job started, else config.json's modification time
    dataset: str | None = None
    normalization: str | None = None
    output_activation: str | None = None
    likelihood: str | None = None
    latent_dim: int | None = None
    owner: str | None = None
    steps: int | None = None
    test_elbo_nats: float | None = None
    config: RunConfig | None = None  # None when unreadable
    sweep: str | None = None  # RunRecord.sweep
    title: str | None = None  # RunRecord.title; one that is not a valid title is ignored

    @property
    def name(self) -> str:
        return self.path.name

    def summary(self) -> str:
        """One readable line, e.g. "sprites · unit → sigmoid · bernoulli · 10-d · 4,013 steps · ELBO -121.0"."""
        parts = [self.dataset or "?", f"{self.normalization} → {self.output_activation}", self.likelihood or "?",
                 f"{self.latent_dim}-d" if self.latent_dim else "?-d"]
        if self.steps is not None:
            parts.append(f"{self.steps:,} step{'' if self.steps == 1 else 's'}")
        if self.test_elbo_nats is not None:
            parts.append(f"ELBO {self.test_elbo_nats:.1f}")
        return " · ".join(parts)


_RUN_NAME = re.compile(r"^[^.]")  # temporary and replaced folders start with a dot


def list_runs(*roots: Path) -> list[RunInfo]:
    """Run folders directly under each root, newest first; folders without a config are skipped."""
    found = []
    for root in roots:
        if not Path(root).is_dir():
            continue
        for d in Path(root).iterdir():
            if d.is_dir() and _RUN_NAME.match(d.name) and (d / CONFIG).is_file():
                try:
                    found.append(run_info(d))
                except OSError:
                    continue  # deleted while we looked
    return sorted(found, key=lambda r: r.created, reverse=True)


def run_info(run_dir: Path) -> RunInfo:
    """What the run is and how it ended, without loading its weights; a bad file makes it "unreadable"."""
    run_dir = Path(run_dir)
    try:
        return across_a_swap(_run_info, run_dir)
    except RunLoadError:
        return RunInfo(run_dir, "unreadable", (run_dir / CONFIG).stat().st_mtime)


def _run_info(run_dir: Path) -> RunInfo:
    created = (run_dir / CONFIG).stat().st_mtime
    config, normalizer = read_config(run_dir)
    metrics = read_json(run_dir / METRICS)
    if not isinstance(metrics, dict):
        raise RunLoadError(f"{run_dir}/{METRICS} must be a JSON object.")
    test = metrics.get("test")
    return RunInfo(run_dir, live_status(metrics), created=_number(metrics.get("started")) or created,
                   dataset=config.data.dataset, normalization=normalizer.kind,
                   output_activation=config.model.output_activation, likelihood=config.loss.likelihood,
                   latent_dim=config.model.latent_dim, owner=_text(metrics.get("owner")),
                   steps=_integer(metrics.get("steps")),
                   test_elbo_nats=_number(test.get("elbo_nats")) if isinstance(test, dict) else None,
                   config=config, sweep=_text(metrics.get("sweep")), title=_title(metrics.get("title")))


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def _integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value[:200] if isinstance(value, str) else None


def _title(value: Any) -> str | None:
    return value.strip() if title_problem(value) is None else None


def live_status(metrics: dict[str, Any], now: float | None = None) -> str:
    """metrics.json's status, except that a "running" run whose writer is gone is "interrupted"."""
    status = str(metrics.get("status", "unknown"))
    if status != "running":
        return status
    return "running" if _writer_alive(metrics, time.time() if now is None else now) else "interrupted"


def _writer_alive(metrics: dict[str, Any], now: float) -> bool:
    heartbeat, interval = _number(metrics.get("heartbeat")), _number(metrics.get("checkpoint_every_s")) or 5.0
    if heartbeat is None or now - heartbeat > max(STALE_HEARTBEAT_MIN_S, 3 * interval):
        return False  # also catches a pid that was reused after the writer died
    pid = _integer(metrics.get("pid"))
    if pid is None or metrics.get("host") != socket.gethostname():
        return True  # another machine's process: only its heartbeat can tell
    return pid_alive(pid)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (a zombie, dead but unreaped, counts as gone)."""
    if pid <= 0:
        return False  # kill(0) or kill(-n) would signal a whole process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False  # no /proc (not Linux): trust kill()
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old|del)-(?:(?P<pid>\d+)-)?[0-9a-f]{8}$")


@dataclass(frozen=True)
class Cleanup:
    removed: list[Path]  # leftover temporary folders deleted
    restored: list[Path]  # runs put back from a save that died between its two renames (never a deleted one)


def cleanup_stale_temporaries(root: Path) -> Cleanup:
    """Remove the temporaries of saves that crashed (writer dead, or over an hour old); a live save's stay."""
    removed, restored = [], []
    root = Path(root)
    if not root.is_dir():
        return Cleanup(removed, restored)
    stale = sorted((d for d in root.iterdir() if d.is_dir() and _stale(d)), key=lambda d: d.name)
    for d in sorted(stale, key=lambda d: ".tmp-" not in d.name):  # a complete new save wins over the old one
        m = _TEMPORARY.match(d.name)
        target = root / m["name"]
        whole = all((d / f).is_file() for f in (WEIGHTS, CONFIG, METRICS))
        if m["kind"] != "del" and not target.exists() and whole:
            os.rename(d, target)
            restored.append(target)
        else:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d)
    if removed or restored:
        log.info("cleaned up %s: removed %s, restored %s", root, [p.name for p in removed], [p.name for p in restored])
    return Cleanup(removed, restored)


def _stale(d: Path) -> bool:
    m = _TEMPORARY.match(d.name)
    if not m:
        return False
    try:
        old = time.time() - d.stat().st_mtime > STALE_TEMPORARY_S
    except OSError:
        return False  # it went away meanwhile: its save finished
    return old or (m["pid"] is not None and not pid_alive(int(m["pid"])))


def saving_now(run_dir: Path) -> bool:
    """Whether a live process is saving this run now (a save's temporary of it, not debris, is beside it)."""
    run_dir = Path(run_dir)
    return any(_TEMPORARY.match(d.name)["kind"] == "tmp" and not _stale(d)
               for d in run_dir.parent.glob(f".{glob.escape(run_dir.name)}.tmp-*") if _TEMPORARY.match(d.name))
