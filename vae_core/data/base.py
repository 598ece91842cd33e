"""What every dataset is: a split as uint8 image tensors with labels (and, for sprites, their factors)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Split = Literal["train", "test"]


@dataclass(frozen=True)
class ImageDataset:
    """A split of a dataset as uint8 tensors; images are shared, so treat them as read-only."""

    name: str
    images: torch.Tensor  # (N, C, H, W) uint8
    labels: torch.Tensor  # (N,) int64
    label_names: tuple[str, ...]
    factors: torch.Tensor | None = None  # (N, K) float32, sprites only
    factor_names: tuple[str, ...] = ()

    @property
    def stored(self) -> torch.Tensor:
        """What a trainer batches: the uint8 images (vectors: VectorDataset.stored, the raw rows)."""
        return self.images

    @property
    def channels(self) -> int:
        """Image channels: 1 (grey) or 3 (RGB)."""
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        """Image height (= width) in pixels."""
        return self.images.shape[2]

    def __len__(self) -> int:
        """Number of images."""
        return self.images.shape[0]


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing or unreadable; the message says where they were expected and how to get them."""


def pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (value k becomes k/255), same shape."""
    if images.dtype != torch.uint8:
        raise TypeError(f"pixels expects uint8 images, got {images.dtype}.")
    return images.float().div_(255)
