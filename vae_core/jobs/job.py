"""What every training job is, wherever it trains (a thread: TrainingJob; a child process: ProcessJob): the
places of its runs fixed when it is made, the state a page polls, and the calls a page makes."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vae_core.config import RunConfig
from vae_core.host import HostSettings
from vae_core.jobs.plan import SweepPlan, plan_sweep
from vae_core.jobs.progress import HISTORY_CAP, JobSnapshot, JobState
from vae_core.runs.folders import run_name
from vae_core.training.sweeps import Family


def planned_sweep(sweep: Family | SweepPlan | None, config: RunConfig, runs_dir: Path,
                  run_dir: Path | None) -> SweepPlan | None:
    """A job's sweep with its id and folders fixed (a spec is planned now; a plan is kept)."""
    if sweep is not None and run_dir is not None:
        raise ValueError("run_dir names one run folder, but a sweep saves one per variant under runs_dir.")
    return sweep if sweep is None or isinstance(sweep, SweepPlan) else plan_sweep(config, sweep, runs_dir)


@dataclass
class BaseJob:
    """A single run, or a sweep (`sweep`: config is then the base every variant changes one field of)."""
    config: RunConfig
    runs_dir: Path
    run_dir: Path | None = None  # exact folder to save to; None: a new name under runs_dir, fixed now
    owner: str | None = None  # who started it (a browser); None from the CLI
    token: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    checkpoint_every_s: float | None = None  # None: the host's setting (VAE_LAB_CHECKPOINT_EVERY_S)
    preview_every_s: float = 1.0
    history_cap: int = HISTORY_CAP
    on_done: Callable[[], None] | None = None  # once the job has ended and its final state is set
    sweep: Family | SweepPlan | None = None  # a spec is planned now (its id and folders fixed); a plan is kept

    def __post_init__(self) -> None:
        self.sweep = planned_sweep(self.sweep, self.config, self.runs_dir, self.run_dir)
        if self.sweep is not None:
            self.run_dir = self.sweep.run_dirs[0]  # the first variant's: a sweep has one folder per variant
        self.run_dir = Path(self.run_dir) if self.run_dir else Path(self.runs_dir) / run_name(self.config)
        if self.checkpoint_every_s is None:
            self.checkpoint_every_s = HostSettings.from_env().checkpoint_every_s
        self._state = JobState(self.history_cap, self.sweep)

    def snapshot(self) -> JobSnapshot:
        return self._state.snapshot()
