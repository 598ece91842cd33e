"""vae_core.data.images reads a person's own images safely from a folder or a .zip: hostile archives and folders.

A corpus of malformed and hostile uploads, every one generated here (no binary files are committed), each with its
expected outcome: names that leave the folder, links and pipes, archives inside, crafted entries, bombs and lies
about sizes, system files, depth and names, archives that are not, and the whole upload.
"""
from __future__ import annotations

import errno
import gzip
import io
import os
import stat
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
import torch

from tests.helpers import (GOOD, GOOD_NAMES, Builder, Case, Data, Loaded, Refused, as_bytes, check_hostile_upload,
                           good_png, noise, skipped, zipped)
from vae_core.config import DataConfig
from vae_core.data.images.dataset import read_images
from vae_core.data.images.source import MB, UploadLimits

# ----------------------------------------------------------------------------- making images

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


# ----------------------------------------------------------------------------- making uploads

def raw_file(data: Data, name: str = "upload.zip") -> Builder:
    def build(where: Path) -> Path:
        (where / name).write_bytes(as_bytes(data))
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
                (root / item[0]).write_bytes(as_bytes(item[1]))
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

@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_hostile_upload(case: Case, tmp_path: Path, monkeypatch):
    """The hostile item gets its stated outcome; nothing is written, no program runs, memory stays bounded."""
    check_hostile_upload(case, tmp_path, monkeypatch)


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

