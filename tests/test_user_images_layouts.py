"""vae_core.data.images arranges a person's own images: the layouts and their labels, colour, squaring, sizes and
the summary; then a real upload (CIFAR-10 as PNGs) where the shared data folder has it.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core.config import DataConfig
from vae_core.data.images.dataset import UNLABELLED, UserImages, read_images
from tests.helpers import encoded, good_png, noise, zipped

CIFAR_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-5k-png.zip"


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
