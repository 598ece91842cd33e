"""Two app processes on one Redis (VAE_LAB_QUEUE) and a worker, in Chromium at 1024x768: a job started through one
replica is found, by the same browser, on the other, and stopped there; with Redis gone, the page says what to
check; a replica killed (-9) mid-run leaves its job training, found and stopped on the other. Skips (or, with
VAE_LAB_REQUIRE_REDIS=1, fails) without Debian's redis-server."""
from __future__ import annotations

import signal

import pytest

from browser_harness import running_server, start_server, stop_server, wait_settled
from tests.e2e.test_jobs_browser import metrics, run_folders, start_job, step_of
from tests.helpers import assert_no_exception, screenshot, wait_for_status
from tests.redis_server import end, start_redis, start_worker, wait_for_workers
from vae_core.runs.folders import load_run

pytestmark = pytest.mark.e2e
PROJECTOR = {"width": 1024, "height": 768}


def job_started(browser, url: str):
    """A new browser at the projector's size on that replica's Train page, its job started."""
    page = browser.new_context(viewport=PROJECTOR).new_page()
    page.set_default_timeout(60_000)
    page.goto(url, wait_until="domcontentloaded")
    wait_settled(page, timeout=90_000)
    start_job(page, epochs=1000, budget_s=120)
    return page


def test_one_browser_on_two_replicas_and_redis_gone(browser, tmp_path):
    redis_server, url = start_redis(tmp_path)
    worker = start_worker(url, tmp_path / "worker.log")
    runs, env = tmp_path / "runs", {"VAE_LAB_QUEUE": url, "VAE_LAB_CHECKPOINT_EVERY_S": "1"}
    try:
        with running_server(runs, tmp_path, env) as a, running_server(runs, tmp_path, env) as b:
            wait_for_workers(url, 1)
            page = job_started(browser, a.url)
            wait_for_status(page, "step", timeout_s=90)
            assert_no_exception(page, "Train on replica A", screenshot(page, "queue-replica-a-training"))
            other = page.context.new_page()  # the same browser (its cookie) on the other replica
            other.goto(f"{b.url}/train", wait_until="domcontentloaded")
            wait_settled(other, timeout=90_000)
            wait_for_status(other, "step", timeout_s=30)
            shot = screenshot(other, "queue-replica-b-same-job")
            assert other.locator(".st-key-train_stop button").is_enabled(), shot
            other.locator(".st-key-train_stop button").click()
            wait_for_status(other, "stopped", timeout_s=60)
            assert_no_exception(other, "Stop on replica B", screenshot(other, "queue-replica-b-stopped"))
            end(redis_server)
            other.reload(wait_until="domcontentloaded")
            wait_settled(other, timeout=60_000)
            gone = other.get_by_text("cannot be reached")
            gone.wait_for(state="visible", timeout=30_000)
            shot = screenshot(other, "queue-redis-gone")
            assert "Check that Redis runs there" in other.inner_text("body"), shot
            assert_no_exception(other, "Redis gone", shot)
    finally:
        end(worker)
        end(redis_server)


def test_a_replica_killed_mid_run_does_not_stop_the_job(browser, tmp_path):
    redis_server, url = start_redis(tmp_path)
    worker = start_worker(url, tmp_path / "worker.log")
    runs, env = tmp_path / "runs", {"VAE_LAB_QUEUE": url, "VAE_LAB_CHECKPOINT_EVERY_S": "1"}
    a = start_server(runs, tmp_path, env)
    try:
        with running_server(runs, tmp_path, env) as b:
            wait_for_workers(url, 1)
            page = job_started(browser, a.url)
            before = step_of(wait_for_status(page, "step", timeout_s=90))
            stop_server(a.proc, signal.SIGKILL)  # replica A and nothing else: the job trains in the worker
            page.close()
            other = page.context.new_page()  # the same browser, as the proxy sends it to the replica left
            other.goto(f"{b.url}/train", wait_until="domcontentloaded")
            wait_settled(other, timeout=90_000)
            other.wait_for_timeout(2_000)
            after = step_of(wait_for_status(other, "step", timeout_s=30))
            shot = screenshot(other, "queue-replica-a-killed-job-on-b")
            assert after > before, f"the job stopped with replica A: step {before} -> {after} ({shot})"
            other.locator(".st-key-train_stop button").click()
            wait_for_status(other, "stopped", timeout_s=60)
            assert_no_exception(other, "Stop on B after A was killed", screenshot(other, "queue-stopped-after-kill"))
        [run] = run_folders(runs)
        assert metrics(run)["status"] == "stopped" and metrics(run)["steps"] >= after, metrics(run)
        assert load_run(run).metrics["status"] == "stopped"
    finally:
        stop_server(a.proc)
        end(worker)
        end(redis_server)
