"""The bundled vectors, generated in code (seeded, offline): unbounded rows with structure a small code captures.

Each row is a point of a LATENT-dimensional cluster mixture sent through one fixed random nonlinear map to FEATURES
features, each with its own scale (spanning five orders of magnitude) and an offset far from 0, plus noise: the
setting of a dense VAE with a small code on raw, unnormalized numbers. Its label is the cluster.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vae_core.data.vectors.dataset import VectorLoad
from vae_core.data.vectors.limits import VectorLimits
from vae_core.data.vectors.loader import DEFAULT_TEST_SHARE, load_vectors, split_rows
from vae_core.data.vectors.parsed import Parsed

FEATURES, LATENT, CLUSTERS, HIDDEN = 12, 3, 4, 16  # HIDDEN: the width of the map's one tanh layer
ROWS = 11_000  # before the split: 9,900 train and 1,100 test at the default share
MAP_SEED = 20_251_207  # the map is one for every data seed: a seed draws new rows of the same data
SCALE_DECADES = (-2.0, 3.0)  # feature scales from 10^-2 to 10^3
OFFSET_SCALES = (5.0, 40.0)  # each offset, in its feature's own scale, is this far from 0
CLUSTER_SPREAD, WITHIN_SPREAD, NOISE = 2.5, 0.7, 0.05  # latent centres, points about them; noise in feature scales
TANH_GAIN, BENT_WEIGHT = 2.0, 2.0  # how far into tanh's bend the map goes, and its part beside the linear one


@dataclass(frozen=True)
class FeatureMap:
    """The fixed map from a latent point to the features."""
    centres: np.ndarray  # (CLUSTERS, LATENT)
    w1: np.ndarray  # (HIDDEN, LATENT)
    b1: np.ndarray  # (HIDDEN,)
    w2: np.ndarray  # (FEATURES, HIDDEN)
    linear: np.ndarray  # (FEATURES, LATENT)
    scale: np.ndarray  # (FEATURES,)
    offset: np.ndarray  # (FEATURES,)

    def features(self, z: np.ndarray) -> np.ndarray:
        """(N, LATENT) latent points -> (N, FEATURES) noiseless features, in raw units."""
        u = z / CLUSTER_SPREAD  # (N, LATENT), about unit spread
        bent = np.tanh(u @ self.w1.T + self.b1) @ self.w2.T / np.sqrt(HIDDEN)  # (N, FEATURES)
        return self.offset + self.scale * (BENT_WEIGHT * bent + u @ self.linear.T / np.sqrt(LATENT))


def feature_map() -> FeatureMap:
    """The one map, drawn from MAP_SEED."""
    rng = np.random.default_rng(MAP_SEED)
    scale = 10.0 ** rng.permutation(np.linspace(*SCALE_DECADES, FEATURES))
    offset = scale * rng.uniform(*OFFSET_SCALES, FEATURES) * rng.choice([-1.0, 1.0], FEATURES)
    return FeatureMap(rng.normal(0, CLUSTER_SPREAD, (CLUSTERS, LATENT)), rng.normal(0, TANH_GAIN, (HIDDEN, LATENT)),
                      rng.normal(0, 1, HIDDEN), rng.normal(0, 1, (FEATURES, HIDDEN)),
                      rng.normal(0, 1, (FEATURES, LATENT)), scale, offset)


def generated_rows(seed: int) -> Parsed:
    """The bundled data's ROWS rows, drawn from seed: the same seed, the same bytes."""
    m, rng = feature_map(), np.random.default_rng(seed)
    cluster = rng.integers(0, CLUSTERS, ROWS)
    z = m.centres[cluster] + rng.normal(0, WITHIN_SPREAD, (ROWS, LATENT))  # (ROWS, LATENT)
    x = m.features(z) + m.scale * rng.normal(0, NOISE, (ROWS, FEATURES))  # (ROWS, FEATURES)
    names = tuple(f"f{j + 1:02d}" for j in range(FEATURES))
    return Parsed("generated", x, np.arange(1, ROWS + 1, dtype=np.int64), names, ROWS, header=False,
                  labels=tuple(f"cluster {c + 1}" for c in cluster))


def bundled_vectors(seed: int = 0, test_share: float = DEFAULT_TEST_SHARE) -> VectorLoad:
    """The bundled dataset, split by the seeded share as a file without a split column is."""
    return split_rows(generated_rows(seed), seed, test_share, VectorLimits())


def read_vectors(path: str | Path | None, *, seed: int = 0, test_share: float = DEFAULT_TEST_SHARE,
                 limits: VectorLimits = VectorLimits()) -> VectorLoad:
    """A file's vectors (load_vectors), or with no file the bundled ones: what `--dataset vectors` reads."""
    if path is None:
        return bundled_vectors(seed, test_share)
    return load_vectors(path, seed=seed, test_share=test_share, limits=limits)
