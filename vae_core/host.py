"""The host's settings: the one place where whoever runs the server decides how it is shared.

Every setting is an environment variable read when the server (or the CLI) starts; a student in a
browser can change none of them. The README's "Hosting a class" table lists the same names.

| variable                     | default                  | what it sets                                   |
|------------------------------|--------------------------|------------------------------------------------|
| VAE_LAB_MAX_JOBS             | CPU cores - 1 (min 1)    | training jobs running at once, server-wide     |
| VAE_LAB_MAX_QUEUE            | 64                       | jobs waiting for a slot, server-wide           |
| VAE_LAB_JOB_TIME_CAP_S       | 600                      | wall-clock cap of one job, in seconds          |
| VAE_LAB_CHECKPOINT_EVERY_S   | 5                        | seconds between a running job's checkpoints    |
| VAE_LAB_RUNS                 | ./runs                   | where trained runs are saved                   |
| VAE_LAB_DATA                 | ./data                   | where MNIST, Fashion-MNIST and CIFAR-10 live   |
| VAE_LAB_ALLOW_DOWNLOAD       | 0                        | 1: the app may download a missing dataset      |
| VAE_LAB_UPLOADS              | <tmp>/vae-lab-uploads-<uid> | each browser's private uploads and runs     |
| VAE_LAB_UPLOAD_TTL_S         | 7200                     | an unused upload (and its unsaved runs) is deleted after this |
| VAE_LAB_MAX_UPLOAD_MB        | 200                      | the largest .zip a browser may upload          |
| VAE_LAB_IMAGE_FOLDERS        | (none)                   | server folders a browser may read images from (os.pathsep-separated) |
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


RUNS_ENV, DATA_ENV = "VAE_LAB_RUNS", "VAE_LAB_DATA"
DEFAULT_RUNS_DIR, DEFAULT_DATA_DIR = "runs", "data"  # relative to the server's working directory


def runs_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where trained runs are saved: $VAE_LAB_RUNS, else ./runs (an empty variable counts as unset)."""
    return Path((os.environ if env is None else env).get(RUNS_ENV) or DEFAULT_RUNS_DIR)


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the torchvision datasets live: $VAE_LAB_DATA, else ./data (an empty variable counts as unset)."""
    return Path((os.environ if env is None else env).get(DATA_ENV) or DEFAULT_DATA_DIR)


class HostSettingError(ValueError):
    """An environment variable holds a value the server cannot use; the message names it."""


def _default_max_jobs() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)  # one core stays free for the pages


def _number(env: Mapping[str, str], name: str, default: float, lo: float, hi: float, integer: bool = False) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise HostSettingError(f"{name}={raw!r} is not {'an integer' if integer else 'a number'}.") from None
    if not lo <= value <= hi:
        raise HostSettingError(f"{name}={raw} is out of range; it must be from {lo:g} to {hi:g}.")
    return value


@dataclass(frozen=True)
class HostSettings:
    max_jobs: int  # training jobs running at once, server-wide
    max_queue: int  # jobs waiting for a slot
    job_time_cap_s: float  # no job trains longer than this
    checkpoint_every_s: float  # a running job saves its run folder this often
    runs_dir: Path
    data_dir: Path
    allow_download: bool
    uploads_dir: Path = Path()  # each browser's private space: its uploads and the runs trained on them
    upload_ttl_s: float = 7200.0  # an unused space is deleted after this
    max_upload_mb: int = 200  # the largest upload (from_env's default: UploadLimits')
    image_folders: tuple[Path, ...] = ()  # server folders a browser may name; none by default

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "HostSettings":
        env = os.environ if env is None else env
        return cls(
            max_jobs=int(_number(env, "VAE_LAB_MAX_JOBS", _default_max_jobs(), 1, 256, integer=True)),
            max_queue=int(_number(env, "VAE_LAB_MAX_QUEUE", 64, 0, 10_000, integer=True)),
            job_time_cap_s=_number(env, "VAE_LAB_JOB_TIME_CAP_S", 600.0, 1.0, 7 * 24 * 3600),
            checkpoint_every_s=_number(env, "VAE_LAB_CHECKPOINT_EVERY_S", 5.0, 0.5, 3600),
            runs_dir=runs_dir(env),
            data_dir=data_dir(env),
            allow_download=env.get("VAE_LAB_ALLOW_DOWNLOAD", "0").strip() == "1",
            uploads_dir=_uploads_dir(env),
            upload_ttl_s=_number(env, "VAE_LAB_UPLOAD_TTL_S", 7200.0, 60.0, 30 * 24 * 3600),
            max_upload_mb=int(_number(env, "VAE_LAB_MAX_UPLOAD_MB", _default_upload_mb(), 1, 4096, integer=True)),
            image_folders=tuple(Path(p).expanduser().absolute()
                                for p in env.get("VAE_LAB_IMAGE_FOLDERS", "").split(os.pathsep) if p.strip()),
        )


def _default_upload_mb() -> int:
    from vae_core.data.images.source import MB, UploadLimits

    return UploadLimits().upload_bytes // MB


def _uploads_dir(env: Mapping[str, str]) -> Path:
    from vae_core.data.images.private import default_uploads_root

    return Path(env.get("VAE_LAB_UPLOADS") or default_uploads_root()).expanduser().absolute()
