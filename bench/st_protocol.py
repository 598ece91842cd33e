"""A Streamlit client without a browser: one session over /_stcore/stream, speaking the frontend's protobufs.

What it does is what the frontend does (streamlit/frontend/app/src/App.tsx, lib/.../WidgetStateManager.ts):
- a page load first (GET /), so the websocket carries the identity cookie our middleware sets (ui/cookie.py);
- the websocket offers the subprotocol "streamlit" (the server picks the first entry; the others carry an XSRF
  token and a session to resume, unused here);
- every rerun is a BackMsg `rerun_script` with the ClientState: the address's query string, the page's
  script hash, and the widget states (a widget left out keeps the value the server holds for it);
- a widget inside a fragment reruns that fragment alone (`fragment_id`), and a page switch clears the query
  string; a widget bound to the address (its element's `query_param_key`) writes its value there too;
- `auto_rerun` starts a timer that reruns its fragment every `interval` seconds; a new full run clears them.
No message hashes are offered as cached, so every ForwardMsg arrives whole (never a `ref_hash`).
"""
from __future__ import annotations

import asyncio
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

FINISHED = ForwardMsg.ScriptFinishedStatus
Scope = Literal["app", "fragment"]
OPEN_TIMEOUT_S = 30.0


class ProtocolError(RuntimeError):
    """The server closed the session or a run did not finish in time; the message says which."""


@dataclass(frozen=True)
class Widget:
    """A widget as the last run drew it: its element proto (`slider`, `number_input`, `button_group`, …)."""
    id: str
    kind: str
    proto: Any
    fragment_id: str

    @property
    def key(self) -> str:
        """The key the app gave it: Streamlit's ids end with "-<key>" ("$$ID-<hash>-recon_n")."""
        return self.id.split("-", 2)[-1] if self.id.startswith("$$ID-") else ""


@dataclass
class RunSeen:
    """What one run sent: headings, exception messages, and how it ended."""
    headings: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    status: str = ""


@dataclass(frozen=True)
class Finished:
    seconds: float  # from the BackMsg sent to the script_finished that ends it
    seen: RunSeen


def cookie_of(url: str) -> str:
    """The cookies a page load sets (name=value; …): what a browser sends on its websocket next."""
    with urllib.request.urlopen(urllib.request.Request(url + "/", headers={"Sec-Fetch-Dest": "document"}),
                                timeout=OPEN_TIMEOUT_S) as r:
        return "; ".join(h.split(";", 1)[0] for h in r.headers.get_all("Set-Cookie") or [])


class Session:
    """One browser tab's worth of Streamlit session; `rerun` returns when the run it asked for has finished."""

    def __init__(self, url: str):
        self.url = url
        self.pages: dict[str, str] = {}  # page title -> page_script_hash, from the navigation message
        self.page_hash = ""
        self.query = ""
        self.widgets: dict[str, Widget] = {}  # by key, as the last runs drew them
        self.closed: str | None = None  # why the connection ended
        self.timer_reruns = 0  # fragment reruns sent by the app's timers (run_every), as a browser sends them
        self.late: list[float] = []  # seconds to the script_finished of runs that ran past their timeout
        self.exceptions: list[str] = []  # every exception element any run drew (timer reruns too), with its page
        self._ws: Any = None
        self._seen = RunSeen()
        self._waiter: asyncio.Future[RunSeen] | None = None
        self._want: Scope = "app"
        self._timers: dict[str, asyncio.Task] = {}
        self._reader: asyncio.Task | None = None
        self._overdue: float | None = None

    async def open(self, timeout_s: float = OPEN_TIMEOUT_S) -> Finished:
        cookie = await asyncio.to_thread(cookie_of, self.url)
        ws_url = self.url.replace("http", "ws", 1) + "/_stcore/stream"
        self._ws = await websockets.connect(ws_url, subprotocols=["streamlit"], additional_headers={"Cookie": cookie},
                                            max_size=None, open_timeout=timeout_s)
        self._reader = asyncio.create_task(self._read())
        return await self.rerun(timeout_s=timeout_s)

    @property
    def page(self) -> str:
        """The title of the page this session shows."""
        return next((title for title, h in self.pages.items() if h == self.page_hash), "?")

    async def close(self) -> None:
        self._stop_timers()
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    async def rerun(self, states: list[WidgetState] = (), fragment_id: str = "", page: str | None = None,
                    timeout_s: float = 60.0) -> Finished:
        """Send one rerun_script (a page title switches page) and wait for its script_finished."""
        if page is not None:
            self.page_hash, self.query = self.pages[page], ""
        loop = asyncio.get_running_loop()
        self._waiter, self._want = loop.create_future(), "fragment" if fragment_id else "app"
        t0 = time.perf_counter()
        await self._send(states, fragment_id, auto=False)
        try:
            seen = await asyncio.wait_for(self._waiter, timeout_s)
        except asyncio.TimeoutError:
            self._overdue = t0  # its script_finished may still come: `late` tells a slow run from a lost one
            raise ProtocolError(f"no script_finished within {timeout_s:g} s") from None
        finally:
            self._waiter = None
        return Finished(time.perf_counter() - t0, seen)

    async def change(self, widget: Widget, state: WidgetState, timeout_s: float = 60.0) -> Finished:
        """What moving a widget does: its new state, into the address if bound, and a rerun of its scope."""
        key = getattr(widget.proto, "query_param_key", "")
        if key:
            self._set_query(key, url_value(state))
        return await self.rerun([state], widget.fragment_id, timeout_s=timeout_s)

    def _set_query(self, key: str, value: str) -> None:
        pairs = [(k, v) for k, v in parse_qsl(self.query, keep_blank_values=True) if k != key]
        self.query = urlencode([*pairs, (key, value)])

    async def _send(self, states: list[WidgetState], fragment_id: str, auto: bool) -> None:
        client = ClientState(query_string=self.query, page_script_hash=self.page_hash, fragment_id=fragment_id,
                             is_auto_rerun=auto)
        client.widget_states.widgets.extend(states)
        msg = BackMsg()
        msg.rerun_script.CopyFrom(client)
        await self._ws.send(msg.SerializeToString())

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                msg = ForwardMsg()
                msg.ParseFromString(raw)
                self._handle(msg)
        except websockets.ConnectionClosed as e:
            self.closed = f"websocket closed: {e}"
        finally:
            self.closed = self.closed or "websocket closed"
            self._stop_timers()
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_exception(ProtocolError(self.closed))

    def _handle(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self._stop_timers()
            self._seen, self.widgets = RunSeen(), {}
            self.page_hash = msg.new_session.page_script_hash or self.page_hash
        elif kind == "navigation":
            self.pages = {p.page_name: p.page_script_hash for p in msg.navigation.app_pages}
            self.page_hash = msg.navigation.page_script_hash or self.page_hash
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element, msg.delta.fragment_id)
        elif kind == "auto_rerun":
            self._start_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            self._stop_timers(list(msg.stop_auto_rerun.fragment_ids))
        elif kind == "script_finished":
            self._finished(msg.script_finished)

    def _element(self, element: Any, fragment_id: str) -> None:
        kind = element.WhichOneof("type")
        proto = getattr(element, kind) if kind else None
        if kind == "heading":
            self._seen.headings.append(proto.body)
        elif kind == "exception":
            where = "".join(f" | {line.strip().splitlines()[0]}" for line in proto.stack_trace[-2:] if line.strip())
            text = f"{proto.type}: {proto.message}"[:300] + where
            self._seen.exceptions.append(text)
            self.exceptions.append(f"{self.page} {text}")
        elif getattr(proto, "id", "").startswith("$$ID-"):
            widget = Widget(proto.id, kind, proto, fragment_id)
            self.widgets[widget.key] = widget

    def _finished(self, status: int) -> None:
        self._seen.status = FINISHED.Name(status)
        done = {"app": (FINISHED.FINISHED_SUCCESSFULLY, FINISHED.FINISHED_WITH_COMPILE_ERROR),
                "fragment": (FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY, FINISHED.FINISHED_SUCCESSFULLY)}
        if self._waiter is not None and not self._waiter.done() and status in done[self._want]:
            self._waiter.set_result(self._seen)
        elif self._overdue is not None and status in done[self._want]:
            self.late.append(time.perf_counter() - self._overdue)
            self._overdue = None
        if status != FINISHED.FINISHED_EARLY_FOR_RERUN:
            self._seen = RunSeen()

    def _start_timer(self, fragment_id: str, interval: float) -> None:
        if not fragment_id:  # the frontend ignores an auto-rerun without a fragment
            return
        self._stop_timers([fragment_id])
        self._timers[fragment_id] = asyncio.get_running_loop().create_task(self._tick(fragment_id, interval))

    async def _tick(self, fragment_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self._waiter is None:  # never while an interaction is timed: its latency is that run's alone
                await self._send([], fragment_id, auto=True)
                self.timer_reruns += 1

    def _stop_timers(self, fragment_ids: list[str] | None = None) -> None:
        for fid in list(self._timers) if fragment_ids is None else fragment_ids:
            task = self._timers.pop(fid, None)
            if task is not None:
                task.cancel()


def url_value(state: WidgetState) -> str:
    """A widget state as the frontend writes it into the address."""
    kind = state.WhichOneof("value")
    value = getattr(state, kind)
    if kind in ("double_array_value", "int_array_value", "string_array_value"):
        value = value.data[0] if len(value.data) == 1 else ",".join(map(str, value.data))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def slider_state(widget: Widget, value: float) -> WidgetState:
    state = WidgetState(id=widget.id)
    state.double_array_value.data.append(value)
    return state


def number_state(widget: Widget, value: float) -> WidgetState:
    return WidgetState(id=widget.id, double_value=value)


def choice_state(widget: Widget, option: str) -> WidgetState:
    """A segmented control or pills: the option's text as drawn (its `content`)."""
    state = WidgetState(id=widget.id)
    state.string_array_value.data.append(option)
    return state


def click_state(widget: Widget) -> WidgetState:
    return WidgetState(id=widget.id, trigger_value=True)
