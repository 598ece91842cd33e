"""Who is this browser: a secret in a server-set, HttpOnly cookie (ui/cookie.py), so a reload or a page
change finds the same form settings and the same training job, and a link copied from a projector carries
the view but not the person. Streamlit's session state dies with the tab; the cookie does not.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from ui import cookie
from ui.signin import current_login
from vae_core.host import HostSettings

OLD_LINK_PARAM = "u"  # where links used to carry the identity; dropped on sight, never read
TOKEN_KEY = "client_token"  # session: the identity; without a cookie (AppTest) tests set it to be one browser
OLD_LINK_NOTICE = ("This link named a browser (`u=…`): VAE Lab no longer takes who you are from links, "
                   "so it opened the view as *your* browser.")
MAX_CLIENTS = 4096  # browsers remembered per server; the least recently seen are forgotten first


@dataclass
class ClientRecord:
    """What the server remembers for one browser token."""
    form: dict[str, Any] = field(default_factory=dict)  # Train form: widget key -> value
    job_token: str | None = None  # the browser's current (or last) training job
    adopted: set[str] = field(default_factory=set)  # job tokens whose runs were already loaded
    images: Any = None  # the DataConfig of the images this browser chose on the Your data page
    vectors: Any = None  # the DataConfig of the vectors (a file in its private space) it chose there
    last_seen: float = field(default_factory=time.time)


class ClientRegistry:
    """Token -> ClientRecord for every browser of this server; thread-safe, bounded."""

    def __init__(self, capacity: int = MAX_CLIENTS):
        self._records: OrderedDict[str, ClientRecord] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def get(self, token: str) -> ClientRecord:
        with self._lock:
            record = self._records.pop(token, None) or ClientRecord()
            record.last_seen = time.time()
            self._records[token] = record  # most recently seen last
            while len(self._records) > self._capacity:
                self._records.popitem(last=False)
            return record


def load_client_registry() -> ClientRegistry:
    """The server's memory of every browser; on the host's Redis (VAE_LAB_QUEUE) where it has one, so that every
    app process on it serves every browser (ui/client_store.py)."""
    return _load_client_registry(HostSettings.from_env().queue_url)


@st.cache_resource
def _load_client_registry(queue_url: str) -> ClientRegistry:
    """Cached because it is the server's memory of every browser: one object shared by all sessions."""
    if queue_url:
        from ui.client_store import connect_registry  # imports Redis: only where the host asked for it

        return connect_registry(queue_url)
    return ClientRegistry()


def client_token() -> str:
    """This person's secret: a signed-in person's login (ui/signin.py), else the browser's identity cookie, else
    (no HTTP request, as in AppTest) one per session."""
    login = current_login()
    if login is not None:
        return login.secret
    token = cookie.browser_secret() or st.session_state.get(TOKEN_KEY) or cookie.new_secret()
    st.session_state[TOKEN_KEY] = token
    return token


def identity_ui() -> None:
    """Once per run, first: drop an old link's `u=` with a one-line notice (the server sets the cookie)."""
    if OLD_LINK_PARAM in st.query_params:
        del st.query_params[OLD_LINK_PARAM]  # the other parameters, the view, stay
        st.info(OLD_LINK_NOTICE, icon=":material/link_off:")


def client_record() -> ClientRecord:
    """The server's record for this browser (form settings, job), created on first sight."""
    return load_client_registry().get(client_token())
