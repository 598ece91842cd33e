"""Where a run trains: --device resolves once, refuses a missing accelerator clearly, and the run records how it
was trained (world_size, device, precision), which evaluate --json repeats."""
from __future__ import annotations

import json

import pytest
import torch

from vae_core.cli.main import main
from vae_core.config import TrainConfig
from vae_core.runs.families import INCIDENTAL
from vae_core.training.devices import resolve_device
from vae_core.training.sweeps import SHARED_FIELDS


def test_auto_is_an_accelerator_where_there_is_one_else_the_cpu():
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected and resolve_device("cpu").type == "cpu"
    assert TrainConfig().device == "auto"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_accelerator_is_refused_with_what_to_do(tmp_path, capsys):
    with pytest.raises(ValueError, match="torch sees no CUDA device on this machine. Use --device cpu"):
        resolve_device("cuda")
    argv = ["train", "--device", "cuda", "--n-train", "64", "--n-test", "16", "--epochs", "1",
            "--runs-dir", str(tmp_path), "--quiet"]
    assert main(argv) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_the_device_is_incidental_and_not_swept():
    assert "train.device" in INCIDENTAL and "train.device" in SHARED_FIELDS


def test_a_run_records_how_it_was_trained_and_evaluate_repeats_it(tmp_path, capsys):
    argv = ["train", "--device", "cpu", "--n-train", "64", "--n-test", "16", "--epochs", "1", "--width", "8",
            "--runs-dir", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    run = capsys.readouterr().out.strip()
    metrics = json.loads((tmp_path / run.rsplit("/", 1)[-1] / "metrics.json").read_text())
    assert (metrics["world_size"], metrics["device"], metrics["precision"]) == (1, "cpu", "float32")
    assert main(["evaluate", run, "--json", "--iwae-k", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["world_size"], out["device"], out["precision"]) == (1, "cpu", "float32")


def test_bf16_runs_the_network_in_bfloat16_and_reports_float32_terms(monkeypatch):
    from vae_core.config import DataConfig, LossConfig, ModelConfig
    from vae_core.training.lockstep import LockstepTrainer
    from vae_core.training.trainer import make_run_config, prepare_data

    def train(precision: str):
        config = make_run_config(DataConfig(n_train=64, n_test=16), ModelConfig(width=8, latent_dim=3),
                                 LossConfig(likelihood="gaussian"),
                                 TrainConfig(epochs=1, batch_size=16, precision=precision))
        data = prepare_data(config)
        lockstep = LockstepTrainer([config], data.train.images, [data.normalizer])
        seen: list[torch.dtype] = []  # the decoder's output dtype at each forward pass
        lockstep.trainers[0].model.decoder.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
        steps = [s.metrics[0] for s in lockstep.steps()]
        return steps, seen, lockstep.trainers[0].model

    full, full_seen, _ = train("float32")
    half, half_seen, model = train("bf16")
    assert set(full_seen) == {torch.float32} and set(half_seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())  # mixed precision: float32 weights
    assert [type(m.recon_nats) for m in half] == [float] * 4
    first_full, first_half = full[0], half[0]  # the same weights, batch and noise: bf16 rounding alone
    assert first_half.recon_nats == pytest.approx(first_full.recon_nats, rel=2e-2)
    assert first_half.kl_nats == pytest.approx(first_full.kl_nats, rel=2e-2)
    assert first_half.recon_nats != first_full.recon_nats
