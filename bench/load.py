"""A class against one server, without browsers: N protocol-level sessions (bench/st_protocol.py) for M minutes.

    python -m bench.load --sessions 30 --minutes 2 --json artifacts/load-30.json [--url http://HOST:PORT --pid PID…]

Each session opens the app as a page load would, then every few seconds (uniform between --think-s and twice
that) does what a student does: changes page (every page of ui/pages.py), moves a slider or types a number
bound to the address (Reconstructions, Latent space), flips the family toggle; a share of them (--trainers)
also starts a tiny training run on the Train page (its fields, then Start). Timers the app starts (a job's
progress, the Diagnostics estimates, a live board) rerun their fragments as the browser would, between actions.

Latency is from the BackMsg to the script_finished of the run it asked for (a fragment's, for a widget inside
one); `p50_s`/`p90_s` are over every action but the first page load (`open`, reported on its own), an action
that timed out counted at the timeout. Errors: an exception element in any run, a run that did not finish
within ACTION_TIMEOUT_S (the session goes on; `timed_out_runs_finished_after_s` says when such runs did end),
a closed websocket. The server's resident memory (MB, with its training workers) is sampled every few seconds,
and its CPU (the server process alone; training runs in workers) gives `server_cpu_s_per_action`. Without
--url a fresh server is started on a temporary runs folder and serves one page load before the clock starts;
with --url, --pid names its process for the memory and CPU figures (none without it); several --pid (the
replicas behind a proxy) are summed.

Measured on this 2-core machine: see "Hosting a class: capacity" in the README.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from bench import st_protocol as sp
from browser_harness import children, rss_mb, start_server, stop_server
from ui.pages import LATENT, PAGES, RECONSTRUCTIONS, TRAIN

ACTION_TIMEOUT_S = 30.0
MEMORY_EVERY_S = 2.0
RAMP_S = 10.0  # sessions open spread over this long (at most a tenth of the run): a class does not arrive at once
BOUND_PAGES = (RECONSTRUCTIONS.title, LATENT.title)  # where the sliders and numbers bound to the address are
# A student's mix: relative weights of the actions (train: trainer sessions only, when Start is enabled).
MIX = {"page": 4, "slider": 3, "number": 2, "toggle": 2, "train": 1}
TRAIN_FORM = {"cfg_n_train": 500.0, "cfg_epochs": 1.0, "cfg_time_budget": 3.0}  # seconds, not minutes, of CPU


@dataclass
class LoadRecord:
    """Everything measured; `summary()` is the JSON."""
    sessions: int
    minutes: float
    latencies: dict[str, list[float]] = field(default_factory=dict)  # action kind -> seconds
    page_switches: dict[str, list[float]] = field(default_factory=dict)  # page switched to -> seconds
    errors: list[str] = field(default_factory=list)
    late_s: list[float] = field(default_factory=list)  # when a run that timed out did finish after all
    timer_reruns: int = 0
    memory_mb: list[dict[str, float]] = field(default_factory=list)  # t_s, server_mb, with_workers_mb
    cpu_s: float = 0.0  # the server process's CPU seconds during the run (its training workers not counted)
    client_cpu_s: float = 0.0  # this process's: the sessions' own cost, which shares the machine
    wall_s: float = 0.0
    loadavg: dict[str, list[float]] = field(default_factory=dict)

    def add(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)

    def summary(self) -> dict[str, Any]:
        acted = [s for kind, xs in self.latencies.items() if kind != "open" for s in xs]
        peak = max((m["with_workers_mb"] for m in self.memory_mb), default=None)
        return {"sessions": self.sessions, "minutes": self.minutes, "actions": len(acted),
                "timer_reruns": self.timer_reruns,
                "p50_s": percentile(acted, 50), "p90_s": percentile(acted, 90), "errors": self.errors,
                "timed_out_runs_finished_after_s": sorted(self.late_s),
                "by_kind": {k: spread(xs) for k, xs in sorted(self.latencies.items())},
                "page_switch_to": {k: spread(xs) for k, xs in sorted(self.page_switches.items())},
                "memory_peak_mb": peak, "memory_mb": self.memory_mb,
                "server_cpu_cores": round(self.cpu_s / self.wall_s, 2) if self.wall_s else None,
                "server_cpu_s_per_action": round(self.cpu_s / len(acted), 3) if acted else None,
                "client_cpu_cores": round(self.client_cpu_s / self.wall_s, 2) if self.wall_s else None,
                "cpu_count": os.cpu_count(), "loadavg": self.loadavg}


def spread(xs: list[float]) -> dict[str, Any]:
    return {"n": len(xs), "p50_s": percentile(xs, 50), "p90_s": percentile(xs, 90)}


def percentile(xs: list[float], q: int) -> float | None:
    """The q-th percentile, nearest rank (None without data): p90 of 10 latencies is the 9th fastest."""
    if not xs:
        return None
    ordered = sorted(xs)
    return round(ordered[max(0, -(-len(ordered) * q // 100) - 1)], 3)


# --------------------------------------------------------------------------- a student's actions

Action = Callable[[sp.Session, random.Random], Awaitable[list[tuple[str, sp.Finished]]]]


async def change_page(s: sp.Session, rng: random.Random) -> list[tuple[str, sp.Finished]]:
    title = rng.choice([p.title for p in PAGES if p.title != s.page])
    return [("page", await s.rerun(page=title, timeout_s=ACTION_TIMEOUT_S))]


async def _bound(s: sp.Session, rng: random.Random, kind: str) -> list[tuple[str, sp.Finished]]:
    """Move a widget of this kind bound to the address; on a page without one, go to one that has."""
    found = [w for w in s.widgets.values() if w.kind == kind and w.proto.query_param_key and not w.proto.disabled]
    if not found:
        return [("page", await s.rerun(page=rng.choice(BOUND_PAGES), timeout_s=ACTION_TIMEOUT_S))]
    widget = rng.choice(found)
    return [(kind, await s.change(widget, new_state(widget, rng), timeout_s=ACTION_TIMEOUT_S))]


def new_state(widget: sp.Widget, rng: random.Random) -> sp.WidgetState:
    """Another value for a slider, a select_slider (a slider with options: their text goes) or a number input."""
    p = widget.proto
    if widget.kind == "number_input":
        return sp.number_state(widget, number_value(widget, rng))
    if p.options:
        now = int(p.value[0] if p.value else p.default[0])
        return sp.choice_state(widget, rng.choice([o for i, o in enumerate(p.options) if i != now] or list(p.options)))
    return sp.slider_state(widget, slider_value(widget, rng))


async def move_slider(s: sp.Session, rng: random.Random) -> list[tuple[str, sp.Finished]]:
    return await _bound(s, rng, "slider")


async def type_number(s: sp.Session, rng: random.Random) -> list[tuple[str, sp.Finished]]:
    return await _bound(s, rng, "number_input")


def slider_value(widget: sp.Widget, rng: random.Random) -> float:
    """A step of the slider's range other than where it stands."""
    p = widget.proto
    now = p.value[0] if p.value else p.default[0]
    steps = int(round((p.max - p.min) / p.step))
    values = [p.min + i * p.step for i in range(steps + 1)]
    return rng.choice([v for v in values if abs(v - now) > 1e-9] or values)


def number_value(widget: sp.Widget, rng: random.Random) -> float:
    """A whole number in the input's range other than its current one (these inputs are test-image indices)."""
    p = widget.proto
    lo, hi = int(p.min) if p.has_min else 0, int(p.max) if p.has_max else 100
    now = p.value if p.HasField("value") else p.default
    return float(rng.choice([v for v in range(lo, min(hi, lo + 200) + 1) if v != now] or [lo]))


async def flip_toggle(s: sp.Session, rng: random.Random) -> list[tuple[str, sp.Finished]]:
    """Pick another value of a family toggle that has a sibling (a struck-through value has none)."""
    flips = [(w, o.content) for w in s.widgets.values() if w.key.startswith("toggle_") and not w.proto.disabled
             for o in w.proto.options if o.content not in w.proto.raw_values and not o.content.startswith(":gray[")]
    if not flips:
        return await change_page(s, rng)
    widget, option = rng.choice(flips)
    return [("toggle", await s.change(widget, sp.choice_state(widget, option), timeout_s=ACTION_TIMEOUT_S))]


async def start_training(s: sp.Session, rng: random.Random) -> list[tuple[str, sp.Finished]]:
    """On the Train page: a tiny run's fields typed one by one, then Start (skipped while a job of ours runs)."""
    done = [] if s.page == TRAIN.title else [("page", await s.rerun(page=TRAIN.title, timeout_s=ACTION_TIMEOUT_S))]
    start = s.widgets.get("train_start")
    if start is None or start.proto.disabled:
        return done
    for key, value in TRAIN_FORM.items():
        field_widget = s.widgets.get(key)
        if field_widget is None:
            raise sp.ProtocolError(f"the Train page drew no widget with key {key!r}")
        done.append(("train_field", await s.change(field_widget, sp.number_state(field_widget, value),
                                                   timeout_s=ACTION_TIMEOUT_S)))
    start = s.widgets.get("train_start", start)  # as the fields' reruns drew it
    if not start.proto.disabled:
        done.append(("train_start", await s.change(start, sp.click_state(start), timeout_s=ACTION_TIMEOUT_S)))
    return done


ACTIONS: dict[str, Action] = {"page": change_page, "slider": move_slider, "number": type_number,
                              "toggle": flip_toggle, "train": start_training}


def pick_action(rng: random.Random, trainer: bool, n_done: int) -> Action:
    """A trainer's second action is always a training start (a short test sees one); then the mix decides."""
    if trainer and n_done == 1:
        return start_training
    kinds = [k for k in MIX if trainer or k != "train"]
    return ACTIONS[rng.choices(kinds, [MIX[k] for k in kinds])[0]]


# --------------------------------------------------------------------------- sessions, memory, the run


@dataclass(frozen=True)
class Plan:
    url: str
    sessions: int
    seconds: float
    think_s: float
    trainers: int
    seed: int


async def student(i: int, plan: Plan, t_end: float, record: LoadRecord) -> None:
    """One session: open after its turn in the ramp, act every few seconds until the end, close."""
    rng = random.Random(plan.seed * 1000 + i)
    await asyncio.sleep(i * min(RAMP_S, plan.seconds / 10) / plan.sessions)
    s = sp.Session(plan.url)
    try:
        _note(record, i, [("open", await s.open(ACTION_TIMEOUT_S))])
        n_done = 0
        while time.monotonic() + plan.think_s < t_end and s.closed is None:
            await asyncio.sleep(rng.uniform(plan.think_s, 2 * plan.think_s))
            await act(s, pick_action(rng, i < plan.trainers, n_done), rng, record, i)
            n_done += 1
    except (sp.ProtocolError, OSError) as e:
        record.errors.append(f"session {i} opening: {type(e).__name__}: {e}")
    finally:
        record.errors.extend(f"session {i}: {text}" for text in s.exceptions)
        record.late_s.extend(round(t, 1) for t in s.late)
        record.timer_reruns += s.timer_reruns
        await s.close()


async def act(s: sp.Session, action: Action, rng: random.Random, record: LoadRecord, i: int) -> None:
    """One action, timed; one that never finished counts at the timeout (a floor), and the session goes on."""
    page = s.page
    try:
        done = await action(s, rng)
        _note(record, i, done)
        for kind, finished in done:
            if kind == "page":  # every action ends on the page it switched to
                record.page_switches.setdefault(s.page, []).append(finished.seconds)
    except sp.ProtocolError as e:
        record.errors.append(f"session {i}: {action.__name__} on {page}: {e}")
        if s.closed is None:
            record.add("timed_out", ACTION_TIMEOUT_S)


def _note(record: LoadRecord, i: int, done: list[tuple[str, sp.Finished]]) -> None:
    for kind, finished in done:
        record.add(kind, finished.seconds)
        if finished.seen.status not in ("FINISHED_SUCCESSFULLY", "FINISHED_FRAGMENT_RUN_SUCCESSFULLY"):
            record.errors.append(f"session {i}: {kind} ended {finished.seen.status}")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of the process alone (0 if it is gone): serving pages, not training, which
    runs in worker processes bounded by VAE_LAB_MAX_JOBS."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:13]) / os.sysconf("SC_CLK_TCK")


def servers_cpu_s(pids: tuple[int, ...]) -> float:
    return sum(cpu_s(pid) for pid in pids)


async def sample_memory(pids: tuple[int, ...], record: LoadRecord, t0: float) -> None:
    while True:
        server = sum(rss_mb(pid) for pid in pids)
        workers = sum(rss_mb(k) for pid in pids for k in children(pid))
        record.memory_mb.append({"t_s": round(time.monotonic() - t0, 1), "server_mb": round(server),
                                 "with_workers_mb": round(server + workers)})
        await asyncio.sleep(MEMORY_EVERY_S)


async def drive(plan: Plan, pids: tuple[int, ...]) -> LoadRecord:
    record = LoadRecord(plan.sessions, round(plan.seconds / 60, 2), loadavg={"start": list(os.getloadavg())})
    t0, cpu0, own0 = time.monotonic(), servers_cpu_s(pids), time.process_time()
    probe = asyncio.create_task(sample_memory(pids, record, t0)) if pids else None
    await asyncio.gather(*(student(i, plan, t0 + plan.seconds, record) for i in range(plan.sessions)))
    record.wall_s = time.monotonic() - t0
    record.cpu_s = servers_cpu_s(pids) - cpu0
    record.client_cpu_s = time.process_time() - own0
    record.loadavg["end"] = list(os.getloadavg())
    if probe is not None:
        probe.cancel()
    return record


def run(plan: Plan, pids: tuple[int, ...] = ()) -> LoadRecord:
    """Drive the server at plan.url (pids: its processes, for memory and CPU; several replicas are summed)."""
    return run_async(drive(plan, pids))


async def _warm_up(url: str) -> None:
    s = sp.Session(url)
    try:
        await s.open(ACTION_TIMEOUT_S)
    finally:
        await s.close()


def run_async(coro: Awaitable[Any]) -> Any:
    """asyncio.run in a thread of its own: the calling thread may already run a loop (Playwright's sync API does,
    in a test process that drove a browser before)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def warm_up(url: str) -> None:
    """One page load before the clock starts: a fresh server's first run imports torch and the app (seconds)."""
    run_async(_warm_up(url))


def run_fresh(plan: Plan) -> LoadRecord:
    """Drive a server started (and warmed up) for this run, on a temporary runs folder."""
    with tempfile.TemporaryDirectory(prefix="vae-load-") as tmp:
        server = start_server(Path(tmp), Path(tmp))
        try:
            warm_up(server.url)
            return run(Plan(**{**asdict(plan), "url": server.url}), (server.proc.pid,))
        finally:
            stop_server(server.proc)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--json", type=Path, help="write the summary here")
    ap.add_argument("--url", help="a running server (default: start one)")
    ap.add_argument("--pid", type=int, nargs="+", default=[],
                    help="with --url: the server's process id, for its memory and CPU (several: summed)")
    ap.add_argument("--think-s", type=float, default=3.0, help="the least pause between a session's actions")
    ap.add_argument("--trainers", type=float, default=0.2, help="the share of sessions that train (at least one)")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.sessions < 1 or a.minutes <= 0:
        raise SystemExit(f"--sessions must be at least 1 and --minutes above 0 (got {a.sessions}, {a.minutes})")
    trainers = max(1, round(a.trainers * a.sessions)) if a.trainers > 0 else 0
    plan = Plan(a.url or "", a.sessions, a.minutes * 60, a.think_s, trainers, a.seed)
    record = run(plan, tuple(a.pid)) if a.url else run_fresh(plan)
    summary = record.summary()
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(summary, indent=1))
    brief = {k: v for k, v in summary.items() if k not in ("memory_mb", "errors")}
    print(json.dumps({**brief, "errors": summary["errors"][:20], "n_errors": len(summary["errors"])}, indent=1))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
