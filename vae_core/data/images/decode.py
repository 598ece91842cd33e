"""One file's bytes -> one square uint8 image at the chosen size, or the reason it cannot be one.

Only PNG, JPEG, BMP, WebP, GIF and TIFF are parsed (Pillow is told so: its EPS reader would run
Ghostscript). An image's size is checked from its header before its pixels are decoded. Every
conversion is a defined one, noted: 16-bit grey to 8-bit by rounding (Pillow itself cuts 16-bit RGB to
its high byte, unnoted), a palette or CMYK to RGB,
transparency laid on black, an animation's first frame, EXIF orientation applied.
"""
from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vae_core.config import Orientation, Square
from vae_core.data.images.source import SkipReason, UploadLimits

ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "WEBP", "GIF", "TIFF")
Note = Literal["16-bit", "palette", "cmyk", "alpha", "animated", "rotated", "renamed"]
# How a summary counts each conversion: (one image, several).
NOTE_WORDS: dict[Note, tuple[str, str]] = {
    "16-bit": ("16-bit, rounded to 8", "16-bit, rounded to 8"),
    "palette": ("a palette image, made RGB", "palette images, made RGB"),
    "cmyk": ("CMYK, made RGB", "CMYK, made RGB"),
    "alpha": ("transparent, laid on black", "transparent, laid on black"),
    "animated": ("animated: its first frame", "animated: their first frames"),
    "rotated": ("turned upright by its EXIF orientation", "turned upright by their EXIF orientation"),
    "renamed": ("named for another format, read by content", "named for another format, read by content"),
}
_EXTENSIONS = {"PNG": (".png",), "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"), "BMP": (".bmp", ".dib"),
               "WEBP": (".webp",), "GIF": (".gif",), "TIFF": (".tif", ".tiff")}
_EXTENSIONS["MPO"] = _EXTENSIONS["JPEG"]  # a JPEG holding several pictures (a phone's depth or 3D photo) opens as MPO
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"7z\xbc\xaf\x27\x1c", b"Rar!", b"(\xb5/\xfd")
_DAMAGE = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, ZeroDivisionError,
           MemoryError, struct.error, Image.DecompressionBombError)


class Skip(Exception):
    """This file is not used; reason is the summary's category, detail the sentence for its row."""

    def __init__(self, reason: SkipReason, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Decoded:
    pixels: np.ndarray  # (size, size, 3) uint8 RGB, or (size, size) uint8 grey
    grey: bool  # every channel equal: the image has no colour
    notes: tuple[Note, ...]


def decode(data: bytes, name: str, size: int, square: Square, orientation: Orientation,
           limits: UploadLimits) -> Decoded:
    """A file's bytes as a size x size image; raises Skip with the reason it cannot be one."""
    notes: list[Note] = []
    im = _open(data, name, limits, notes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            pixels = _pixels(im, orientation, notes)
    except Skip:
        raise
    except _DAMAGE as e:
        raise Skip("damaged", f"its pixels cannot be decoded ({type(e).__name__}: {str(e)[:120]})") from None
    pixels = _resize(_square(pixels, square), size)
    grey = pixels.ndim == 2 or bool((pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all())
    return Decoded(pixels, grey, tuple(notes))


def _open(data: bytes, name: str, limits: UploadLimits, notes: list[Note]) -> Image.Image:
    """The image with only its header read; too large, not an image or an archive raise Skip."""
    if data.startswith(_ARCHIVE_MAGIC) or data[257:262] == b"ustar":
        raise Skip("archive", "an archive inside the upload is not opened")
    try:
        im = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise Skip("not_image", "not a PNG, JPEG, BMP, WebP, GIF or TIFF image") from None
    except Image.DecompressionBombError as e:
        raise Skip("too_large", str(e)[:160]) from None
    except _DAMAGE as e:
        raise Skip("damaged", f"its header cannot be read ({type(e).__name__})") from None
    w, h = im.size
    if w < 1 or h < 1 or w * h > limits.pixels:
        raise Skip("too_large", f"{w:,} × {h:,} pixels; the limit is {limits.pixels:,} pixels per image")
    if not name.lower().endswith(_EXTENSIONS[im.format]):
        notes.append("renamed")
    if _frames(im) > 1:
        notes.append("animated")  # Image.open stands on the first frame
    return im


def _frames(im: Image.Image) -> int:
    """Frames or pages; counting them reads every later header, so a damaged one is found here."""
    try:
        return getattr(im, "n_frames", 1)
    except _DAMAGE as e:
        raise Skip("damaged", f"a later frame or page cannot be read ({type(e).__name__}: {str(e)[:120]})") from None


def _pixels(im: Image.Image, orientation: Orientation, notes: list[Note]) -> np.ndarray:
    """Decoded pixels as uint8 (H, W) grey or (H, W, 3) RGB, every conversion noted."""
    if orientation == "exif" and im.getexif().get(0x0112, 1) in range(2, 9):  # 1 is upright; others mean nothing
        im = ImageOps.exif_transpose(im)
        notes.append("rotated")
    im.load()
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        return _sixteen_bit(np.asarray(im), notes)
    if im.mode == "F":
        raise Skip("unsupported", "floating-point pixels have no grey levels to round to")
    return _eight_bit(im, notes)


def _sixteen_bit(values: np.ndarray, notes: list[Note]) -> np.ndarray:
    """16-bit grey levels to 8: k -> round(k * 255 / 65535) (Pillow's own convert("L") clips at 255)."""
    if values.min() < 0 or values.max() > 65535:
        raise Skip("unsupported", "32-bit integer pixels outside 16 bits")
    notes.append("16-bit")
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _eight_bit(im: Image.Image, notes: list[Note]) -> np.ndarray:
    mode = im.mode
    if mode in ("P", "PA"):
        notes.append("palette")
    elif mode == "CMYK":
        notes.append("cmyk")
    if mode in ("1", "L") and "transparency" not in im.info:
        return np.asarray(im.convert("L"))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        return _on_black(np.asarray(im.convert("RGBA")), notes)
    if mode == "P" and im.palette is not None and im.palette.mode == "RGBA":
        return _on_black(np.asarray(im.convert("RGBA")), notes)
    return np.asarray(im.convert("RGB"))


def _on_black(rgba: np.ndarray, notes: list[Note]) -> np.ndarray:
    """Transparency laid on black: each channel times alpha/255, rounded."""
    alpha = rgba[..., 3:].astype(np.uint32)
    if int(alpha.min()) < 255:
        notes.append("alpha")
    return ((rgba[..., :3].astype(np.uint32) * alpha + 127) // 255).astype(np.uint8)


def _square(pixels: np.ndarray, square: Square) -> np.ndarray:
    """The centred square: crop the longer side, or pad the shorter one with black."""
    h, w = pixels.shape[:2]
    if h == w:
        return pixels
    if square == "crop":
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        return pixels[top:top + s, left:left + s]
    s = max(h, w)
    out = np.zeros((s, s) + pixels.shape[2:], dtype=np.uint8)
    top, left = (s - h) // 2, (s - w) // 2
    out[top:top + h, left:left + w] = pixels
    return out


def _resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resampled to size x size (bilinear, antialiased when shrinking); an image already that size is kept exactly."""
    if pixels.shape[0] == size:
        return np.ascontiguousarray(pixels)
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))
