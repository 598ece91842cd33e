"""A person tidying their own runs: a title instead of the folder's name (the folder, which links name, never
moves) and deletion. Only the owner's own runs, directly in the server's runs folder or their private space, and
never one still training; anything else is refused with the reason and what to do."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vae_core import host
from vae_core.data.images.private import PrivateSpace
from vae_core.runs.folders import (CONFIG, RunLoadError, bundled_models_dir, discard_run, read_metrics,
                                   title_problem, write_metrics)
from vae_core.runs.listing import live_status, saving_now

Refusal = Literal["not_a_run", "bundled", "not_yours", "running", "title"]


class RunRefused(ValueError):
    """A rename or delete that is not allowed; the message says why and what to do."""

    def __init__(self, reason: Refusal, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class OwnRun:
    """A run its owner may rename or delete, with its metrics.json as read when checked."""
    path: Path
    metrics: dict[str, Any]


def owner_roots(owner: str) -> tuple[Path, ...]:
    """The folders an owner's runs live directly in: the server's runs folder and their private space's runs."""
    uploads = host.HostSettings.from_env().uploads_dir
    return host.runs_dir(), PrivateSpace.of(uploads, owner).runs_dir


def own_run(run_dir: str | Path, owner: str, action: Literal["rename", "delete"]) -> OwnRun:
    """The run at run_dir if owner may rename or delete it now; else RunRefused saying why."""
    path = _run_folder(Path(run_dir), owner, action)
    try:
        metrics = read_metrics(path)
    except RunLoadError as e:
        raise RunRefused("not_a_run", f"Cannot {action} {path.name}: {e}") from None
    if not owner or metrics.get("owner") != owner:
        raise RunRefused("not_yours", f"{path.name} was trained by someone else (or from the command line): only "
                                      f"the browser that trained a run may {action} it. Pick one of your runs.")
    if live_status(metrics) == "running" or saving_now(path):
        raise RunRefused("running", f"{path.name} is still training: stop it on the Train page (or wait for it "
                                    f"to end), then {action} it.")
    return OwnRun(path, metrics)


def _run_folder(run_dir: Path, owner: str, action: str) -> Path:
    """run_dir itself, if it is a run folder directly in one of owner's roots (no link, no '..', not bundled)."""
    real = Path(os.path.realpath(run_dir))
    if real.is_relative_to(os.path.realpath(bundled_models_dir())):
        raise RunRefused("bundled", f"{real.name} is bundled with VAE Lab: bundled runs cannot be renamed or "
                                    "deleted. Train your own run to rename or delete it.")
    roots = {Path(os.path.realpath(r)) for r in owner_roots(owner)}
    plain = not run_dir.is_symlink() and ".." not in run_dir.parts and real.name == run_dir.name
    if not plain or real.parent not in roots or real.name.startswith(".") or not (real / CONFIG).is_file():
        raise RunRefused("not_a_run", f"{run_dir.name[:80]} is not one of your run folders: only a run directly "
                                      f"in this server's runs folder or your private space can be {action}d.")
    return real


def checked_title(title: str) -> str:
    """The title trimmed, or RunRefused saying what a title may be."""
    problem = title_problem(title)
    if problem:
        raise RunRefused("title", problem)
    return title.strip()


def rename_run(run_dir: str | Path, title: str, owner: str) -> str:
    """Give owner's run a title (metrics.json's "title", replaced atomically); return the title as saved."""
    title = checked_title(title)
    run = own_run(run_dir, owner, "rename")
    write_metrics(run.path, {**run.metrics, "title": title})
    return title


def delete_run(run_dir: str | Path, owner: str) -> Path:
    """Delete owner's run folder atomically; return the path it had."""
    run = own_run(run_dir, owner, "delete")
    discard_run(run.path)
    return run.path
