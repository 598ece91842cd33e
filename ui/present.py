"""Presentation mode and hide= flags: a view for a projector, and a simpler view an instructor hands out by link.

`?present=1` enlarges the type and the figures and opens with the sidebar collapsed to its toggle; `?hide=a,b`
hides the named parts of the page (HIDEABLE, the one table of names; the README lists it). Both live in the address,
and this session keeps them across page changes, which drop every parameter a page switch is not given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from ui.family import TOGGLE_KEY
from ui.sidebar import PICKER_KEY
from ui.state import add_notice
from vae_plots.figures import FONT_SIZE, TICK_FONT_SIZE

PRESENT_PARAM, HIDE_PARAM = "present", "hide"
ON, OFF = "1", "0"  # present=1 turns it on; present=0 is the same as no present at all
VIEW_KEY = "link_view"  # session: {param: value} of present= and hide=, put back after a page change drops them
SWITCH_KEY = "present_switch"  # widget: the sidebar's switch


@dataclass(frozen=True)
class Hideable:
    """A part of the page that hide= can name: widgets by key (each renders inside `.st-key-<key>`), or a group of
    Streamlit's elements by CSS selector."""
    words: str  # what it hides, as the README says it
    keys: tuple[str, ...] = ()
    selectors: tuple[str, ...] = ()

    def css(self) -> tuple[str, ...]:
        return tuple(f".st-key-{k}" for k in self.keys) + self.selectors


_INPUTS = ("stSlider", "stNumberInput", "stSelectbox", "stMultiSelect", "stTextInput", "stCheckbox", "stRadio",
           "stButtonGroup", "stButton", "stFileUploader", "stDownloadButton")
HIDEABLE: dict[str, Hideable] = {  # hide= names, as a link spells them
    "sidebar": Hideable("the sidebar and the toggle that opens it",
                        selectors=("[data-testid='stSidebar']", "[data-testid='stExpandSidebarButton']",
                                   "[data-testid='stSidebarCollapsedControl']")),
    "controls": Hideable("every slider, box, switch and button of the page itself (the sidebar's stay)",
                         selectors=tuple(f"[data-testid='stMain'] [data-testid='{t}']" for t in _INPUTS)),
    "downloads": Hideable("every download button (PNG, GIF, MP4, CSV, the run's .zip)",
                          selectors=("[data-testid='stDownloadButton']",)),
    "captions": Hideable("the small grey explanations under titles and figures",
                         selectors=("[data-testid='stCaptionContainer']",)),
    "model": Hideable("the sidebar's model picker", keys=(PICKER_KEY,)),
    "family": Hideable("the sidebar's family toggle",
                       selectors=(f"[class*='st-key-{TOGGLE_KEY.split('{')[0]}']",)),  # one toggle a field
    "images": Hideable("how many test images Reconstructions shows", keys=("recon_n",)),
    "start": Hideable("the first test image shown (Reconstructions, Compare)", keys=("recon_start", "compare_start")),
    "anchor": Hideable("the test image a traversal or the posterior samples start from",
                       keys=("traverse_anchor", "compare_anchor", "samples_index")),
    "range": Hideable("the traversal's range", keys=("traverse_range",)),
    "dims": Hideable("how many dimensions the traversal shows", keys=("traverse_dims",)),
    "endpoints": Hideable("the interpolation's images A and B", keys=("interp_a", "interp_b")),
    "seed": Hideable("the seeds of the prior samples and the posterior samples", keys=("prior_seed", "samples_seed")),
    "colour": Hideable("the latent map's colouring", keys=("map_color",)),
    "iwae": Hideable("Diagnostics' k and test images of the IWAE bound", keys=("iwae_k", "iwae_n")),
    "runs": Hideable("Compare's choice of runs", keys=("compare_pick", "compare_family")),
    "scale": Hideable("Compare's vertical axis of the training curves", keys=("compare_scale",)),
}


@dataclass(frozen=True)
class Screen:
    """The type for a screen at least min_width_px wide: Streamlit sizes its text and spacing in rem."""
    min_width_px: int
    root_px: int  # the root font size: 16 in Streamlit's own styles


@dataclass(frozen=True)
class PresentSizes:
    """Presentation mode's sizes, one table."""
    screens: tuple[Screen, ...]  # narrowest first: a 1024×768 projector, then a 1920×1080 one
    figure_font_scale: float  # every font of a Plotly figure
    figure_height_scale: float
    figure_max_height_px: int  # whole on a 768-pixel-high screen, under the page's header
    side_padding_rem: float  # the main area's side margins (Streamlit's wide layout takes 5rem a side)
    top_padding_rem: float  # above the title (Streamlit's: 6rem)


SIZES = PresentSizes(screens=(Screen(0, 21), Screen(1600, 26)), figure_font_scale=1.35, figure_height_scale=1.2,
                     figure_max_height_px=660, side_padding_rem=1.5, top_padding_rem=3)


@dataclass(frozen=True)
class View:
    """What the link asks of the page's look."""
    present: bool
    hide: tuple[str, ...]  # names from HIDEABLE


def link_view() -> View:
    """present= and hide= from the address; where a page change dropped them, this session's, put back there."""
    kept = st.session_state.setdefault(VIEW_KEY, {})
    for param in (PRESENT_PARAM, HIDE_PARAM):
        if param in st.query_params:
            kept[param] = st.query_params[param]
    view = View(_present(kept), _hidden(kept))
    _write(PRESENT_PARAM, ON if view.present else None)
    _write(HIDE_PARAM, ",".join(view.hide) or None)
    return view


def _present(kept: dict[str, str]) -> bool:
    raw = kept.get(PRESENT_PARAM, OFF)
    if raw not in (ON, OFF):
        add_notice(f"This link's present={raw[:20]!r} is not 1 (presentation mode) or 0 (off); showing it off.")
        kept[PRESENT_PARAM] = raw = OFF
    return raw == ON


def _hidden(kept: dict[str, str]) -> tuple[str, ...]:
    names = [n.strip().lower() for n in kept.get(HIDE_PARAM, "").split(",") if n.strip()]
    unknown = [n for n in names if n not in HIDEABLE]
    if unknown:
        add_notice(f"This link asks to hide {', '.join(repr(n[:30]) for n in unknown[:5])}, which VAE Lab does not "
                   f"know; it can hide {', '.join(HIDEABLE)}.")
    known = tuple(dict.fromkeys(n for n in names if n in HIDEABLE))
    kept[HIDE_PARAM] = ",".join(known)
    return known


def _write(param: str, value: str | None) -> None:
    """Only a change: writing the same address again would send it to the browser on every rerun."""
    if st.query_params.get(param) == value:
        return
    if value is None:
        del st.query_params[param]
    else:
        st.query_params[param] = value


def presenting() -> bool:
    """Whether this run draws for a projector (link_view has read the link first)."""
    return st.session_state.get(VIEW_KEY, {}).get(PRESENT_PARAM) == ON


def view_css(view: View) -> str:
    """Our own constant CSS for the view (nothing a user wrote: hide= names only pick rows of HIDEABLE)."""
    rules = [f"{', '.join(HIDEABLE[n].css())} {{ display: none !important; }}" for n in view.hide]
    if view.present:
        rules += [_screen_css(s) for s in SIZES.screens]
        rules.append(f"[data-testid='stMainBlockContainer'] {{ padding: {SIZES.top_padding_rem}rem "
                     f"{SIZES.side_padding_rem}rem; }}")
    return "\n".join(rules)


def _screen_css(screen: Screen) -> str:
    rule = f"html {{ font-size: {screen.root_px}px; }}"
    return f"@media (min-width: {screen.min_width_px}px) {{ {rule} }}" if screen.min_width_px else rule


def view_style_ui(view: View) -> None:
    css = view_css(view)
    if css:
        st.html(f"<style>{css}</style>")


def present_switch_ui(view: View) -> None:
    """The sidebar's switch, bound to present=1 in the address."""
    st.session_state[SWITCH_KEY] = view.present  # in step with the link, whatever set it
    st.sidebar.toggle("Presentation mode", key=SWITCH_KEY, on_change=_switched,
                      help="Large type and figures for a projector, the sidebar folded away (the address says "
                           "present=1, so a link opens it so). hide= in the address hides named controls: see the "
                           "README.")


def _switched() -> None:
    st.session_state.setdefault(VIEW_KEY, {})[PRESENT_PARAM] = ON if st.session_state[SWITCH_KEY] else OFF
    _write(PRESENT_PARAM, ON if st.session_state[SWITCH_KEY] else None)


def present_figure(fig: Any) -> dict:
    """The figure as a dict for a projector: every font larger, the height larger within one screen's."""
    spec = fig.to_dict()
    layout = spec.setdefault("layout", {})
    _name_font_sizes(layout)
    _scale_fonts(spec, SIZES.figure_font_scale)  # the layout's fonts and the traces' (a colour bar's ticks)
    height = layout.get("height") or 450  # Plotly's own default
    layout["height"] = min(round(height * SIZES.figure_height_scale), SIZES.figure_max_height_px)
    legend = layout.get("legend") or {}
    if (legend.get("y") or 0) < 0:  # under the plot, a fraction of its height: keep it clear of the larger x axis
        legend["y"] *= SIZES.figure_font_scale * height / layout["height"]
    return spec


def _name_font_sizes(layout: dict) -> None:
    """Sizes where the figure leaves them to Streamlit's theme, which sets the ticks' and legend's itself."""
    layout.setdefault("font", {}).setdefault("size", FONT_SIZE)
    layout.setdefault("legend", {}).setdefault("font", {}).setdefault("size", FONT_SIZE)
    for name in ("xaxis", "yaxis"):  # a figure may leave its one pair of axes to Plotly's defaults
        layout.setdefault(name, {})
    for name, axis in layout.items():
        if name.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            axis.setdefault("tickfont", {}).setdefault("size", TICK_FONT_SIZE)
            title = axis.setdefault("title", {})
            if isinstance(title, dict):
                title.setdefault("font", {}).setdefault("size", FONT_SIZE)


def _scale_fonts(node: Any, scale: float) -> None:
    """Every `size` under a key that names a font (font, tickfont, ...), anywhere in the layout."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(key, str) and key.endswith("font") and isinstance(value, dict) and "size" in value:
            value["size"] = round(value["size"] * scale)
        _scale_fonts(value, scale)


def hideable_table() -> str:
    """The README's table of hide= names (Markdown)."""
    rows = [f"| `{name}` | {h.words} |" for name, h in HIDEABLE.items()]
    return "\n".join(["| hide= name | what it hides |", "|---|---|", *rows])
