"""Your images as a dataset: the layout (train/ and test/ folders, class folders, or one flat folder),
labels from folder names, a seeded split where there is none, and a summary of what was skipped and why.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vae_core.config import DataConfig, ImageColor
from vae_core.data.base import ImageDataset
from vae_core.data.images.decode import NOTE_WORDS, Decoded, Note, Skip, decode
from vae_core.data.images.source import REASON_WORDS, Entry, SkipReason, UploadLimits, UploadRefused, entries

Layout = Literal["split", "classes", "flat"]
TRAIN_NAMES, TEST_NAMES = ("train",), ("test", "val", "valid", "validation")
UNLABELLED = "unlabelled"  # the class of an image outside every class folder
DATASET_NAME = "images"
# How a person's images become tensors: the DataConfig fields a person chooses (the page, the CLI, the labs).
def is_private(data: DataConfig) -> bool:
    """Whether data is a person's own images or vectors (a file of theirs; the bundled vectors are not): what is made
    of them is never kept in a cache every browser or every run of this process shares (the one rule the loaders of
    test images, test rows, target ranges and samples ask)."""
    return data.dataset == DATASET_NAME or data.vectors is not None


IMAGE_OPTIONS = ("image_size", "square", "color", "orientation", "test_share")


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one file: skipped (with its reason), or loaded (with any conversion noted)."""
    name: str
    skip: SkipReason | None  # None: loaded
    detail: str = ""
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True)
class UserImages:
    train: ImageDataset
    test: ImageDataset
    layout: Layout
    split_by: Literal["folders", "seed"]  # train/ and test/ folders, or a seeded share of the images
    color: ImageColor  # what the images are: rgb where any one has color (the default of "auto")
    outcomes: tuple[FileOutcome, ...]  # every file looked at, in name order

    @property
    def skipped(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.skip]

    def summary(self) -> str:
        """'4,993 images loaded (…); 7 skipped: 3 not images, 2 truncated or damaged, …'."""
        n = len(self.train) + len(self.test)
        head = (f"{n:,} images loaded ({len(self.train):,} train, {len(self.test):,} test, "
                f"{len(self.train.label_names)} {'class' if len(self.train.label_names) == 1 else 'classes'})")
        skips = Counter(o.skip for o in self.skipped)
        if skips:
            head += f"; {sum(skips.values()):,} skipped: " + _counted(skips, REASON_WORDS)
        notes = Counter(note for o in self.outcomes if not o.skip for note in o.notes)
        return head + (f". Converted: {_counted(notes, NOTE_WORDS)}." if notes else ".")

    def settle(self, data: DataConfig) -> DataConfig:
        """data with "auto" colour replaced by what these images are."""
        return data if data.color != "auto" else dataclasses.replace(data, color=self.color)

    def class_counts(self) -> dict[str, dict[str, int]]:
        """class name -> {"train": n, "test": n}."""
        names = self.train.label_names
        counts = {split: torch.bincount(ds.labels, minlength=len(names)).tolist()
                  for split, ds in (("train", self.train), ("test", self.test))}
        return {name: {split: counts[split][k] for split in counts} for k, name in enumerate(names)}


def _counted(counts: Counter, words: dict) -> str:
    return ", ".join(f"{n:,} {words[key][n != 1]}" for key, n in counts.most_common())


@dataclass(frozen=True)
class _Image:
    parts: tuple[str, ...]
    decoded: Decoded
    outcome: int  # its row in the outcomes


def read_images(path: str | Path, cfg: DataConfig, limits: UploadLimits = UploadLimits()) -> UserImages:
    """Every usable image of a folder or a .zip, at cfg's size, squaring, color and orientation.

    Raises UploadRefused where nothing can be used, saying why.
    """
    images, outcomes = [], []
    for entry in entries(Path(path), limits):
        decoded, outcome = _decoded(entry, cfg, limits)
        if decoded:
            images.append(_Image(entry.parts, decoded, len(outcomes)))
        outcomes.append(outcome)
    return _dataset(images, outcomes, cfg)


def _decoded(entry: Entry, cfg: DataConfig, limits: UploadLimits) -> tuple[Decoded | None, FileOutcome]:
    if entry.skip:
        return None, FileOutcome(entry.name, entry.skip, entry.detail)
    try:
        d = decode(entry.data, entry.name, cfg.image_size, cfg.square, cfg.orientation, limits)
    except Skip as s:
        return None, FileOutcome(entry.name, s.reason, s.detail)
    return d, FileOutcome(entry.name, None, notes=d.notes)


def _dataset(images: list[_Image], outcomes: list[FileOutcome], cfg: DataConfig) -> UserImages:
    if not images:
        raise UploadRefused(_nothing_usable(outcomes))
    images = _strip_common_root(images)
    layout = _layout(images)
    if layout == "split":
        images, outcomes = _in_splits(images, outcomes)
    color: ImageColor = "grey" if all(i.decoded.grey for i in images) else "rgb"
    tensors = _stack([i.decoded.pixels for i in images], color if cfg.color == "auto" else cfg.color)
    labels, names = _labels(images, layout)
    train_idx, test_idx = (_mixed(idx, cfg.seed) for idx in _split(images, layout, cfg))
    make = lambda idx: ImageDataset(DATASET_NAME, tensors[idx], labels[idx], names)  # noqa: E731
    return UserImages(make(train_idx), make(test_idx), layout, "folders" if layout == "split" else "seed",
                      color, tuple(outcomes))


def _nothing_usable(outcomes: list[FileOutcome]) -> str:
    if not outcomes:
        return "The upload holds no files. Upload a .zip (or a folder) of PNG, JPEG, BMP, WebP, GIF or TIFF images."
    skips = Counter(o.skip for o in outcomes)
    return (f"No usable image among {len(outcomes):,} files: {_counted(skips, REASON_WORDS)}. Upload PNG, JPEG, "
            "BMP, WebP, GIF or TIFF images, in class folders or all in one folder.")


def _strip_common_root(images: list[_Image]) -> list[_Image]:
    """A zip of one folder: that folder is the top (repeatedly), unless it is train/ or test/."""
    while all(len(i.parts) > 1 for i in images) and len({i.parts[0] for i in images}) == 1 \
            and _split_of(images[0].parts[0]) is None:
        images = [_Image(i.parts[1:], i.decoded, i.outcome) for i in images]
    return images


def _split_of(folder: str) -> Literal["train", "test"] | None:
    name = folder.lower()
    return "train" if name in TRAIN_NAMES else "test" if name in TEST_NAMES else None


def _layout(images: list[_Image]) -> Layout:
    tops = {_split_of(i.parts[0]) for i in images if len(i.parts) > 1}
    if {"train", "test"} <= tops:
        return "split"
    return "classes" if any(len(i.parts) > 1 for i in images) else "flat"


def _in_splits(images: list[_Image], outcomes: list[FileOutcome]) -> tuple[list[_Image], list[FileOutcome]]:
    """Images outside train/ and test/ are skipped, and their outcomes say so."""
    outside = [i for i in images if not (len(i.parts) > 1 and _split_of(i.parts[0]))]
    outcomes = list(outcomes)
    for i in outside:
        outcomes[i.outcome] = FileOutcome(outcomes[i.outcome].name, "unsplit", "the upload has train/ and test/ "
                                          "folders; this image is in neither")
    return [i for i in images if i not in outside], outcomes


def _stack(pixels: list[np.ndarray], color: ImageColor) -> torch.Tensor:
    """(N, C, S, S) uint8: grey images repeated into RGB, or RGB made grey by ITU-R 601 luma (as Pillow's "L")."""
    out = []
    for p in pixels:
        if color == "rgb":
            p = np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p
            out.append(p.transpose(2, 0, 1))
        else:
            p = p if p.ndim == 2 else ((p.astype(np.uint32) * (299, 587, 114)).sum(-1) + 500) // 1000
            out.append(p.astype(np.uint8)[None])
    return torch.from_numpy(np.stack(out))


def _labels(images: list[_Image], layout: Layout) -> tuple[torch.Tensor, tuple[str, ...]]:
    """Class = the folder under the split (split layout) or the top folder; else UNLABELLED."""
    depth = 1 if layout == "split" else 0
    classes = [i.parts[depth] if len(i.parts) > depth + 1 else UNLABELLED for i in images]
    names = tuple(sorted(set(classes)))
    index = {n: k for k, n in enumerate(names)}
    return torch.tensor([index[c] for c in classes], dtype=torch.int64), names


def _split(images: list[_Image], layout: Layout, cfg: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the train and test images: the folders' split, else a seeded share of cfg.test_share."""
    if layout == "split":
        is_test = torch.tensor([_split_of(i.parts[0]) == "test" for i in images])
        return _nonempty(is_test)
    if len(images) < 2:
        raise UploadRefused("Only one usable image: a test split needs at least two. Upload more images.")
    n_test = min(len(images) - 1, max(1, round(cfg.test_share * len(images))))
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(cfg.seed))
    is_test = torch.zeros(len(images), dtype=torch.bool)
    is_test[order[:n_test]] = True
    return _nonempty(is_test)


def _mixed(idx: torch.Tensor, seed: int) -> torch.Tensor:
    """A split in a seeded order, not by class: the first images a page shows, and a run carries, mix the classes."""
    return idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))]


def _nonempty(is_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    train, test = (~is_test).nonzero().squeeze(1), is_test.nonzero().squeeze(1)
    for split, idx in (("train", train), ("test", test)):
        if len(idx) == 0:
            raise UploadRefused(f"The {split}/ folder holds no usable image. Put images in both train/ and test/, "
                                "or upload them without those folders for a seeded split.")
    return train, test
