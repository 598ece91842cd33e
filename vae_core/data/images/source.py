"""The files of a folder or a zip, read safely: nothing is extracted, followed or executed.

Every entry comes out as an Entry: its bytes (read with a bound, so a lying header or a zip bomb
cannot fill the memory), or the reason it was skipped. The limits are stated in the messages that
enforce them. A source that cannot be used at all raises UploadRefused, saying why and what to do.
"""
from __future__ import annotations

import errno
import os
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator, Literal

from vae_core.host import DEFAULT_UPLOAD_MB, MB

SkipReason = Literal["not_image", "damaged", "too_large", "outside", "link", "archive", "encrypted", "duplicate",
                     "empty", "too_deep", "system", "over_limit", "unsupported", "not_file", "unsplit"]
# How a summary counts each reason: (one file, several files).
REASON_WORDS: dict[SkipReason, tuple[str, str]] = {
    "not_image": ("not an image", "not images"),
    "damaged": ("truncated or damaged", "truncated or damaged"),
    "too_large": ("too large", "too large"),
    "outside": ("outside the archive", "outside the archive"),
    "link": ("a link", "links"),
    "archive": ("an archive inside the archive", "archives inside the archive"),
    "encrypted": ("encrypted", "encrypted"),
    "duplicate": ("a duplicate name", "duplicate names"),
    "empty": ("empty", "empty"),
    "too_deep": ("nested too deep", "nested too deep"),
    "system": ("a system file", "system files"),
    "over_limit": ("past the uncompressed limit", "past the uncompressed limit"),
    "unsupported": ("an unsupported pixel format", "unsupported pixel formats"),
    "not_file": ("not a regular file", "not regular files"),
    "unsplit": ("outside train/ and test/", "outside train/ and test/"),
}
ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar", ".zst")
SYSTEM_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class UploadLimits:
    """What one upload may hold; each limit is named in the message that enforces it."""
    upload_bytes: int = DEFAULT_UPLOAD_MB * MB  # the zip itself (the host may change it)
    uncompressed_bytes: int = 1024 * MB  # every entry together, as read
    file_bytes: int = 32 * MB  # one file, uncompressed
    files: int = 50_000  # entries in a zip, files in a folder
    pixels: int = 4096 * 4096  # one image, read from its header before it is decoded (decompression bombs)
    depth: int = 8  # folders inside the top folder


class UploadRefused(ValueError):
    """The whole folder or archive cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class Entry:
    """One file of the source: its bytes, or why it was skipped."""
    name: str  # '/'-separated path inside the source, as shown to a person
    parts: tuple[str, ...]  # the path's folders and file name
    data: bytes | None = None
    skip: SkipReason | None = None
    detail: str = ""


def megabytes(n: int) -> str:
    """'200 MB', '200.3 MB', '0.1 MB': a size just past a limit never reads as the limit itself."""
    return f"{n / MB:,.1f} MB".replace(".0 MB", " MB")


def entries(path: Path, limits: UploadLimits) -> Iterator[Entry]:
    """Every file of a folder or a .zip, in name order (directories are not entries)."""
    if path.is_dir():
        return _folder_entries(path, limits)
    if not path.is_file():
        raise UploadRefused(f"{path} is neither a folder nor a file; give a folder of images or a .zip of them.")
    return _zip_entries(path, limits)


# ----------------------------------------------------------------------------- names

def clean_parts(name: str) -> tuple[str, ...] | None:
    """The path's parts, or None where it escapes the top folder (.., an absolute path, a drive letter)."""
    name = name.replace("\\", "/")  # a zip made on Windows may use either separator
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    return None if ".." in parts else parts


def _name_problem(parts: tuple[str, ...], limits: UploadLimits) -> tuple[SkipReason, str] | None:
    """Why a well-formed path is skipped before its bytes are read, or None."""
    if any(p.startswith(".") or p in SYSTEM_NAMES for p in parts):
        return "system", "a hidden or system file"
    if len(parts) - 1 > limits.depth:
        return "too_deep", f"{len(parts) - 1} folders deep; the limit is {limits.depth}"
    if parts[-1].lower().endswith(ARCHIVE_SUFFIXES):
        return "archive", "archives inside the upload are not opened"
    return None


class _Budget:
    """The uncompressed bytes read so far, against the limit."""

    def __init__(self, limits: UploadLimits):
        self.limits, self.read = limits, 0

    def room(self) -> int:
        return self.limits.uncompressed_bytes - self.read

    def skip_if_full(self, name: str, parts: tuple[str, ...]) -> Entry | None:
        if self.room() > 0:
            return None
        return Entry(name, parts, skip="over_limit",
                     detail=f"the upload's files together may hold {megabytes(self.limits.uncompressed_bytes)}")


def _bounded(read: bytes, limits: UploadLimits, budget: _Budget, name: str,
             parts: tuple[str, ...]) -> Entry:
    """An entry from at most (limit + 1) bytes read: too many means too large or past the total."""
    if len(read) > limits.file_bytes:
        return Entry(name, parts, skip="too_large", detail=f"more than {megabytes(limits.file_bytes)} uncompressed")
    if len(read) > budget.room():
        budget.read = limits.uncompressed_bytes
        return Entry(name, parts, skip="over_limit",
                     detail=f"the upload's files together may hold {megabytes(limits.uncompressed_bytes)}")
    budget.read += len(read)
    if not read:
        return Entry(name, parts, skip="empty", detail="zero bytes")
    return Entry(name, parts, data=read)


# ----------------------------------------------------------------------------- a folder

def _shown(name: str) -> str:
    """A file name as text, whatever bytes it was (non-UTF-8 bytes become U+FFFD)."""
    return os.fsencode(name).decode("utf-8", "replace")


def _folder_files(root: Path, limits: UploadLimits) -> list[tuple[str, tuple[str, ...]]]:
    """(os path, parts) of everything under root that is not a folder walked into: files, links (to folders
    too, never followed) and folders too deep to walk; at most limits.files of them."""
    found: list[tuple[str, tuple[str, ...]]] = []
    for top, dirs, files in os.walk(root, followlinks=False):
        rel = Path(top).relative_to(root).parts
        stop = [d for d in dirs if os.path.islink(os.path.join(top, d)) or len(rel) >= limits.depth]
        dirs[:] = sorted(d for d in dirs if d not in stop)
        for f in files + stop:
            found.append((os.path.join(top, f), tuple(_shown(p) for p in rel + (f,))))
        if len(found) > limits.files:
            raise UploadRefused(f"{root} holds more than {limits.files:,} files, the most one upload may "
                                "hold. Give a folder with fewer images.")
    return found


def _folder_entries(root: Path, limits: UploadLimits) -> Iterator[Entry]:
    budget = _Budget(limits)
    for os_path, parts in sorted(_folder_files(root, limits), key=lambda f: f[1]):
        yield _folder_entry(os_path, parts, limits, budget)


def _folder_entry(os_path: str, parts: tuple[str, ...], limits: UploadLimits, budget: _Budget) -> Entry:
    name = "/".join(parts)
    try:
        return _folder_file(os_path, name, parts, limits, budget)
    except OSError as e:  # not readable by the server, or removed or swapped for a link since it was listed
        return Entry(name, parts, skip="link" if e.errno == errno.ELOOP else "damaged",
                     detail=f"cannot be read ({e.strerror or type(e).__name__})")


def _folder_file(os_path: str, name: str, parts: tuple[str, ...], limits: UploadLimits, budget: _Budget) -> Entry:
    info = os.lstat(os_path)
    if stat.S_ISLNK(info.st_mode):
        return Entry(name, parts, skip="link", detail="links are not followed")
    if stat.S_ISDIR(info.st_mode):
        return Entry(name, parts, skip="too_deep", detail=f"a folder deeper than {limits.depth} is not read")
    if not stat.S_ISREG(info.st_mode):
        return Entry(name, parts, skip="not_file", detail="a device, socket or pipe")
    problem = _name_problem(parts, limits)
    if problem:
        return Entry(name, parts, skip=problem[0], detail=problem[1])
    return budget.skip_if_full(name, parts) or _bounded(_read_file(os_path, limits), limits, budget, name, parts)


def _read_file(os_path: str, limits: UploadLimits) -> bytes:
    """At most limits.file_bytes + 1 bytes; O_NOFOLLOW and O_NONBLOCK: a link or a pipe swapped in is not read."""
    fd = os.open(os_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return b""
        # read(n) allocates n bytes first: ask for the file's size (+1 sees it grow), not the limit, for each file
        return f.read(min(info.st_size, limits.file_bytes) + 1)


# ----------------------------------------------------------------------------- a zip

def _open_zip(path: Path, limits: UploadLimits) -> zipfile.ZipFile:
    size = path.stat().st_size
    if size > limits.upload_bytes:
        raise UploadRefused(f"The archive is {megabytes(size)}; an upload may be at most "
                            f"{megabytes(limits.upload_bytes)}. Upload fewer or smaller images.")
    _check_entry_count(path, limits)
    try:
        return zipfile.ZipFile(path)
    except UnicodeDecodeError:
        raise UploadRefused("The archive says its file names are UTF-8, but some are not. Make the zip again "
                            "with your system's own zip tool.") from None
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        raise UploadRefused(f"This is not a readable zip archive ({e}). Upload a .zip of images, such as "
                            "one made by your system's “Compress” command.") from None


def _check_entry_count(path: Path, limits: UploadLimits) -> None:
    """Refuse before the central directory is parsed: a million tiny entries would fill the memory."""
    try:
        with open(path, "rb") as f:
            end = zipfile._EndRecData(f)  # the end-of-central-directory record, zip64 included
            # zipfile parses every record there is, whatever the end record's count says: count them too
            listed = _central_records(f, end, limits.files + 1) if end else 0
    except OSError:
        end = None
    if not end:
        raise UploadRefused("This is not a zip archive (it has no zip directory). Upload a .zip of images.")
    count = end[zipfile._ECD_ENTRIES_TOTAL]
    if count > limits.files:
        raise UploadRefused(f"The archive holds {count:,} entries; an upload may hold at most {limits.files:,}. "
                            "Upload fewer images.")
    if listed > limits.files:
        raise UploadRefused(f"The archive's directory lists more than {limits.files:,} entries (its end record says "
                            f"{count:,}); an upload may hold at most {limits.files:,}. Upload fewer images.")


def _central_records(f: BinaryIO, end: list, most: int) -> int:
    """The central directory's records, counted up to most, stepping by each record's lengths as zipfile does."""
    size = end[zipfile._ECD_SIZE]
    start = end[zipfile._ECD_LOCATION] - size
    if end[zipfile._ECD_SIGNATURE] == zipfile.stringEndArchive64:
        start -= zipfile.sizeEndCentDir64 + zipfile.sizeEndCentDir64Locator
    count = walked = 0
    while walked < size and count < most and start >= 0:
        f.seek(start + walked)
        head = f.read(zipfile.sizeCentralDir)
        if len(head) < zipfile.sizeCentralDir or head[:4] != zipfile.stringCentralDir:
            break  # a truncated or damaged directory: zipfile refuses it when it opens the archive
        walked += zipfile.sizeCentralDir + sum(struct.unpack_from("<HHH", head, 28))  # name, extra, comment
        count += 1
    return count


def _zip_entries(path: Path, limits: UploadLimits) -> Iterator[Entry]:
    budget = _Budget(limits)
    with _open_zip(path, limits) as zf:
        seen: set[tuple[str, ...]] = set()
        for info in sorted(zf.infolist(), key=lambda i: i.filename):
            if not info.is_dir():
                yield _zip_entry(zf, info, limits, budget, seen)


def _zip_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: UploadLimits, budget: _Budget,
               seen: set[tuple[str, ...]]) -> Entry:
    parts = clean_parts(info.filename)
    if not parts:
        return Entry(info.filename, (), skip="outside", detail="its path leaves the archive's folder")
    name = "/".join(parts)
    if parts in seen:
        return Entry(name, parts, skip="duplicate", detail="an earlier entry has the same name")
    seen.add(parts)
    problem = _zip_problem(info, parts, limits) or _name_problem(parts, limits)
    if problem:
        return Entry(name, parts, skip=problem[0], detail=problem[1])
    return budget.skip_if_full(name, parts) or _zip_read(zf, info, limits, budget, name, parts)


def _zip_problem(info: zipfile.ZipInfo, parts: tuple[str, ...], limits: UploadLimits) -> tuple[SkipReason, str] | None:
    if stat.S_ISLNK(info.external_attr >> 16):
        return "link", "links are not followed"
    if info.flag_bits & 0x1:
        return "encrypted", "encrypted entries are not opened (no password is asked for)"
    if info.file_size > limits.file_bytes:
        return "too_large", f"{megabytes(info.file_size)} uncompressed; the limit is {megabytes(limits.file_bytes)}"
    return None


def _zip_read(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: UploadLimits, budget: _Budget, name: str,
              parts: tuple[str, ...]) -> Entry:
    """Decompress at most the limit + 1 bytes, whatever the header claims; a bad CRC is damage."""
    try:
        with zf.open(info) as f:
            data = f.read(min(limits.file_bytes, budget.room()) + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        return Entry(name, parts, skip="damaged", detail=f"cannot be decompressed ({e})")
    except Exception as e:  # zlib.error, lzma.LZMAError, ...: a damaged stream, whatever the codec
        return Entry(name, parts, skip="damaged", detail=f"cannot be decompressed ({type(e).__name__})")
    return _bounded(data, limits, budget, name, parts)
