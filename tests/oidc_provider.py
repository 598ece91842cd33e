"""A real OpenID Connect provider on loopback for the sign-in tests: panva's oidc-provider from npm
(tests/oidc/package.json, installed by `npm ci --prefix tests/oidc`), run by Node, with its own development
login form; and the `[auth]` secrets that point a VAE Lab server at it.
"""
from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from browser_harness import free_port, stop_server, tail

HERE = Path(__file__).resolve().parent / "oidc"
CLIENT_ID = "vae-lab"
START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Provider:
    issuer: str  # http://127.0.0.1:PORT
    client_secret: str
    proc: subprocess.Popen
    log: Path

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"


def missing() -> str | None:
    """Why the provider cannot run here (no Node, or its package not installed); None where it can."""
    if shutil.which("node") is None:
        return "node is not installed (apt-get install -y nodejs npm) for the OpenID Connect provider"
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        return f"oidc-provider is not installed: npm ci --prefix {HERE}"
    return None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextlib.contextmanager
def running_provider(redirect_uri: str, log_dir: Path) -> Iterator[Provider]:
    """oidc-provider on a free loopback port, with one client whose only redirect is `redirect_uri`."""
    port, client_secret = free_port(), secrets.token_urlsafe(24)
    log = Path(log_dir) / f"oidc-provider-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["node", "provider.mjs", str(port), redirect_uri, CLIENT_ID, client_secret],
                                cwd=HERE, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    provider = Provider(f"http://127.0.0.1:{port}", client_secret, proc, log)
    try:
        _wait_ready(provider)
        yield provider
    finally:
        stop_server(proc)


def _wait_ready(provider: Provider) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _answers(provider.metadata_url):
        if provider.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"oidc-provider did not answer at {provider.metadata_url}; its output ends with:\n"
                               f"{tail(provider.log)}")
        time.sleep(0.2)


def write_auth_secrets(path: Path, redirect_uri: str, provider: Provider) -> Path:
    """A secrets.toml whose `[auth]` section is Streamlit's st.login configuration for `provider`."""
    # prompt=login: Streamlit asks for "select_account" by default, a prompt oidc-provider does not offer.
    path.write_text("\n".join([
        "[auth]",
        f'redirect_uri = "{redirect_uri}"',
        f'cookie_secret = "{secrets.token_urlsafe(32)}"',
        f'client_id = "{CLIENT_ID}"',
        f'client_secret = "{provider.client_secret}"',
        f'server_metadata_url = "{provider.metadata_url}"',
        'client_kwargs = { prompt = "login" }',
        ""]), encoding="utf-8")
    return path
