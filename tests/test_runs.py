"""Run folders: exact save/load round trips, atomic writes, and untrusted checkpoints refused clearly."""
import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vae_core.config import LossConfig, ModelConfig, RunConfig
from vae_core.data.normalize import fit_normalizer
from vae_core.model.vae import build_model
from vae_core.runs import folders as runs
from vae_core.runs import listing
from vae_core.runs.folders import RunLoadError, load_run, save_run
from vae_core.runs.listing import list_runs

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
    assert total < 40 * 2**20  # the zoo's 20 runs: models/ stays under 40 MB


def dead_pid() -> int:
    """The pid of a process that has just been killed and reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    proc.kill()
    proc.wait(10)
    return proc.pid


def test_a_running_run_whose_process_is_gone_is_interrupted(saved):
    now = time.time()
    live = {"status": "running", "pid": os.getpid(), "host": socket.gethostname(), "heartbeat": now,
            "checkpoint_every_s": 5}
    assert listing.live_status(live, now) == "running"
    assert listing.live_status({**live, "pid": dead_pid()}, now) == "interrupted"
    assert listing.live_status(live, now + 29) == "running"
    assert listing.live_status(live, now + 31) == "interrupted"  # a reused pid cannot keep it "running"
    assert listing.live_status({**live, "checkpoint_every_s": 60}, now + 170) == "running"  # 3 intervals
    assert listing.live_status({**live, "host": "elsewhere", "pid": dead_pid()}, now) == "running"  # only the heartbeat
    assert listing.live_status({**live, "status": "finished", "pid": dead_pid()}, now) == "finished"
    run = load_run(saved)
    save_run(saved, run.model, CONFIG, run.normalizer, {**live, "pid": dead_pid(), "steps": 7})
    assert [(r.status, r.steps) for r in list_runs(saved.parent)] == [("interrupted", 7)]
    assert load_run(saved).metrics["steps"] == 7  # an interrupted run loads like any other


def test_run_info_says_what_a_run_is_without_loading_weights(saved, monkeypatch):
    monkeypatch.setattr(runs, "_read_weights", lambda path: pytest.fail("list_runs must not read weights"))
    run = list_runs(saved.parent)[0]
    assert (run.name, run.dataset, run.normalization, run.output_activation, run.likelihood, run.latent_dim) == \
        ("run", "sprites", "zscore", "sigmoid", "gaussian_learned", 3)
    assert run.status == "finished" and run.owner is None and run.test_elbo_nats is None
    assert run.summary() == "sprites · zscore → sigmoid · gaussian_learned · 3-d"
    (saved / "metrics.json").write_text('{"status": "finished", "steps": 4013, "owner": "ana", "started": 1e9, '
                                        '"test": {"elbo_nats": -121.04}}')
    run = list_runs(saved.parent)[0]
    assert (run.owner, run.steps, run.created, run.test_elbo_nats) == ("ana", 4013, 1e9, -121.04)
    assert run.summary().endswith("3-d · 4,013 steps · ELBO -121.0")
    (saved / "metrics.json").write_text("[1, 2]")
    assert list_runs(saved.parent)[0].status == "unreadable"


def test_bundled_runs_say_what_they_are():
    infos = {r.name: r for r in list_runs(runs.bundled_models_dir())}
    tanh = infos["sprites-tanh-symmetric-gaussian_learned"]
    assert (tanh.dataset, tanh.normalization, tanh.output_activation, tanh.latent_dim) == \
        ("sprites", "symmetric", "tanh", 10)
    assert tanh.status == "finished" and tanh.steps > 1000 and tanh.test_elbo_nats > 2000


HOLD_A_TEMPORARY = """
import sys, time
from pathlib import Path
from vae_core.runs import folders as runs
tmp = runs._temporary(Path(sys.argv[1]) / "run", "tmp")
tmp.mkdir()
print(tmp.name, flush=True)
time.sleep(600)
"""


def test_cleanup_removes_temporaries_of_dead_writers_only(saved, tmp_path):
    writer = subprocess.Popen([sys.executable, "-c", HOLD_A_TEMPORARY, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parent.parent)
    dead_tmp = tmp_path / writer.stdout.readline().strip()
    assert dead_tmp.is_dir() and f".run.tmp-{writer.pid}-" in dead_tmp.name
    assert listing.cleanup_stale_temporaries(tmp_path).removed == []  # its writer may still be saving
    writer.kill()
    writer.wait(10)
    live_tmp = runs._temporary(saved, "tmp")
    live_tmp.mkdir()
    legacy, recent_legacy = tmp_path / ".run.old-0123abcd", tmp_path / ".run.old-4567cdef"
    legacy.mkdir()
    recent_legacy.mkdir()
    os.utime(legacy, (time.time() - 7200, time.time() - 7200))
    result = listing.cleanup_stale_temporaries(tmp_path)
    assert sorted(p.name for p in result.removed) == sorted([dead_tmp.name, legacy.name]) and result.restored == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".run.old-4567cdef", live_tmp.name, "run"])


def test_cleanup_restores_a_run_caught_between_the_two_renames_of_a_save(saved, tmp_path):
    pid = dead_pid()
    complete = tmp_path / f".run.tmp-{pid}-0123abcd"
    saved.rename(tmp_path / f".run.old-{pid}-4567cdef")
    shutil.copytree(tmp_path / f".run.old-{pid}-4567cdef", complete)
    result = listing.cleanup_stale_temporaries(tmp_path)
    assert result.restored == [saved] and [p.name for p in result.removed] == [f".run.old-{pid}-4567cdef"]
    assert load_run(saved).metrics["status"] == "finished"


def test_a_reader_caught_between_the_two_renames_of_a_save_waits_for_it(saved, monkeypatch):
    old = saved.parent / f".run.old-{os.getpid()}-0123abcd"
    saved.rename(old)  # the first rename of a save; the second comes 50 ms later
    threading.Timer(0.05, lambda: old.rename(saved)).start()
    assert load_run(saved).metrics["status"] == "finished"
    saved.rename(old)
    threading.Timer(0.05, lambda: old.rename(saved)).start()
    assert listing.run_info(saved).status == "finished"


def test_the_runs_folder_default_is_the_hosts(tmp_path, monkeypatch):
    from vae_core.data.datasets import resolve_data_dir
    from vae_core.host import HostSettings

    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "r"))
    monkeypatch.setenv("VAE_LAB_DATA", str(tmp_path / "d"))
    host = HostSettings.from_env()
    assert runs.default_runs_dir() == host.runs_dir == tmp_path / "r"
    assert resolve_data_dir(None) == host.data_dir == tmp_path / "d"
    monkeypatch.setenv("VAE_LAB_RUNS", "")
    assert runs.default_runs_dir() == HostSettings.from_env().runs_dir == Path("runs")


def test_a_families_runs_have_distinct_tags_that_name_their_variant(tmp_path):
    """The picker's label ends in run_tag: the last four characters alone gave "1-s0" to both x0.1 and x1."""
    from vae_core.jobs.plan import plan_sweep
    from vae_core.labs import lab
    from vae_core.labs.base import LabSettings
    from vae_core.runs.folders import run_tag
    from vae_core.training.sweeps import parse_sweep

    family = lab("zscore-tanh").family(LabSettings())
    names = [d.name for d in plan_sweep(family.configs[0], family, tmp_path).run_dirs]
    tags = [run_tag(n) for n in names]
    assert len(set(tags)) == len(tags) == 18 and tags[3].endswith(" · fixed_x0.1-s0"), tags
    swept = plan_sweep(family.configs[0], parse_sweep("lr=0.001,0.01"), tmp_path).run_dirs
    assert [run_tag(d.name).split(" · ")[1] for d in swept] == ["lr-0.001", "lr-0.01"]
    assert run_tag("odd-name") == "name"
