"""Jobs on Redis (VAE_LAB_QUEUE): a real redis-server, two real `python -m vae_core worker` processes and app
processes A (this one) and B (tests/redis_server.py's main): watched and stopped from another process, the places
and the one-job-per-person rule across processes, the time cap, a worker killed mid-run."""
from __future__ import annotations

import ast
import dataclasses
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import read_metrics, save_owned_run, settings, tiny_config, wait_for
from tests.redis_server import (REPO, ClientB, end, free_port, start_redis, start_worker, submit,
                                wait_for_workers)
from vae_core.cli.main import main as cli
from vae_core.host import HostSettingError, HostSettings
from vae_core.jobs.redis_queue import HEARTBEAT_TTL_S, QueueUnavailable, connect
from vae_core.runs.folders import load_run
from vae_core.runs.listing import list_runs
from vae_core.training.sweeps import parse_sweep

LATENCY = {}  # measured figures, printed at the end of the module (-s shows them)


@pytest.fixture(scope="module")
def queue(tmp_path_factory):
    """Redis, two workers and app process B, for the whole module: the URL, the shared runs folder and B."""
    folder = tmp_path_factory.mktemp("redis")
    server, url = start_redis(folder)
    workers = [start_worker(url, folder / "workers.log") for _ in range(2)]
    b = ClientB(url, folder / "runs")
    try:
        wait_for_workers(url, 2)
        yield url, folder / "runs", b
    finally:
        b.close()
        for w in workers:
            end(w)
        end(server)
        if LATENCY:
            sys.stderr.write(f"\njobs on Redis, measured: {LATENCY}\n")


@pytest.fixture
def app_a(queue):
    url, runs, _ = queue
    return connect(dataclasses.replace(settings(runs, max_queue=2), queue_url=url))


def test_a_job_started_through_a_is_watched_and_stopped_through_b(queue, app_a):
    t0 = time.monotonic()
    token = app_a.submit("ann", tiny_config(time_budget_s=60))
    pool = ThreadPoolExecutor(1)
    b = pool.submit(queue[2].ask, "watch-and-stop", token)  # B, another process, watches it and stops it
    first = wait_for(lambda: (r := app_a.get(token)).snapshot and r.snapshot.history and r)
    LATENCY["enqueue_to_first_progress_s"] = round(time.monotonic() - t0, 2)
    assert first.status == "running" and first.position == 0 and first.owner == "ann"
    seen = b.result(120)
    pool.shutdown()
    assert seen["status"] == "running" and seen["owner"] == "ann" and seen["steps"] >= 20
    assert seen["preview"] == ["uint8", 8, 3, 32, 32] and seen["final"] == "stopped"
    LATENCY["stop_s"] = round(seen["stop_s"], 2)  # B's Stop to B seeing the run saved as stopped
    final = app_a.get(token)
    assert final.status == "stopped" and final.done and str(final.snapshot.run_dir) in final.message
    run = load_run(final.snapshot.run_dir)
    assert run.metrics["status"] == "stopped" and run.metrics["owner"] == "ann"
    assert run.metrics["steps"] == final.snapshot.history[-1].step and final.snapshot.test_metrics.n_test == 32
    assert [r.token for r in app_a.jobs_of("ann")] == [token] and app_a.active() == []


def test_places_and_one_job_per_person_hold_across_processes(queue, app_a):
    running = [app_a.submit(owner, tiny_config(time_budget_s=120)) for owner in ("p1", "p2")]
    wait_for(lambda: all(app_a.get(t).status == "running" for t in running))  # both workers busy
    with ThreadPoolExecutor(1) as pool:  # A and B submit for one person at once
        theirs = pool.submit(queue[2].ask, "submit", "twin", "2", "p1")
        found = [submit(app_a, "twin", "2", "p1"), theirs.result(60)]
    won = [f for f in found if "token" in f]
    assert len(won) == 1 and won[0]["position"] == 1, found  # one job for the twin, first in the queue
    assert all("already have a training job" in f["p1"] for f in found)  # p1 trains through A
    assert all("already have a training job" in f.get("refused", f["p1"]) for f in found)
    fourth = app_a.submit("p4", tiny_config())
    assert app_a.position(fourth) == 2 and "number 2 in the queue (2 run at once)" in app_a.get(fourth).message
    with pytest.raises(ValueError, match=r"queue is full \(2 jobs waiting for 2 slots\)"):
        app_a.submit("p5", tiny_config())
    assert sorted(r.owner for r in app_a.active()[:2]) == ["p1", "p2"]
    assert [r.owner for r in app_a.active()[2:]] == ["twin", "p4"]
    app_a.stop(won[0]["token"])  # a queued job is cancelled: it never trains, and the next one moves up
    assert app_a.get(won[0]["token"]).status == "cancelled" and app_a.position(fourth) == 1
    for token in (fourth, *running):
        app_a.stop(token)
    wait_for(lambda: all(app_a.get(t).done for t in (fourth, *running)), timeout=60)
    assert [app_a.get(t).status for t in (fourth, *running)] == ["cancelled", "stopped", "stopped"]


def test_the_host_time_cap_holds_on_a_worker_for_a_sweep_too(queue):
    url, runs, _ = queue
    capped = connect(dataclasses.replace(settings(runs, job_time_cap_s=1.5), queue_url=url))
    token = capped.submit("cap", tiny_config(time_budget_s=60), parse_sweep("beta=1,2"))
    record = capped.get(token)
    assert record.time_capped and record.time_budget_s == 1.5 and "capped at 1.5 s" in record.message
    final = wait_for(lambda: (r := capped.get(token)).done and r, timeout=60)
    assert final.status == "finished" and final.snapshot.history[-1].elapsed_s <= 2.0
    assert [v.status for v in final.snapshot.variants] == ["finished", "finished"]
    assert [v.run_dir for v in final.snapshot.variants] == list(final.sweep.run_dirs)
    assert all(load_run(d).metrics["sweep"] == final.sweep.id for d in final.sweep.run_dirs)


def test_the_train_page_queues_on_redis_and_a_worker_trains_it(queue, monkeypatch):
    from tests.test_app_jobs import TRAIN, browser, start, texts, wait_until

    url, runs, _ = queue
    monkeypatch.setenv("VAE_LAB_QUEUE", url)
    monkeypatch.setenv("VAE_LAB_RUNS", str(runs))
    at = browser("page-on-redis", TRAIN)
    assert "This server trains 2 jobs at a time" in texts(at.caption)  # the workers listening
    start(at)
    wait_until(at, lambda at: "is now the loaded model" in texts(at.success), timeout_s=90)
    (job,) = connect(dataclasses.replace(settings(runs), queue_url=url)).jobs_of("page-on-redis")
    assert job.status == "finished" and job.snapshot.run_dir.name in texts(at.success)
    monkeypatch.setenv("VAE_LAB_QUEUE", f"redis://127.0.0.1:{free_port()}/0")  # Redis gone: the page says so
    at = browser("page-on-redis", TRAIN)
    assert "cannot be reached" in texts(at.error) and "Check that Redis runs there" in texts(at.error)


def test_two_app_processes_serve_one_browser(queue, monkeypatch):
    """The browser's record is on Redis: its job, started through A's Train page, is on B's (another process) too,
    and B's Stop stops it."""
    from tests.test_app_jobs import TRAIN, browser, start, texts, wait_until

    url, runs, b = queue
    monkeypatch.setenv("VAE_LAB_QUEUE", url)
    monkeypatch.setenv("VAE_LAB_RUNS", str(runs))
    at = browser("one-browser", TRAIN)
    start(at, cfg_epochs=1000, cfg_time_budget=60)
    wait_until(at, lambda at: "is **running**" in texts(at.info), timeout_s=60)
    seen = b.ask("train-page", "one-browser", "stop")
    assert "is **running**" in seen["before"] and seen["stop_enabled"]
    wait_until(at, lambda at: "is now the loaded model" in texts(at.success), timeout_s=60)
    assert "stopped" in texts(at.success)


def test_a_worker_killed_mid_run_leaves_a_loadable_interrupted_run(queue, app_a):
    """Last of the tests that train: it leaves one worker."""
    runs = queue[1]
    token = app_a.submit("kim", tiny_config(time_budget_s=60))
    run_dir = wait_for(lambda: _checkpointed(runs), timeout=60)  # the only run training now
    horse = read_metrics(run_dir)["pid"]  # the work horse that trains it; its parent is the worker
    worker = int(Path(f"/proc/{horse}/stat").read_text().rsplit(")", 1)[1].split()[1])
    for pid in (worker, horse):  # the whole machine's share of it gone at once: nothing saves
        os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    final = wait_for(lambda: (r := app_a.get(token)).done and r, timeout=HEARTBEAT_TTL_S + 10)
    LATENCY["lost_worker_noticed_s"] = round(time.monotonic() - t0, 2)
    assert final.status == "interrupted" and str(run_dir) in final.message and "loads like any run" in final.message
    assert [r.status for r in list_runs(runs) if r.path == run_dir] == ["interrupted"]
    assert load_run(run_dir).metrics["steps"] > 0
    again = app_a.submit("kim", tiny_config(time_budget_s=60))  # its owner may start another
    app_a.stop(again)
    wait_for(lambda: app_a.get(again).done, timeout=60)


def _checkpointed(runs: Path) -> Path | None:
    """The training run's folder; never a save's hidden temporary (CI once caught one between its two renames)."""
    return next((d for d in runs.iterdir() if not d.name.startswith(".") and (m := read_metrics(d))
                 and m["status"] == "running"), None) if runs.is_dir() else None


def test_an_unreachable_redis_says_what_to_check(tmp_path):
    closed = f"redis://:secret@127.0.0.1:{free_port()}/0"
    with pytest.raises(QueueUnavailable, match="cannot be reached.*Check that Redis runs there.*unset VAE_LAB_QUEUE"
                       ) as refused:
        connect(dataclasses.replace(settings(tmp_path), queue_url=closed))
    assert "secret" not in str(refused.value)
    with pytest.raises(HostSettingError, match="VAE_LAB_QUEUE='localhost:6379' is not a Redis address"):
        HostSettings.from_env({"VAE_LAB_QUEUE": "localhost:6379"})
    assert cli(["worker", "--queue", closed]) == 2


ON_REDIS = ("vae_core/jobs/redis_queue.py", "vae_core/jobs/worker.py", "ui/client_store.py")


def test_without_a_queue_nothing_imports_redis():
    """Only the two modules of jobs on Redis import redis or rq at their top, and no module imports them at its top:
    the app and the CLI import them where VAE_LAB_QUEUE (or `worker`) asks for them."""
    found = []
    for path in (*REPO.glob("vae_core/**/*.py"), *REPO.glob("ui/**/*.py"), *REPO.glob("app_pages/*.py"),
                 REPO / "app.py"):
        for node in ast.parse(path.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            on_redis = [n for n in names if n.split(".")[0] in ("redis", "rq") or
                        n in ("vae_core.jobs.redis_queue", "vae_core.jobs.worker", "ui.client_store")]
            if on_redis and str(path.relative_to(REPO)) not in ON_REDIS:
                found.append(f"{path.relative_to(REPO)}: {on_redis}")
    assert found == []


def test_a_worker_killed_between_a_checkpoints_two_renames_still_leaves_its_run(tmp_path):
    """The run folder is gone for a moment while a checkpoint is swapped in: a kill then leaves only the new save,
    under its hidden temporary name, which settling the lost job puts back."""
    from vae_core.jobs.progress import JobState
    from vae_core.jobs.redis_queue import JobSpec, lost_snapshot
    from vae_core.runs.folders import CONFIG

    run_dir = save_owned_run(tmp_path, "20260101-000000-sprites-a1b2", "kim", status="running")
    swapped = tmp_path / f".{run_dir.name}.tmp-999999999-0123abcd"  # the writer's pid: long gone
    run_dir.rename(swapped)
    spec = JobSpec("job", "kim", tiny_config(), tmp_path, run_dir, None, time.time(), False, 1.0)
    final = lost_snapshot(spec, JobState().snapshot())
    assert final.status == "interrupted" and str(run_dir) in final.message
    assert (run_dir / CONFIG).is_file() and not swapped.exists() and load_run(run_dir).config == tiny_config()
