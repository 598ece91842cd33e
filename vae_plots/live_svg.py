"""Live training views as small static SVG: what a watched run redraws every second.

Why not Plotly: measured in Chromium on the app's two-core machine, redrawing the three-panel Plotly
curves once a second took a quarter of a core (a watched run trained 11% slower); the same curves as
an SVG <img> take a third of that. Once the run ends, the page shows the interactive Plotly figure.
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Sequence

import numpy as np

from .figures import ACCENT, CATEGORICAL, TRAINING_PER, curve_titles

WIDTH, PANEL_H, GAP, LEFT, RIGHT, TOP = 720, 120, 34, 70, 110, 22
GRID, INK, MUTED, ALARM = "#e5e7eb", "#31333f", "#6b7280", "#d62728"


@dataclass(frozen=True)
class Curves:
    """One run's live curves (nats/image per step) and how to draw them."""
    steps: np.ndarray
    panels: tuple[np.ndarray, np.ndarray, np.ndarray]  # recon, KL, ELBO
    colour: str = ACCENT
    label: str = ""  # shown in a sweep's legend


def curves(steps: Sequence[float], recon: Sequence[float], kl: Sequence[float], elbo: Sequence[float],
           colour: str = ACCENT, label: str = "") -> Curves:
    as_array = [np.asarray(v, dtype=np.float64) for v in (steps, recon, kl, elbo)]
    return Curves(as_array[0], tuple(as_array[1:]), colour, label)


def sweep_colour(i: int) -> str:
    """Variant i's colour, the same as run i's on the Compare page."""
    return CATEGORICAL[i % len(CATEGORICAL)]
FONT = 'font-family="sans-serif" font-size="12"'


def _num(v: float) -> str:
    """Tick text: 3 significant digits below 1,000, whole numbers with separators to a million, then e-notation."""
    if not np.isfinite(v):
        return str(v)
    return f"{v:.3g}" if abs(v) < 1e3 else f"{v:,.0f}" if abs(v) < 1e6 else f"{v:.2e}"


def _text(x: float, y: float, s: str, anchor: str = "start", colour: str = MUTED) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colour}" {FONT}>{escape(s)}</text>'


def _polyline(xs: np.ndarray, ys: np.ndarray, colour: str = ACCENT) -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    return f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>'


SETTLE = 0.1  # the y axis fits what follows the first tenth of a run: the first steps' losses dwarf the rest


def _limits(values: list[np.ndarray]) -> tuple[float, float]:
    """The y range of the lines after their first steps (those go off the top, clipped)."""
    kept = [v[int(len(v) * SETTLE):] if len(v) >= 20 else v for v in values]
    finite = np.concatenate([v[np.isfinite(v)] for v in kept])
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)


def _panel(runs: Sequence[Curves], k: int, top: float, title: str) -> list[str]:
    """Panel k of every run on shared axes: a title, a line per run, min and max ticks, the latest values."""
    width = WIDTH - LEFT - RIGHT
    lo, hi = _limits([r.panels[k] for r in runs])
    pad = (hi - lo) * 0.05 or max(abs(hi), 1.0) * 0.05  # the line stays off the frame
    first = min(float(r.steps[0]) for r in runs)
    span = max(max(float(r.steps[-1]) for r in runs) - first, 1.0)

    def y(v: np.ndarray | float) -> np.ndarray | float:
        return top + PANEL_H - (v - lo + pad) / (hi - lo + 2 * pad) * PANEL_H

    clip = f"panel{k}"
    parts = [f'<clipPath id="{clip}"><rect x="{LEFT}" y="{top}" width="{width}" height="{PANEL_H}"/></clipPath>',
             f'<rect x="{LEFT}" y="{top}" width="{width}" height="{PANEL_H}" fill="none" stroke="{GRID}"/>',
             _text(LEFT, top - 6, title, colour=INK), _text(LEFT - 6, y(hi) + 4, _num(hi), "end"),
             _text(LEFT - 6, y(lo) + 4, _num(lo), "end")]
    for r in runs:
        xs, ys = LEFT + (r.steps - first) / span * width, y(np.nan_to_num(r.panels[k], nan=lo))
        line = (_polyline(xs, ys, r.colour) if len(xs) > 1 else  # a line through one point draws nothing
                f'<circle cx="{xs[0]:.1f}" cy="{ys[0]:.1f}" r="3" fill="{r.colour}"/>')
        parts.append(f'<g clip-path="url(#{clip})">{line}</g>')
        parts.append(_text(WIDTH - RIGHT + 8, min(max(ys[-1], top), top + PANEL_H) + 4,
                           _num(float(r.panels[k][-1])), colour=r.colour))
    return parts


def curves_svg(runs: Sequence[Curves], per: str = TRAINING_PER["images"]) -> str:
    """Three stacked panels over the step, reconstruction -log p(x|z), KL and ELBO in nats/image (or `per`), with
    one line per run (a sweep's variants overlaid on shared axes; a legend when there is more than one)."""
    if not runs or any(r.steps.size == 0 for r in runs):
        raise ValueError("curves_svg needs at least one step of every run.")
    parts, titles = [], curve_titles(per)  # the live panels read as the interactive ones that replace them
    for k in range(3):
        parts += _panel(runs, k, TOP + k * (PANEL_H + GAP), titles[k])
    bottom = TOP + 3 * PANEL_H + 2 * GAP
    first, last = min(int(r.steps[0]) for r in runs), max(int(r.steps[-1]) for r in runs)
    parts += [_text(LEFT, bottom + 16, f"step {first:,}"), _text(WIDTH - RIGHT, bottom + 16, f"step {last:,}", "end")]
    if len(runs) > 1:
        parts += _legend(runs, bottom + 36)
    return _svg(WIDTH, bottom + 24 + (20 * ((len(runs) + 2) // 3) + 12 if len(runs) > 1 else 0), parts)


def _legend(runs: Sequence[Curves], top: float) -> list[str]:
    parts = []
    for i, r in enumerate(runs):
        x, y = LEFT + (i % 3) * 200, top + (i // 3) * 20
        parts += [f'<rect x="{x}" y="{y - 9}" width="14" height="4" fill="{r.colour}"/>', _text(x + 20, y, r.label)]
    return parts


def training_curves_svg(steps: Sequence[float], recon: Sequence[float], kl: Sequence[float],
                        elbo: Sequence[float], per: str = TRAINING_PER["images"]) -> str:
    """One run's three panels (see curves_svg)."""
    return curves_svg([curves(steps, recon, kl, elbo)], per)


def kl_bars_svg(kl_per_dim: Sequence[float], threshold: float) -> str:
    """KL per latent dimension (nats), bars under `threshold` in red: the dimensions that carry nothing."""
    kl = np.nan_to_num(np.asarray(kl_per_dim, dtype=np.float64), nan=0.0)
    width, height, left, bottom = 360, 200, 44, 24
    top_value = max(float(kl.max()), threshold, 1e-9)
    slot = (width - left) / len(kl)
    parts = [_text(left - 6, 12, _num(top_value), "end"), _text(left - 6, height - bottom, "0", "end"),
             f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="{GRID}"/>']
    for d, value in enumerate(kl):
        h = value / top_value * (height - bottom - 8)
        colour = ALARM if value < threshold else ACCENT
        parts.append(f'<rect x="{left + d * slot + slot * 0.1:.1f}" y="{height - bottom - h:.1f}" '
                     f'width="{max(slot * 0.8, 0.5):.1f}" height="{h:.1f}" fill="{colour}"/>')
    labels = [0, len(kl) - 1] if len(kl) > 12 else range(len(kl))
    parts += [_text(left + (d + 0.5) * slot, height - 6, f"z{d}", "middle") for d in labels]
    return _svg(width, height, parts)


def _svg(width: float, height: float, parts: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}">{"".join(parts)}</svg>')
