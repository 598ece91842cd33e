"""The Your data page's parts: where the images come from, how they become tensors, what they look like before
training; this browser's private runs and the button that deletes all of it (its vectors: ui/parts/vectors)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from ui.form_fields import set_form_values
from ui.jobs import load_scheduler
from ui.my_images import Read, choose, chosen_images, forget, last_read, read
from ui.my_vectors import forget_vectors
from ui.pages import LABS, TRAIN
from ui.session import client_token
from ui.space import host, in_host_folder, my_space, save_upload
from ui.state import RUN_KEY, default_run_path, load_run_infos, run_params, set_run
from vae_core.config import DataConfig, ModelConfig, Normalization, OutputActivation, field_info, field_options
from vae_core.data.images.dataset import IMAGE_OPTIONS
from vae_core.data.images.private import save_for_everyone
from vae_core.data.images.source import REASON_WORDS, UploadRefused
from vae_core.data.normalize import fit_normalizer
from vae_core.runs.listing import list_runs
from vae_plots.image_figures import preview, reach_rows, values_histogram

SAVED_KEY = "images_saved_upload"  # session: the uploader's file id already copied into the private space
SHOWN_FILES = 1000  # rows of the skipped-files table
DELETE_LABEL = "Delete my data and private runs now"


def privacy_ui() -> None:
    hours = host().upload_ttl_s / 3600
    st.caption(f"Your images and vectors stay on this server in a folder only this browser can open: its key is this "
               f"browser's secret identity cookie, never in the page's address, so any link to a view leaves it out. "
               f"They are deleted when you press *{DELETE_LABEL}*, or {hours:g} hours after this browser last used "
               "them. Runs you train on them are listed only in this browser, unless you save one for everyone.")


def source_ui() -> DataConfig | None:
    """The upload (or a host folder); returns the images this browser has chosen, if any."""
    mb = host().max_upload_mb
    up = st.file_uploader(f"A .zip of your images (at most {mb} MB)", type=["zip"], key="images_upload",
                          max_upload_size=mb, help="PNG, JPEG, BMP, WebP, GIF or TIFF, in class folders "
                          "(cat/001.png), in train/ and test/ folders holding class folders, or all in one folder.")
    if up is not None and st.session_state.get(SAVED_KEY) != up.file_id:
        try:
            path = save_upload(up)
        except UploadRefused as e:
            st.error(str(e))
        else:
            st.session_state[SAVED_KEY] = up.file_id
            choose(_with_settings(DataConfig(dataset="images", images=str(path))))
    if host().image_folders:
        folder_ui()
    return chosen_images()


def folder_ui() -> None:
    folders = ", ".join(f"`{f}`" for f in host().image_folders)
    c1, c2 = st.columns([4, 1])
    typed = c1.text_input("Or a folder (or .zip) on this server", key="images_folder",
                          help=f"The host opened these folders to browsers: {folders}.")
    if c2.button("Use it", key="images_folder_use") and typed:
        if not in_host_folder(typed) or not Path(typed).exists():
            st.error(f"{typed} is not inside a folder the host opened to browsers ({folders}).")
        else:
            choose(_with_settings(DataConfig(dataset="images", images=str(Path(typed).absolute()))))


def _with_settings(data: DataConfig) -> DataConfig:
    keys = {name: st.session_state.get(f"images_{name}") for name in IMAGE_OPTIONS}
    return dataclasses.replace(data, **{k: v for k, v in keys.items() if v is not None})


def settings_ui(data: DataConfig) -> DataConfig:
    """How images become tensors: size, squaring, grey or RGB, orientation, and the test share."""
    cols = st.columns(5)
    values = {}
    for col, name in zip(cols, IMAGE_OPTIONS[:4]):  # the four choices; the test share is a number
        options = field_options(DataConfig, name)
        spec = field_info(f"data.{name}").spec
        values[name] = col.selectbox(spec.label, options, index=options.index(getattr(data, name)),
                                     key=f"images_{name}", help=spec.help)
    spec = field_info("data.test_share").spec
    last = last_read()
    by_folders = last is not None and last.data.images == data.images and last.images.split_by == "folders"
    values["test_share"] = cols[4].number_input(spec.label, spec.lo, spec.hi, float(data.test_share), spec.step,
                                                key="images_test_share", disabled=by_folders,
                                                help="these images' train/ and test/ folders are their split"
                                                if by_folders else spec.help)
    chosen = dataclasses.replace(data, **values)
    choose(chosen)
    return chosen


def read_ui(data: DataConfig) -> Read | None:
    try:
        return read(data)
    except (UploadRefused, OSError) as e:
        st.error(f"{e}")
        return None


def summary_ui(r: Read) -> None:
    skipped = r.images.skipped
    (st.warning if skipped else st.success)(r.images.summary())
    split = "its train/ and test/ folders" if r.images.split_by == "folders" else \
        f"a seeded {r.data.test_share:.0%} of the images (data seed {r.data.seed})"
    st.caption(f"Test split: {split}. The images are {'grey' if r.images.color == 'grey' else 'in colour'}; "
               f"they are used as {r.chosen.color}, {r.data.image_size} × {r.data.image_size} pixels.")
    if skipped:
        with st.expander(f"The {len(skipped):,} skipped files, and why"):
            st.dataframe([{"file": o.name, "reason": REASON_WORDS[o.skip][0], "detail": o.detail}
                          for o in skipped[:SHOWN_FILES]], width="stretch", hide_index=True)


def look_ui(r: Read) -> None:
    c1, c2 = st.columns([3, 2])
    c1.plotly_chart(preview(r.images.train), key="images_preview", config={"displayModeBar": False})
    counts = [{"class": name, "train": c["train"], "test": c["test"]} for name, c in r.images.class_counts().items()]
    c2.dataframe(counts, width="stretch", hide_index=True, height=min(400, 36 + 35 * len(counts)))


def stats_ui(r: Read) -> None:
    s = r.stats
    st.markdown("**What each normalization does to these images** (the training split)")
    st.write("Per channel, as pixels in [0, 1]: mean " + ", ".join(f"{m:.4f}" for m in s.mean) + "; std "
             + ", ".join(f"{v:.4f}" for v in s.std) + ".")
    share = s.outside["zscore"]["tanh"]
    (st.warning if share > 0 else st.success)(
        f"Z-scored, **{share:.1%} of these images' values lie outside (−1, 1)**: a tanh output can never produce "
        "them. A linear output, or [−1, 1] scaling, can.")
    st.dataframe(reach_rows(s.outside, s.value_range), width="stretch", hide_index=True)
    st.caption("Each cell: the share of the normalized values the output activation cannot produce.")
    c1, c2 = st.columns(2)
    norms, acts = field_options(DataConfig, "normalization"), field_options(ModelConfig, "output_activation")
    norm: Normalization = c1.selectbox("Normalization", norms, index=norms.index("zscore"), key="images_hist_norm")
    act: OutputActivation = c2.selectbox("Output activation", acts, index=acts.index("tanh"), key="images_hist_act")
    normalizer = fit_normalizer(norm, r.images.train.images)
    st.plotly_chart(values_histogram(r.images.train.images, normalizer, act), key="images_hist",
                    config={"displayModeBar": False})


def _train_on_them() -> None:
    set_form_values({"cfg_dataset": "images", "cfg_n_train": None})


def next_ui() -> None:
    c1, c2 = st.columns(2)
    if c1.button("Train on these images", key="images_train", type="primary", on_click=_train_on_them):
        st.switch_page(TRAIN.path, query_params=run_params())
    c2.page_link(LABS.path, label="Or run a lab on them (pick “images” as the data)", icon=LABS.icon)


def private_runs_ui() -> None:
    runs = list_runs(my_space().runs_dir) if my_space().runs_dir.is_dir() else []
    if not runs:
        return
    st.markdown("**Your private runs** (on your images or vectors: only this browser lists them)")
    for r in runs:
        c1, c2 = st.columns([4, 1])
        c1.write(f"`{r.name}` · {r.status} · {r.summary()}")
        if c2.button("Save for everyone", key=f"images_share_{r.name}",
                     help="Move it to the server's runs: every browser's model picker lists it, with the test "
                          "images it carries."):
            _share(r.path)


def _share(path: Path) -> None:
    try:
        target = save_for_everyone(path, host().runs_dir)
    except (OSError, FileExistsError) as e:
        st.error(f"Could not save it for everyone: {e}")
        return
    load_run_infos.clear()
    if st.session_state.get(RUN_KEY) == str(path):
        set_run(target)
    st.rerun()


def delete_ui() -> None:
    if not st.button(DELETE_LABEL, key="images_delete", help="Your uploaded images and vectors, and the runs "
                     "trained on them (unless saved for everyone)."):
        return
    if any(r.owner == client_token() for r in load_scheduler().active()):
        st.error("A training job of yours is still running or queued: stop it first, then delete.")
        return
    loaded = st.session_state.get(RUN_KEY)
    if loaded and my_space().holds(loaded):  # the loaded run is about to go: the default takes its place
        set_run(default_run_path())
    forget()  # the whole space: images, vectors and private runs
    forget_vectors()
    load_run_infos.clear()  # the uploaders' saved file ids stay: a file they still show is not saved again
    st.rerun()


def images_ui() -> None:
    """The images part of the Your data page."""
    chosen = source_ui()
    if chosen is None:
        st.info("Upload a .zip of your images to see them here, with what each normalization and output activation "
                "will do to them, before you train.")
        return
    r = read_ui(settings_ui(chosen))
    if r is not None:
        summary_ui(r)
        look_ui(r)
        stats_ui(r)
        next_ui()


def space_ui() -> None:
    """This browser's private runs and the delete button, once it has uploaded anything."""
    if my_space().exists():
        private_runs_ui()
        delete_ui()
