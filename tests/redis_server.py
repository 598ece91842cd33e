"""A real Redis (Debian's redis-server) on a free loopback port, and real `python -m vae_core worker` processes, for
the tests of jobs on Redis. Where redis-server or the redis/rq packages are missing the tests skip and say why,
unless VAE_LAB_REQUIRE_REDIS=1 (set by .ci/run): then they fail.

Also run as `python -m tests.redis_server URL RUNS_DIR`: an app process of its own (client B) that does what it is
told on the queue, a command a line, and answers each with what it saw, a JSON line.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
REDIS_SERVER = "redis-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def skip_or_fail(reason: str) -> None:
    """Skip here; in CI (VAE_LAB_REQUIRE_REDIS=1) a missing Redis is an error, not a skip."""
    if os.environ.get("VAE_LAB_REQUIRE_REDIS") == "1":
        pytest.fail(f"{reason} (VAE_LAB_REQUIRE_REDIS=1, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """redis-server on a free loopback port, keeping nothing on disk; its process and URL."""
    if shutil.which(REDIS_SERVER) is None:
        skip_or_fail("redis-server not found: install Debian's redis-server (apt-get install -y redis-server) to "
                     "run the tests of jobs on Redis")
    import redis

    port = free_port()
    process = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return process, url
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)


def start_worker(url: str, log: Path) -> subprocess.Popen:
    """`python -m vae_core worker` in a session of its own (so that a test can kill it alone)."""
    return subprocess.Popen([sys.executable, "-m", "vae_core", "worker", "--queue", url], cwd=REPO,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def wait_for_workers(url: str, n: int, timeout: float = 60.0) -> None:
    import redis
    from rq import Queue, Worker

    from vae_core.jobs.redis_queue import QUEUE_NAME

    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    while Worker.count(connection=client, queue=Queue(QUEUE_NAME, connection=client)) < n:
        assert time.monotonic() < deadline, f"{n} workers did not start within {timeout} s"
        time.sleep(0.1)


def end(process: subprocess.Popen) -> None:
    """A process this test started: asked to end, then killed."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class ClientB:
    """Another app process (this module's main): it reads one command a line and answers with one JSON line."""

    def __init__(self, url: str, runs_dir: Path):
        env = {**os.environ, "VAE_LAB_QUEUE": url, "VAE_LAB_RUNS": str(runs_dir)}  # its app pages' host
        self.process = subprocess.Popen([sys.executable, "-m", "tests.redis_server", url, str(runs_dir)], cwd=REPO,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)

    def ask(self, *command: str) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, f"client B ended (status {self.process.wait()})"
        return json.loads(answer)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


# ----------------------------------------------------------------------------- client B, in its own process

def _scheduler(url: str, runs_dir: str):
    from tests.helpers import settings
    from vae_core.jobs.redis_queue import connect

    return connect(dataclasses.replace(settings(Path(runs_dir), max_queue=2), queue_url=url))


def watch_and_stop(scheduler, token: str) -> dict:
    """Wait until the job trains and shows a preview, stop it, wait until it ends."""
    from tests.helpers import wait_for

    seen = wait_for(lambda: (r := scheduler.get(token)).snapshot and len(r.snapshot.history) >= 20
                    and r.snapshot.preview is not None and r, timeout=60)
    preview = seen.snapshot.preview.recon_pixels
    t0 = time.monotonic()
    scheduler.stop(token)
    final = wait_for(lambda: (r := scheduler.get(token)).done and r, timeout=60)
    return dict(status=seen.status, position=seen.position, steps=len(seen.snapshot.history), owner=seen.owner,
                preview=[str(preview.dtype), *preview.shape], stop_s=time.monotonic() - t0, final=final.status)


def submit(scheduler, owner: str, racers: str, other: str) -> dict:
    """Submit a tiny job for owner once `racers` processes are ready (so that they race), then one for `other`:
    the first one's token and place (or why it was refused), and why the other was refused."""
    from tests.helpers import tiny_config, wait_for

    scheduler.client.incr(f"test-race:{owner}")
    wait_for(lambda: int(scheduler.client.get(f"test-race:{owner}")) >= int(racers), every=0.001)
    try:
        token = scheduler.submit(owner, tiny_config(time_budget_s=30))
        found = dict(token=token, position=scheduler.position(token))
    except ValueError as e:
        found = dict(refused=str(e))
    try:
        return {**found, other: scheduler.submit(other, tiny_config())}
    except ValueError as e:
        return {**found, other: str(e)}


def train_page(scheduler, token: str, click: str) -> dict:
    """The Train page for the browser `token` (in this process, its record from Redis); click Stop if asked."""
    from tests.test_app_jobs import TRAIN, browser, texts

    at = browser(token, TRAIN)
    before, stop = texts(at.info), at.button(key="train_stop")
    if click == "stop":
        stop.click().run()
    return dict(before=before, stop_enabled=not stop.disabled, after=texts(at.info) + texts(at.success))


def serve(url: str, runs: str) -> None:
    """Client B's loop: a command a line on stdin, its answer a line on stdout."""
    scheduler = _scheduler(url, runs)
    for line in sys.stdin:
        command, *args = json.loads(line)
        found = {"watch-and-stop": watch_and_stop, "submit": submit, "train-page": train_page}[command](scheduler, *args)
        sys.stdout.write(json.dumps(found) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    serve(*sys.argv[1:])
