"""python -m vae_core train | evaluate, as a person types them."""
import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from vae_core.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
EVAL_KEYS = {"dataset", "n_test", "elbo_nats", "recon_nats", "kl_nats", "bits_per_dim", "mse", "psnr_db",
             "active_units", "kl_per_dim"}


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vae_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def cli_here(*args: str) -> subprocess.CompletedProcess:
    """The CLI in this process (python -m vae_core's main; argparse's exit caught): for refusals, which need no
    second interpreter (the tests that train and evaluate run the real one)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def test_train_then_evaluate_on_sprites(tmp_path):
    out = tmp_path / "run"
    train = cli("train", "--n-train", "256", "--n-test", "64", "--epochs", "1", "--width", "8",
                "--latent-dim", "3", "--likelihood", "gaussian_learned", "--output-activation", "linear",
                "--normalization", "zscore", "--out", str(out))
    assert train.returncode == 0, train.stderr
    assert train.stdout.strip() == str(out)
    assert {p.name for p in out.iterdir()} == {"weights.safetensors", "config.json", "metrics.json",
                                               "train_state.safetensors", "previews.safetensors",
                                               "evaluations.safetensors"}
    assert "test ELBO" in train.stderr
    ev = cli("evaluate", str(out), "--json")
    assert ev.returncode == 0, ev.stderr
    metrics = json.loads(ev.stdout)
    assert EVAL_KEYS <= set(metrics)
    assert metrics["dataset"] == "sprites" and metrics["n_test"] == 64 and len(metrics["kl_per_dim"]) == 3
    assert metrics["bits_per_dim"] > 0
    assert metrics["elbo_nats"] == pytest.approx(-(metrics["recon_nats"] + metrics["kl_nats"]), rel=1e-5)


@pytest.mark.parametrize("args,message", [
    (["--beta", "-1"], "beta=-1.0 is out of range"),
    (["--output-activation", "relu"], "invalid choice: 'relu'"),
    (["--epochs", "many"], "invalid int value"),
    (["--no-such-flag"], "unrecognized arguments"),
    (["--normalization", "symmetric", "--likelihood", "bernoulli"], "needs targets in [0, 1]"),
])
def test_bad_arguments_give_one_line_and_status_2(tmp_path, args, message):
    result = cli_here("train", "--n-train", "64", "--out", str(tmp_path / "r"), *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "r").exists()


def test_evaluate_a_missing_run_says_so(tmp_path):
    result = cli_here("evaluate", str(tmp_path / "nothing"), "--json")
    assert result.returncode == 2 and "is not a folder" in result.stderr and result.stdout == ""


def test_missing_dataset_names_where_it_was_expected(tmp_path):
    result = cli_here("train", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"), "--out",
                      str(tmp_path / "r"))
    assert result.returncode == 2
    assert "MNIST" in result.stderr and str(tmp_path / "empty") in result.stderr


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="real MNIST not at ../shared/data")
def test_train_and_evaluate_on_real_mnist(tmp_path):
    out = tmp_path / "mnist-run"
    train = cli("train", "--dataset", "mnist", "--data-dir", str(SHARED_DATA), "--arch", "mlp",
                "--latent-dim", "20", "--n-train", "3000", "--n-test", "1000", "--epochs", "2", "--out", str(out))
    assert train.returncode == 0, train.stderr
    ev = cli("evaluate", str(out), "--json", "--data-dir", str(SHARED_DATA))
    metrics = json.loads(ev.stdout)
    assert metrics["dataset"] == "mnist" and metrics["n_test"] == 1000
    assert metrics["bits_per_dim"] is None  # Bernoulli on grey levels: not a normalized likelihood
    assert -300 < metrics["elbo_nats"] < -100  # an MLP VAE after two short epochs on MNIST
    assert metrics["active_units"] >= 3


def test_every_loss_and_architecture_choice_is_a_flag_saved_in_the_run(tmp_path):
    out = tmp_path / "run"
    train = cli("train", "--n-train", "256", "--n-test", "64", "--epochs", "1", "--width", "8",
                "--normalization", "zscore", "--output-activation", "tanh", "--likelihood", "gaussian",
                "--sigma", "0.707", "--kl-reduction", "mean", "--beta", "100", "--output-norm", "batchnorm",
                "--hidden-activation", "relu", "--kl-schedule", "cyclical", "--kl-warmup-steps", "2",
                "--free-bits", "0.05", "--z-samples", "2", "--data-scale", "0.1", "--seed", "3", "--out", str(out))
    assert train.returncode == 0, train.stderr
    cfg = json.loads((out / "config.json").read_text())["run"]
    assert {k: cfg["loss"][k] for k in ("kl_reduction", "beta", "kl_schedule", "free_bits", "z_samples")} == \
        {"kl_reduction": "mean", "beta": 100.0, "kl_schedule": "cyclical", "free_bits": 0.05, "z_samples": 2}
    assert cfg["model"]["output_norm"] == "batchnorm" and cfg["model"]["hidden_activation"] == "relu"
    assert cfg["data"]["data_scale"] == 0.1 and cfg["train"]["seed"] == 3
    ev = cli("evaluate", str(out), "--json", "--iwae-k", "4")
    assert ev.returncode == 0, ev.stderr
    m = json.loads(ev.stdout)
    assert m["iwae_k"] == 4 and m["iwae_nats"] >= m["elbo_nats"]
    assert m["effective_beta"] == pytest.approx(10.0)  # 100 x the KL averaged over 10 dimensions
    assert 0 <= m["frac_outputs_saturated"] <= 1 and isinstance(m["posterior_collapse"], bool)
    assert m["frac_targets_unreachable"] == 0.0  # zscored x0.1 stays inside (-1, 1) on sprites


def test_mnist_has_defaults_of_its_own_that_flags_override():
    from vae_core.cli.main import build_parser
    from vae_core.cli.options import config_from_args
    from vae_core.config import DATASET_DEFAULTS, field_value

    parser = build_parser()
    mnist = config_from_args(parser.parse_args(["train", "--dataset", "mnist"]))
    assert all(field_value(mnist, path) == value for path, value in DATASET_DEFAULTS["mnist"].items())
    assert (mnist.model.arch, mnist.loss.likelihood, mnist.model.output_activation, mnist.data.normalization) == \
        ("mlp", "bernoulli", "sigmoid", "unit")  # PyTorch's example's choices
    given = config_from_args(parser.parse_args(["train", "--dataset", "mnist", "--arch", "conv", "--lr", "1e-3"]))
    assert (given.model.arch, given.train.lr, given.model.latent_dim) == ("conv", 1e-3, 16)
    sprites = config_from_args(parser.parse_args(["train"]))
    assert (sprites.model.arch, sprites.train.lr_schedule) == ("conv", "constant")  # the fields' own defaults
    assert "--dataset mnist changes these defaults: --arch mlp" in parser._subparsers._group_actions[0] \
        .choices["train"].format_help().replace("\n", " ")


def test_under_torchrun_the_batch_size_is_each_process_and_a_sweep_is_refused():
    from vae_core.cli.main import build_parser
    from vae_core.cli.train import _per_process
    from vae_core.training.distributed import Dist

    ns = build_parser().parse_args(["train", "--dataset", "mnist", "--quiet"])
    _per_process(ns, Dist(1, 4, 1))
    assert getattr(ns, "train.batch_size") == 4 * 128 and ns.quiet  # MNIST's 128 a process; rank 1 is quiet
    ns = build_parser().parse_args(["train", "--batch-size", "16", "--sweep", "beta=1,2"])
    with pytest.raises(ValueError, match="under torchrun train one run at a time"):
        _per_process(ns, Dist(0, 2, 0))
