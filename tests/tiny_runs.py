"""Run folders for tests that need configs, not training: untrained models saved as finished runs."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from vae_core.config import DataConfig, LossConfig, ModelConfig, TrainConfig
from vae_core.model.vae import build_model
from vae_core.runs.folders import RunRecord, save_run
from vae_core.training.trainer import make_run_config, prepare_data


def save_activation_family(root: Path, activations: tuple[str, ...] = ("sigmoid", "tanh")) -> dict[str, Path]:
    """tiny-<activation> runs under root that differ only in the output activation (z-scored, Gaussian)."""
    base = make_run_config(DataConfig(normalization="zscore", n_train=64, n_test=16), ModelConfig(width=8),
                           LossConfig(likelihood="gaussian"), TrainConfig(epochs=1))
    normalizer = prepare_data(base).normalizer
    runs = {}
    for act in activations:
        config = dataclasses.replace(base, model=dataclasses.replace(base.model, output_activation=act))
        model = build_model(config.model, "gaussian", 0.1, seed=0).eval()
        runs[act] = save_run(root / f"tiny-{act}", model, config, normalizer, RunRecord("finished").to_dict())
    return runs
