"""python -m vae_core train --dataset vectors and evaluate RUN, as a person types them: on the bundled vectors and on
a CSV of their own; the saved run loads without its file."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vae_core.cli.main import main
from vae_core.data.vector_normalize import VectorNormalizer
from vae_core.model.evaluate_vectors import NATS_PER_ROW, VECTORS_BPD_NOTE
from vae_core.runs.folders import load_run

ROOT = Path(__file__).resolve().parents[1]
SMALL = ("--epochs", "1", "--hidden-dim", "16", "--latent-dim", "2", "--num-threads", "1")


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vae_core", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def cli_here(*args: str) -> subprocess.CompletedProcess:
    """python -m vae_core's main in this process (evaluations: a second interpreter would only add its start)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())


def _write_csv(path: Path, rows: int = 240) -> Path:
    """Four unbounded features with a label column, one of them far from unit scale."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(rows, 2))
    x = np.column_stack([1000 + 50 * z[:, 0], -3 + 0.01 * z[:, 1], z.sum(1), 7 * z[:, 0] - z[:, 1]])
    lines = ["a,b,c,d,label"] + [",".join(f"{v:.6g}" for v in row) + f",{'lo' if row[2] < 0 else 'hi'}"
                                 for row in x + rng.normal(scale=0.05, size=x.shape)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_and_evaluate_the_bundled_vectors_in_nats_per_raw_row(tmp_path):
    out = tmp_path / "run"
    train = cli("train", "--dataset", "vectors", "--n-train", "2000", "--n-test", "300", *SMALL, "--out", str(out))
    assert train.returncode == 0, train.stderr
    assert train.stdout.strip() == str(out)
    assert {p.name for p in out.iterdir()} == {"weights.safetensors", "config.json", "metrics.json",
                                               "train_state.safetensors"}  # no previews, samples or page estimates
    assert "nats per raw row" in train.stderr and "nats/normalized row" in train.stderr
    ev = cli_here("evaluate", str(out), "--json", "--iwae-k", "8")
    assert ev.returncode == 0, ev.stderr
    m = json.loads(ev.stdout)
    assert m["dataset"] == "vectors" and m["n_test"] == 300 and m["unit"] == NATS_PER_ROW
    assert m["bits_per_dim"] is None and m["bits_per_dim_note"] == VECTORS_BPD_NOTE
    assert m["elbo_nats"] == pytest.approx(-(m["recon_nats"] + m["kl_nats"]), rel=1e-5)
    assert m["elbo_nats"] <= m["iwae_nats"] + 3 * m["iwae_se"]
    assert len(m["feature_rmse"]) == 12 and len(m["posterior_mu_min"]) == 2 and m["activation_range"] == [None, None]
    text = cli_here("evaluate", str(out), "--iwae-k", "0")
    assert text.returncode == 0 and "nats per row of the raw vectors" in text.stdout
    assert "posterior_mu_min: [" in text.stdout and "psnr" not in text.stdout


def test_train_on_a_csv_of_one_s_own_then_the_run_loads_without_the_file(tmp_path):
    csv, out = _write_csv(tmp_path / "rows.csv"), tmp_path / "run"
    train = cli_here("train", "--dataset", "vectors", "--vectors", str(csv), "--normalization", "none",
                     "--likelihood", "gaussian_feature", "--batch-size", "32", *SMALL, "--out", str(out))
    assert train.returncode == 0, train.stderr
    ev = cli_here("evaluate", str(out), "--json", "--iwae-k", "4")
    assert ev.returncode == 0, ev.stderr
    m = json.loads(ev.stdout)
    assert m["feature_names"] == ["a", "b", "c", "d"] and m["normalization"] == "none"
    assert m["log_jacobian_nats"] == 0.0 and m["n_test"] == 24  # the seeded tenth of 240 rows
    csv.unlink()
    run = load_run(out)  # the config holds the features and the normalizer: no file needed
    assert run.config.model.features == 4 and run.config.data.vectors == str(csv)
    assert isinstance(run.normalizer, VectorNormalizer) and run.normalizer.kind == "none"
    assert run.model.log_sigma.shape == (4,)
    gone = cli_here("evaluate", str(out))
    assert gone.returncode == 2 and str(csv) in gone.stderr and gone.stderr.count("\n") == 1


def test_a_z_scored_run_saves_the_vectors_defaults_and_the_training_split_s_statistics(tmp_path):
    csv, out = _write_csv(tmp_path / "rows.csv"), tmp_path / "run"
    train = cli_here("train", "--dataset", "vectors", "--vectors", str(csv), "--batch-size", "32", *SMALL,
                     "--out", str(out))
    assert train.returncode == 0, train.stderr
    saved = json.loads((out / "config.json").read_text())
    assert saved["run"]["data"]["normalization"] == "zscore" and saved["run"]["model"]["arch"] == "mlp"
    normalizer = load_run(out).normalizer
    assert normalizer.kind == "zscore" and normalizer.scale[0] == pytest.approx(50, rel=0.2)
    assert normalizer.log_det() == pytest.approx(sum(np.log(normalizer.scale)))


def test_unscaled_vectors_that_diverge_say_why_and_to_pick_zscore(tmp_path):
    """The bundled vectors reach |x| ≈ 3e4 raw: unnormalized, the first step overflows the encoder's variance."""
    done = cli_here("train", "--dataset", "vectors", "--normalization", "none", *SMALL, "--out", str(tmp_path / "r"))
    assert done.returncode != 0 or "diverged" in done.stderr
    assert "Training diverged at step 1" in done.stderr and "Pick normalization zscore" in done.stderr
    assert "lower learning rate" not in done.stderr  # the advice that would not help
