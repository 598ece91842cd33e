"""vae_core.data: generated sprites, torchvision sets from files, subsets, and clear errors."""
from __future__ import annotations

import colorsys
import math
import pickle
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vae_core.data import sprites as sprite_module
from vae_core.config import DataConfig
from vae_core.data.datasets import dataset_shape, load_dataset, resolve_data_dir
from vae_core.data.sprites import SPRITE_SHAPES, make_sprites
from vae_core.data.base import DatasetNotFoundError, ImageDataset, pixels

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # real files, outside the repo


@pytest.fixture(autouse=True)
def _fresh_sprite_cache():
    """Each test starts and ends with an empty sprite cache (64 px train alone is ~250 MB)."""
    sprite_module.sprite_split.cache_clear()
    yield
    sprite_module.sprite_split.cache_clear()


@pytest.fixture(scope="module")
def sprites() -> ImageDataset:
    return make_sprites(400, size=32, seed=0)


def _lit(ds: ImageDataset) -> torch.Tensor:
    """Per-pixel coverage in [0, 1]: the brightest channel (colours are fully saturated, full value)."""
    return ds.images.amax(dim=1).float() / 255  # (N, H, W)


# ----------------------------------------------------------------------------- sprites: what they are

class TestSpriteContents:
    def test_shapes_and_dtypes(self, sprites):
        assert sprites.images.shape == (400, 3, 32, 32) and sprites.images.dtype == torch.uint8
        assert sprites.labels.shape == (400,) and sprites.labels.dtype == torch.int64
        assert sprites.factors.shape == (400, 6) and sprites.factors.dtype == torch.float32
        assert sprites.factor_names == ("shape", "scale", "rotation", "x", "y", "hue")
        assert sprites.label_names == SPRITE_SHAPES == ("square", "ellipse", "triangle", "star")
        assert (len(sprites), sprites.channels, sprites.image_size, sprites.name) == (400, 3, 32, "sprites")
        assert torch.equal(sprites.labels, sprites.factors[:, 0].long())

    def test_black_background(self, sprites):
        corners = sprites.images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]  # (N, 3, 4)
        assert (corners == 0).all()  # shapes keep clear of the border, so corners are pure black
        assert (_lit(sprites) == 0).float().mean() > 0.6  # most of each image is background

    def test_edges_are_anti_aliased(self, sprites):
        cov = _lit(sprites)  # (N, H, W)
        partial = ((cov > 0) & (cov < 1)).sum(dim=(1, 2))  # (N,) soft edge pixels per image
        assert (partial >= 8).all()
        assert ((cov == 1).sum(dim=(1, 2)) >= 4).all()  # and a solid interior

    def test_every_shape_appears_about_equally(self, sprites):
        counts = torch.bincount(sprites.labels, minlength=4)
        assert counts.numel() == 4 and (counts > 0.15 * len(sprites)).all()

    def test_factors_in_their_ranges(self, sprites):
        shape, scale, rot, x, y, hue = sprites.factors.unbind(1)
        assert torch.equal(shape, shape.round()) and shape.min() == 0 and shape.max() == 3
        lo, hi = sprite_module.SCALE_RANGE
        assert (scale >= lo).all() and (scale <= hi).all() and 0.2 <= lo < hi <= 0.6
        assert (rot >= 0).all() and (rot < 2 * math.pi).all() and rot.max() > 5
        assert (x - scale / 2 > 0).all() and (x + scale / 2 < 1).all()  # the enclosing circle stays inside
        assert (y - scale / 2 > 0).all() and (y + scale / 2 < 1).all()
        assert (hue >= 0).all() and (hue < 1).all() and hue.max() - hue.min() > 0.9

    def test_centre_of_mass_is_the_xy_factor(self, sprites):
        cov = _lit(sprites)  # (N, H, W); every shape is drawn around its centroid
        grid = torch.arange(32) + 0.5
        mass = cov.sum(dim=(1, 2))
        cx = (cov.sum(dim=1) * grid).sum(1) / mass / 32
        cy = (cov.sum(dim=2) * grid).sum(1) / mass / 32
        f = sprites.factors
        assert (cx - f[:, 3]).abs().max() < 0.5 / 32 and (cy - f[:, 4]).abs().max() < 0.5 / 32

    def test_centre_pixel_has_the_hue_colour(self, sprites):
        f = sprites.factors
        for i in range(50):
            row, col = int(f[i, 4] * 32), int(f[i, 3] * 32)
            expected = torch.tensor(colorsys.hsv_to_rgb(float(f[i, 5]), 1.0, 1.0)) * 255
            assert (sprites.images[i, :, row, col].float() - expected).abs().max() <= 1.5, i  # RGB order

    def test_area_grows_with_scale(self, sprites):
        area = _lit(sprites).sum(dim=(1, 2))
        for k in range(4):
            sel = sprites.labels == k
            r = np.corrcoef(sprites.factors[sel, 1].numpy(), area[sel].numpy())[0, 1]
            assert r > 0.95, SPRITE_SHAPES[k]

    def test_each_shape_has_its_area(self, sprites):
        # area / enclosing circle's area: square 2/pi, ellipse 0.55 (its axis ratio), equilateral triangle
        # 3*sqrt(3)/(4*pi), star 5 * inner ratio * sin(36 deg) / pi; checks each SDF's size and soft edge
        expected = [2 / math.pi, sprite_module.ELLIPSE_MINOR, 3 * math.sqrt(3) / (4 * math.pi),
                    5 * sprite_module.STAR_INNER * math.sin(math.radians(36)) / math.pi]
        circle = math.pi * (sprites.factors[:, 1] * 16) ** 2  # (N,) in pixels
        fill = _lit(sprites).sum(dim=(1, 2)) / circle  # (N,)
        for k, want in enumerate(expected):
            got = fill[sprites.labels == k]
            assert abs(got.mean().item() - want) < 0.015 and got.std() < 0.03, SPRITE_SHAPES[k]


# ----------------------------------------------------------------------------- sprites: reproducibility

class TestSpriteReproducibility:
    def test_same_seed_same_bytes(self):
        a = make_sprites(64, seed=5).images.clone()
        sprite_module.sprite_split.cache_clear()  # force a real second generation
        assert torch.equal(a, make_sprites(64, seed=5).images)

    def test_different_seed_differs(self):
        assert not torch.equal(make_sprites(64, seed=1).images, make_sprites(64, seed=2).images)

    def test_first_images_do_not_depend_on_n(self):
        assert torch.equal(make_sprites(10, seed=3).images, make_sprites(40, seed=3).images[:10])

    def test_second_call_is_cached(self):
        assert make_sprites(32, seed=9) is make_sprites(32, seed=9)

    def test_train_and_test_are_different_images(self):
        cfg = DataConfig(n_train=500, n_test=500)
        train, test = load_dataset(cfg, "train"), load_dataset(cfg, "test")
        seen = {bytes(img.numpy()) for img in train.images}
        assert not any(bytes(img.numpy()) in seen for img in test.images)
        assert torch.equal(train.images, make_sprites(500, seed=0).images)  # make_sprites is the train stream

    def test_test_split_alone_generates_only_the_test_split(self):
        test = load_dataset(DataConfig(), "test")
        assert len(test) == sprite_module.SPRITES_TEST == 2000
        info = sprite_module.sprite_split.cache_info()
        assert (info.misses, info.currsize) == (1, 1)

    def test_64px_is_the_same_scene_in_more_detail(self):
        cfg = DataConfig(image_size=64, n_train=64)
        big = load_dataset(cfg, "train")
        assert big.images.shape == (64, 3, 64, 64) and big.image_size == 64
        small = make_sprites(64, size=32)
        assert torch.equal(big.factors, small.factors)
        down = F.avg_pool2d(big.images.float(), 2)  # (N, 3, 32, 32)
        assert (down - small.images.float()).abs().mean() < 4  # out of 255

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="n >= 1"):
            make_sprites(0)
        with pytest.raises(ValueError, match="split"):
            load_dataset(DataConfig(), "validation")

    def test_full_splits_generate_in_reasonable_time(self):
        start = time.perf_counter()
        train, test = load_dataset(DataConfig(), "train"), load_dataset(DataConfig(), "test")
        elapsed = time.perf_counter() - start
        assert (len(train), len(test)) == (20_000, 2_000) and train.images.shape[1:] == (3, 32, 32)
        assert elapsed < 60  # a sanity bound only: ~0.3-1 s on 2 idle cores (64 px: ~2-3 s, not run here)


def _save_grid(images: torch.Tensor, path: Path, zoom: int) -> None:
    """An 8x8 grid of the first 64 images on a grey frame, enlarged `zoom` times (nearest)."""
    from PIL import Image

    n, c, s, _ = images.shape
    cell = s + 2
    grid = torch.full((3, 8 * cell + 2, 8 * cell + 2), 60, dtype=torch.uint8)
    for i in range(min(n, 64)):
        r, q = divmod(i, 8)
        grid[:, 2 + r * cell:2 + r * cell + s, 2 + q * cell:2 + q * cell + s] = images[i]
    im = Image.fromarray(grid.permute(1, 2, 0).numpy())
    path.parent.mkdir(parents=True, exist_ok=True)
    im.resize((im.width * zoom, im.height * zoom), Image.NEAREST).save(path)


@pytest.mark.parametrize("size,zoom,name", [(32, 3, "sprites_grid.png"), (64, 2, "sprites_grid_64.png")])
def test_save_sprite_grid_for_a_look(size, zoom, name):
    """Writes artifacts/sprites_grid*.png (git-ignored) for a human to look at."""
    from PIL import Image

    path = REPO / "artifacts" / name
    _save_grid(make_sprites(64, size=size).images, path, zoom)
    with Image.open(path) as im:
        assert im.size == ((8 * (size + 2) + 2) * zoom,) * 2 and im.mode == "RGB"


# ----------------------------------------------------------------------------- small helpers

class TestHelpers:
    def test_pixels(self):
        x = torch.tensor([0, 1, 128, 255], dtype=torch.uint8).view(1, 1, 2, 2)
        p = pixels(x)
        assert p.dtype == torch.float32 and p.shape == x.shape
        assert torch.equal(p.flatten(), torch.tensor([0, 1, 128, 255]) / 255.0)
        with pytest.raises(TypeError, match="uint8"):
            pixels(p)

    def test_dataset_shape_without_loading(self):
        assert dataset_shape(DataConfig()) == (3, 32)
        assert dataset_shape(DataConfig(image_size=64)) == (3, 64)
        assert dataset_shape(DataConfig(dataset="mnist")) == (1, 28)
        assert dataset_shape(DataConfig(dataset="fashion_mnist")) == (1, 28)
        assert dataset_shape(DataConfig(dataset="cifar10", data_dir="/nonexistent")) == (3, 32)
        assert sprite_module.sprite_split.cache_info().currsize == 0

    def test_resolve_data_dir_order(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("VAE_LAB_DATA", raising=False)
        assert resolve_data_dir(None) == tmp_path / "data"
        monkeypatch.setenv("VAE_LAB_DATA", "/from/env")
        assert resolve_data_dir(None) == Path("/from/env")
        assert resolve_data_dir("explicit") == tmp_path / "explicit"

    def test_import_does_no_work_and_no_streamlit(self):
        code = ("import sys, vae_core.data.datasets, vae_core.data.sprites as s; "
                "assert 'streamlit' not in sys.modules; assert s.sprite_split.cache_info().currsize == 0")
        subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# ----------------------------------------------------------------------------- MNIST from the real files

@pytest.fixture(scope="module")
def mnist_dir() -> Path:
    if not (SHARED_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip(f"real MNIST files not found under {SHARED_DATA}")
    return SHARED_DATA


class TestMNIST:
    def test_full_splits(self, mnist_dir):
        for split, n, first_label in [("train", 60_000, 5), ("test", 10_000, 7)]:
            ds = load_dataset(DataConfig(dataset="mnist", data_dir=str(mnist_dir)), split)
            assert ds.images.shape == (n, 1, 28, 28) and ds.images.dtype == torch.uint8
            assert ds.labels.dtype == torch.int64 and ds.labels[0] == first_label  # the well-known first digits
            assert torch.equal(ds.labels.unique(), torch.arange(10))
            assert ds.label_names == tuple(str(d) for d in range(10))
            assert ds.factors is None and ds.factor_names == () and ds.name == "mnist"
            assert ds.images.max() == 255 and (ds.images == 0).float().mean() > 0.7  # white digits on black

    def test_subset_is_seeded_and_real(self, mnist_dir):
        cfg = DataConfig(dataset="mnist", data_dir=str(mnist_dir), n_test=300, seed=1)
        a, b = load_dataset(cfg, "test"), load_dataset(cfg, "test")
        other = load_dataset(DataConfig(dataset="mnist", data_dir=str(mnist_dir), n_test=300, seed=2), "test")
        assert len(a) == 300 and torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
        assert not torch.equal(a.images, other.images)
        full = load_dataset(DataConfig(dataset="mnist", data_dir=str(mnist_dir)), "test")
        match = (full.images.flatten(1) == a.images[0].flatten()).all(dim=1).nonzero().flatten()
        assert len(match) >= 1 and full.labels[match[0]] == a.labels[0]  # a real test image with its label

    def test_subset_larger_than_split(self, mnist_dir):
        with pytest.raises(ValueError, match="10,000"):
            load_dataset(DataConfig(dataset="mnist", data_dir=str(mnist_dir), n_test=10_001), "test")

    def test_env_var_points_at_the_data(self, mnist_dir, monkeypatch, tmp_path):
        monkeypatch.setenv("VAE_LAB_DATA", str(mnist_dir))
        assert len(load_dataset(DataConfig(dataset="mnist", n_test=5), "test")) == 5
        monkeypatch.setenv("VAE_LAB_DATA", str(tmp_path))  # an explicit data_dir beats the env var
        assert len(load_dataset(DataConfig(dataset="mnist", data_dir=str(mnist_dir), n_test=5), "test")) == 5


# ----------------------------------------------------------------------------- missing data

class TestMissingData:
    @pytest.mark.parametrize("name,folder,files", [
        ("mnist", "MNIST/raw", "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte"),
        ("fashion_mnist", "FashionMNIST/raw", "t10k-labels-idx1-ubyte"),
        ("cifar10", "cifar-10-batches-py", "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5, "
                                           "test_batch, batches.meta")])
    def test_empty_folder(self, tmp_path, name, folder, files):
        with pytest.raises(DatasetNotFoundError) as err:
            load_dataset(DataConfig(dataset=name, data_dir=str(tmp_path)), "train")
        msg = str(err.value)
        assert isinstance(err.value, FileNotFoundError)
        assert f"not found (or is incomplete) in {tmp_path} (expected" in msg
        assert files in msg and f"in {tmp_path / folder})" in msg
        assert "VAE_LAB_DATA" in msg and "--download" in msg
        assert list(tmp_path.iterdir()) == []  # nothing downloaded or created unasked

    @pytest.mark.parametrize("module,name", [("mnist", "mnist"), ("cifar", "cifar10")])
    def test_offline_download(self, tmp_path, monkeypatch, module, name):
        import torchvision.datasets

        def offline(*args, **kwargs):
            raise URLError("no network")

        monkeypatch.setattr(getattr(torchvision.datasets, module), "download_and_extract_archive", offline)
        with pytest.raises(DatasetNotFoundError, match=r"Downloading .* failed .*no network") as err:
            load_dataset(DataConfig(dataset=name, data_dir=str(tmp_path), download=True), "test")
        assert str(tmp_path) in str(err.value)


# ----------------------------------------------------------------------------- CIFAR-10 from fake batch files

CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture
def fake_cifar(tmp_path, monkeypatch) -> tuple[Path, np.ndarray, np.ndarray]:
    """cifar-10-batches-py with 5 x 4 train and 3 test images in the real pickle format; md5 checks patched."""
    import torchvision.datasets.cifar as cifar

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, size=(23, 3072), dtype=np.uint8)  # each row: 1024 R, 1024 G, 1024 B
    rows[0, 0] = 200  # R at (0, 0)
    rows[0, 1024 + 5 * 32 + 7] = 100  # G at (5, 7)
    rows[0, 2048 + 31 * 32 + 31] = 50  # B at (31, 31)
    labels = rng.integers(0, 10, size=23)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, fname in enumerate(names):
        sl = slice(4 * i, 4 * i + (4 if i < 5 else 3))
        with open(folder / fname, "wb") as f:
            pickle.dump({"data": rows[sl], "labels": labels[sl].tolist()}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": CIFAR_CLASSES}, f)
    # torchvision checks every batch's md5 and, separately, the meta file's: fake files can pass neither
    monkeypatch.setattr(cifar.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(cifar, "check_integrity", lambda *args, **kwargs: True)
    return tmp_path, rows, labels


class TestCIFAR10:
    def test_loads_fake_batches_in_channel_order(self, fake_cifar):
        root, rows, labels = fake_cifar
        train = load_dataset(DataConfig(dataset="cifar10", data_dir=str(root)), "train")
        assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
        assert train.images.is_contiguous()
        assert (train.images[0, 0, 0, 0], train.images[0, 1, 5, 7], train.images[0, 2, 31, 31]) == (200, 100, 50)
        assert torch.equal(train.images, torch.from_numpy(rows[:20].reshape(20, 3, 32, 32)))
        assert torch.equal(train.labels, torch.from_numpy(labels[:20]).long())
        assert train.label_names == tuple(CIFAR_CLASSES) and train.channels == 3 and train.image_size == 32

    def test_test_split_and_subsets(self, fake_cifar):
        root, rows, _ = fake_cifar
        test = load_dataset(DataConfig(dataset="cifar10", data_dir=str(root)), "test")
        assert torch.equal(test.images, torch.from_numpy(rows[20:].reshape(3, 3, 32, 32)))
        sub = load_dataset(DataConfig(dataset="cifar10", data_dir=str(root), n_train=7), "train")
        assert len(sub) == 7 and len(set(sub.labels.tolist())) >= 1
        with pytest.raises(ValueError, match=r"n_train=21 .* \(20 images\)"):
            load_dataset(DataConfig(dataset="cifar10", data_dir=str(root), n_train=21), "train")
