"""Datasets behind one interface (load_dataset, load_splits): uint8 image tensors with labels (data/base.py).

Sprites are generated in code (no download, ever: data/sprites.py); MNIST, Fashion-MNIST and CIFAR-10 come
through torchvision from a data folder; a person's own images are read safely by data/images/. Normalization
is not done here: see data/normalize.py.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from vae_core import host
from vae_core.config import DataConfig
from vae_core.data.base import DatasetNotFoundError, ImageDataset, Split
from vae_core.data.images.dataset import read_images
from vae_core.data.images.source import UploadRefused
from vae_core.data.sprites import SPRITES_TEST, SPRITES_TRAIN, sprite_split
from vae_core.data.vectors.bundled import read_vectors
from vae_core.data.vectors.dataset import VectorDataset

# ----------------------------------------------------------------------------- where the data lives

def resolve_data_dir(data_dir: str | None) -> Path:
    """The data folder: the explicit argument, else the host's (host.data_dir: $VAE_LAB_DATA, else ./data)."""
    return (Path(data_dir) if data_dir else host.data_dir()).expanduser().absolute()


def dataset_shape(cfg: DataConfig) -> tuple[int, int]:
    """(channels, image_size) of cfg's dataset, without loading it."""
    if cfg.dataset == "sprites":
        return 3, cfg.image_size
    if cfg.dataset == "images":
        color = cfg.color if cfg.color != "auto" else _read_images(cfg).color  # only "auto" reads the images
        return (1 if color == "grey" else 3), cfg.image_size
    return {"mnist": (1, 28), "fashion_mnist": (1, 28), "cifar10": (3, 32)}[cfg.dataset]


# ----------------------------------------------------------------------------- torchvision sets

_TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10"}


def _expected_files(cls: type, root: Path) -> tuple[Path, list[str]]:
    """The folder and files torchvision's loader checks (for both splits, whichever is asked for)."""
    if hasattr(cls, "resources"):  # MNIST-style: <root>/<class name>/raw/<file without .gz>
        return root / cls.__name__ / "raw", [os.path.splitext(f)[0] for f, _ in cls.resources]
    batches = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]  # CIFAR-style pickles
    return root / cls.base_folder, batches


def _not_found(cls: type, root: Path, cause: Exception, download: bool) -> DatasetNotFoundError:
    """One clear message for a missing or undownloadable dataset."""
    folder, files = _expected_files(cls, root)
    detail = " ".join(str(cause).split())[:300]  # torchvision's message spans lines, one per mirror tried
    title = cls.__name__
    what = f"Downloading {title} into {root} failed ({type(cause).__name__}: {detail})" if download \
        else f"{title} was not found (or is incomplete) in {root}"
    return DatasetNotFoundError(
        f"{what} (expected {', '.join(files)} in {folder}). Put the files there, point --data-dir or "
        f"VAE_LAB_DATA at the folder that holds them, or ask for a download (--download in the CLI; "
        f"in the app, the host sets VAE_LAB_ALLOW_DOWNLOAD=1) on a machine with internet.")


def _load_torchvision(name: str, root: Path, train: bool, download: bool) -> ImageDataset:
    """A whole torchvision split as uint8 tensors, straight from .data / .targets."""
    import torchvision.datasets  # here, not at the top: importing torchvision is slow and sprites don't need it

    cls = getattr(torchvision.datasets, _TORCHVISION[name])
    try:
        ds = cls(str(root), train=train, download=download)
    except (RuntimeError, OSError) as e:  # "Dataset not found", md5 mismatch, URLError when offline
        raise _not_found(cls, root, e, download) from e
    data = torch.as_tensor(ds.data)  # MNIST (N, H, W) tensor; CIFAR (N, H, W, C) numpy
    images = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)  # (N, C, H, W)
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)  # (N,)
    names = tuple(c.split(" - ")[0] for c in ds.classes)  # MNIST's "0 - zero" -> "0"
    return ImageDataset(name=name, images=images.contiguous().to(torch.uint8), labels=labels, label_names=names)


def _subset(ds: ImageDataset, n: int | None, seed: int, split: Split) -> ImageDataset:
    """A seeded random subset of n images (kept in their original order); None keeps all."""
    if n is None or n == len(ds):
        return ds
    if n > len(ds):
        raise ValueError(f"n_{split}={n} is larger than the {ds.name} {split} split ({len(ds):,} images).")
    return _pick(ds, _seeded_order(len(ds), seed)[:n].sort().values)


def _seeded_order(n_total: int, seed: int) -> torch.Tensor:
    """The order subsets draw from: a subset of n is the first n of it (so a smaller subset lies in a larger one)."""
    return torch.randperm(n_total, generator=torch.Generator().manual_seed(seed))


def _pick(ds: ImageDataset, idx: torch.Tensor) -> ImageDataset:
    factors = None if ds.factors is None else ds.factors[idx]
    return ImageDataset(name=ds.name, images=ds.images[idx], labels=ds.labels[idx], label_names=ds.label_names,
                        factors=factors, factor_names=ds.factor_names)


def load_test_nested(cfg: DataConfig, first: int) -> ImageDataset:
    """cfg's test split, reordered so that its first `first` images are load_dataset's with n_test=first, in their
    order, then the rest in split order: an index into the smaller subset is the same index here."""
    if cfg.dataset == "sprites":  # the first k sprites do not depend on how many are made
        return load_dataset(cfg, "test")
    if cfg.dataset == "images":
        raise ValueError("a person's images have no nested test split: use the test images the run carries.")
    full = _load_torchvision(cfg.dataset, resolve_data_dir(cfg.data_dir), False, cfg.download)
    n = len(full) if cfg.n_test is None else cfg.n_test
    if not first <= n <= len(full):
        raise ValueError(f"first={first} and n_test={n} must satisfy first <= n_test <= {len(full):,}.")
    order = _seeded_order(len(full), cfg.seed)
    head = order[:first].sort().values if first < len(full) else torch.arange(first)  # as _subset keeps a whole split
    tail = order[first:n].sort().values
    return _pick(full, torch.cat([head, tail]))


def load_dataset(cfg: DataConfig, split: Split) -> ImageDataset | VectorDataset:
    """cfg's dataset, one split, as uint8 tensors (sprites generated; others read from their folder; vectors: rows)."""
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} is not an option; pick 'train' or 'test'.")
    if cfg.kind == "vectors":
        return load_splits(cfg)[split == "test"]
    n = cfg.n_train if split == "train" else cfg.n_test
    if cfg.dataset == "sprites":  # generate exactly n; train and test use different random streams
        default = SPRITES_TRAIN if split == "train" else SPRITES_TEST
        return sprite_split(n or default, cfg.image_size, cfg.seed, 0 if split == "train" else 1)
    if cfg.dataset == "images":
        return load_splits(cfg)[split == "test"]
    full = _load_torchvision(cfg.dataset, resolve_data_dir(cfg.data_dir), split == "train", cfg.download)
    return _subset(full, n, cfg.seed, split)


def load_splits(cfg: DataConfig) -> tuple[ImageDataset, ImageDataset] | tuple[VectorDataset, VectorDataset]:
    """(train, test) of cfg's dataset; a person's images (or vectors) are read once for both."""
    if cfg.kind == "vectors":
        return _vector_splits(cfg)
    if cfg.dataset != "images":
        return load_dataset(cfg, "train"), load_dataset(cfg, "test")
    read = _read_images(cfg)
    return _subset(read.train, cfg.n_train, cfg.seed, "train"), _subset(read.test, cfg.n_test, cfg.seed, "test")


def _read_images(cfg: DataConfig):
    """A person's images (never cached here: a server's shared caches must not hold anyone's upload)."""
    try:
        return read_images(cfg.images, cfg)
    except (UploadRefused, OSError) as e:
        raise DatasetNotFoundError(f"Your images at {cfg.images} cannot be used: {e}") from e


def _vector_splits(cfg: DataConfig) -> tuple[VectorDataset, VectorDataset]:
    """The vectors' train and test rows (a file's, else the bundled ones), each a seeded subset if asked for."""
    read = read_vectors(cfg.vectors, seed=cfg.seed, test_share=cfg.test_share)  # never cached: a person's data
    return _rows_subset(read.train, cfg.n_train, cfg.seed), _rows_subset(read.test, cfg.n_test, cfg.seed)


def _rows_subset(ds: VectorDataset, n: int | None, seed: int) -> VectorDataset:
    """A seeded random subset of n rows, in their order (as _subset picks images); None keeps all."""
    if n is None or n == len(ds):
        return ds
    if n > len(ds):
        raise ValueError(f"n_{ds.split}={n} is larger than the vectors' {ds.split} split ({len(ds):,} rows).")
    idx = _seeded_order(len(ds), seed)[:n].sort().values
    labels = None if ds.labels is None else ds.labels[idx]
    return dataclasses.replace(ds, x=ds.x[idx], rows=ds.rows[idx], labels=labels)


def vector_features(cfg: DataConfig) -> int:
    """D, the number of features of cfg's vectors (reads them)."""
    return load_splits(cfg)[0].features
