"""One browser's private space on the server: its uploaded archives and files of vectors, and the runs trained on
them.

A space is a folder named by a hash of the browser's token under the host's uploads folder (mode 0700).
Nothing outside it is written; another browser cannot name it (the token is the browser's secret). A
space is deleted when its browser asks, or once nobody has used it for the host's stated time (unless
a job is still training on it). A run saved "for everyone" is moved out to the host's runs folder.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable

from vae_core.data.images.source import UploadLimits, UploadRefused, megabytes
from vae_core.data.vectors.limits import VectorLimits, amount

UPLOAD_PREFIX, UPLOAD_SUFFIX = "images-", ".zip"  # images-<sha256 prefix>.zip: the same file, the same path
VECTORS_PREFIX = "vectors-"  # vectors-<sha256 prefix>.csv or .npy: the suffix tells the loader how to read it
VECTOR_SUFFIXES = (".csv", ".npy")
TOUCH = ".last-used"  # its modification time is when the space's browser last used it
# Uploads a space keeps, the newest first: a browser cannot fill the server's disk by uploading again and
# again (runs keep their own test images, so a run outlives the upload it was trained on).
UPLOADS_KEPT = 3
SPACE_NAME_CHARS = 24  # hex digits of the token's SHA-256 naming a space
COPY_CHUNK = 2**20


@dataclass(frozen=True)
class PrivateSpace:
    root: Path

    @classmethod
    def of(cls, uploads_root: Path, token: str) -> "PrivateSpace":
        """The space of a browser token (which need not exist yet)."""
        return cls(Path(uploads_root) / hashlib.sha256(token.encode()).hexdigest()[:SPACE_NAME_CHARS])

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def exists(self) -> bool:
        return self.root.is_dir()

    def holds(self, path: str | Path) -> bool:
        """Whether path lies inside this space (after resolving links and ..)."""
        return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(self.root))

    def uploads(self) -> list[Path]:
        """The archives of images uploaded here, newest first."""
        return self._newest_first(f"{UPLOAD_PREFIX}*{UPLOAD_SUFFIX}")

    def vector_uploads(self) -> list[Path]:
        """The files of vectors uploaded here, newest first."""
        return self._newest_first(*(f"{VECTORS_PREFIX}*{suffix}" for suffix in VECTOR_SUFFIXES))

    def _newest_first(self, *patterns: str) -> list[Path]:
        if not self.exists():
            return []
        found = [p for pattern in patterns for p in self.root.glob(pattern)]
        return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)

    def touch(self) -> None:
        if self.exists():
            (self.root / TOUCH).touch()

    def last_used(self) -> float:
        marker = self.root / TOUCH
        return marker.stat().st_mtime if marker.exists() else self.root.stat().st_mtime

    def delete(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _make(self) -> None:
        # the uploads folder is made private when made here; one the host made is left as it is (it may be /tmp)
        self.root.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)  # whatever the umask: the space is its browser's alone
        self.touch()

    def save_upload(self, stream: BinaryIO, limits: UploadLimits) -> Path:
        """Copy an uploaded archive in here in chunks (never more than the limit); its name is its hash."""
        too_large = (f"The upload is larger than {megabytes(limits.upload_bytes)}, the most one upload may be. "
                     "Upload fewer or smaller images.")
        path = self._save(stream, limits.upload_bytes, too_large, UPLOAD_PREFIX, UPLOAD_SUFFIX)
        for old in self.uploads()[UPLOADS_KEPT:]:
            old.unlink(missing_ok=True)
        return path

    def save_vectors(self, stream: BinaryIO, suffix: str, limits: VectorLimits = VectorLimits()) -> Path:
        """Copy an uploaded file of vectors in here (never more than its byte limit), keeping its .csv or .npy
        suffix; its name is its hash."""
        if suffix.lower() not in VECTOR_SUFFIXES:
            raise UploadRefused(f"A file of vectors must end in {' or '.join(VECTOR_SUFFIXES)}, not {suffix!r}. "
                                "Save it as CSV (UTF-8) or as a NumPy .npy array.")
        too_large = (f"The file is larger than {amount('file_bytes', limits.file_bytes)}, the most a file of vectors "
                     "may be. Keep fewer rows (a random sample of them).")
        path = self._save(stream, limits.file_bytes, too_large, VECTORS_PREFIX, suffix.lower())
        for old in self.vector_uploads()[UPLOADS_KEPT:]:
            old.unlink(missing_ok=True)
        return path

    def _save(self, stream: BinaryIO, max_bytes: int, too_large: str, prefix: str, suffix: str) -> Path:
        """Copy stream in chunks to <prefix><its hash><suffix>, the newest file here; UploadRefused past max_bytes."""
        self._make()
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                _copy(stream, out, digest, max_bytes, too_large)
            path = self.root / f"{prefix}{digest.hexdigest()[:16]}{suffix}"
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        os.utime(path)  # the newest upload is the one in use, even when the same file came again
        return path


def _copy(stream: BinaryIO, out: BinaryIO, digest, max_bytes: int, too_large: str) -> None:
    written = 0
    while chunk := stream.read(COPY_CHUNK):
        written += len(chunk)
        if written > max_bytes:
            raise UploadRefused(too_large)
        digest.update(chunk)
        out.write(chunk)


def save_for_everyone(run_dir: Path, runs_dir: Path) -> Path:
    """Move a private run to the host's runs folder, where every browser's picker lists it."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    target = runs_dir / run_dir.name
    if target.exists():
        raise FileExistsError(f"{target} already exists; it was saved before.")
    shutil.move(str(run_dir), str(target))
    return target


def delete_expired(uploads_root: Path, ttl_s: float, busy: Iterable[PrivateSpace] = (),
                   now: float | None = None) -> list[Path]:
    """Delete every space unused for ttl_s seconds, except the busy ones (a job trains on them)."""
    root, now = Path(uploads_root), time.time() if now is None else now
    if not root.is_dir():
        return []
    keep = {s.root for s in busy}
    gone = []
    for space in (PrivateSpace(p) for p in root.iterdir() if _is_space(p)):
        if space.root not in keep and now - space.last_used() > ttl_s:
            space.delete()
            gone.append(space.root)
    return gone


def _is_space(path: Path) -> bool:
    """Only a folder a space made (its hashed name, its marker) is ever deleted: the host's uploads folder may
    hold other things (VAE_LAB_UPLOADS=/tmp)."""
    return (len(path.name) == SPACE_NAME_CHARS and all(c in "0123456789abcdef" for c in path.name)
            and not path.is_symlink() and (path / TOUCH).is_file())
