"""kill -9 of the server mid-training: its worker stops too, and the next server lists the run as interrupted
and tidies a save cut short. Split from test_jobs_browser.py (whose helpers it uses) so that the suite's two
workers can run the two slow files side by side."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from browser_harness import children, running_server, wait_settled
from tests.e2e.test_jobs_browser import FAST, metrics, open_page, run_folders, start_job
from tests.helpers import assert_no_exception, screenshot, wait_for_status

pytestmark = pytest.mark.e2e


def test_kill_9_of_the_server_mid_training_keeps_the_run_as_interrupted(browser, tmp_path):
    runs = tmp_path / "runs"
    with running_server(runs, tmp_path, FAST) as server:
        proc = server.proc
        page = open_page(browser, server.url)
        start_job(page, epochs=1000, budget_s=300)
        wait_for_status(page, "step", timeout_s=90)
        time.sleep(2.5)  # at least one checkpoint
        workers = children(proc.pid)
        assert workers, "the job does not run in a worker process"
        os.kill(proc.pid, signal.SIGKILL)  # the server only: its worker must notice and not run on
        proc.wait(timeout=10)
        page.context.close()
        deadline = time.monotonic() + 30
        while any(Path(f"/proc/{w}").exists() for w in workers) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(Path(f"/proc/{w}").exists() for w in workers), "the worker outlived its server"
    [run] = run_folders(runs)
    assert metrics(run)["status"] in ("interrupted", "running") and metrics(run)["steps"] > 0
    (runs / f".{run.name}.tmp-999999999-0123abcd").mkdir()  # debris of a save cut short
    with running_server(runs, tmp_path) as server:
        page = open_page(browser, server.url)
        page.locator(".st-key-model_choice").click()
        page.keyboard.type("interrupted")  # the list draws only the options in view: 25 bundled runs come first
        option = page.get_by_role("option").filter(has_text="interrupted")
        assert option.count() == 1, screenshot(page, "FAILED-no-interrupted-run")
        option.click()
        wait_settled(page, timeout=60_000)
        shot = screenshot(page, "interrupted-run-loaded")
        assert "interrupted" in page.locator("[data-testid='stSidebar']").inner_text(), shot
        assert_no_exception(page, "the interrupted run, loaded", shot)
        assert not list(runs.glob(".*tmp*")), f"stale temporary folders left: {list(runs.glob('.*'))}"
