"""Resuming a run: training 2 epochs, or 1 and then 1 more from the saved run, gives the same weights; a stop
mid-epoch resumes on the same batches; the state is safetensors, and a run that cannot resume says why."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from vae_core.cli.main import main
from vae_core.runs.folders import load_run
from vae_core.training.resume import TRAIN_STATE, read_train_state

TINY = ["--n-train", "96", "--n-test", "16", "--width", "8", "--latent-dim", "3", "--batch-size", "32",
        "--likelihood", "gaussian", "--quiet"]


def train(tmp_path: Path, capsys, *args: str) -> Path:
    assert main(["train", *TINY, "--runs-dir", str(tmp_path), *args]) == 0
    return Path(capsys.readouterr().out.strip())


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_run(run).model.state_dict()


@pytest.mark.parametrize("loss", [[], ["--recon-batch-reduction", "sum", "--kl-schedule", "linear",
                                       "--kl-warmup-steps", "5"]])
def test_two_epochs_equal_one_then_one_more(tmp_path, capsys, loss):
    straight = train(tmp_path / "a", capsys, "--epochs", "2", *loss)
    first = train(tmp_path / "b", capsys, "--epochs", "1", *loss)
    titled = {**json.loads((first / "metrics.json").read_text()), "title": "my first run"}
    (first / "metrics.json").write_text(json.dumps(titled))  # as rename_run leaves it
    assert main(["train", "--resume", str(first), "--epochs", "2", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(first)  # in its own folder
    a, b = weights(straight), weights(first)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    metrics = json.loads((first / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["history"]["step"] == list(range(1, 7))  # the history goes on
    assert metrics["title"] == "my first run"  # and so does the name its owner gave it


def test_a_run_stopped_mid_epoch_resumes_on_the_same_batches(tmp_path, capsys):
    """A budget-stopped run is at a step inside an epoch: the resumed run skips the batches already seen."""
    from vae_core.config import DataConfig, LossConfig, ModelConfig, TrainConfig
    from vae_core.jobs.training_job import TrainingJob, run_in_foreground
    from vae_core.training.trainer import make_run_config

    config = make_run_config(DataConfig(n_train=96, n_test=16), ModelConfig(width=8, latent_dim=3),
                             LossConfig("gaussian"), TrainConfig(epochs=2, batch_size=32))
    straight = run_in_foreground(config, tmp_path / "a", checkpoint_every_s=3600)

    class StopAfter(TrainingJob):  # a stop request after 4 steps (3 per epoch): mid-epoch
        def _record_step(self, step):
            super()._record_step(step)
            if step.step == 4:
                self.stop()

    job = StopAfter(config, tmp_path / "b", checkpoint_every_s=3600)
    job.start()
    job.join()
    assert read_train_state(job.run_dir / TRAIN_STATE).step == 4
    resumed = run_in_foreground(config, tmp_path / "b", job.run_dir, resume=True, checkpoint_every_s=3600)
    a, b = weights(straight.run_dir), weights(resumed.run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_refuses_what_would_change_the_run(tmp_path, capsys):
    run = train(tmp_path, capsys, "--epochs", "1")
    assert main(["train", "--resume", str(run), "--latent-dim", "4"]) == 2
    assert "drop --latent-dim" in capsys.readouterr().err
    (run / TRAIN_STATE).write_bytes(b"\x00" * 64)
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 2
    assert "is not a readable training state" in capsys.readouterr().err
    (run / TRAIN_STATE).unlink()
    assert main(["train", "--resume", str(run), "--epochs", "2", "--quiet"]) == 2
    assert "cannot be resumed exactly" in capsys.readouterr().err


def test_the_training_state_is_safetensors_with_the_optimizer_moments(tmp_path, capsys):
    run = train(tmp_path, capsys, "--epochs", "1")
    state = read_train_state(run / TRAIN_STATE)
    model = load_run(run).model
    params = list(model.parameters())
    assert state.step == 3 and len(state.optimizer["state"]) == len(params)
    assert all(state.optimizer["state"][i]["exp_avg"].shape == p.shape for i, p in enumerate(params))
    assert (run / TRAIN_STATE).read_bytes()[8:9] == b"{"  # a safetensors header: JSON, never a pickle


def test_a_resumed_trainer_lays_out_its_moments_like_its_weights_and_keeps_fused_adam(tmp_path):
    """A saved state is contiguous and, from runs saved before fused Adam, says fused=None: the resumed Trainer
    still trains channels_last with fused Adam, and its next step is the straight run's, bit for bit."""
    from vae_core.config import DataConfig, LossConfig, ModelConfig, TrainConfig
    from vae_core.training.resume import write_train_state
    from vae_core.training.trainer import Trainer, make_run_config, prepare_data

    config = make_run_config(DataConfig(n_train=64, n_test=16), ModelConfig(width=8, latent_dim=3),
                             LossConfig("bernoulli"), TrainConfig(epochs=1, batch_size=32))
    data = prepare_data(config)
    straight, resumed = (Trainer(config, data.train.images, data.normalizer) for _ in range(2))
    straight.train_on(torch.arange(32))
    state = straight.state()
    for group in state.optimizer["param_groups"]:
        group["fused"] = None  # as a run saved before fused Adam says
    write_train_state(tmp_path / TRAIN_STATE, state)
    resumed.resume(straight.model.state_dict(), read_train_state(tmp_path / TRAIN_STATE))
    weight = resumed.model.encoder[0].weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert all(group["fused"] for group in resumed.optimizer.param_groups)
    assert resumed.optimizer.state[weight]["exp_avg"].stride() == weight.stride()
    for trainer in (straight, resumed):
        trainer.train_on(torch.arange(32, 64))
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
