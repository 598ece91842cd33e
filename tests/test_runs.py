"""Run folders: exact save/load round trips, atomic writes, and untrusted checkpoints refused clearly."""
import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vae_core import runs
from vae_core.config import LossConfig, ModelConfig, RunConfig
from vae_core.models import build_model
from vae_core.normalize import fit_normalizer
from vae_core.runs import RunLoadError, list_runs, load_run, save_run

CONFIG = RunConfig(model=ModelConfig(width=8, latent_dim=3), loss=LossConfig(likelihood="gaussian_learned"))


@pytest.fixture
def saved(tmp_path) -> Path:
    torch.manual_seed(0)
    model = build_model(CONFIG.model, CONFIG.loss.likelihood, CONFIG.loss.sigma)
    with torch.no_grad():
        model.log_sigma.fill_(-1.234)
    norm = fit_normalizer("zscore", torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8))
    return save_run(tmp_path / "run", model, CONFIG, norm, {"status": "finished", "loss": float("nan")})


def test_round_trip_reproduces_outputs_exactly(saved):
    torch.manual_seed(0)
    original = build_model(CONFIG.model, CONFIG.loss.likelihood, CONFIG.loss.sigma)
    with torch.no_grad():
        original.log_sigma.fill_(-1.234)
    loaded = load_run(saved)
    z = torch.randn(5, 3)
    assert torch.equal(loaded.model.decode(z), original.eval().decode(z))
    assert torch.equal(loaded.model.encode(torch.ones(1, 3, 32, 32))[0], original.encode(torch.ones(1, 3, 32, 32))[0])
    assert loaded.model.log_sigma.item() == pytest.approx(-1.234)
    assert loaded.config == CONFIG
    assert loaded.normalizer.kind == "zscore" and len(loaded.normalizer.scale) == 3
    assert loaded.metrics["loss"] is None  # NaN is written as null: config files stay valid JSON
    assert not loaded.model.training


def test_run_folder_is_self_describing(saved):
    assert sorted(p.name for p in saved.iterdir()) == ["config.json", "metrics.json", "weights.safetensors"]
    cfg = json.loads((saved / "config.json").read_text())
    assert cfg["format"] == runs.FORMAT and cfg["run"]["model"]["latent_dim"] == 3


def test_a_crash_mid_save_leaves_the_previous_run_intact(saved, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.iterdir()}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(runs, "_write", crash)
    model = build_model(CONFIG.model, CONFIG.loss.likelihood)
    with pytest.raises(OSError, match="disk full"):
        save_run(saved, model, CONFIG, load_run(saved).normalizer, {"status": "finished"})
    assert {p.name: p.read_bytes() for p in saved.iterdir()} == before
    assert [p.name for p in saved.parent.iterdir()] == ["run"]  # no temporary folder left behind


def test_saving_over_a_run_replaces_it(saved):
    run = load_run(saved)
    save_run(saved, run.model, CONFIG, run.normalizer, {"status": "stopped"})
    assert load_run(saved).metrics["status"] == "stopped"
    assert [p.name for p in saved.parent.iterdir()] == ["run"]


def test_a_pickle_is_never_loaded(saved):
    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(saved.parent / "pwned"),))

    (saved / "weights.safetensors").unlink()
    (saved / "weights.pt").write_bytes(pickle.dumps(Boom()))
    with pytest.raises(RunLoadError, match="only safetensors"):
        load_run(saved)
    assert not (saved.parent / "pwned").exists()


def test_a_pickle_renamed_to_safetensors_is_refused(saved):
    (saved / "weights.safetensors").write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(RunLoadError, match="not a readable safetensors file"):
        load_run(saved)


@pytest.mark.parametrize("mutate,message", [
    (lambda s: s.pop("fc_mu.weight"), "does not match its config"),
    (lambda s: s.__setitem__("fc_mu.weight", torch.zeros(7, 7)), "fc_mu.weight"),
    (lambda s: s.__setitem__("fc_mu.weight", torch.full_like(s["fc_mu.weight"], float("nan"))), "NaN"),
    (lambda s: s.__setitem__("extra", torch.zeros(1)), "unexpected"),
])
def test_weights_that_do_not_match_the_config_are_refused(saved, mutate, message):
    model = load_run(saved).model
    state = {k: v.clone() for k, v in model.state_dict().items()}
    mutate(state)
    save_file(state, str(saved / "weights.safetensors"))
    with pytest.raises(RunLoadError, match=message):
        load_run(saved)


@pytest.mark.parametrize("content,message", [
    ("{not json", "not valid JSON"),
    ('{"format": "something-else"}', "not a VAE Lab run config"),
    (None, "latent_dim"),
])
def test_bad_config_json_is_refused_with_the_reason(saved, content, message):
    if content is None:
        cfg = json.loads((saved / "config.json").read_text())
        cfg["run"]["model"]["latent_dim"] = -5
        content = json.dumps(cfg)
    (saved / "config.json").write_text(content)
    with pytest.raises(RunLoadError, match=message):
        load_run(saved)


def test_missing_files_and_folders_are_explained(tmp_path, saved):
    with pytest.raises(RunLoadError, match="not a folder"):
        load_run(tmp_path / "nope")
    (saved / "metrics.json").unlink()
    with pytest.raises(RunLoadError, match="metrics.json is missing"):
        load_run(saved)


def test_list_runs_skips_temporary_folders(saved, tmp_path):
    (tmp_path / ".run.tmp-1234").mkdir()
    (tmp_path / "not-a-run").mkdir()
    assert [r.path.name for r in list_runs(tmp_path)] == ["run"]
    assert list_runs(tmp_path)[0].status == "finished"


def test_bundled_models_load_and_are_small():
    bundled = list_runs(runs.bundled_models_dir())
    activations = {load_run(r.path).config.model.output_activation for r in bundled}
    assert {"sigmoid", "tanh", "linear"} <= activations
    total = sum(f.stat().st_size for f in runs.bundled_models_dir().rglob("*") if f.is_file())
    assert total < 25 * 2**20
