"""A lab's outcome as a table, reconstruction rows and a small report (Markdown with its figures as PNG)
that names the configuration and seeds, so that someone else can rerun it."""
from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vae_core.data.base import pixels
from vae_core.jobs.progress import to_pixels
from vae_core.labs.base import Column, LabRun, LabSettings, Measured, Variant
from vae_core.labs.evidence import evidence, verdict
from vae_core.labs.measure import Family, first_run, load_family
from vae_core.labs.run import LabOutcome
from vae_core.model.paired import DISTINGUISHABLE_SE

N_SHOWN = 8  # test images per reconstruction row
Rows = list[tuple[str, np.ndarray]]  # (caption, (n, H, W, C) uint8) picture rows
BEST_NOTE = (f"★ the best of a column; in a column measured image by image, only where it beats every other variant by "
             f"more than {DISTINGUISHABLE_SE:g} paired standard errors, on every seed")
VERDICT_MARK = {"agrees": "✔ agrees with the textbook", "disagrees": "✘ disagrees with the textbook",
                "not settled": "○ not settled at this budget", "measured": "", "missing": "⚠ missing"}


def format_value(column: Column, value: float | None) -> str:
    if value is None:
        return "—"
    if column.fmt == "d":  # a count; averaged over seeds it may not be whole
        return f"{int(value)}" if float(value).is_integer() else f"{value:.1f}"
    return format(value, column.fmt)


def best_keys(outcome: LabOutcome, column: Column) -> set[str]:
    """The variants holding the best value of a column (none for a column without a direction)."""
    values = {k: m.value(column.key) for k, m in outcome.measured.items()}
    values = {k: v for k, v in values.items() if v is not None}
    if column.better == "neither" or len(values) < 2:
        return set()
    best = (max if column.better == "higher" else min)(values.values())
    keys = {k for k, v in values.items() if v == best}
    if column.paired is None or len(keys) > 1:
        return keys
    return keys if _settled_best(outcome.measured, keys.pop(), column) else set()


def _settled_best(measured: dict[str, Measured], key: str, column: Column) -> bool:
    """Whether the best beats every other variant by a settled paired difference (every seed, beyond 2 SE)."""
    expected = "positive" if column.better == "higher" else "negative"
    found = [evidence(measured[key], m, column.paired) for k, m in measured.items() if k != key]
    return all(e is not None and verdict(e, expected) == "agrees" for e in found)


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]  # "variant", then the lab's columns
    rows: tuple[tuple[str, ...], ...]  # formatted cells, the best of a column marked with "★"


def table(outcome: LabOutcome) -> Table:
    """The results table, one row per measured variant, in the design's order."""
    bests = [best_keys(outcome, c) for c in outcome.lab.columns]
    rows = []
    for v in outcome.variants:
        m = outcome.measured.get(v.key)
        if m is None:
            rows.append((v.label, *("—" for _ in outcome.lab.columns)))
            continue
        rows.append((v.label, *(_cell(c, m, v.key in best) for c, best in zip(outcome.lab.columns, bests))))
    return Table(("variant", *(c.label for c in outcome.lab.columns)), tuple(rows))


def _cell(column: Column, m: Measured, best: bool) -> str:
    return format_value(column, m.value(column.key)) + (" ★" if best else "")


@torch.no_grad()
def reconstruction_rows(outcome: LabOutcome, family: Family, n: int = N_SHOWN) -> Rows:
    """("input", images) then (variant label, its reconstructions from the posterior mean) for the same n
    test images; each (n, H, W, C) uint8."""
    rows: Rows = []
    if outcome.settings.kind == "vectors":  # rows of numbers are no pictures: the lab's table and chart show them
        return rows
    for v, lab_run in _pictured(outcome, family):
        if not rows:
            rows.append(("input", _to_hwc(pixels(lab_run.images[:n]))))
        model = lab_run.run.model
        x_hat = model.decode(model.encode(lab_run.x[:n])[0])
        rows.append((v.label, _to_hwc(lab_run.run.normalizer.inverse(x_hat))))
    return rows


@torch.no_grad()
def picture_rows(outcome: LabOutcome, family: Family) -> Rows:
    """The lab's own pictures (Lab.pictures) of each measured variant, as (caption, (n, H, W, C) uint8) rows."""
    if outcome.lab.pictures is None:
        return []
    one = len(outcome.measured) == 1
    return [(caption if one else f"{v.label}: {caption}", _to_hwc(images))
            for v, lab_run in _pictured(outcome, family) for caption, images in outcome.lab.pictures(lab_run)]


def _pictured(outcome: LabOutcome, family: Family) -> list[tuple[Variant, LabRun]]:
    """The measured variants, in the design's order, each with its run on the first seed (the one pictured)."""
    return [(v, run) for v in outcome.variants if v.key in outcome.measured and (run := first_run(family, v.key))]


def _to_hwc(p: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> (N, H, W, C) uint8."""
    return to_pixels(p).transpose(0, 2, 3, 1)


def row_strip(images: np.ndarray, zoom: int = 2, gap: int = 2) -> np.ndarray:
    """(n, H, W, C) -> one (H*zoom, n*(W*zoom + gap), 3) picture, images side by side on white."""
    big = images.repeat(zoom, 1).repeat(zoom, 2)
    if big.shape[-1] == 1:
        big = big.repeat(3, -1)
    n, h, w, _ = big.shape
    strip = np.full((h, n * (w + gap) - gap, 3), 255, np.uint8)
    for i, image in enumerate(big):
        strip[:, i * (w + gap):i * (w + gap) + w] = image
    return strip


def png(picture: np.ndarray) -> bytes:
    from PIL import Image  # torchvision's dependency; only the report writes PNGs

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    return buffer.getvalue()


def markdown(outcome: LabOutcome, figures: dict[str, str]) -> str:
    """The report's text; figures: caption -> PNG file name beside it."""
    lab, s = outcome.lab, outcome.settings
    t = table(outcome)
    lines = [f"# {lab.title}", "", f"> {lab.question}", "", f"**The textbook answer.** {lab.textbook}", "",
             "## What this run measured", ""]
    lines += [f"- {f.text}" + (f" *({VERDICT_MARK[f.verdict]})*" if VERDICT_MARK[f.verdict] else "")
              for f in outcome.findings]
    lines += ["", "## Measurements", "", "| " + " | ".join(t.header) + " |",
              "|" + "---|" * len(t.header)]
    lines += ["| " + " | ".join(row) + " |" for row in t.rows]
    lines += ["", f"{BEST_NOTE}. Test metrics from each run's own evaluation, {averaged_words(s)}; "
              f"{unit_words(s)}. A verdict "
              f"holds only where the paired difference over the same test {s.kind if s.kind == 'images' else 'rows'} "
              f"exceeds {DISTINGUISHABLE_SE:g} "
              "standard errors and every seed agrees in its sign; else it is not settled."]
    for caption, name in figures.items():
        lines += ["", f"## {caption}", "", f"![{caption}]({name})"]
    lines += ["", "## Rerun it", "", f"Dataset `{s.dataset}`, {seeds_words(s)} (data, initial weights, batch order "
              f"and z noise), {s.steps} optimizer steps of every variant, in lockstep on each seed (the same settings "
              "give the same numbers, bit for bit):", "", "```",
              s.command(lab.id), "```", "", "Each variant's configuration:", ""]
    for i, v in enumerate(outcome.variants):
        dirs = outcome.run_dirs[i::len(outcome.variants)]
        folders = ", ".join(f"`{Path(d).name}`" if d else "not saved" for d in dirs)
        lines += [f"- **{v.label}** (runs {folders}): `{json.dumps(v.config.to_dict(), separators=(',', ':'))}`"]
    return "\n".join(lines) + "\n"


def averaged_words(s: LabSettings) -> str:
    """"on seed 0" / "the mean over seeds 0, 1 and 2"."""
    return f"on {seeds_words(s)}" if s.seeds == 1 else f"the mean over {seeds_words(s)}"


def unit_words(s: LabSettings) -> str:
    """What the table's nats are per: an image, or a raw row of the vectors."""
    return "nats per raw row (the normalization's log-Jacobian included)" if s.kind == "vectors" else "nats per image"


def seeds_words(s: LabSettings) -> str:
    """"seeds 0, 1 and 2" / "seed 0": what the numbers are averaged over."""
    seeds = s.seed_list
    return f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {', '.join(map(str, seeds[:-1]))} and {seeds[-1]}"


RECONSTRUCTIONS = "reconstructions.png"
PICTURES = "pictures.png"


def stacked(rows: Rows) -> np.ndarray:
    """Rows of images, one strip each, stacked on white into one picture."""
    strips = [row_strip(images) for _, images in rows]
    width = max(s.shape[1] for s in strips)
    return np.concatenate([np.pad(s, ((0, 4), (0, width - s.shape[1]), (0, 0)), constant_values=255)
                           for s in strips])


def report_files(outcome: LabOutcome, rows: Rows, pictures: Rows) -> dict[str, bytes]:
    """report.md and its PNG figures, by file name (rows, pictures: reconstruction_rows and picture_rows)."""
    files: dict[str, bytes] = {}
    figures = {}
    if rows:
        files[RECONSTRUCTIONS] = png(stacked(rows))
        figures["Reconstructions (rows: " + ", ".join(label for label, _ in rows) + ")"] = RECONSTRUCTIONS
    if pictures:
        files[PICTURES] = png(stacked(pictures))
        figures["Pictures (rows: " + "; ".join(label for label, _ in pictures) + ")"] = PICTURES
    files["report.md"] = markdown(outcome, figures).encode("utf-8")
    return files


def write_report(outcome: LabOutcome, folder: Path) -> Path:
    """Write report.md and its figures into folder (created); returns report.md's path."""
    folder.mkdir(parents=True, exist_ok=True)
    family = load_family(outcome.variants, outcome.run_dirs, outcome.settings.seed_list)
    files = report_files(outcome, reconstruction_rows(outcome, family), picture_rows(outcome, family))
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder / "report.md"


def report_zip(files: dict[str, bytes], folder: str) -> bytes:
    """A report's files as one zip under `folder`, for a browser's download."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(f"{folder}/{name}", data)
    return buffer.getvalue()
