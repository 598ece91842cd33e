"""vae_core.data.images: a person's own images, read safely from a folder or a .zip.

A corpus of malformed and hostile uploads, every one generated here (no binary files are committed), each
with its expected outcome; then the layouts, labels, colour, squaring, sizes and the summary; then a real
upload (CIFAR-10 as PNGs) where the shared data folder has it.
"""
from __future__ import annotations

import errno
import gzip
import io
import os
import re
import signal
import stat
import struct
import subprocess
import tarfile
import tracemalloc
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core.config import DataConfig
from vae_core.data.images.dataset import UNLABELLED, UserImages, read_images
from vae_core.data.images.source import MB, UploadLimits, UploadRefused

CIFAR_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-5k-png.zip"
GOOD = 77  # the grey level of every ordinary image, so that the hostile one is the image that is not
GOOD_NAMES = ("good.png", "good2.png")  # two: a seeded split needs at least two usable images
PEAK_BYTES = 16 * MB  # no case holds more than this at once (the zip bomb alone would be 40 MB)


# ----------------------------------------------------------------------------- making images

def encoded(im: Image.Image, fmt: str, **save) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


def good_png(level: int = GOOD, size: tuple[int, int] = (32, 32)) -> bytes:
    return encoded(Image.new("L", size, level), "PNG")


def noise(fmt: str, size: int = 32, seed: int = 0, **save) -> bytes:
    """Random RGB pixels: nothing compresses, so a cut lands in the pixel data."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return encoded(Image.fromarray(pixels), fmt, **save)


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


def inner_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.png", good_png())
    return buf.getvalue()


def tar_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = good_png()
        info = tarfile.TarInfo("x.png")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 32 32\n0 0 moveto 32 32 lineto stroke\nshowpage\n"
DOS_EPS = b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIII", 30, len(EPS), 0, 0, 0, 0) + b"\xff\xff" + EPS


# ----------------------------------------------------------------------------- making uploads

Data = bytes | Callable[[], bytes]
Builder = Callable[[Path], Path]  # writes an upload under the given folder; returns its path


def _data(d: Data) -> bytes:
    return d() if callable(d) else d


def zipped(*items: tuple[str | zipfile.ZipInfo, Data], good: bool = True,
           patch: Callable[[bytes], bytes] | None = None) -> Builder:
    """A zip of the good images (unless good=False) and the items, in order; patch rewrites its bytes after."""
    def build(where: Path) -> Path:
        buf = io.BytesIO()
        with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, which is the point
            if good:
                for name in GOOD_NAMES:
                    zf.writestr(name, good_png())
            for name, data in items:
                zf.writestr(name, _data(data))
        path = where / "upload.zip"
        path.write_bytes(patch(buf.getvalue()) if patch else buf.getvalue())
        return path
    return build


def raw_file(data: Data, name: str = "upload.zip") -> Builder:
    def build(where: Path) -> Path:
        (where / name).write_bytes(_data(data))
        return where / name
    return build


def folder(*items: tuple[str, Data] | Callable[[Path], None]) -> Builder:
    """A folder of the good images and the items: (name, bytes), or a function that makes something in the folder."""
    def build(where: Path) -> Path:
        root = where / "upload"
        root.mkdir()
        for name in GOOD_NAMES:
            (root / name).write_bytes(good_png())
        for item in items:
            if callable(item):
                item(root)
            else:
                (root / item[0]).parent.mkdir(parents=True, exist_ok=True)
                (root / item[0]).write_bytes(_data(item[1]))
        return root
    return build


def symlink_entry(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    """A zip entry that unzip would make a symbolic link to target."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # unix: the external attributes are a st_mode
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


# Where each field sits in a central directory header and a local file header.
_CENTRAL = {"flags": 8, "method": 10, "crc": 16, "size": 24, "name": 46}
_LOCAL = {"flags": 6, "method": 8, "crc": 14, "size": 22, "name": 30}


def _records(raw: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(central header offset, local header offset, name bytes) of every entry."""
    end = raw.rfind(b"PK\x05\x06")
    count, _, at = struct.unpack_from("<HII", raw, end + 10)
    for _ in range(count):
        n, m, k = struct.unpack_from("<HHH", raw, at + 28)
        yield at, struct.unpack_from("<I", raw, at + 42)[0], raw[at + 46:at + 46 + n]
        at += 46 + n + m + k


def patched(name: str, flags: int = 0, method: int | None = None, crc: int | None = None,
            size: int | None = None, rename: bytes | None = None) -> Callable[[bytes], bytes]:
    """Rewrite one entry's fields in both its headers: zipfile would not write them so (it clears flag_bits)."""
    def apply(raw: bytes) -> bytes:
        out = bytearray(raw)
        hits = [(c, loc) for c, loc, n in _records(raw) if n == name.encode()]
        assert hits, name
        for central, local in hits:
            for head, at in ((central, _CENTRAL), (local, _LOCAL)):
                old_flags, = struct.unpack_from("<H", out, head + at["flags"])
                struct.pack_into("<H", out, head + at["flags"], old_flags | flags)
                if method is not None:
                    struct.pack_into("<H", out, head + at["method"], method)
                if crc is not None:
                    struct.pack_into("<I", out, head + at["crc"], crc)
                if size is not None:
                    struct.pack_into("<I", out, head + at["size"], size)
                if rename is not None:
                    assert len(rename) == len(name.encode())
                    out[head + at["name"]:head + at["name"] + len(rename)] = rename
        return bytes(out)
    return apply


def scrambled(name: str) -> Callable[[bytes], bytes]:
    """Overwrite 16 bytes in the middle of one entry's compressed data."""
    def apply(raw: bytes) -> bytes:
        out = bytearray(raw)
        (_, local, _), = [r for r in _records(raw) if r[2] == name.encode()]
        compressed, n, m = struct.unpack_from("<I", raw, local + 18)[0], *struct.unpack_from("<HH", raw, local + 26)
        middle = local + 30 + n + m + compressed // 2
        out[middle:middle + 16] = bytes(range(16))
        return bytes(out)
    return apply


def end_record_says(count: int) -> Callable[[bytes], bytes]:
    """The end-of-central-directory record claims count entries, whatever the directory holds."""
    def apply(raw: bytes) -> bytes:
        out = bytearray(raw)
        struct.pack_into("<HH", out, raw.rfind(b"PK\x05\x06") + 8, count, count)
        return bytes(out)
    return apply


def shared_data(name: str, copies: int) -> Callable[[bytes], bytes]:
    """Add copies central records (names name[:-5]1.png ...) that point at the one entry's data."""
    def apply(raw: bytes) -> bytes:
        end = raw.rfind(b"PK\x05\x06")
        count, size, start = struct.unpack_from("<HII", raw, end + 10)
        (central, _, _), = [r for r in _records(raw) if r[2] == name.encode()]
        n, m, k = struct.unpack_from("<HHH", raw, central + 28)
        record = raw[central:central + 46 + n + m + k]
        extra = b"".join(record.replace(name.encode(), f"{name[:-5]}{i}.png".encode()) for i in range(1, copies + 1))
        tail = bytearray(raw[end:])
        struct.pack_into("<HHI", tail, 8, count + copies, count + copies, size + len(extra))
        return raw[:end] + extra + bytes(tail)
    return apply


def cut(keep: float) -> Callable[[bytes], bytes]:
    return lambda raw: raw[:int(len(raw) * keep)]


def _fifo(root: Path) -> None:
    os.mkfifo(root / "pipe.png")


def _link_to_passwd(root: Path) -> None:
    os.symlink("/etc/passwd", root / "passwd.png")


def _link_to_folder(root: Path) -> None:
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.png").write_bytes(good_png(200))
    os.symlink(elsewhere, root / "linked")


def _link_to_itself(root: Path) -> None:
    os.symlink(".", root / "loop")


def _not_utf8_name(root: Path) -> None:
    with open(os.path.join(os.fsencode(root), b"\xff.png"), "wb") as f:
        f.write(good_png(150))


def _deep_folder(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "x.png").write_bytes(good_png(150))


def _many_files(root: Path) -> None:
    for i in range(4):
        (root / f"more{i}.png").write_bytes(good_png(i))


# ----------------------------------------------------------------------------- expected outcomes

@dataclass(frozen=True)
class Skipped:
    reasons: frozenset[str]  # one reason, or either of two where both are right


def skipped(*reasons: str) -> Skipped:
    return Skipped(frozenset(reasons))


@dataclass(frozen=True)
class Loaded:
    notes: tuple[str, ...] = ()  # exactly these conversions
    pixels: Callable[[np.ndarray], bool] | None = None  # on the hostile image, (C, H, W) uint8


@dataclass(frozen=True)
class Refused:
    match: str  # a regex the UploadRefused message must match (re.search)


@dataclass(frozen=True)
class Case:
    name: str
    build: Builder
    item: str  # the hostile file, as its outcome names it (the last outcome of that name)
    expect: Skipped | Loaded | Refused
    limits: UploadLimits = UploadLimits()
    cfg: dict = field(default_factory=dict)


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
BOMB = 40 * MB  # zeros; deflated to ~40 KB

CORPUS: list[Case] = [
    # ---- names that leave the archive's folder
    Case("dotdot", zipped(("../evil.png", good_png(9))), "../evil.png", skipped("outside")),
    Case("dotdot_inside", zipped(("a/../../evil.png", good_png(9))), "a/../../evil.png", skipped("outside")),
    Case("absolute", zipped(("/tmp/evil.png", good_png(9))), "/tmp/evil.png", skipped("outside")),
    Case("windows_dotdot", zipped(("..\\evil.png", good_png(9))), "..\\evil.png", skipped("outside")),
    Case("windows_drive", zipped(("C:\\evil.png", good_png(9))), "C:\\evil.png", skipped("outside")),
    Case("windows_drive_relative", zipped(("C:evil.png", good_png(9))), "C:evil.png", skipped("outside")),
    # ---- links, pipes and folders that are not what they seem
    Case("zip_symlink", zipped(symlink_entry("link.png", "/etc/passwd")), "link.png", skipped("link")),
    Case("folder_symlink_to_file", folder(_link_to_passwd), "passwd.png", skipped("link")),
    Case("folder_symlink_to_folder", folder(_link_to_folder), "linked", skipped("link")),
    Case("folder_symlink_loop", folder(_link_to_itself), "loop", skipped("link")),
    Case("folder_fifo", folder(_fifo), "pipe.png", skipped("not_file")),
    # ---- archives inside the archive
    Case("inner_zip", zipped(("inner.zip", inner_zip)), "inner.zip", skipped("archive")),
    Case("gzip_named_png", zipped(("photo.png", lambda: gzip.compress(good_png()))), "photo.png", skipped("archive")),
    Case("tar_named_png", zipped(("photo.png", tar_bytes)), "photo.png", skipped("archive")),
    Case("folder_inner_zip", folder(("inner.zip", inner_zip)), "inner.zip", skipped("archive")),
    # ---- entries zipfile would not write: crafted by rewriting the headers
    Case("encrypted", zipped(("secret.png", good_png(9)), patch=patched("secret.png", flags=0x1)), "secret.png",
         skipped("encrypted")),
    Case("duplicate_name", zipped(("dup.png", good_png(9)), ("dup.png", good_png(10))), "dup.png",
         skipped("duplicate")),
    Case("shared_data", zipped(("x0.png", good_png(9)), patch=shared_data("x0.png", 3)), "x3.png",
         skipped("damaged")),
    Case("bad_crc", zipped(("crc.png", noise("PNG")), patch=patched("crc.png", crc=0x12345678)), "crc.png",
         skipped("damaged")),
    Case("scrambled_deflate", zipped(("bits.png", noise("PNG")), patch=scrambled("bits.png")), "bits.png",
         skipped("damaged")),
    Case("unknown_compression", zipped(("aes.png", good_png(9)), patch=patched("aes.png", method=99)), "aes.png",
         skipped("damaged")),
    # ---- sizes: bombs and lies, all decided before or while reading, within the bound
    Case("zip_bomb", zipped(("bomb.png", lambda: bytes(BOMB))), "bomb.png", skipped("too_large")),
    Case("size_lie_small", zipped(("liar.png", lambda: bytes(8 * MB)), patch=patched("liar.png", size=1000)),
         "liar.png", skipped("too_large", "damaged"), limits=UploadLimits(file_bytes=64 * 1024)),
    Case("size_lie_at_limit", zipped(("liar.png", lambda: bytes(8 * MB)), patch=patched("liar.png", size=64 * 1024)),
         "liar.png", skipped("too_large", "damaged"), limits=UploadLimits(file_bytes=64 * 1024)),
    Case("over_total", zipped(*[(f"z{i}.png", noise("PNG", 48, seed=i)) for i in range(4)]), "z2.png",
         skipped("over_limit"), limits=UploadLimits(uncompressed_bytes=16_000)),
    Case("over_total_later", zipped(*[(f"z{i}.png", noise("PNG", 48, seed=i)) for i in range(4)]), "z3.png",
         skipped("over_limit"), limits=UploadLimits(uncompressed_bytes=16_000)),
    Case("too_many_entries", zipped(*[(f"x{i}.png", good_png(i)) for i in range(4)]), "", Refused(
        r"holds 6 entries; an upload may hold at most 3"), limits=UploadLimits(files=3)),
    Case("entry_count_lie", zipped(*[(f"x{i}.png", good_png(i)) for i in range(4)], patch=end_record_says(1)), "",
         Refused(r"an upload may hold at most 3"), limits=UploadLimits(files=3)),
    Case("folder_too_many", folder(_many_files), "", Refused(r"more than 3 files"), limits=UploadLimits(files=3)),
    Case("archive_too_big", zipped(("noise.png", noise("PNG", 64))), "", Refused(r"an upload may be at most"),
         limits=UploadLimits(upload_bytes=4096)),
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
    # ---- system files, depth and names
    Case("macosx_fork", zipped(("__MACOSX/._x.png", good_png(9))), "__MACOSX/._x.png", skipped("system")),
    Case("hidden_file", zipped((".hidden.png", good_png(9))), ".hidden.png", skipped("system")),
    Case("thumbs_db", zipped(("Thumbs.db", b"\xd0\xcf\x11\xe0" * 8)), "Thumbs.db", skipped("system")),
    Case("folder_hidden_folder", folder((".git/x.png", good_png(9))), ".git/x.png", skipped("system")),
    Case("too_deep", zipped(("a/b/c/x.png", good_png(9))), "a/b/c/x.png", skipped("too_deep"),
         limits=UploadLimits(depth=2)),
    Case("folder_too_deep", folder(_deep_folder), "a/b", skipped("too_deep"), limits=UploadLimits(depth=1)),
    Case("cp437_name", zipped(("cafX.png", good_png(150)), patch=patched("cafX.png", rename=b"caf\x82.png")),
         "caf\u00e9.png", Loaded(pixels=lambda im: (im == 150).all())),
    Case("utf8_flag_lies", zipped(("badXY.png", good_png(9)), patch=patched("badXY.png", flags=0x800,
                                                                        rename=b"bad\xff\xfe.png")),
         "", Refused(r"UTF-8")),
    Case("folder_name_not_utf8", folder(_not_utf8_name), "\ufffd.png", Loaded(pixels=lambda im: (im == 150).all())),
    # ---- archives that are not archives
    Case("random_bytes_zip", raw_file(lambda: np.random.default_rng(1).bytes(5000)), "", Refused(r"not a zip")),
    Case("truncated_zip", zipped(("x.png", noise("PNG")), patch=cut(0.97)), "", Refused(r"not a (readable )?zip")),
    Case("zip_cut_in_half", zipped(("x.png", noise("PNG")), patch=cut(0.5)), "", Refused(r"not a (readable )?zip")),
    # ---- the whole upload
    Case("unsplit", zipped(("train/a/x.png", good_png()), ("test/a/y.png", good_png()), ("stray.png", good_png(9)),
                           good=False), "stray.png", skipped("unsplit")),
    Case("nothing_usable", zipped(("a.png", b"words"), ("b.png", b""), ("c.png", b"more words"), good=False), "",
         Refused(r"No usable image among 3 files: 2 not images, 1 empty")),
]


# ----------------------------------------------------------------------------- running a case

class _Deadline(Exception):
    pass


@contextmanager
def deadline(seconds: float):
    """A case that hangs (a pipe opened for reading, a loop of pages) fails instead of stalling the suite."""
    def expire(*_):
        raise _Deadline(f"still reading after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _no_programs(*args, **kwargs):
    raise AssertionError(f"the loader started a program: {args[:1]}")  # Ghostscript, for one


def _files_under(root: Path) -> set[str]:
    """Every path under root, links not followed (a pipe is listed, not opened)."""
    found = set()
    for top, dirs, files in os.walk(root):
        found |= {os.path.relpath(os.path.join(top, n), root) for n in dirs + files}
    return found


def _evil_anywhere(tmp_path: Path) -> set[str]:
    """Names like evil.png where an extracting loader would have written them."""
    return {str(d / n) for d in (tmp_path.parent, Path("/tmp"), Path.cwd(), Path("/"))
            for n in os.listdir(d) if "evil" in n}


def hostile_image(result: UserImages) -> np.ndarray:
    """The one loaded image that is not GOOD's grey, as (C, H, W)."""
    images = torch.cat([result.train.images, result.test.images]).numpy()
    others = [im for im in images if not (im == GOOD).all()]
    assert len(others) == 1, f"{len(others)} images besides the good ones"
    return others[0]


def _read(case: Case, upload: Path) -> tuple[UserImages | None, UploadRefused | None, int]:
    """read_images under a deadline and a memory trace: (result, refusal, peak bytes)."""
    cfg = DataConfig(dataset="images", images=str(upload), **case.cfg)
    tracemalloc.start()
    try:
        with deadline(10):
            return read_images(upload, cfg, case.limits), None, tracemalloc.get_traced_memory()[1]
    except UploadRefused as e:
        return None, e, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_hostile_upload(case: Case, tmp_path: Path, monkeypatch):
    """The hostile item gets its stated outcome; nothing is written, no program runs, memory stays bounded."""
    made = tmp_path / "made"
    made.mkdir()
    upload = case.build(made)
    before, evil_before = _files_under(tmp_path), _evil_anywhere(tmp_path)
    monkeypatch.setattr(subprocess, "Popen", _no_programs)

    result, refused, peak = _read(case, upload)

    assert _files_under(tmp_path) == before, "the loader wrote files"
    assert _evil_anywhere(tmp_path) == evil_before, "a file escaped the upload"
    assert peak < PEAK_BYTES, f"held {peak / MB:.1f} MB at once"
    if isinstance(case.expect, Refused):
        assert refused is not None, f"not refused: {result.summary()}"
        assert re.search(case.expect.match, str(refused)), str(refused)
        return
    assert refused is None, f"refused: {refused}"
    mine = [o for o in result.outcomes if o.name == case.item]
    assert mine, f"no outcome named {case.item!r} among {[o.name for o in result.outcomes]}"
    outcome = mine[-1]
    assert any(o.skip is None for o in result.outcomes if o.name != case.item), "no ordinary image loaded"
    if isinstance(case.expect, Skipped):
        assert outcome.skip in case.expect.reasons, f"{outcome.skip}: {outcome.detail}"
        assert outcome.detail
        return
    assert outcome.skip is None, f"{outcome.skip}: {outcome.detail}"
    assert sorted(outcome.notes) == sorted(case.expect.notes)
    if case.expect.pixels:
        image = hostile_image(result)
        assert case.expect.pixels(image), image


def test_corpus_is_large_and_named_once():
    names = [c.name for c in CORPUS]
    assert len(names) >= 30 and len(set(names)) == len(names)


def test_duplicate_keeps_the_first(tmp_path):
    upload = zipped(("dup.png", good_png(9)), ("dup.png", good_png(10)))(tmp_path)
    result = read_images(upload, DataConfig(dataset="images", images=str(upload)))
    assert [o.skip for o in result.outcomes if o.name == "dup.png"] == [None, "duplicate"]
    assert sorted(np.unique(torch.cat([result.train.images, result.test.images])).tolist()) == [9, GOOD]


@pytest.mark.parametrize("error, reason", [(errno.EACCES, "damaged"), (errno.ELOOP, "link")],
                         ids=["unreadable", "swapped_for_a_link"])
def test_folder_file_that_cannot_be_opened(tmp_path, monkeypatch, error, reason):
    """A file the server may not read, or one swapped for a link after it was listed, is one skipped file."""
    upload = folder(("locked.png", good_png(9)))(tmp_path)
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if os.fsdecode(path).endswith("locked.png"):
            raise OSError(error, os.strerror(error), path)
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", refusing_open)
    result = read_images(upload, DataConfig(dataset="images", images=str(upload)))
    outcome, = [o for o in result.outcomes if o.name == "locked.png"]
    assert outcome.skip == reason and os.strerror(error) in outcome.detail


# ----------------------------------------------------------------------------- layouts and labels

def _cfg(path: Path, **kw) -> DataConfig:
    return DataConfig(dataset="images", images=str(path), **kw)


def _zip_of(tmp_path: Path, files: dict[str, bytes]) -> Path:
    return zipped(*files.items(), good=False)(tmp_path)


def _all_images(result: UserImages) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.cat([result.train.images, result.test.images]),
            torch.cat([result.train.labels, result.test.labels]))


class TestLayouts:
    def test_class_folders(self, tmp_path):
        files = {f"{cls}/{i}.png": good_png(level) for cls, level in (("cat", 10), ("dog", 200)) for i in range(5)}
        result = read_images(_zip_of(tmp_path, files), _cfg(tmp_path))
        assert (result.layout, result.split_by) == ("classes", "seed")
        assert result.train.label_names == result.test.label_names == ("cat", "dog")
        images, labels = _all_images(result)
        for image, label in zip(images, labels):  # the label is the folder the image was in
            assert result.train.label_names[label] == {10: "cat", 200: "dog"}[int(image[0, 0, 0])]
        assert {k: v["train"] + v["test"] for k, v in result.class_counts().items()} == {"cat": 5, "dog": 5}

    def test_train_and_test_folders(self, tmp_path):
        files = {f"{split}/{cls}/{i}.png": good_png(level) for split, n in (("train", 4), ("test", 2))
                 for cls, level in (("cat", 10), ("dog", 200)) for i in range(n)}
        result = read_images(_zip_of(tmp_path, files), _cfg(tmp_path))
        assert (result.layout, result.split_by) == ("split", "folders")
        assert (len(result.train), len(result.test)) == (8, 4)
        assert result.class_counts() == {"cat": {"train": 4, "test": 2}, "dog": {"train": 4, "test": 2}}
        for ds in (result.train, result.test):
            assert all(ds.label_names[lab] == {10: "cat", 200: "dog"}[int(im[0, 0, 0])]
                       for im, lab in zip(ds.images, ds.labels))

    def test_flat_folder_seeded_split(self, tmp_path):
        for i in range(20):
            (tmp_path / f"{i:02d}.png").write_bytes(good_png(10 * i))

        def test_levels(seed: int) -> set[int]:
            result = read_images(tmp_path, _cfg(tmp_path, test_share=0.25, seed=seed))
            assert (result.layout, result.split_by) == ("flat", "seed")
            assert (len(result.train), len(result.test)) == (15, 5)
            assert result.train.label_names == (UNLABELLED,)
            return {int(im[0, 0, 0]) for im in result.test.images}
        assert test_levels(0) == test_levels(0)
        assert test_levels(0) != test_levels(1)

    def test_one_top_folder_is_stripped(self, tmp_path):
        files = {f"My photos/{cls}/{i}.png": good_png(level) for cls, level in (("cat", 10), ("dog", 200))
                 for i in range(3)}
        result = read_images(_zip_of(tmp_path, files), _cfg(tmp_path))
        assert result.layout == "classes" and result.train.label_names == ("cat", "dog")

    def test_one_top_folder_of_splits_is_stripped(self, tmp_path):
        files = {f"export/{split}/cat/{i}.png": good_png(10) for split in ("train", "test") for i in range(2)}
        result = read_images(_zip_of(tmp_path, files), _cfg(tmp_path))
        assert (result.layout, len(result.train), len(result.test)) == ("split", 2, 2)


# ----------------------------------------------------------------------------- colour, squaring, sizes

def _solid(colour: tuple[int, int, int], size: tuple[int, int] = (32, 32)) -> bytes:
    return encoded(Image.new("RGB", size, colour), "PNG")


class TestColour:
    def test_auto_is_grey_when_every_image_is(self, tmp_path):
        files = {"a.png": good_png(10), "b.png": _solid((90, 90, 90))}  # RGB-coded, but grey
        result = read_images(_zip_of(tmp_path, files), _cfg(tmp_path))
        assert result.color == "grey" and result.train.channels == 1
        assert sorted(_all_images(result)[0][:, 0, 0, 0].tolist()) == [10, 90]

    def test_auto_is_rgb_when_any_image_is_coloured(self, tmp_path):
        files = {"a.png": good_png(10), "b.png": _solid((255, 0, 0))}
        result = read_images(_zip_of(tmp_path, files), _cfg(tmp_path))
        assert result.color == "rgb" and result.train.channels == 3
        assert sorted(_all_images(result)[0][:, :, 0, 0].tolist()) == [[10, 10, 10], [255, 0, 0]]

    def test_explicit_grey_and_rgb(self, tmp_path):
        upload = _zip_of(tmp_path, {"a.png": good_png(10), "b.png": _solid((255, 0, 0))})
        grey = read_images(upload, _cfg(upload, color="grey"))
        assert grey.train.channels == 1
        assert sorted(_all_images(grey)[0][:, 0, 0, 0].tolist()) == [10, 76]  # ITU-R 601 luma of red: 76.2
        upload = _zip_of(tmp_path, {"a.png": good_png(10), "b.png": good_png(20)})
        rgb_ = read_images(upload, _cfg(upload, color="rgb"))
        assert rgb_.train.channels == 3 and rgb_.color == "grey"  # what the images are; the tensors are RGB
        assert sorted(_all_images(rgb_)[0][:, :, 0, 0].tolist()) == [[10, 10, 10], [20, 20, 20]]


def _wide_image() -> bytes:
    """64 wide, 32 high: a left and right quarter of 10, a centre half of 100."""
    a = np.full((32, 64), 10, dtype=np.uint8)
    a[:, 16:48] = 100
    return encoded(Image.fromarray(a), "PNG")


class TestSquareAndSize:
    def test_crop_keeps_the_centre(self, tmp_path):
        upload = _zip_of(tmp_path, {"a.png": _wide_image(), "b.png": _wide_image()})
        images = _all_images(read_images(upload, _cfg(upload, square="crop", image_size=64)))[0]
        assert images.shape == (2, 1, 64, 64) and (images == 100).all()

    def test_pad_adds_black_rows(self, tmp_path):
        upload = _zip_of(tmp_path, {"a.png": _wide_image(), "b.png": _wide_image()})
        images = _all_images(read_images(upload, _cfg(upload, square="pad", image_size=64)))[0]
        assert images.shape == (2, 1, 64, 64)
        assert (images[:, :, :16] == 0).all() and (images[:, :, 48:] == 0).all()  # 16 black rows each side
        assert torch.equal(images[0, 0, 16:48], torch.from_numpy(np.array(Image.open(io.BytesIO(_wide_image())))))

    @pytest.mark.parametrize("size", [28, 32, 64])
    def test_resized_to_the_chosen_size(self, tmp_path, size):
        upload = _zip_of(tmp_path, {"a.png": noise("PNG", 40), "b.png": noise("PNG", 40, seed=1)})
        result = read_images(upload, _cfg(upload, image_size=size))
        assert result.train.images.shape[1:] == result.test.images.shape[1:] == (3, size, size)


# ----------------------------------------------------------------------------- the summary

def test_summary_counts_skips_by_reason(tmp_path):
    files = {"a.png": good_png(1), "b.png": good_png(2), "c.jpg": good_png(3), "d.png": b"words", "e.png": b"text",
             "f.png": b"", "../evil.png": good_png(4)}
    result = read_images(_zip_of(tmp_path, files), _cfg(tmp_path))
    assert result.summary() == ("3 images loaded (2 train, 1 test, 1 class); 4 skipped: 2 not images, "
                                "1 outside the archive, 1 empty. Converted: 1 named for another format, read by "
                                "content.")
    assert [o.skip for o in result.skipped] == ["outside", "not_image", "not_image", "empty"]


# ----------------------------------------------------------------------------- a real upload

def test_cifar10_png_zip():
    if not CIFAR_ZIP.exists():
        pytest.skip(f"{CIFAR_ZIP} is absent")
    from vae_core.model.reach import image_stats
    result = read_images(CIFAR_ZIP, _cfg(CIFAR_ZIP))
    assert (len(result.train), len(result.test)) == (4000, 1000)
    assert result.layout == "split" and len(result.train.label_names) == 10
    assert result.train.images.shape[1:] == (3, 32, 32)
    assert 0.35 < image_stats(result.train.images).outside["zscore"]["tanh"] < 0.37
