"""Jobs in a child process: live steps and previews, checkpoints, stop, kill -9 of the child, death of the parent."""
import math
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import read_metrics, tiny_config, wait_for
from vae_core.jobs.process_job import ProcessJob
from vae_core.runs.folders import load_run
from vae_core.runs.listing import list_runs, pid_alive

REPO = Path(__file__).resolve().parent.parent


def test_a_process_job_streams_steps_checkpoints_and_saves_when_stopped(tmp_path):
    job = ProcessJob(tiny_config(), tmp_path, owner="alice", checkpoint_every_s=0.5, preview_every_s=0.2).start()
    assert job.snapshot().status == "starting" and job.run_dir.parent == tmp_path  # the child is still importing
    checkpoint = wait_for(lambda: read_metrics(job.run_dir))
    assert checkpoint["status"] == "running" and checkpoint["pid"] == job.pid and checkpoint["owner"] == "alice"
    assert checkpoint["steps"] > 0 and abs(checkpoint["heartbeat"] - time.time()) < 30
    assert checkpoint["history"]["step"][0] == 1 and checkpoint["history"]["step"][-1] == checkpoint["steps"]
    assert [(r.status, r.owner) for r in list_runs(tmp_path)] == [("running", "alice")]
    snap = wait_for(lambda: (s := job.snapshot()).preview is not None and len(s.history) >= 40 and s)
    steps = [m.step for m in snap.history]
    assert snap.status == "running" and steps[0] == 1 and steps == sorted(set(steps))
    assert snap.preview.input_pixels.dtype == np.uint8 and snap.preview.recon_pixels.shape == (8, 3, 32, 32)
    assert 0 <= snap.preview.recons.min() and snap.preview.recons.max() <= 1
    job.stop()
    assert job.join(60)
    final = job.snapshot()
    assert final.status == "stopped" and final.run_dir == job.run_dir and str(job.run_dir) in final.message
    run = load_run(job.run_dir)
    assert run.metrics["status"] == "stopped" and run.metrics["steps"] == final.history[-1].step >= 40
    assert math.isfinite(run.metrics["test"]["elbo_nats"]) and final.test_metrics.n_test == 32
    info = list_runs(tmp_path)[0]
    assert (info.status, info.latent_dim, info.steps) == ("stopped", 4, final.history[-1].step)
    assert info.test_elbo_nats == run.metrics["test"]["elbo_nats"]
    assert 0 < job.startup_s < 60


def test_a_killed_child_leaves_a_loadable_interrupted_run(tmp_path, monkeypatch):
    app = tmp_path / "app.py"  # under Streamlit, __main__ is the app script: the child must not run it again
    app.write_text(f"open({str(tmp_path / 'app-ran')!r}, 'w').close()\n")
    monkeypatch.setitem(sys.modules, "__main__", types.SimpleNamespace(__file__=str(app), __spec__=None))
    job = ProcessJob(tiny_config(), tmp_path / "runs", checkpoint_every_s=0.3).start()
    wait_for(lambda: read_metrics(job.run_dir))
    assert not (tmp_path / "app-ran").exists()
    os.kill(job.pid, signal.SIGKILL)
    assert job.join(30)
    snap = job.snapshot()
    assert snap.status == "failed" and "killed by signal 9" in snap.message
    assert str(job.run_dir) in snap.message and "loads like any run" in snap.message
    assert [r.status for r in list_runs(tmp_path / "runs")] == ["interrupted"]
    run = load_run(job.run_dir)  # every tensor finite, shapes match the config
    assert run.metrics["status"] == "running" and run.metrics["steps"] > 0


PARENT = """
import sys, time
from pathlib import Path
from tests.helpers import tiny_config
from vae_core.jobs.process_job import ProcessJob

job = ProcessJob(tiny_config(), Path(sys.argv[1]), checkpoint_every_s=0.3).start()
while not (job.run_dir / "metrics.json").exists():
    time.sleep(0.05)
print(job.pid, job.run_dir, flush=True)
if sys.argv[2] == "kill":
    time.sleep(600)
"""


@pytest.mark.parametrize("death,message", [
    ("kill", "server that started this job stopped"),  # SIGKILL: no atexit; the child sees its parent pid change
    ("exit", "server is shutting down"),  # a normal exit: multiprocessing's atexit sends SIGTERM and waits
])
def test_when_the_server_ends_the_child_saves_the_run_as_interrupted(tmp_path, death, message):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path), death], cwd=REPO, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        child_pid, run_dir = parent.stdout.readline().split()
    finally:
        if death == "kill":
            parent.kill()
        parent.wait(60)
    wait_for(lambda: not pid_alive(int(child_pid)), timeout=60)
    metrics = read_metrics(Path(run_dir))
    assert metrics["status"] == "interrupted" and message in metrics["message"] and metrics["steps"] > 0
    assert math.isfinite(metrics["test"]["elbo_nats"])  # the child evaluated before saving
    assert [r.status for r in list_runs(tmp_path)] == ["interrupted"]
    assert load_run(run_dir).metrics["steps"] == metrics["steps"]


def test_importing_the_worker_and_scheduler_starts_nothing():
    code = ("import multiprocessing, multiprocessing.spawn as spawn, sys, threading; "
            "import vae_core.jobs.process_job, vae_core.jobs.scheduler; "
            "assert multiprocessing.active_children() == [] and threading.active_count() == 1; "
            "assert not hasattr(spawn.get_preparation_data, 'vae_lab'); "
            "assert 'streamlit' not in sys.modules and 'plotly' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)
