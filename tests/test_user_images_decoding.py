"""vae_core.data.images decodes each file of a person's upload: images that lie about their size or hide a bomb, files
that are not images or are damaged, and the images that load with the conversion each needs.

A corpus of image files, every one generated here (no binary files are committed), each with its expected outcome.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

from tests.helpers import Case, Loaded, check_hostile_upload, encoded, good_png, noise, skipped, zipped
from vae_core.data.images.source import MB

# ----------------------------------------------------------------------------- making images

def frames(fmt: str, colours: list[tuple[int, int, int]], **save) -> bytes:
    """An animation or multi-page file, one solid colour per frame."""
    ims = [Image.new("RGB", (32, 32), c) for c in colours]
    return encoded(ims[0], fmt, save_all=True, append_images=ims[1:], **save)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR (correct CRC) claims width x height grey pixels, with a few bytes of image data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + png_chunk(b"IEND", b""))


def png_with_text_bomb() -> bytes:
    """A PNG with a zTXt chunk before its pixels that inflates to 50 MB."""
    png = good_png(100)
    return png[:33] + png_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"\0" * (50 * MB))) + png[33:]


def sixteen_bit_grey() -> bytes:
    """Columns of 0, 32768 and 65535 (16-bit grey)."""
    levels = np.zeros((32, 32), dtype=np.uint16)
    levels[:, 11:22], levels[:, 22:] = 32768, 65535
    return encoded(Image.fromarray(levels), "PNG")


def palette_png() -> bytes:
    """Left half palette index 0 (red), right half index 1 (blue)."""
    im = Image.fromarray(np.repeat([[0] * 16 + [1] * 16], 32, axis=0).astype(np.uint8), "P")
    im.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    return encoded(im, "PNG")


def marked_jpeg(orientation: int | None) -> bytes:
    """Black, with a white 8 x 8 block at the stored top-left; an EXIF orientation tag if given."""
    a = np.zeros((32, 32), dtype=np.uint8)
    a[:8, :8] = 255
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    return encoded(Image.fromarray(a), "JPEG", quality=95, exif=exif.tobytes())


def tiff_with(pixels: np.ndarray) -> bytes:
    return encoded(Image.fromarray(pixels), "TIFF")


def tiff_next_ifd(next_ifd: Callable[[int, int], tuple[int, bytes]]) -> bytes:
    """A one-page little-endian TIFF whose IFD's next-IFD offset is rewritten: next_ifd(ifd0, file length) gives
    (offset, bytes to append)."""
    tif = bytearray(encoded(Image.new("RGB", (32, 32), (255, 0, 0)), "TIFF"))
    assert tif[:4] == b"II*\0"
    ifd0 = struct.unpack_from("<I", tif, 4)[0]
    at = ifd0 + 2 + 12 * struct.unpack_from("<H", tif, ifd0)[0]
    offset, tail = next_ifd(ifd0, len(tif))
    struct.pack_into("<I", tif, at, offset)
    return bytes(tif) + tail


def gif_second_frame_cut() -> bytes:
    """A GIF whose first frame is whole and whose second frame's descriptor stops after two bytes."""
    gif = encoded(Image.new("RGB", (32, 32), (255, 0, 0)), "GIF")
    assert gif.endswith(b";")
    return gif[:-1] + b",\0\0"


def cmyk_jpeg() -> bytes:
    return encoded(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95)  # red


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n0 0 moveto 32 32 lineto stroke\nshowpage\n"
DOS_EPS = b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIII", 30, len(EPS), 0, 0, 0, 0) + b"\xff\xff" + EPS


# ----------------------------------------------------------------------------- expected outcomes

def rgb(r: int, g: int, b: int) -> Callable[[np.ndarray], bool]:
    """Every pixel exactly (r, g, b)."""
    return lambda im: im.shape[0] == 3 and (im == np.array([r, g, b], dtype=np.uint8)[:, None, None]).all()


def reddish(im: np.ndarray) -> bool:
    r, g, b = (float(c.mean()) for c in im.astype(float))
    return im.shape[0] == 3 and r > 200 and g < 60 and b < 60


def sixteen_to_eight(im: np.ndarray) -> bool:
    """0, 32768, 65535 -> 0, 128, 255: round(k * 255 / 65535), not Pillow's clipping."""
    return (im.shape[0] == 1 and (im[0, :, :11] == 0).all() and (im[0, :, 11:22] == 128).all()
            and (im[0, :, 22:] == 255).all())


def red_then_blue(im: np.ndarray) -> bool:
    return rgb(255, 0, 0)(im[:, :, :16]) and rgb(0, 0, 255)(im[:, :, 16:])


def block_at(rows: slice, cols: slice) -> Callable[[np.ndarray], bool]:
    """The white block is at rows, cols and the rest is black (JPEG: give or take)."""
    def check(im: np.ndarray) -> bool:
        mask = np.zeros(im.shape[1:], dtype=bool)
        mask[rows, cols] = True
        return im.shape[0] == 1 and im[0][mask].mean() > 220 and im[0][~mask].mean() < 20
    return check


TOP_LEFT, TOP_RIGHT = block_at(slice(0, 8), slice(0, 8)), block_at(slice(0, 8), slice(24, 32))

CORPUS: list[Case] = [
    # ---- sizes: bombs and lies, all decided before or while reading, within the bound
    Case("png_claims_100000px", zipped(("huge.png", png_claiming(100_000, 100_000))), "huge.png",
         skipped("too_large")),
    Case("png_claims_5000px", zipped(("big.png", png_claiming(5000, 5000))), "big.png", skipped("too_large")),
    Case("png_text_bomb", zipped(("text.png", png_with_text_bomb)), "text.png", skipped("damaged")),
    # ---- not images, or damaged ones
    Case("zero_bytes", zipped(("empty.png", b"")), "empty.png", skipped("empty")),
    Case("truncated_png", zipped(("cut.png", noise("PNG")[:1500])), "cut.png", skipped("damaged")),
    Case("truncated_jpeg", zipped(("cut.jpg", noise("JPEG", quality=90)[:1500])), "cut.jpg", skipped("damaged")),
    Case("gif_second_frame_cut", zipped(("cut.gif", gif_second_frame_cut)), "cut.gif", skipped("damaged")),
    Case("tiff_second_page_empty", zipped(("cut.tif", lambda: tiff_next_ifd(lambda ifd0, n: (n, bytes(6))))),
         "cut.tif", skipped("damaged")),
    Case("tiff_pages_loop", zipped(("loop.tif", lambda: tiff_next_ifd(lambda ifd0, n: (ifd0, b"")))), "loop.tif",
         Loaded(pixels=rgb(255, 0, 0))),
    Case("text_named_png", zipped(("notes.png", b"just some words\n" * 20)), "notes.png", skipped("not_image")),
    Case("eps_named_png", zipped(("page.png", EPS)), "page.png", skipped("not_image")),
    Case("dos_eps_named_png", zipped(("page.png", DOS_EPS)), "page.png", skipped("not_image")),
    Case("float_tiff", zipped(("float.tif", lambda: tiff_with(np.full((32, 32), 0.5, np.float32)))), "float.tif",
         skipped("unsupported")),
    Case("int32_tiff", zipped(("wide.tif", lambda: tiff_with(np.full((32, 32), 1 << 20, np.int32)))), "wide.tif",
         skipped("unsupported")),
    # ---- images that load, with the conversion each needs
    Case("png_named_jpg", zipped(("photo.jpg", good_png(100))), "photo.jpg", Loaded(("renamed",))),
    Case("png_16_bit", zipped(("deep.png", sixteen_bit_grey)), "deep.png", Loaded(("16-bit",), sixteen_to_eight)),
    Case("palette_png", zipped(("pal.png", palette_png)), "pal.png", Loaded(("palette",), red_then_blue)),
    Case("cmyk_jpeg", zipped(("print.jpg", cmyk_jpeg)), "print.jpg", Loaded(("cmyk",), reddish)),
    Case("rgba_half", zipped(("glass.png", lambda: encoded(Image.new("RGBA", (32, 32), (255, 0, 0, 128)), "PNG"))),
         "glass.png", Loaded(("alpha",), rgb(128, 0, 0))),
    Case("animated_gif", zipped(("anim.gif", lambda: frames("GIF", [(255, 0, 0), (0, 0, 255)]))), "anim.gif",
         Loaded(("animated", "palette"), rgb(255, 0, 0))),
    Case("animated_png", zipped(("anim.png", lambda: frames("PNG", [(255, 0, 0), (0, 0, 255)]))), "anim.png",
         Loaded(("animated",), rgb(255, 0, 0))),
    Case("multipage_tiff", zipped(("pages.tif", lambda: frames("TIFF", [(255, 0, 0), (0, 0, 255)]))), "pages.tif",
         Loaded(("animated",), rgb(255, 0, 0))),
    Case("mpo_named_jpg", zipped(("phone.jpg", lambda: frames("MPO", [(255, 0, 0), (0, 0, 255)], quality=95))),
         "phone.jpg", Loaded(("animated",), reddish)),
    Case("exif_rotate_90", zipped(("turned.jpg", lambda: marked_jpeg(6))), "turned.jpg",
         Loaded(("rotated",), TOP_RIGHT)),
    Case("exif_rotate_90_stored", zipped(("turned.jpg", lambda: marked_jpeg(6))), "turned.jpg", Loaded((), TOP_LEFT),
         cfg={"orientation": "stored"}),
    Case("exif_orientation_bogus", zipped(("odd.jpg", lambda: marked_jpeg(9))), "odd.jpg", Loaded((), TOP_LEFT)),
    Case("bmp", zipped(("old.bmp", lambda: encoded(Image.new("RGB", (32, 32), (10, 200, 30)), "BMP"))), "old.bmp",
         Loaded((), rgb(10, 200, 30))),
    Case("webp", zipped(("new.webp", lambda: encoded(Image.new("RGB", (32, 32), (10, 200, 30)), "WEBP",
                                                      lossless=True))), "new.webp", Loaded((), rgb(10, 200, 30))),
]


# ----------------------------------------------------------------------------- running a case

@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_hostile_upload(case: Case, tmp_path: Path, monkeypatch):
    """The hostile item gets its stated outcome; nothing is written, no program runs, memory stays bounded."""
    check_hostile_upload(case, tmp_path, monkeypatch)
