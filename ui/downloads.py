"""Downloads whose bytes are made only when they are clicked (st.download_button with a callable, run on a thread
of its own): a page's pictures as PNG and animated GIF (MP4 where imageio-ffmpeg is installed), a run as a .zip,
a table as CSV. Most views are looked at, not kept: nothing is encoded for them."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from vae_core.export.archive import run_zip
from vae_core.export.encode import animation_bytes, mp4_available, png_bytes
from vae_core.export.training import training_frames, training_still
from vae_core.runs.folders import RunLoadError, read_previews

ICON = ":material/download:"
MIME = {"png": "image/png", "gif": "image/gif", "mp4": "video/mp4", "zip": "application/zip", "csv": "text/csv"}


def download_ui(container: Any, label: str, make: Callable[[], bytes | str], file_name: str, key: str) -> None:
    container.download_button(label, data=make, file_name=file_name, mime=MIME[file_name.rsplit(".", 1)[-1]],
                              key=key, on_click="ignore", icon=ICON)


def pictures_ui(container: Any, stem: str, key: str, still: Callable[[], np.ndarray],
                frames: Callable[[], list[np.ndarray]] | None = None) -> None:
    """PNG of the grid as shown, and (where it moves) its animation, side by side under a figure."""
    row = container.container(horizontal=True)
    download_ui(row, "PNG", lambda: png_bytes(still()), f"{stem}.png", f"{key}_png")
    if frames:
        download_ui(row, "GIF", lambda: animation_bytes(frames(), "gif"), f"{stem}.gif", f"{key}_gif")
    if frames and mp4_available():
        download_ui(row, "MP4", lambda: animation_bytes(frames(), "mp4"), f"{stem}.mp4", f"{key}_mp4")


def run_zip_ui(container: Any, run_dir: Path, key: str = "run_zip") -> None:
    """The run folder as a .zip that loads in any runs folder (weights, config, metrics, carried test images)."""
    download_ui(container, "Download this run (.zip)", lambda: run_zip(run_dir), f"{run_dir.name}.zip", key)


def training_previews_ui(container: Any, run_dir: Path) -> None:
    """The run's test images reconstructed as it trained, as a GIF (a frame a kept step) and a PNG (a few steps),
    where the run kept them; a quiet caption where it did not."""
    try:
        previews = read_previews(run_dir)  # a few hundred kB read from disk; the pictures are made on a click
    except RunLoadError as e:
        container.caption(f"Training previews: {e}")
        return
    if previews is None:
        container.caption("Training previews: none kept with this run (runs trained before they were kept, the "
                          "bundled ones among them). Train it again to keep them.")
        return
    container.markdown(f"**Training previews**: the first {previews.inputs.shape[0]} test images reconstructed as "
                       f"the run trained, {len(previews)} steps from {int(previews.steps[0]):,} to "
                       f"{int(previews.steps[-1]):,}")
    pictures_ui(container, f"{run_dir.name}-training", "training", lambda: training_still(previews),
                lambda: training_frames(previews))
