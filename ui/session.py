"""Who is this browser: a token in the URL (?u=...), so a reload or a page change finds the same
form settings and the same training job. Streamlit's session state dies with the tab; this does not.
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

TOKEN_PARAM = "u"  # the URL query parameter that names this browser
TOKEN_KEY = "client_token"  # session: the same token, in case a page change drops the URL parameter
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_CLIENTS = 4096  # browsers remembered per server; the least recently seen are forgotten first


@dataclass
class ClientRecord:
    """What the server remembers for one browser token."""
    form: dict[str, Any] = field(default_factory=dict)  # Train form: widget key -> value
    job_token: str | None = None  # the browser's current (or last) training job
    adopted: set[str] = field(default_factory=set)  # job tokens whose runs were already loaded
    images: Any = None  # the DataConfig of the images this browser chose on the Your images page
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


@st.cache_resource
def load_client_registry() -> ClientRegistry:
    """Cached because it is the server's memory of every browser: one object shared by all sessions."""
    return ClientRegistry()


def client_token() -> str:
    """This browser's token: from the URL, else from the session, else a new one (written to the URL)."""
    token = st.query_params.get(TOKEN_PARAM) or ""
    if not _TOKEN.match(token):
        token = st.session_state.get(TOKEN_KEY) or secrets.token_urlsafe(9)
    st.session_state[TOKEN_KEY] = token
    if st.query_params.get(TOKEN_PARAM) != token:
        st.query_params[TOKEN_PARAM] = token
    return token


def client_record() -> ClientRecord:
    """The server's record for this browser (form settings, job), created on first sight."""
    return load_client_registry().get(client_token())
