"""The server-wide queue: a few jobs at once, FIFO, one per owner, a time cap, cancel and stop."""
import threading
from pathlib import Path

import pytest

from tests.helpers import read_metrics, settings, tiny_config, wait_for
from vae_core.jobs.progress import JobSnapshot
from vae_core.jobs.scheduler import KEEP_DONE, JobScheduler
from vae_core.runs.folders import load_run


class FakeJob:
    """Runs until the test ends it; records what the scheduler asked of it."""
    started: list["FakeJob"] = []

    def __init__(self, config, runs_dir, *, owner, token, checkpoint_every_s, on_done):
        self.config, self.owner, self.token, self.on_done = config, owner, token, on_done
        self.run_dir = Path(runs_dir) / token
        self.status, self.stop_asked = "starting", False

    def start(self):
        FakeJob.started.append(self)
        self.status = "running"
        return self

    def stop(self):
        self.stop_asked = True

    def end(self, status: str = "finished"):
        self.status = status
        self.on_done()

    def join(self, timeout=None):
        return self.status not in ("starting", "running")

    def snapshot(self):
        return JobSnapshot(self.status, (), f"{self.status}.", None, None, None, None)


@pytest.fixture
def fake(tmp_path):
    FakeJob.started = []
    return JobScheduler(settings(tmp_path, max_jobs=2, max_queue=2), job_factory=FakeJob)


def test_jobs_beyond_the_limit_wait_in_order_and_start_when_a_slot_frees(fake):
    tokens = [fake.submit(owner, tiny_config()) for owner in ("a", "b", "c", "d")]
    assert [fake.position(t) for t in tokens] == [0, 0, 1, 2] and len(FakeJob.started) == 2
    waiting = fake.get(tokens[3])
    assert (waiting.status, waiting.snapshot, waiting.position) == ("queued", None, 2)
    assert "number 2 in the queue (2 run at once)" in waiting.message
    FakeJob.started[1].end()  # b ends: c, the first in the queue, takes its slot at once
    assert [fake.position(t) for t in tokens] == [0, None, 0, 1]
    assert [j.owner for j in FakeJob.started] == ["a", "b", "c"]
    assert [r.owner for r in fake.active()] == ["a", "c", "d"]
    assert fake.get(tokens[1]).status == "finished" and fake.get(tokens[1]).done


def test_one_job_per_owner_and_a_full_queue_are_refused_with_the_reason(fake):
    fake.submit("a", tiny_config())
    with pytest.raises(ValueError, match="already have a training job running or queued.*one job per session"):
        fake.submit("a", tiny_config())
    for owner in "bcd":
        fake.submit(owner, tiny_config())
    with pytest.raises(ValueError, match="queue is full \\(2 jobs waiting for 2 slots\\): try again"):
        fake.submit("e", tiny_config())
    FakeJob.started[0].end()
    assert fake.position(fake.submit("a", tiny_config())) == 2  # a's first job ended: a may queue another


def test_a_queued_job_is_cancelled_and_a_running_one_is_asked_to_stop(fake):
    a, b, c = (fake.submit(owner, tiny_config()) for owner in "abc")
    fake.stop(c)
    assert fake.get(c).status == "cancelled" and fake.position(c) is None and "nothing was trained" in fake.get(c).message
    fake.stop(a)
    assert FakeJob.started[0].stop_asked and fake.get(a).status == "running"  # it saves, then ends
    FakeJob.started[0].end("stopped")
    assert fake.get(a).status == "stopped" and len(FakeJob.started) == 2 and fake.active()[0].token == b


def test_the_time_budget_is_capped_by_the_host_and_the_record_says_so(tmp_path):
    FakeJob.started = []
    scheduler = JobScheduler(settings(tmp_path, max_jobs=3, job_time_cap_s=30.0), job_factory=FakeJob)
    long, none, short = (scheduler.get(scheduler.submit(o, tiny_config(time_budget_s=b)))
                         for o, b in (("a", 100.0), ("b", None), ("c", 10.0)))
    assert [r.time_budget_s for r in (long, none, short)] == [30.0, 30.0, 10.0]
    assert [r.time_capped for r in (long, none, short)] == [True, True, False]
    assert FakeJob.started[0].config.train.time_budget_s == 30.0
    assert "capped at 30 s on this server" in long.message and "capped" not in short.message


def test_ended_records_are_kept_bounded_and_found_by_token(fake):
    tokens = []
    for i in range(KEEP_DONE + 3):
        tokens.append(fake.submit(f"owner{i}", tiny_config()))
        FakeJob.started[-1].end()
    assert fake.get(tokens[0]) is None and fake.get(tokens[-1]).status == "finished"
    assert [r.token for r in fake.jobs_of(f"owner{KEEP_DONE + 2}")] == [tokens[-1]]


def test_many_sessions_submitting_at_once_never_exceed_the_limit(fake):
    errors = []

    def submit(owner):
        try:
            fake.submit(owner, tiny_config())
        except ValueError as e:
            errors.append(str(e))

    threads = [threading.Thread(target=submit, args=(f"s{i}",)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(FakeJob.started) == 2 and len(fake.active()) == 4 and len(errors) == 12
    assert all("queue is full" in e for e in errors)


def test_with_one_slot_real_process_jobs_run_one_after_the_other(tmp_path):
    scheduler = JobScheduler(settings(tmp_path, max_jobs=1))
    first = scheduler.submit("alice", tiny_config())
    second = scheduler.submit("bob", tiny_config(epochs=2))  # 8 steps: it finishes by itself
    assert scheduler.position(first) == 0 and scheduler.position(second) == 1
    wait_for(lambda: (r := scheduler.get(first).snapshot) and len(r.history) >= 20, timeout=90)
    assert scheduler.get(second).status == "queued" and scheduler.get(second).snapshot is None
    scheduler.stop(first)
    ended = wait_for(lambda: scheduler.get(second).status == "finished" and scheduler.get(second), timeout=90)
    stopped = scheduler.get(first)
    assert stopped.status == "stopped" and stopped.position is None and ended.position is None
    first_run, second_run = load_run(stopped.snapshot.run_dir), load_run(ended.snapshot.run_dir)
    assert first_run.metrics["status"] == "stopped" and first_run.metrics["owner"] == "alice"
    assert second_run.metrics["steps"] == 8 and second_run.metrics["owner"] == "bob"
    assert second_run.metrics["started"] > read_metrics(stopped.snapshot.run_dir)["heartbeat"]  # never overlapped
    assert [r.token for r in scheduler.jobs_of("bob")] == [second] and scheduler.active() == []
