"""The Labs page's data choice: a lab on images takes a dataset of the host's or this browser's images; the lab on
vectors takes the bundled vectors or this browser's own (chosen on the Your data page); plus the seed, the seeds and
the step budget."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from ui.my_images import chosen_images, read
from ui.my_vectors import chosen_vectors
from ui.pages import IMAGES
from ui.space import session_cached
from vae_core.config import DataConfig, field_options
from vae_core.data.base import DatasetNotFoundError
from vae_core.data.datasets import load_dataset
from vae_core.data.images.source import UploadRefused
from vae_core.host import HostSettings
from vae_core.labs import Lab
from vae_core.labs.base import LAB_SEEDS, LabSettings, lab_images
from vae_core.labs.rows import LabVectors, lab_vectors
from vae_core.training.sweeps import FAMILY_MAX_SEEDS

MAX_STEPS = 10_000  # a lab's step budget in the form: beyond it, a family takes far longer than a lesson
BUNDLED, MINE = "vectors", "my_vectors"  # the vector lab's data choices
VECTOR_CHOICES = {BUNDLED: "the bundled vectors", MINE: "your vectors"}
PRIVATE_VECTORS_KEY = "lab_private_vectors"  # session: this browser's vectors as a lab reads them
LAB_NORMALIZATION = "zscore"  # the vector lab z-scores every feature, as its question's answer does


@st.cache_data(max_entries=16, show_spinner=False)
def dataset_problem(dataset: str, data_dir: str) -> str | None:
    """Cached: why a dataset cannot be used on this server (None: it can); loading one test image is enough."""
    try:
        load_dataset(DataConfig(dataset=dataset, data_dir=data_dir, n_test=1), "test")
    except (DatasetNotFoundError, ValueError, OSError) as e:
        return str(e)
    return None


def image_datasets() -> list[str]:
    """The datasets a lab on images offers: every dataset of images (vectors have their own lab)."""
    return [d for d in field_options(DataConfig, "dataset") if d != "vectors"]


def settings_ui(lab: Lab) -> LabSettings | None:
    """The data, the seed and the step budget; the data folder is the host's, never the student's. None where
    the chosen data is not there (the reason is shown)."""
    c1, c2, c3, c4 = st.columns(4)
    vectors = lab.kind == "vectors"
    dataset = c1.selectbox("Data", list(VECTOR_CHOICES) if vectors else image_datasets(), key=f"lab_dataset_{lab.id}",
                           format_func=VECTOR_CHOICES.get if vectors else str,
                           help="your vectors: the CSV or .npy this browser chose on the Your data page" if vectors
                           else "sprites are generated in code; the others load from the host's data folder.")
    seed = int(c2.number_input("First seed", 0, 10_000, 0, key=f"lab_seed_{lab.id}",
                               help="data subset, initial weights, batch order and z noise: another seed, other "
                                    "numbers"))
    seeds = int(c3.number_input("Seeds", 1, FAMILY_MAX_SEEDS, LAB_SEEDS, key=f"lab_seeds_{lab.id}",
                                help="the family is trained on this many seeds, from the first; a verdict holds only "
                                     "where every seed agrees in sign and the pooled difference exceeds its noise"))
    steps = int(c4.number_input("Training steps (every model)", 1, MAX_STEPS, lab.budget.steps, step=10,
                                key=f"lab_steps_{lab.id}", help=steps_help(lab)))
    if vectors:
        found = my_lab_vectors(seed) if dataset == MINE else bundled_lab_vectors(seed)
        return LabSettings("vectors", None, seed, steps, seeds=seeds, vectors=found.data,
                           train_images=found.train_rows) if found else None
    if dataset == "images":
        mine = my_lab_images()
        return LabSettings("images", None, seed, steps, images=mine.data, train_images=mine.train_images,
                           seeds=seeds) if mine else None
    data_dir = str(HostSettings.from_env().data_dir)
    return LabSettings(dataset, None if dataset == "sprites" else data_dir, seed, steps, seeds=seeds)


def budget_data(lab: Lab) -> str:
    """The data a lab's step budget was timed on."""
    return "the bundled vectors" if lab.kind == "vectors" else "sprites"


def steps_help(lab: Lab) -> str:
    """What the step budget is and how long the default takes here."""
    b = lab.budget
    return (f"optimizer steps of each model, all in lockstep: the same seed and steps give the same numbers, "
            f"whatever the server's load. {b.steps} steps take about {b.seconds():.0f} s on {budget_data(lab)} "
            f"({b.steps_per_s:g} steps/s measured on a shared 2-core server).")


@dataclass(frozen=True)
class LabImages:
    data: DataConfig  # the person's images as a lab uses them
    train_images: int  # the size of their training split, which a step budget's subset is drawn from


def my_lab_images() -> LabImages | None:
    """This browser's chosen images as a lab uses them and their training split's size; None, with the reason
    shown, where there are none."""
    chosen = chosen_images()
    try:
        r = read(chosen) if chosen else None
    except (UploadRefused, OSError) as e:
        st.error(f"Your images cannot be used: {e}")
        return None
    if r is None:
        st.warning("No images of yours on this server yet: upload a .zip on the Your images page, or pick "
                   "another dataset.")
        st.page_link(IMAGES.path, label=IMAGES.title, icon=IMAGES.icon)
        return None
    st.caption(f"**Your images:** {r.images.summary()}")
    return LabImages(lab_images(r.chosen, len(r.images.test)), len(r.images.train))


@st.cache_data(max_entries=8, show_spinner=False)
def bundled_lab_vectors(seed: int) -> LabVectors:
    """Cached: the bundled vectors are generated in code, the same for everyone (a person's never come here)."""
    return lab_vectors(DataConfig(dataset="vectors", seed=seed, normalization=LAB_NORMALIZATION))


def my_lab_vectors(seed: int) -> LabVectors | None:
    """This browser's chosen vectors as the lab reads them (kept in its session only); None, with the reason and
    what to do shown, where there are none or they cannot be used."""
    chosen = chosen_vectors()
    if chosen is None:
        st.warning("No vectors of yours on this server yet: upload a CSV or .npy on the Your data page, or pick "
                   "the bundled vectors.")
        st.page_link(IMAGES.path, label=IMAGES.title, icon=IMAGES.icon)
        return None
    data = dataclasses.replace(chosen, seed=seed, normalization=LAB_NORMALIZATION)
    try:
        found = session_cached(PRIVATE_VECTORS_KEY, (data, Path(data.vectors).stat().st_mtime),
                               lambda: lab_vectors(data))
    except (DatasetNotFoundError, ValueError, OSError) as e:
        st.error(f"Your vectors cannot be used: {e} Upload them again on the Your data page.")
        return None
    st.caption(f"**Your vectors:** {Path(data.vectors).name}, {found.train_rows:,} training rows, {found.features} "
               f"features; the lab measures {found.data.n_test:,} test rows.")
    return found
