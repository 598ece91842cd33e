"""VAE_LAB_MAX_QUEUE on Redis holds when many app processes submit at the same moment (a class pressing Start
together): a real redis-server, no worker, so every accepted job waits in the queue."""
from __future__ import annotations

import dataclasses
import threading

import pytest

from tests.helpers import settings, tiny_config
from tests.redis_server import end, start_redis
from vae_core.jobs.redis_queue import connect

MAX_QUEUE, STUDENTS = 2, 12


@pytest.fixture()
def redis_url(tmp_path):
    server, url = start_redis(tmp_path)
    try:
        yield url
    finally:
        end(server)


def test_a_class_pressing_start_together_never_queues_more_than_the_limit(redis_url, tmp_path):
    host = dataclasses.replace(settings(tmp_path / "runs", max_queue=MAX_QUEUE), queue_url=redis_url)
    replicas = [connect(host) for _ in range(STUDENTS)]  # one scheduler (a connection) per app process
    start, outcomes = threading.Barrier(STUDENTS), []

    def press(i: int) -> None:
        start.wait()
        try:
            outcomes.append(("queued", replicas[i].submit(f"student-{i}", tiny_config())))
        except ValueError as e:
            outcomes.append(("refused", str(e)))

    threads = [threading.Thread(target=press, args=(i,)) for i in range(STUDENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    queued = [o for kind, o in outcomes if kind == "queued"]
    refused = [o for kind, o in outcomes if kind == "refused"]
    assert len(outcomes) == STUDENTS and len(queued) == MAX_QUEUE, outcomes
    assert all("queue" in r.lower() for r in refused), refused
    assert replicas[0].queue.count == MAX_QUEUE
