"""Training under torchrun: N processes with batch B each follow one process with batch N x B (gloo, two
processes on this CPU), for a loss summed over pixels and the batch and one averaged over the batch; a real
torchrun run saves a run folder that says how it was trained, resumes under torchrun, and opens in the app."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from streamlit.testing.v1 import AppTest

from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.runs.folders import load_run
from vae_core.training.distributed import Dist, check_batches, join, leave, rank0_clock, share_of, trainer_factory
from vae_core.training.lockstep import LockstepTrainer
from vae_core.training.trainer import make_run_config, prepare_data

ROOT = Path(__file__).resolve().parents[1]
WORLD, PER_RANK = 2, 4
LOOPBACK = "lo"  # gloo binds where the host name resolves unless told; a container's may not route


def case(likelihood: str, schedule: str = "constant", **loss) -> RunConfig:
    """19 sprites in whole batches of 8: the last batch of each epoch (3 images) splits 2 + 1."""
    return make_run_config(DataConfig(n_train=19, n_test=8), ModelConfig(width=8, latent_dim=3),
                           LossConfig(likelihood=likelihood, **loss),
                           TrainConfig(epochs=2, batch_size=WORLD * PER_RANK, lr=3e-3, lr_schedule=schedule))


CASES = {
    # F.binary_cross_entropy(reduction="sum") + KL summed: PyTorch's VAE example, summed over pixels and batch
    "summed": case("bernoulli", recon_batch_reduction="sum", kl_batch_reduction="sum"),
    # MSE averaged over pixels and the batch, KL averaged over the batch
    "averaged": case("gaussian", recon_reduction="mean", beta=0.01),
    # statistics pooled over the processes (sigma*, free bits), two z samples per image, rank 0's lr schedule
    "pooled": case("gaussian_optimal", "cosine", free_bits=0.5, z_samples=2),
}


def train(config: RunConfig, dist: Dist | None = None) -> tuple[dict[str, torch.Tensor], list[tuple[float, ...]]]:
    """The weights after training, and each step's (loss, recon, KL) as reported."""
    data = prepare_data(config)
    kw = {} if dist is None else {"make_trainer": trainer_factory(dist),
                                  "agree": lambda clock: rank0_clock(clock, torch.device("cpu"))}
    lockstep = LockstepTrainer([config], data.train.images, [data.normalizer], **kw)
    steps = [(m.loss, m.recon_nats, m.kl_nats) for s in lockstep.steps() for m in s.metrics]
    # contiguous: a Trainer on a CPU keeps conv weights channels_last, which safetensors will not save as they are
    weights = lockstep.trainers[0].model.state_dict()
    return {k: v.clone(memory_format=torch.contiguous_format) for k, v in weights.items()}, steps


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME=LOOPBACK)
    torch.set_num_threads(1)
    dist = Dist(rank, WORLD, rank)
    join(dist, torch.device("cpu"))
    for name, config in CASES.items():
        weights, steps = train(config, dist)
        if dist.main:
            save_file(weights, f"{out}/{name}.safetensors")
            Path(f"{out}/{name}.json").write_text(json.dumps(steps))
    leave()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    mp.start_processes(_rank, args=(free_port(), str(out)), nprocs=WORLD, start_method="spawn")
    return out


@pytest.mark.parametrize("name", CASES)
def test_two_processes_follow_one_process_on_the_whole_batches(two_processes, name):
    single, single_steps = train(CASES[name])
    ddp, ddp_steps = load_file(two_processes / f"{name}.safetensors"), json.loads((two_processes / f"{name}.json")
                                                                                  .read_text())
    assert len(ddp_steps) == len(single_steps) == 6  # 3 whole batches an epoch, 2 epochs
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-4, atol=1e-5, msg=lambda m: f"{k}: {m}")
    assert torch.tensor(ddp_steps) == pytest.approx(torch.tensor(single_steps), rel=1e-4)  # pooled, as reported


def test_each_process_takes_its_own_rows_of_a_batch():
    indices = torch.arange(10, 21)  # 11 images, 3 processes: 4 + 4 + 3
    shares = [share_of(indices, Dist(r, 3, r)) for r in range(3)]
    assert torch.equal(torch.cat([mine for mine, _ in shares]), indices)
    assert [(s.start, s.size, s.whole, s.world) for _, s in shares] == [(0, 4, 11, 3), (4, 4, 11, 3), (8, 3, 11, 3)]


def test_a_batch_too_small_to_share_is_refused_with_the_fix():
    check_batches(19, 8, 2)
    with pytest.raises(ValueError, match="last batch of each epoch of 17 images would have 1.*--batch-size"):
        check_batches(17, 8, 2)


# ----------------------------------------------------------------------------- torchrun, end to end

TINY = ["--dataset", "sprites", "--n-train", "96", "--n-test", "16", "--width", "8", "--latent-dim", "3",
        "--likelihood", "gaussian", "--quiet"]


def torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(WORLD),
           "-m", "vae_core", "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "GLOO_SOCKET_IFNAME": LOOPBACK}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def torchrun_run(tmp_path_factory) -> Path:
    """Trained 1 epoch under torchrun (batch 16 per process), then resumed under torchrun for a second."""
    runs = tmp_path_factory.mktemp("torchrun")
    first = torchrun(*TINY, "--epochs", "1", "--batch-size", "16", "--runs-dir", str(runs))
    assert first.returncode == 0, first.stderr[-3000:]
    run = Path(first.stdout.strip())  # rank 0 alone prints it
    resumed = torchrun("--resume", str(run), "--epochs", "2", "--quiet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.strip() == str(run)
    return run


def test_a_torchrun_run_says_how_it_was_trained_and_equals_one_process(torchrun_run, tmp_path, capsys):
    from vae_core.cli.main import main

    metrics = json.loads((torchrun_run / "metrics.json").read_text())
    assert (metrics["world_size"], metrics["device"], metrics["precision"]) == (2, "cpu", "float32")
    assert metrics["steps"] == 6 and metrics["history"]["step"] == list(range(1, 7))  # 96 / 32 a epoch, resumed
    assert load_run(torchrun_run).config.train.batch_size == 32  # the whole batch: 2 processes x 16
    assert main(["evaluate", str(torchrun_run), "--json", "--iwae-k", "0"]) == 0
    assert json.loads(capsys.readouterr().out)["world_size"] == 2
    assert main(["train", *TINY, "--epochs", "2", "--batch-size", "32", "--runs-dir", str(tmp_path)]) == 0
    alone = load_run(Path(capsys.readouterr().out.strip())).model.state_dict()
    together = load_run(torchrun_run).model.state_dict()
    for k in alone:
        torch.testing.assert_close(together[k], alone[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("page", ["app_pages/reconstructions.py", "app_pages/latent.py",
                                  "app_pages/diagnostics.py", "app_pages/compare.py", "app_pages/train.py"])
def test_a_torchrun_run_opens_on_every_page(torchrun_run, tmp_path, monkeypatch, page):
    shutil.copytree(torchrun_run, tmp_path / "runs" / torchrun_run.name)
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["run"] = torchrun_run.name
    at.run()
    at.switch_page(page).run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert at.session_state["run_path"].endswith(torchrun_run.name)
