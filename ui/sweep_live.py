"""A running sweep on the Train page: a status line, overlaid curves and a preview row per variant, each
variant in its own colour (the colour it keeps in Compare)."""
from __future__ import annotations

import re
from html import escape

import streamlit as st

from vae_core.jobs.progress import JobSnapshot, VariantSnapshot, thin
from vae_plots import views
from vae_plots.figures import TRAINING_PER
from vae_plots.live_svg import curves, curves_svg, sweep_colour

PREVIEW_ZOOM = 2  # a row per variant: smaller than a single run's preview, so six fit on a projector
STATUS_WORD = {"starting": "starting", "running": "training", "finished": "finished", "stopped": "stopped",
               "diverged": "⚠ diverged", "failed": "⚠ failed", "interrupted": "⚠ interrupted", "refused": "⊘ refused"}


def swatch(i: int) -> str:
    """A square in variant i's colour, for a line of HTML."""
    return f'<span style="color:{sweep_colour(i)}">■</span>'


SEED_SUFFIX = re.compile(r" · seed \d+$")  # a lab family's label on one of its seeds (Lab.family)


def design_slots(labels: list[str]) -> list[int]:
    """Each variant's place in its design: a lab's variant keeps one colour on every seed."""
    bases = [SEED_SUFFIX.sub("", label) for label in labels]
    return [list(dict.fromkeys(bases)).index(b) for b in bases]


def variant_line(colour: int, v: VariantSnapshot) -> str:
    """One variant: its colour, label, state, latest ELBO and (refused, diverged) why."""
    last = v.history[-1] if v.history else None
    parts = [f"{swatch(colour)} <b>{escape(v.label)}</b> — {STATUS_WORD.get(v.status, v.status)}"]
    if last is not None:
        parts.append(f"step {last.step:,} · ELBO {last.elbo_nats:,.1f} nats")
    if v.message and v.status in ("refused", "diverged", "failed", "interrupted"):
        parts.append(escape(v.message))
    return " · ".join(parts)


def variants_status_ui(snap: JobSnapshot) -> None:
    slots = design_slots([v.label for v in snap.variants])
    with st.container(key="sweep_status"):
        for slot, v in zip(slots, snap.variants):
            st.markdown(variant_line(slot, v), unsafe_allow_html=True)


def sweep_curves_svg(snap: JobSnapshot, points: int) -> str | None:
    """Every variant's curves overlaid (None before any variant has a step)."""
    slots = design_slots([v.label for v in snap.variants])
    runs = [curves([m.step for m in h], [m.recon_nats for m in h], [m.kl_nats for m in h],
                   [m.elbo_nats for m in h], sweep_colour(slot), v.label)
            for slot, v in zip(slots, snap.variants) if (h := thin(v.history, points))]
    kind = snap.sweep.configs[0].data.kind if snap.sweep and snap.sweep.configs else "images"
    return curves_svg(runs, TRAINING_PER[kind]) if runs else None


def sweep_live_ui(snap: JobSnapshot, points: int) -> None:
    """The whole live view of a sweep (redrawn by the page's polling fragment)."""
    variants_status_ui(snap)
    svg = sweep_curves_svg(snap, points)
    left, right = st.columns([3, 2])
    if svg:
        with left.container(key="train_curves"):
            st.image(svg)
    with right:
        st.markdown("**Test reconstructions** (per variant: input over reconstruction)")
        slots = design_slots([v.label for v in snap.variants])
        for i, (slot, v) in enumerate(zip(slots, snap.variants)):
            if v.preview is not None and slot not in slots[:i]:  # a lab's variant on its first seed
                st.markdown(f"{swatch(slot)} {escape(v.label)} · step {v.preview.step:,}", unsafe_allow_html=True)
                st.image(views.preview_picture(v.preview, PREVIEW_ZOOM))
