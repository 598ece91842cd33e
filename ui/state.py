"""The loaded run and what pages load for it: the runs this browser may pick (bundled, its own, those on its
private images, the class's), the one the URL names (?run=, so a link reproduces it), cached loaders (runs, test
images, the test images a run carries, the latent map's images, encoding and figure), and the notices left by
what a link asked for and did not get. A run's estimates: ui/estimates.py.

Caching rules: st.cache_resource and st.cache_data are shared by every browser session, so only read-only things
go there (eval-mode models from checkpoints, uint8 test images, evaluations). The test images a run on a person's
images carries stay in that browser's session. The model being trained is never here: its job owns it, outside
every page (vae_core.jobs; ui/jobs.py shows it).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import streamlit as st
import torch

from ui.session import client_token
from ui.space import session_cached
from vae_core.config import DataConfig
from vae_core.data.base import DatasetNotFoundError, ImageDataset
from vae_core.data.datasets import load_dataset
from vae_core.data.images.dataset import is_private
from vae_core.data.images.private import PrivateSpace
from vae_core.data.vectors.dataset import VectorDataset
from vae_core.host import HostSettings
from vae_core.runs.folders import (CONFIG, LoadedRun, RunLoadError, bundled_models_dir, default_runs_dir, load_run,
                                   read_samples, run_tag)
from vae_core.runs.listing import RunInfo, list_runs
from vae_core.runs.test_images import PageImages, find_page_images
from vae_plots.views import dataset_words

log = logging.getLogger(__name__)

RUN_KEY = "run_path"  # session: the folder of the loaded run (the URL names it; this resolves the name)
RUN_PARAM = "run"  # the URL query parameter naming the loaded run by its folder name, so a link reproduces it
NOTICES_KEY = "url_notices"  # session: short notices about what a link asked for and did not get
DEFAULT_BUNDLED = "sprites-sigmoid-unit-gaussian"  # MSE, the loss of every question; every toggle has a sibling
PRIVATE_SAMPLES_KEY = "private_samples"  # session: the test images a run on this browser's own images carries
PRIVATE_ROWS_KEY = "private_rows"  # session: the test rows of a run on this browser's own vectors
APP_THREADS = 1  # torch intra-op threads (process-wide): a training job takes one core, pages the other


@st.cache_resource
def configure_torch() -> None:
    """Once per server: two threads for one decode would fight a training job for the two cores."""
    torch.set_num_threads(APP_THREADS)


Owner = Literal["bundled", "yours", "private", "class"]  # private: trained on this browser's upload
STATUS_MARK = {"finished": "", "running": " · ⏳ running", "stopped": " · stopped", "interrupted": " · ⚠ interrupted",
               "diverged": " · ⚠ diverged", "failed": " · ⚠ failed", "unreadable": " · ⚠ unreadable"}


@dataclass(frozen=True)
class ModelChoice:
    path: Path
    owner: Owner
    info: RunInfo

    @property
    def label(self) -> str:
        """Short enough for the sidebar: whose, when, then activation · normalization · likelihood."""
        i = self.info
        what = f"{i.output_activation}/{i.normalization}/{i.likelihood}"
        if i.dataset != "sprites":
            what = f"{dataset_words(i.dataset)} {what}"
        if self.owner == "bundled":
            return f"★ {what}"
        what = i.title or what  # the name its owner gave it (rename_run)
        when = time.strftime("%H:%M", time.localtime(i.created))
        who = {"yours": "you", "private": "you, private"}.get(self.owner, "class")
        # The folder's random part keeps labels unique (Streamlit maps a selectbox label back to an option), and
        # a sweep's variants say their value
        return f"{who} {when}{STATUS_MARK.get(i.status, f' · {i.status}')} · {what} #{run_tag(i.name)}"


@st.cache_resource(max_entries=64, show_spinner=False)
def load_run_cached(path: str, mtime: float) -> LoadedRun:
    """Cached because every rerun of every page needs the model; keyed on mtime so a re-save reloads. Room for
    the zoo's 20 and a class's: a class flipping toggles reloaded runs from disk with 16."""
    return load_run(path)


@st.cache_resource(max_entries=8, show_spinner="Loading test images…")
def load_test_images(data: DataConfig) -> ImageDataset:
    """Cached because generating or reading a test split takes a second or more; uint8 and read-only."""
    return load_dataset(data, "test")


@st.cache_resource(ttl=2, show_spinner=False)
def load_run_infos(root: str) -> list[RunInfo]:
    """Cached for 2 s and shared: every rerun of every session lists the runs, one scan serves them all."""
    return list_runs(Path(root))


def model_choices(owner: str) -> list[ModelChoice]:
    """Bundled runs first (the default on top), then this browser's runs (those on its own images are in its
    private space, which no other browser lists), then the class's, newest first."""
    bundled = sorted(load_run_infos(str(bundled_models_dir())), key=lambda r: (r.name != DEFAULT_BUNDLED, r.name))
    runs = load_run_infos(str(default_runs_dir()))
    space = PrivateSpace.of(HostSettings.from_env().uploads_dir, owner).runs_dir
    private = load_run_infos(str(space)) if space.is_dir() else []
    return ([ModelChoice(r.path, "bundled", r) for r in bundled]
            + [ModelChoice(r.path, "private", r) for r in private]
            + [ModelChoice(r.path, "yours", r) for r in runs if r.owner == owner]
            + [ModelChoice(r.path, "class", r) for r in runs if r.owner != owner])


SHORT_RUN_STEPS = 50  # a run of fewer steps (a Start stopped at once) is left out of the picker unless asked for
SHOW_SHORT_KEY = "show_short_runs"  # session: the sidebar's "Show short runs" checkbox
SHORT_KEPT = ("running", "diverged", "failed", "interrupted")  # listed however short: how it ended is the news


def is_short(choice: ModelChoice) -> bool:
    """A run that ended before SHORT_RUN_STEPS steps; not one still training, nor one whose ending is the news."""
    steps = choice.info.steps
    return choice.owner != "bundled" and choice.info.status not in SHORT_KEPT and steps is not None \
        and steps < SHORT_RUN_STEPS


def picker_choices(choices: list[ModelChoice], loaded: Path) -> list[ModelChoice]:
    """What the sidebar's picker offers of model_choices: short runs only with "Show short runs" ticked; the loaded
    run stays."""
    if st.session_state.get(SHOW_SHORT_KEY):
        return choices
    return [c for c in choices if not is_short(c) or c.path == Path(loaded)]


def short_runs_ui(choices: list[ModelChoice]) -> None:
    """The checkbox that shows the short runs picker_choices hides, with how many of model_choices are short."""
    hidden = sum(is_short(c) for c in choices)
    st.checkbox("Show short runs", key=SHOW_SHORT_KEY,
                help=f"Runs that ended before {SHORT_RUN_STEPS} steps (a start stopped at once, a tiny test) are left "
                     f"out of the picker unless this is ticked: {hidden} here. Runs that diverged, failed or were "
                     "interrupted stay listed, and a link to a short run still opens it.")


MARKDOWN_SPECIAL = "\\`*_{}[]()<>#+-.!|~$:"  # what Streamlit's Markdown would read as markup, icons or maths


def markdown_text(text: str) -> str:
    """Text a person typed (a run's title), shown in Markdown as they typed it: no links, images or icons."""
    return "".join(f"\\{c}" if c in MARKDOWN_SPECIAL else c for c in text)


def config_mtime(path: str | Path) -> float:
    """When the run folder was last saved: the cache key that makes a re-save reload."""
    return (Path(path) / CONFIG).stat().st_mtime


def add_notice(text: str) -> None:
    """Say once, at the top of the page, what a link asked for and why it was not done."""
    notices = st.session_state.setdefault(NOTICES_KEY, [])
    if text not in notices:
        notices.append(text)


def notices_ui() -> None:
    for text in st.session_state.pop(NOTICES_KEY, []):
        st.warning(text, icon=":material/link:")


def default_run_path() -> Path:
    return bundled_models_dir() / DEFAULT_BUNDLED


def find_run(name: str) -> ModelChoice | None:
    """The run of that folder name among those this browser may pick (bundled first), else None."""
    return next((c for c in model_choices(client_token()) if c.path.name == name), None)


def _run_path(name: str | None) -> Path | None:
    known = st.session_state.get(RUN_KEY)
    if not name:
        return Path(known) if known else default_run_path()
    if known and Path(known).name == name:  # just saved: the 2-second run listing may not have it yet
        return Path(known)
    choice = find_run(name)
    return choice.path if choice else None


def current_run() -> LoadedRun:
    """The run the URL names (?run=), else the default bundled one; a bad name or folder falls back with a notice."""
    name = st.query_params.get(RUN_PARAM)
    path = _run_path(name)
    if path is None:
        add_notice(f"This link names a run, “{name[:80]}”, that this server does not have. Showing the default "
                   "model instead; pick another in the sidebar.")
        path = default_run_path()
    set_run(path)  # also after a page change, which drops ?run= from the address: a reload shows the same run
    try:
        return load_run_cached(str(path), config_mtime(path))
    except (RunLoadError, OSError) as e:
        if path == default_run_path():
            st.error(f"The default bundled model cannot be loaded: {e} Restore models/ from the repository "
                     "(git checkout -- models) or pick another model in the sidebar.")
            st.stop()
        st.error(f"Could not load the model at {path}: {e} Showing the default bundled model instead.")
        set_run(default_run_path())
        return current_run()


def pick_run(value: object) -> None:
    """The picker's choice loaded, if it is one of this browser's runs: a label the picker no longer has (a run
    renamed or its status changed since this browser drew it) comes back as that label, and loads nothing."""
    if any(str(c.path) == value for c in model_choices(client_token())):
        set_run(str(value))


def set_run(path: Path | str) -> None:
    """Load another run: the URL names it (the default leaves the URL clean)."""
    st.session_state[RUN_KEY] = str(path)
    name = run_params().get(RUN_PARAM)
    if st.query_params.get(RUN_PARAM) == name:
        return  # unchanged: writing it again would send the browser the same address on every rerun
    if name is None:
        del st.query_params[RUN_PARAM]
    else:
        st.query_params[RUN_PARAM] = name


def run_params() -> dict[str, str]:
    """The query parameter naming the loaded run: st.switch_page drops every parameter it is not given."""
    path = Path(st.session_state.get(RUN_KEY) or default_run_path())
    return {} if path == default_run_path() else {RUN_PARAM: path.name}


@st.cache_resource(max_entries=16, show_spinner=False)
def _load_shared_samples(path: str, mtime: float) -> ImageDataset | None:
    """Cached because every rerun of a page needs them; the uint8 test images a run carries, read-only."""
    return read_samples(path)


def load_run_samples(path: str, mtime: float) -> ImageDataset | None:
    """The test images a run carries: from the server's cache, except a person's images, which stay in this
    session (the shared cache must not hold anyone's upload)."""
    if not is_private(load_run_cached(path, mtime).config.data):
        return _load_shared_samples(path, mtime)
    return session_cached(PRIVATE_SAMPLES_KEY, (path, mtime), lambda: read_samples(path))  # one run's: up to 12 MB


def page_test_images(run: LoadedRun) -> ImageDataset:
    """The loaded run's test images (at most PAGE_TEST_IMAGES); where its dataset is missing, the sample of
    test images the run carries; else the page stops with the reason."""
    try:
        found = find_run_images(run)
    except RunLoadError as e:
        st.error(str(e))
        st.stop()
    if found.missing is not None:
        st.caption(f"{run.config.data.dataset} is not on this server: these pages show the {len(found.test)} test "
                   "images the run carries with it.")
    return found.test


def find_run_images(run: LoadedRun) -> PageImages:
    """find_page_images with this server's caches (a person's images: this session's)."""
    path, mtime = str(run.path), run_mtime(run)
    return find_page_images(run, load_test_images, lambda: load_run_samples(path, mtime))


@st.cache_resource(max_entries=8, show_spinner="Reading the test rows…")
def _load_shared_rows(data: DataConfig) -> VectorDataset:
    """Cached because generating the bundled vectors takes a second; float32 and read-only, never a person's."""
    return load_dataset(data, "test")


def page_test_rows(run: LoadedRun) -> VectorDataset:
    """The loaded vector run's test rows (a person's file: kept in this session only); else the page stops with
    the reason and what to do."""
    data = dataclasses.replace(run.config.data, n_test=None)  # every test row: they are few and cheap
    try:
        if not is_private(data):
            return _load_shared_rows(data)
        return session_cached(PRIVATE_ROWS_KEY, data, lambda: load_dataset(data, "test"))
    except (DatasetNotFoundError, ValueError, OSError) as e:
        st.error(f"The test rows of this model's vectors cannot be read: {e} Upload the file again on the Your "
                 "data page, or pick another model in the sidebar.")
        st.stop()


def run_mtime(run: LoadedRun) -> float:
    return config_mtime(run.path)
