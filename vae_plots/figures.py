"""Plotly figure builders: numpy arrays in, ``go.Figure`` out (no streamlit, no torch).

Images arrive in pixel space as floats in [0, 1] shaped (..., C, H, W) with C = 1 or 3. Image grids
travel as one PNG data URI inside a single ``go.Image`` rather than as millions of numbers, so a
figure is built in milliseconds and its JSON stays small.
"""
from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.colors import qualitative
from PIL import Image

FONT_SIZE = 15  # readable from the back of a classroom
TICK_FONT_SIZE = 14
ACCENT = "#1f77b4"
MUTED = "#c7c7c7"
TEST_COLOR = "#d62728"
SEQUENTIAL = "Viridis"  # perceptually uniform and colour-blind safe
CATEGORICAL = qualitative.D3  # the matplotlib "tab10" colours practitioners know; strong on a projector
_HIDDEN_AXIS = dict(showgrid=False, zeroline=False, showline=False, ticks="", showticklabels=False)


SCIENTIFIC_FROM = 1e6  # numbers this large read as "-1.70 × 10⁹", in cards and on axes alike
WHOLE_FROM = 1e4  # numbers this large drop their decimals: "-99,995", five significant digits
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _make_template() -> go.layout.Template:
    """plotly_white whose number axes switch to powers of ten at SCIENTIFIC_FROM, with thousands separated."""
    # Plotly's default would write a diverged run's -1.7e9 nats as "-1.7B" and 1e16 as "10P".
    template = go.layout.Template(pio.templates["plotly_white"])
    numbers = dict(exponentformat="power", minexponent=round(math.log10(SCIENTIFIC_FROM)) - 1,
                   separatethousands=True)
    template.layout.xaxis.update(numbers)
    template.layout.yaxis.update(numbers)
    return template


_TEMPLATE = _make_template()


def _apply_template(fig: go.Figure) -> None:
    """Attach the shared template without re-validating it, which alone would cost ~10 ms per figure."""
    # The template was validated when it was built; plotly skips this same check for its default template.
    # Only this one assignment is unvalidated: every other property, the caller's updates included, is.
    layout = fig.layout
    previous, layout._validate = layout._validate, False
    try:
        layout.template = _TEMPLATE
    finally:
        layout._validate = previous


def _figure(data: list, layout: dict, title: str | None, height: int | None, top: int = 0) -> go.Figure:
    """Build a figure in one validated pass with the shared look: large fonts, tight margins."""
    base = dict(
        font=dict(size=FONT_SIZE),
        title=dict(text=title, x=0.01, xanchor="left") if title else None,
        margin=dict(l=10, r=10, t=(50 if title else 10) + top, b=10),
        height=height,
    )
    fig = go.Figure(data=data, layout={**base, **layout})
    _apply_template(fig)
    return fig


# ---------------------------------------------------------------------------------------------
# Image grids


def _to_uint8_nhwc(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) floats in [0, 1] -> (N, H, W, C) uint8; NaN shows as black, not garbage."""
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (N, C, H, W) with C = 1 or 3, got {arr.shape}.")
    arr = np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=0.0)
    arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)  # round, don't truncate
    return arr.transpose(0, 2, 3, 1)


def _flatten_grid(images: np.ndarray, nrows: int | None, ncols: int | None) -> np.ndarray:
    """(R, K, ...) -> (R*K, ...), checking R, K against the requested grid when given."""
    arr = np.asarray(images)
    if arr.ndim != 5:
        return arr
    rows, cols = arr.shape[:2]
    if (nrows is not None and nrows != rows) or (ncols is not None and ncols != cols):
        raise ValueError(f"a ({rows}, {cols}, C, H, W) grid cannot be laid out as {nrows} x {ncols}.")
    return arr.reshape(rows * cols, *arr.shape[2:])


def _check_grid(nrows: int, ncols: int, pad: int = 0) -> None:
    """Reject grid sizes that cannot be laid out."""
    if nrows < 1 or ncols < 1 or pad < 0:
        raise ValueError(f"need nrows >= 1, ncols >= 1 and pad >= 0, got {nrows}, {ncols}, {pad}.")


def tile(images: np.ndarray, nrows: int, ncols: int, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """(n, C, H, W) or (nrows, ncols, C, H, W) in [0,1] -> (nrows*(H+pad)-pad, ncols*(W+pad)-pad, 3) uint8."""
    _check_grid(nrows, ncols, pad)
    arr = _to_uint8_nhwc(_flatten_grid(images, nrows, ncols))  # row-major: image i -> (i // ncols, i % ncols)
    n, h, w, _ = arr.shape
    if n > nrows * ncols:
        raise ValueError(f"{n} images do not fit in a {nrows} x {ncols} grid.")
    fill = int(np.clip(pad_value, 0.0, 1.0) * 255.0 + 0.5)
    cells = np.full((nrows * ncols, h + pad, w + pad, 3), fill, dtype=np.uint8)  # unused cells stay blank
    cells[:n, :h, :w] = arr  # grey broadcasts to RGB here, without an extra copy
    grid = cells.reshape(nrows, ncols, h + pad, w + pad, 3).transpose(0, 2, 1, 3, 4)
    grid = grid.reshape(nrows * (h + pad), ncols * (w + pad), 3)
    return np.ascontiguousarray(grid[: grid.shape[0] - pad, : grid.shape[1] - pad])  # no trailing pad


def png_data_uri(rgb: np.ndarray) -> str:
    """(H, W, 3) RGB or (H, W) grey uint8 -> "data:image/png;base64,..." (lossless)."""
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"expected an (H, W, 3) or (H, W) uint8 array, got {arr.shape} {arr.dtype}.")
    buf = io.BytesIO()
    # Level 1 is several times faster than the default and only slightly larger for small grids.
    Image.fromarray(np.ascontiguousarray(arr)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _tile_centres(count: int, size: int, pad: int) -> list[float]:
    """Centres of `count` tiles of `size` pixels in the coordinates of an image whose pixel i sits at i."""
    return [k * (size + pad) + (size - 1) / 2 for k in range(count)]


def _auto_height(grid_h: int, grid_w: int, extra: int) -> int:
    """Height that shows a grid_h x grid_w picture at about 600 px wide, within sane bounds."""
    return int(np.clip(600 * grid_h / max(grid_w, 1), 120, 800)) + extra


def _grid_axes(height: int, width: int, pad: int, nrows: int, ncols: int,
               row_labels: Sequence[str] | None, col_labels: Sequence[str] | None) -> dict:
    """Axes for a tiled picture: hidden, square pixels, upright, labels at tile centres."""
    for labels, count, name in ((row_labels, nrows, "row_labels"), (col_labels, ncols, "col_labels")):
        if labels is not None and len(labels) != count:
            raise ValueError(f"{name} has {len(labels)} entries for {count} tiles.")
    xaxis = dict(_HIDDEN_AXIS, constrain="domain")
    yaxis = dict(_HIDDEN_AXIS, constrain="domain", scaleanchor="x", scaleratio=1, autorange="reversed")
    for axis, labels, count, size in ((xaxis, col_labels, ncols, width), (yaxis, row_labels, nrows, height)):
        if labels is not None:
            axis.update(showticklabels=True, tickmode="array", tickvals=_tile_centres(count, size, pad),
                        ticktext=[str(t) for t in labels], tickfont=dict(size=TICK_FONT_SIZE),
                        automargin=True)
    return dict(xaxis=xaxis, yaxis=yaxis)


def image_grid(images: np.ndarray, ncols: int, *, row_labels: Sequence[str] | None = None,
               col_labels: Sequence[str] | None = None, title: str | None = None,
               height: int | None = None) -> go.Figure:
    """(N, C, H, W) or (R, K, C, H, W) images in [0, 1] -> one go.Image; labels sit at tile centres."""
    arr = np.asarray(images)
    if arr.ndim == 5:
        nrows, arr = arr.shape[0], _flatten_grid(arr, arr.shape[0], ncols)
    else:
        _check_grid(1, ncols)
        nrows = max(1, math.ceil(len(arr) / ncols))
    pad = 1
    grid = tile(arr, nrows, ncols, pad=pad)
    h, w = arr.shape[-2:]
    # Grey data goes out as a one-channel PNG: a third of the bytes to compress and to send.
    png = png_data_uri(grid[..., 0] if arr.shape[-3] == 1 else grid)
    # zsmooth=False makes plotly.js draw the PNG with `image-rendering: pixelated`: sharp, not blurred.
    trace = go.Image(source=png, x0=0, y0=0, dx=1, dy=1, zsmooth=False, hoverinfo="skip")
    layout = _grid_axes(h, w, pad, nrows, ncols, row_labels, col_labels)
    extra = (50 if title else 10) + (30 if col_labels is not None else 0) + 10
    return _figure([trace], layout, title, height or _auto_height(grid.shape[0], grid.shape[1], extra))


def error_heatmap(errors: np.ndarray, ncols: int, *, title: str | None = None,
                  colorbar_title: str = "squared error", row_labels: Sequence[str] | None = None) -> go.Figure:
    """(N, H, W) non-negative per-pixel errors -> one go.Heatmap of the tiled maps, NaN between tiles."""
    arr = np.asarray(errors, dtype=np.float64)
    if arr.ndim != 3:
        raise ValueError(f"errors must have shape (N, H, W), got {arr.shape}.")
    _check_grid(1, ncols)
    n, h, w = arr.shape
    nrows = max(1, math.ceil(n / ncols))
    # NaN cells are drawn transparent, so gaps separate tiles without borrowing a colour from the scale.
    cells = np.full((nrows * ncols, h + 1, w + 1), np.nan)
    cells[:n, :h, :w] = arr
    z = cells.reshape(nrows, ncols, h + 1, w + 1).transpose(0, 2, 1, 3)
    z = np.ascontiguousarray(z.reshape(nrows * (h + 1), ncols * (w + 1))[:-1, :-1])  # no trailing gap
    finite = arr[np.isfinite(arr)]
    zmax = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    trace = go.Heatmap(
        z=z, zmin=0.0, zmax=zmax,  # anchor the scale at zero error so the darkest colour means "exact"
        colorscale=SEQUENTIAL, hovertemplate="%{z:.4g}<extra></extra>",
        # Horizontal, under the tiles: a vertical bar sits at the paper's edge, far from square-pixel tiles. Its
        # title above it: beside it, a long title squeezed a narrow figure's bar to nothing.
        colorbar=dict(orientation="h", x=0.5, xanchor="center", y=-0.03, yanchor="top", len=0.6,
                      thickness=12, title=dict(text=colorbar_title, side="top")),
    )
    layout = _grid_axes(h, w, 1, nrows, ncols, row_labels, None)
    return _figure([trace], layout, title, _auto_height(z.shape[0], z.shape[1], (50 if title else 10) + 70))


# ---------------------------------------------------------------------------------------------
# Training and latent-space diagnostics

CURVE_TITLES = (
    "negative log-likelihood −log p(x|z) (nats/{per})",  # the ELBO's reconstruction term, per image
    "KL(q(z|x) ‖ p(z)) (nats/{per})",
    "ELBO (nats/{per})",
)
# What a training curve is per, by the kind of data: a run on vectors trains on normalized rows (its test metrics
# are per raw row, the normalization's log-Jacobian included).
TRAINING_PER = {"images": "image", "vectors": "normalized row"}


def curve_titles(per: str = TRAINING_PER["images"]) -> tuple[str, ...]:
    return tuple(t.format(per=per) for t in CURVE_TITLES)
_NATS_HOVER = "step %{x}<br>%{y:.4g} nats<extra>%{fullData.name}</extra>"


def _curve_axes(per: str, gap: float = 0.1) -> dict:
    """Three stacked panels, top to bottom, sharing one x axis labelled only at the bottom."""
    n = len(CURVE_TITLES)
    size = (1 - gap * (n - 1)) / n
    # The legend (train vs test ELBO) sits right-aligned above the ELBO panel, next to its short title.
    layout: dict = {"annotations": [], "legend": dict(orientation="h", x=1, xanchor="right", y=size,
                                                      yanchor="bottom", bgcolor="rgba(0,0,0,0)")}
    for i, text in enumerate(curve_titles(per)):
        top = 1 - i * (size + gap)
        suffix = "" if i == 0 else str(i + 1)
        layout[f"xaxis{suffix}"] = dict(anchor=f"y{suffix}", matches=None if i == n - 1 else f"x{n}",
                                        showticklabels=i == n - 1, title="step" if i == n - 1 else None)
        layout[f"yaxis{suffix}"] = dict(anchor=f"x{suffix}", domain=[max(0.0, round(top - size, 6)), top])
        layout["annotations"].append(dict(text=text, x=0, y=top, xref="paper", yref="paper", xanchor="left",
                                          yanchor="bottom", showarrow=False, font=dict(size=FONT_SIZE)))
    return layout


def _flat_range(values: np.ndarray) -> list[float] | None:
    """A range around a series of one value, which plotly would show as value ± 1: "-1,700,476,671.5"."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.min() != finite.max():
        return None
    v = float(finite[0])
    pad = abs(v) * 0.1 or 1.0
    return [v - pad, v + pad]


def _curve_ranges(x: np.ndarray, panels: Sequence[np.ndarray]) -> dict:
    """Readable axes for runs of a step or two (a run that diverged at step 2): whole steps, padded values."""
    layout: dict = {}
    if x.size and x.max() - x.min() < 10:
        layout["xaxis3"] = dict(dtick=1)  # not "0.5 steps"
    for suffix, values in zip(("", "2", "3"), panels):
        if (flat := _flat_range(values)) is not None:
            layout[f"yaxis{suffix}"] = dict(range=flat)
    return layout


def training_curves(steps: Sequence[float], recon: Sequence[float], kl: Sequence[float],
                    elbo: Sequence[float], *, test_steps: Sequence[float] = (),
                    test_elbo: Sequence[float] = (), title: str | None = None,
                    per: str = TRAINING_PER["images"]) -> go.Figure:
    """Three stacked panels sharing the x axis ("step"): -log p(x|z), KL and ELBO, in nats per image (or `per`)."""
    x = np.asarray(steps, dtype=np.float64)
    series = [np.asarray(s, dtype=np.float64) for s in (recon, kl, elbo)]
    tx, ty = np.asarray(test_steps, dtype=np.float64), np.asarray(test_elbo, dtype=np.float64)
    if x.ndim != 1 or any(s.shape != x.shape for s in series) or tx.ndim != 1 or tx.shape != ty.shape:
        raise ValueError("steps, recon, kl, elbo (and test_steps, test_elbo) must be 1-D, of equal length.")
    has_test = tx.size > 0
    mode = "lines" if x.size > 1 else "markers"  # a line through one point draws nothing
    # SVG lines, not WebGL: a page holds few WebGL contexts, and 2,000 points draw fast enough in SVG.
    data = [go.Scatter(x=x, y=y, mode=mode, name=name, line=dict(color=ACCENT, width=2),
                       marker=dict(color=ACCENT, size=8), xaxis="x" + suffix, yaxis="y" + suffix,
                       showlegend=suffix == "3" and has_test, hovertemplate=_NATS_HOVER)
            for y, name, suffix in zip(series, ("−log p(x|z)", "KL", "train ELBO"), ("", "2", "3"))]
    if has_test:
        data.append(go.Scatter(x=tx, y=ty, mode="lines+markers", name="test ELBO", xaxis="x3", yaxis="y3",
                               marker=dict(color=TEST_COLOR, size=8), line=dict(color=TEST_COLOR, dash="dot"),
                               hovertemplate=_NATS_HOVER))
    layout = _curve_axes(per)
    for name, extra in _curve_ranges(np.concatenate([x, tx]), [*series[:2], np.concatenate([series[2], ty])]).items():
        layout[name] = {**layout[name], **extra}
    return _figure(data, dict(layout, hovermode="x"), title, 620, top=20)


def kl_per_dim_bars(kl_per_dim: Sequence[float], *, threshold: float = 0.01,
                    title: str | None = None) -> go.Figure:
    """Bars of KL per latent dimension z0..z{L-1} in nats/image; dims below `threshold` are muted."""
    kl = np.asarray(kl_per_dim, dtype=np.float64).reshape(-1)
    names = np.array([f"z{i}" for i in range(kl.size)])
    over = kl >= threshold
    # Named by their KL, never "active": an active unit is one whose posterior mean moves with x (the Active
    # units card), and a dimension can pay KL without one (the same off-centre posterior for every x).
    groups = ((over, f"KL ≥ {threshold:g} nats: {over.sum()}", ACCENT),
              (~over, f"KL < {threshold:g} nats: {(~over).sum()}", MUTED))
    data = [go.Bar(x=names[mask].tolist(), y=kl[mask], name=label, marker_color=color,
                   hovertemplate="%{x}: %{y:.4g} nats<extra></extra>") for mask, label, color in groups]
    layout = dict(
        barmode="overlay",  # two traces share the categories: overlay keeps each bar centred on its tick
        xaxis=dict(categoryorder="array", categoryarray=names.tolist(), title="latent dimension"),
        yaxis=dict(title="KL (nats/image)", rangemode="tozero"),
        legend=dict(orientation="h", x=1, xanchor="right", y=1, yanchor="bottom"),
        # Unlabelled: the legend names the threshold, and a label on the line would sit on the bars.
        shapes=[dict(type="line", xref="paper", x0=0, x1=1, y0=threshold, y1=threshold,
                     line=dict(dash="dash", color="#555", width=1.5))],
    )
    return _figure(data, layout, title, 380, top=20)


def latent_scatter(points: np.ndarray, color: np.ndarray, *, color_name: str, categorical: bool,
                   category_names: Sequence[str] | None = None, axis_titles: tuple[str, str] = ("z0", "z1"),
                   title: str | None = None) -> go.Figure:
    """(N, 2) latent points coloured by (N,) labels (one legend entry each) or values (colour bar)."""
    pts = np.asarray(points, dtype=np.float64)
    col = np.asarray(color)
    if pts.ndim != 2 or pts.shape[1] != 2 or col.shape != (pts.shape[0],):
        raise ValueError(f"need points (N, 2) and color (N,), got {pts.shape} and {col.shape}.")
    marker = dict(size=5, opacity=0.75)
    if categorical:
        data = []
        for k, value in enumerate(np.unique(col)):
            name = str(category_names[int(value)]) if category_names is not None else str(value)
            mask = col == value
            data.append(go.Scattergl(x=pts[mask, 0], y=pts[mask, 1], mode="markers", name=name,
                                     marker=dict(marker, color=CATEGORICAL[k % len(CATEGORICAL)]),
                                     hovertemplate=f"{color_name}: {name}<extra></extra>"))
        extra: dict = dict(legend=dict(title=dict(text=color_name), itemsizing="constant"))
    else:
        data = [go.Scattergl(
            x=pts[:, 0], y=pts[:, 1], mode="markers", showlegend=False,
            marker=dict(marker, color=col.astype(np.float64), colorscale=SEQUENTIAL,
                        colorbar=dict(title=dict(text=color_name), thickness=14)),
            hovertemplate=f"{color_name}: %{{marker.color:.3g}}<extra></extra>")]
        extra = {}
    # Equal units on both axes: an isotropic posterior looks round, a collapsed dimension like a line.
    # constrain="range" widens the shorter axis instead of shrinking the plot, so legend and bar stay close.
    layout = dict(xaxis=dict(title=axis_titles[0], zeroline=False, constrain="range"),
                  yaxis=dict(title=axis_titles[1], zeroline=False, scaleanchor="x", scaleratio=1,
                             constrain="range"), **extra)
    return _figure(data, layout, title, 520)


# ---------------------------------------------------------------------------------------------
# Tables


def _non_finite(v: float) -> str | None:
    if math.isnan(v):
        return "NaN"
    return ("∞" if v > 0 else "-∞") if math.isinf(v) else None


def _scientific(v: float, digits: int) -> str:
    """-1.7e9 -> "-1.70 × 10⁹" with `digits` significant digits: no "e+09" on a slide."""
    mantissa, exponent = f"{v:.{digits - 1}e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


def format_number(value: float | None, decimals: int = 2, *, signed: bool = False) -> str:
    """A metric for a card: fixed decimals and thousands separators below SCIENTIFIC_FROM (as the axes), whole
    numbers from WHOLE_FROM (a card a third of a 1024-pixel projector wide shows eight characters), three
    significant digits × 10ⁿ beyond."""
    if value is None:
        return "—"
    v = float(value)
    decimals = 0 if abs(v) >= WHOLE_FROM else decimals
    text = _non_finite(v) or (_scientific(v, 3) if abs(v) >= SCIENTIFIC_FROM else f"{v:,.{decimals}f}")
    return f"+{text}" if signed and v >= 0 else text
