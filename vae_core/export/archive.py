"""A run folder as a .zip: what the app needs to load it elsewhere (weights, config, metrics, carried test images)
and its training previews.
Unpacked into any runs folder, it loads like a run trained there."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

from vae_core.runs.evaluations import EVALUATIONS
from vae_core.runs.folders import CONFIG, METRICS, WEIGHTS, load_run
from vae_core.runs.previews import PREVIEWS
from vae_core.runs.samples import SAMPLES

RUN_FILES = (WEIGHTS, CONFIG, METRICS, SAMPLES, PREVIEWS, EVALUATIONS)  # the last three where the run has them


def run_zip(run_dir: Path) -> bytes:
    """The run's files under a folder of its name; RunLoadError first if the run does not load (nothing broken is
    handed out)."""
    run_dir = Path(run_dir)
    load_run(run_dir)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in RUN_FILES:
            if (run_dir / name).is_file():
                archive.write(run_dir / name, f"{run_dir.name}/{name}")
    return buf.getvalue()
