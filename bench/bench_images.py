"""How fast VAE Lab reads a person's images, and how much memory it takes: the CIFAR-10 PNG zip of
../shared/data (5,000 images, 12 MB), read from the zip and from the same files in a folder, at 32 and 64
pixels, then its statistics. Prints one line per measurement (the median of REPEATS reads).

    python -m bench.bench_images
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
import tracemalloc
import zipfile
from pathlib import Path

from vae_core.config import DataConfig
from vae_core.data.images.dataset import read_images
from vae_core.model.reach import image_stats

CIFAR_ZIP = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-5k-png.zip"
REPEATS = 3


def timed(path: Path, size: int) -> tuple[float, int]:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        read = read_images(path, DataConfig(dataset="images", images=str(path), image_size=size))
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(read.train) + len(read.test)


def main() -> int:
    if not CIFAR_ZIP.is_file():
        sys.stderr.write(f"{CIFAR_ZIP} is not here: nothing to measure.\n")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(CIFAR_ZIP).extractall(tmp)  # the bench's own copy, to time a folder read
        for label, path in (("zip", CIFAR_ZIP), ("folder", Path(tmp))):
            for size in (32, 64):
                seconds, n = timed(path, size)
                print(f"read {label:6} at {size} px: {seconds:5.2f} s for {n:,} images ({n / seconds:,.0f} images/s)")
    read = read_images(CIFAR_ZIP, DataConfig(dataset="images", images=str(CIFAR_ZIP)))
    start = time.perf_counter()
    stats = image_stats(read.train.images)
    print(f"stats of {len(read.train):,} training images: {time.perf_counter() - start:.2f} s; z-scored, "
          f"{stats.outside['zscore']['tanh']:.1%} beyond tanh's (-1, 1)")
    tracemalloc.start()
    read_images(CIFAR_ZIP, DataConfig(dataset="images", images=str(CIFAR_ZIP), image_size=64))
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    kept = 5_000 * 3 * 64 * 64 / 2**20
    print(f"memory allocated while reading the zip at 64 px, at its peak: {peak:.1f} MB (the images kept are "
          f"{kept:.1f} MB; the zip is {CIFAR_ZIP.stat().st_size / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
