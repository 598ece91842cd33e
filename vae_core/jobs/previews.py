"""The previews a job keeps to save with its run (runs/previews.py): every preview it sends the page, thinned
evenly as training goes on, after a resumed run's earlier ones."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from vae_core.jobs.progress import History, Preview
from vae_core.runs.folders import RunLoadError, read_previews
from vae_core.runs.previews import MAX_PREVIEW_FRAMES, TrainingPreviews

log = logging.getLogger(__name__)


class PreviewKeeper:
    """At most MAX_PREVIEW_FRAMES previews, uniform in order from the first, always with the latest."""

    def __init__(self) -> None:
        self._kept: History[Preview] = History(MAX_PREVIEW_FRAMES - 1)  # History keeps its cap, plus the latest

    def continue_from(self, run_dir: Path) -> None:
        """A resumed run's saved previews come first; a bad file is logged and replaced by this job's previews."""
        try:
            earlier = read_previews(run_dir)
        except RunLoadError as e:
            log.warning("the earlier previews are not kept: %s", e)
            return
        if earlier is not None:
            self._kept.extend([Preview(int(s), earlier.inputs, r) for s, r in zip(earlier.steps, earlier.recons)])

    def add(self, preview: Preview) -> None:
        """Keep it, unless its step is kept already (the final save's preview of a step just previewed)."""
        points = self._kept.points()
        if not points or preview.step > points[-1].step:
            self._kept.append(preview)

    def saved(self) -> TrainingPreviews | None:
        """What the run folder keeps; None before the first preview."""
        points = self._kept.points()
        if not points:
            return None
        return TrainingPreviews(np.array([p.step for p in points], dtype=np.int64), points[0].input_pixels,
                                np.stack([p.recon_pixels for p in points]))
