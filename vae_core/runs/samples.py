"""The test images a run carries (samples.safetensors), so it can be shown where its data is not:
a torchvision set missing on this machine, or a person's upload that is gone.

uint8 images and int64 labels as tensors, the class names as JSON in the file's metadata: no pickles.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vae_core.config import RunConfig
from vae_core.data.base import ImageDataset

SAMPLES = "samples.safetensors"
N_SAMPLES = 64  # test images a run of a torchvision set carries: enough to show, small to keep
# A run on a person's images carries its test split up to this many: once the upload is deleted it is the
# only copy, and the pages (latent map) and the labs (500 images) measure on it.
N_SAMPLES_IMAGES = 1000
MAX_SAMPLES_BYTES = 16 * 2**20  # 1,000 RGB images of 64 x 64 are 12.3 MB
FORMAT = "vae-lab-samples/1"


class SamplesError(ValueError):
    """samples.safetensors is not one of ours; the message says what is wrong with it."""


def samples_to_keep(config: RunConfig, test: ImageDataset) -> ImageDataset | None:
    """The first test images a run carries (N_SAMPLES, or N_SAMPLES_IMAGES of a person's images); None for
    sprites, which are generated in code anywhere."""
    if config.data.dataset == "sprites":
        return None
    n = N_SAMPLES_IMAGES if config.data.dataset == "images" else N_SAMPLES
    return ImageDataset(test.name, test.images[:n].clone(), test.labels[:n].clone(), test.label_names)


def write_samples(path: Path, samples: ImageDataset) -> None:
    tensors = {"images": samples.images.contiguous(), "labels": samples.labels.contiguous()}
    save_file(tensors, str(path), metadata={"format": FORMAT, "dataset": samples.name,
                                            "label_names": json.dumps(list(samples.label_names))})


def read_samples_file(path: Path, config: RunConfig) -> ImageDataset:
    """The samples, checked against the run's image shape; SamplesError says what is wrong."""
    if path.stat().st_size > MAX_SAMPLES_BYTES:
        raise SamplesError(f"{path} is larger than {MAX_SAMPLES_BYTES // 2**20} MB: not a VAE Lab sample file.")
    try:
        with safe_open(str(path), "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise SamplesError(f"{path} is not a readable safetensors file ({e}).") from None
    images = tensors.get("images")
    _check_images(images, config, path)
    labels, names = _labels(tensors.get("labels"), meta, len(images), path)
    return ImageDataset(config.data.dataset, images, labels, names)


def _check_images(images: torch.Tensor | None, config: RunConfig, path: Path) -> None:
    m = config.model
    expected = (m.channels, m.image_size, m.image_size)
    if images is not None and images.dtype == torch.uint8 and images.dim() == 4 and len(images) \
            and tuple(images.shape[1:]) == expected:
        return
    got = "no 'images' tensor" if images is None else f"{images.dtype} {tuple(images.shape)}"
    raise SamplesError(f"{path} holds {got}, but this run's samples must be uint8 images of shape (N, "
                       f"{', '.join(map(str, expected))}). Delete the file: the run loads without it.")


def _labels(labels: torch.Tensor | None, meta: dict[str, str], n: int,
            path: Path) -> tuple[torch.Tensor, tuple[str, ...]]:
    """The labels and class names; a file from before labels were kept gets one class, "sample"."""
    if labels is None:
        return torch.zeros(n, dtype=torch.int64), ("sample",)
    try:
        names = json.loads(meta.get("label_names", "[]"))
    except ValueError:
        names = None
    ok = (isinstance(names, list) and names and all(isinstance(s, str) and len(s) <= 200 for s in names)
          and labels.dtype == torch.int64 and labels.shape == (n,)
          and (n == 0 or 0 <= int(labels.min()) <= int(labels.max()) < len(names)))
    if not ok:
        raise SamplesError(f"{path}'s labels do not match its class names. Delete the file: the run loads "
                           "without it.")
    return labels, tuple(names)
