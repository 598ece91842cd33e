"""The host's settings: the one place where whoever runs the server decides how it is shared.

Every setting is an environment variable read when the server (or the CLI) starts; a student in a browser can
change none of them. SETTINGS is their one table: HostSettings reads it, and the README's "Hosting a class"
table is `settings_table()` (a test holds the two together).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

MB = 2**20
RUNS_ENV, DATA_ENV, QUEUE_ENV = "VAE_LAB_RUNS", "VAE_LAB_DATA", "VAE_LAB_QUEUE"
QUEUE_SCHEMES = ("redis://", "rediss://", "unix://")
DEFAULT_RUNS_DIR, DEFAULT_DATA_DIR = "runs", "data"  # relative to the server's working directory
DEFAULT_UPLOAD_MB = 200  # the largest upload a browser may send, unless the host says otherwise
SignIn = Literal["off", "optional", "required"]
SIGN_IN_CHOICES: tuple[SignIn, ...] = ("off", "optional", "required")


def _default_max_jobs() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)  # one core stays free for the pages


def default_uploads_root() -> Path:
    """A folder of this user's under the system's temporary folder."""
    return Path(tempfile.gettempdir()) / f"vae-lab-uploads-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


@dataclass(frozen=True)
class Setting:
    """One environment variable: the HostSettings field it sets, its default, its range, and what it means."""
    env: str
    field: str
    kind: Literal["integer", "number", "path", "switch", "paths", "choice", "queue"]
    default: Any  # a value, or a function of no arguments that computes it where it depends on the machine
    shown: str  # the default as the README's table shows it
    words: str  # what it sets
    lo: float = 0.0
    hi: float = 0.0
    choices: tuple[str, ...] = ()  # a "choice" setting's values

    def value(self, env: Mapping[str, str]) -> Any:
        """The setting read from env (an empty variable counts as unset); HostSettingError says what is wrong."""
        raw = env.get(self.env, "").strip()
        if not raw:
            return self.default() if callable(self.default) else self.default
        return _READERS[self.kind](self, raw)


SETTINGS: tuple[Setting, ...] = (
    Setting("VAE_LAB_MAX_JOBS", "max_jobs", "integer", _default_max_jobs, "CPU cores − 1 (at least 1)",
            "training jobs running at once, server-wide; the rest wait in a queue that shows each person their "
            "place", 1, 256),
    Setting("VAE_LAB_MAX_QUEUE", "max_queue", "integer", 64, "64", "jobs waiting for a slot", 0, 10_000),
    Setting("VAE_LAB_JOB_TIME_CAP_S", "job_time_cap_s", "number", 600.0, "600",
            "no job trains longer than this (a longer time budget is capped, and the page says so)", 1.0, 7 * 86400),
    Setting("VAE_LAB_CHECKPOINT_EVERY_S", "checkpoint_every_s", "number", 5.0, "5",
            "seconds between a running job's checkpoints", 0.5, 3600),
    Setting(RUNS_ENV, "runs_dir", "path", Path(DEFAULT_RUNS_DIR), f"`./{DEFAULT_RUNS_DIR}`", "where runs are saved"),
    Setting(DATA_ENV, "data_dir", "path", Path(DEFAULT_DATA_DIR), f"`./{DEFAULT_DATA_DIR}`",
            "where MNIST, Fashion-MNIST and CIFAR-10 are read from"),
    Setting("VAE_LAB_ALLOW_DOWNLOAD", "allow_download", "switch", False, "0",
            f"1: the app may download a missing dataset into `{DATA_ENV}`"),
    Setting("VAE_LAB_UPLOADS", "uploads_dir", "path", default_uploads_root, "`<tmp>/vae-lab-uploads-<uid>`",
            "each browser's private space: its uploads and the runs trained on them"),
    Setting("VAE_LAB_UPLOAD_TTL_S", "upload_ttl_s", "number", 7200.0, "7200",
            "a space unused this long is deleted (unless a job trains on it)", 60.0, 30 * 86400),
    Setting("VAE_LAB_MAX_UPLOAD_MB", "max_upload_mb", "integer", DEFAULT_UPLOAD_MB, str(DEFAULT_UPLOAD_MB),
            "the largest .zip a browser may upload", 1, 4096),
    Setting("VAE_LAB_IMAGE_FOLDERS", "image_folders", "paths", (), "(none)",
            "server folders a browser may read images from, `:`-separated; off by default, so a student cannot "
            "read the server's folders"),
    Setting("VAE_LAB_SIGN_IN", "sign_in", "choice", "optional", "optional",
            "where Streamlit's secrets.toml has an `[auth]` section (an OpenID Connect provider): `optional`, a Sign "
            "in button and runs labelled with each signed-in person's name; `required`, the pages ask to sign in "
            "first; `off`, no sign-in. Without `[auth]`, each browser is its own anonymous person",
            choices=SIGN_IN_CHOICES),
    Setting(QUEUE_ENV, "queue_url", "queue", "", "(none)",
            "`redis://HOST:PORT/DB`: training jobs go to this Redis and are trained by `python -m vae_core worker` "
            "processes (here or on machines sharing the runs folder), so several app processes share one queue; "
            "unset, jobs train in child processes of this app"),
)


class HostSettingError(ValueError):
    """An environment variable holds a value the server cannot use; the message names it."""


def _number(setting: Setting, raw: str) -> float:
    integer = setting.kind == "integer"
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        raise HostSettingError(f"{setting.env}={raw!r} is not {'an integer' if integer else 'a number'}.") from None
    if not setting.lo <= value <= setting.hi:
        raise HostSettingError(f"{setting.env}={raw} is out of range; it must be from {setting.lo:g} to "
                               f"{setting.hi:g}.")
    return value


def _choice(setting: Setting, raw: str) -> str:
    if raw not in setting.choices:
        raise HostSettingError(f"{setting.env}={raw!r} is not one of {', '.join(setting.choices)}.")
    return raw


def _queue_url(setting: Setting, raw: str) -> str:
    if not raw.startswith(QUEUE_SCHEMES):
        raise HostSettingError(f"{setting.env}={raw!r} is not a Redis address; write it as redis://HOST:PORT/DB "
                               "(or rediss://, unix://), or leave it unset to train in the app's own process.")
    return raw


_READERS = {
    "choice": _choice,
    "integer": _number, "number": _number,
    "path": lambda s, raw: Path(raw),
    "switch": lambda s, raw: raw == "1",
    "queue": _queue_url,
    "paths": lambda s, raw: tuple(Path(p).expanduser().absolute() for p in raw.split(os.pathsep) if p.strip()),
}


_SETTING = {s.field: s for s in SETTINGS}


def runs_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where trained runs are saved: $VAE_LAB_RUNS, else ./runs."""
    return _SETTING["runs_dir"].value(os.environ if env is None else env)


def data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the torchvision datasets live: $VAE_LAB_DATA, else ./data."""
    return _SETTING["data_dir"].value(os.environ if env is None else env)


@dataclass(frozen=True)
class HostSettings:
    """Every setting of SETTINGS, read once (see each Setting's words)."""
    max_jobs: int
    max_queue: int
    job_time_cap_s: float
    checkpoint_every_s: float
    runs_dir: Path
    data_dir: Path
    allow_download: bool
    uploads_dir: Path = Path()  # the defaults of the settings a test seldom sets
    upload_ttl_s: float = _SETTING["upload_ttl_s"].default
    max_upload_mb: int = DEFAULT_UPLOAD_MB
    image_folders: tuple[Path, ...] = ()
    sign_in: SignIn = "optional"
    queue_url: str = ""  # "": the embedded scheduler (jobs/scheduler.py); else Redis (jobs/redis_queue.py)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "HostSettings":
        env = os.environ if env is None else env
        found = {s.field: s.value(env) for s in SETTINGS}
        found["uploads_dir"] = Path(found["uploads_dir"]).expanduser().absolute()
        return cls(**found)


def settings_table() -> str:
    """The README's table of the host's settings (Markdown)."""
    rows = [f"| `{s.env}` | {s.shown} | {s.words} |" for s in SETTINGS]
    return "\n".join(["| variable | default | what it sets |", "|---|---|---|", *rows])
