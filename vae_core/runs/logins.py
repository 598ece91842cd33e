"""A signed-in person, as the server knows them: a secret derived from the provider's issuer and subject with a
key only the server holds, so their runs, private space and job follow them from browser to browser, while the
subject and the email never stand where a secret is kept (metrics.json's owner, a space's folder name).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import uuid
from pathlib import Path

from vae_core.runs.names import check_name

KEY_FILE = ".sign-in-key"  # under the runs folder, which every replica of the app shares; a dot: never a run
KEY_BYTES = 32
# Another domain than the board's and the private space's hashes: this one makes a secret, they name things.
SECRET_DOMAIN = b"vae-lab sign-in\0"


def sign_in_key(runs_dir: Path) -> bytes:
    """The server's key for deriving login secrets: made once (32 random bytes, readable by the server's user
    alone), then read. Two processes making it at once agree: the first file linked into place wins."""
    path = Path(runs_dir) / KEY_FILE
    if not path.exists():
        _make_key(path)
    key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path} does not hold a {KEY_BYTES}-byte key: delete it and the server makes a new one "
                         "(people signed in get new identities, and their old runs show as someone else's).")
    return key


def _make_key(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        tmp.write_text(secrets.token_hex(KEY_BYTES), encoding="ascii")
        tmp.chmod(0o600)
        os.link(tmp, path)  # atomic, and refuses to replace a key another process made first
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def login_secret(key: bytes, issuer: str, subject: str) -> str:
    """The identity of the person `subject` at provider `issuer`: HMAC-SHA256, URL-safe (43 characters), the
    same shape as a browser's cookie secret (ui/cookie.py), and useless for finding the subject."""
    message = SECRET_DOMAIN + issuer.encode() + b"\0" + subject.encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def login_name(name: object, email: object) -> str | None:
    """The name the board shows for a signed-in person: the provider's name, else the email's local part, each
    checked as a typed name is (vae_core.runs.names.check_name); None where neither passes (the animal stays)."""
    local = email.partition("@")[0] if isinstance(email, str) else None
    for candidate in (name, local):
        if isinstance(candidate, str) and (checked := check_name(candidate).name):
            return checked
    return None
