"""The README's recipe for a class, as written: deploy/run-class.sh (Redis, two replicas, a worker, Debian's nginx
with deploy/nginx.conf) on free loopback ports, and Chromium at 1024x768 through the proxy: the page connects (its
websocket upgraded, its Origin accepted), changes page, and every websocket of one browser reaches one replica;
with that replica killed (-9), the same browser is served by the other.
Skips (or, with VAE_LAB_REQUIRE_REDIS=1, fails) without nginx and redis-server."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from browser_harness import REPO, free_port, go_to, healthy, stop_server, tail, wait_settled
from tests.helpers import assert_no_exception, screenshot
from tests.redis_server import skip_or_fail
from ui.cookie import COOKIE
from ui.pages import LATENT

pytestmark = pytest.mark.e2e
PROJECTOR = {"width": 1024, "height": 768}
SCRIPT, CONFIG = REPO / "deploy" / "run-class.sh", REPO / "deploy" / "nginx.conf"
START_TIMEOUT_S = 90.0


def test_the_proxy_is_sticky_by_the_identity_cookie():
    assert f"hash $cookie_{COOKIE} consistent;" in CONFIG.read_text()  # ui/cookie.py names the cookie


def start_class(tmp_path: Path) -> tuple[subprocess.Popen, str, list[str], Path]:
    """run-class.sh with 2 replicas and 1 worker; its process, the proxy's URL, the replicas' URLs, its output."""
    for tool in ("nginx", "redis-server"):
        if shutil.which(tool) is None:
            skip_or_fail(f"{tool} not found: apt-get install -y nginx redis-server to test the class recipe")
    port, first = free_port(), free_port()
    env = dict(os.environ, FIRST_APP_PORT=str(first), REDIS_PORT=str(free_port()), VAE_LAB_RUNS=str(tmp_path / "runs"),
               TMPDIR=str(tmp_path))
    env.pop("VAE_LAB_QUEUE", None)
    out = tmp_path / "class.log"
    proc = subprocess.Popen(["bash", str(SCRIPT), "2", "1", str(port)], cwd=REPO, env=env, stdout=out.open("wb"),
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    return proc, f"http://127.0.0.1:{port}", [f"http://127.0.0.1:{first + i}" for i in range(2)], out


def wait_up(proc: subprocess.Popen, urls: list[str], out: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not all(healthy(u) for u in urls):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the class did not start (exit code {proc.poll()}); its output ends with:\n{tail(out)}")
        time.sleep(0.5)


def wait_for_streams(out: Path, n: int, timeout_s: float = 10.0) -> list[str]:
    """The proxy's access-log lines of websockets (/_stcore/stream), once there are n of them."""
    [log] = re.findall(r"access log (\S+)\)", out.read_text())
    deadline = time.monotonic() + timeout_s
    while len(streams := [s for s in Path(log).read_text().splitlines() if "/_stcore/stream" in s]) < n:
        assert time.monotonic() < deadline, f"{len(streams)} websockets in the proxy's log, not {n}"
        time.sleep(0.2)
    return streams


def replica_pid(out: Path, address: str) -> int:
    """The process of the replica at address (host:port), as run-class.sh printed it."""
    [pid] = re.findall(rf"http://{re.escape(address)} \(pid (\d+)", out.read_text())
    return int(pid)


def test_a_browser_through_nginx_on_two_replicas(browser, tmp_path):
    proc, url, replicas, out = start_class(tmp_path)
    try:
        wait_up(proc, [*replicas, url], out)
        context = browser.new_context(viewport=PROJECTOR)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(url, wait_until="domcontentloaded")
        wait_settled(page, timeout=90_000)
        go_to(page, "Train")
        again = context.new_page()
        again.goto(f"{url}/{LATENT.url_path}", wait_until="domcontentloaded")
        wait_settled(again, timeout=90_000)
        shot = screenshot(again, "class-through-nginx")
        assert_no_exception(page, "Train through nginx", screenshot(page, "class-through-nginx-train"))
        assert_no_exception(again, "Latent space through nginx", shot)
        state = context.storage_state()  # its identity cookie: the same browser again
        context.close()  # nginx logs a websocket when it closes
        streams = wait_for_streams(out, 2)
        upstreams = {line.rsplit("upstream=", 1)[1] for line in streams}
        assert len(streams) >= 2 and len(upstreams) == 1, streams  # one browser, one replica
        assert upstreams <= {u.removeprefix("http://") for u in replicas}, upstreams
        [served] = upstreams
        os.kill(replica_pid(out, served), signal.SIGKILL)  # its browser goes on, through the proxy, to the other
        context = browser.new_context(viewport=PROJECTOR, storage_state=state)
        page = context.new_page()
        page.goto(url, wait_until="domcontentloaded")
        wait_settled(page, timeout=90_000)
        assert_no_exception(page, "after its replica was killed", screenshot(page, "class-replica-killed"))
        context.close()
        moved = wait_for_streams(out, 3)[-1].rsplit("upstream=", 1)[1]
        assert served not in moved, f"the browser still went to the killed replica: {moved}"
    finally:
        stop_server(proc)
