"""Pictures as file bytes: a PNG of one image; an animated GIF (Pillow) or an MP4 (imageio-ffmpeg, which ships its
own ffmpeg, where it is installed) of frames. Every input is uint8 RGB (H, W, 3)."""
from __future__ import annotations

import importlib.util
import io
from typing import Literal, Sequence

import numpy as np
from PIL import Image

Format = Literal["png", "gif", "mp4"]
FRAME_MS = 250  # four frames a second: a traversal of 9 values there and back takes 4 s
MIN_FRAMES = 8  # an animation shorter than this is refused: it would not read as one


class ExportError(ValueError):
    """What cannot be exported as asked; the message says what to do instead."""


def png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def gif_bytes(frames: Sequence[np.ndarray], frame_ms: int = FRAME_MS) -> bytes:
    """An animated GIF that loops for ever, one palette a frame."""
    _check_frames(frames)
    first, *rest = [Image.fromarray(f) for f in frames]
    buf = io.BytesIO()
    first.save(buf, format="GIF", save_all=True, append_images=rest, duration=frame_ms, loop=0, disposal=1)
    return buf.getvalue()


def mp4_available() -> bool:
    return importlib.util.find_spec("imageio_ffmpeg") is not None and importlib.util.find_spec("imageio") is not None


def mp4_bytes(frames: Sequence[np.ndarray], frame_ms: int = FRAME_MS) -> bytes:
    """An H.264 MP4 through imageio-ffmpeg; ExportError where it is not installed."""
    _check_frames(frames)
    if not mp4_available():
        raise ExportError("An MP4 needs imageio and imageio-ffmpeg (pip install imageio imageio-ffmpeg); export a "
                          ".gif instead, which needs nothing more.")
    import imageio.v2 as imageio  # here: an optional package, loaded only for an MP4

    buf = io.BytesIO()
    even = [f[:f.shape[0] // 2 * 2, :f.shape[1] // 2 * 2] for f in frames]  # H.264 needs even sides
    imageio.mimwrite(buf, even, format="mp4", fps=1000 / frame_ms)
    return buf.getvalue()


def _check_frames(frames: Sequence[np.ndarray]) -> None:
    if len(frames) < MIN_FRAMES:
        raise ExportError(f"An animation needs at least {MIN_FRAMES} frames; this one has {len(frames)}: show more "
                          "values or steps.")


def animation_bytes(frames: Sequence[np.ndarray], fmt: Format) -> bytes:
    """Frames as an animated GIF or an MP4; a PNG is the first frame's still (ExportError for another format)."""
    if fmt == "gif":
        return gif_bytes(frames)
    if fmt == "mp4":
        return mp4_bytes(frames)
    raise ExportError(f"{fmt!r} is not an animation format; pick gif or mp4.")
