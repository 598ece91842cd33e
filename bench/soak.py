"""A class on one server: N browser sessions for M minutes, navigating every page and moving sliders,
some of them training. Prints the server's memory curve, slider and page-switch latency, and every
error seen (exception boxes, frontend errors, tracebacks in the server's log).

    python -m bench.soak [--sessions 10] [--minutes 5] [--trainers 2] [--json artifacts/soak.json]

Goals (exit status 1 if one is missed): no exception and no frontend error; memory flat after
warm-up (peak below 2x the warmed-up level) and back down once the sessions close; p90 slider
latency under 1 s. A fresh server, with runs in a temporary folder.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from browser_harness import (VIEWPORT, chart_signature, children, chromium, exception_texts, go_to, record_errors,
                             rss_mb, running_server, start_training, wait_changed, wait_settled)

PAGES = ["Reconstructions", "Latent space", "Diagnostics", "Compare", "Train"]
# page -> (the chart's key, the slider's key) moved on that page
SLIDERS = {"Reconstructions": ("recon_grid", "recon_n"), "Latent space": ("traversal_chart", "traverse_range"),
           "Diagnostics": ("range_hist", "range_n")}
MEMORY_EVERY_S = 1.0
GOAL_SLIDER_P90_S = 1.0
GOAL_PEAK_OVER_WARM = 2.0


@dataclass
class SoakResult:
    sessions: int
    minutes: float
    actions: int = 0
    slider_s: list[float] = field(default_factory=list)
    page_switch_s: list[float] = field(default_factory=list)
    memory_mb: list[tuple[float, float, float]] = field(default_factory=list)  # (t, server, with workers)
    errors: list[str] = field(default_factory=list)
    trainings_started: int = 0
    warm_mb: float = 0.0
    peak_mb: float = 0.0
    end_mb: float = 0.0

    def summary(self) -> dict:
        def pct(xs: list[float], q: float) -> float | None:
            return round(statistics.quantiles(xs, n=10)[int(q * 10) - 1], 3) if len(xs) >= 2 else None
        return {"sessions": self.sessions, "minutes": self.minutes, "actions": self.actions,
                "trainings_started": self.trainings_started,
                "slider_p50_s": pct(self.slider_s, 0.5), "slider_p90_s": pct(self.slider_s, 0.9),
                "page_switch_p50_s": pct(self.page_switch_s, 0.5), "page_switch_p90_s": pct(self.page_switch_s, 0.9),
                "memory_warm_mb": round(self.warm_mb), "memory_peak_mb": round(self.peak_mb),
                "memory_end_mb": round(self.end_mb), "errors": self.errors}

    def goals_missed(self) -> list[str]:
        s = self.summary()
        missed = [f"{len(self.errors)} error(s)"] if self.errors else []
        if s["slider_p90_s"] is None or s["slider_p90_s"] >= GOAL_SLIDER_P90_S:
            missed.append(f"slider p90 {s['slider_p90_s']} s (goal < {GOAL_SLIDER_P90_S} s)")
        if self.peak_mb >= GOAL_PEAK_OVER_WARM * self.warm_mb:
            missed.append(f"memory peak {self.peak_mb:.0f} MB >= {GOAL_PEAK_OVER_WARM}x warm {self.warm_mb:.0f} MB")
        if self.end_mb > self.peak_mb:
            missed.append(f"memory did not come down: end {self.end_mb:.0f} MB > peak {self.peak_mb:.0f} MB")
        return missed


class MemoryProbe(threading.Thread):
    """Samples the server's resident memory (and with its training workers) every MEMORY_EVERY_S."""

    def __init__(self, pid: int, result: SoakResult):
        super().__init__(daemon=True)
        self.pid, self.result, self.halt, self.t0 = pid, result, threading.Event(), time.monotonic()

    def run(self) -> None:
        while not self.halt.wait(MEMORY_EVERY_S):
            server = rss_mb(self.pid)
            total = server + sum(rss_mb(c) for c in children(self.pid))
            self.result.memory_mb.append((round(time.monotonic() - self.t0, 1), round(server, 1), round(total, 1)))


@dataclass
class Session:
    index: int
    page: object
    trainer: bool
    errors: list[str]
    step: int = 0
    seen_errors: int = 0


def open_sessions(browser, url: str, n: int, trainers: int) -> list[Session]:
    """n contexts opened at once (requests race on the server), then each settles."""
    sessions = []
    for i in range(n):
        page = browser.new_context(viewport=VIEWPORT).new_page()
        errors: list[str] = []
        record_errors(page, errors)
        page.set_default_timeout(60_000)
        page.goto(url, wait_until="commit")
        sessions.append(Session(i, page, i < trainers, errors))
    for s in sessions:
        wait_settled(s.page, timeout=90_000)
    return sessions


def move_slider(page, name: str, result: SoakResult) -> None:
    """Press an arrow key on the page's slider and time until its chart changes."""
    chart_key, key = SLIDERS[name]
    chart = page.locator(f".st-key-{chart_key}").first
    chart.wait_for(state="visible", timeout=60_000)
    slider = page.locator(f".st-key-{key}").get_by_role("slider").first
    before = chart_signature(chart)
    slider.focus()
    t = time.perf_counter()
    slider.press("ArrowLeft" if result.actions % 2 else "ArrowRight")
    wait_changed(chart, before, timeout_s=30)
    result.slider_s.append(time.perf_counter() - t)


def switch_page(page, name: str, result: SoakResult) -> None:
    t = time.perf_counter()
    go_to(page, name)
    result.page_switch_s.append(time.perf_counter() - t)


def train_once(page, result: SoakResult) -> None:
    """On the Train page: a short run, started if this session has none going."""
    start = page.locator(".st-key-train_start button")
    if start.count() and start.is_enabled():
        start_training(page, n_train=500, epochs=1000, budget_s=20)
        result.trainings_started += 1


def act(s: Session, result: SoakResult) -> None:
    """One step of a session's tour: switch page, then move that page's slider (or train)."""
    name = PAGES[s.step % len(PAGES)]
    switch_page(s.page, name, result)
    if name in SLIDERS:
        move_slider(s.page, name, result)
    elif name == "Train" and s.trainer:
        train_once(s.page, result)
    s.step += 1
    result.actions += 1


def collect_errors(s: Session, result: SoakResult, where: str) -> None:
    for text in exception_texts(s.page):
        result.errors.append(f"session {s.index} on {where}: exception box: {text[:300]}")
    for e in s.errors[s.seen_errors:]:
        result.errors.append(f"session {s.index} on {where}: {e[:300]}")
    s.seen_errors = len(s.errors)


def server_tracebacks(log: Path) -> list[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    return [f"server log: {chunk.splitlines()[-1][:300]}" for chunk in text.split("Traceback")[1:]]


def soak(sessions: int, minutes: float, trainers: int, runs_dir: Path, log_dir: Path, browser=None) -> SoakResult:
    """The class against a fresh server; in `browser` if given (Playwright allows one per thread), else its own."""
    with contextlib.ExitStack() as stack:
        browser = browser or stack.enter_context(chromium())
        return _soak(browser, sessions, minutes, trainers, runs_dir, log_dir)


def _soak(browser, sessions: int, minutes: float, trainers: int, runs_dir: Path, log_dir: Path) -> SoakResult:
    result = SoakResult(sessions, minutes)
    env = {"VAE_LAB_CHECKPOINT_EVERY_S": "2"}
    with running_server(runs_dir, log_dir, env) as server:
        probe = MemoryProbe(server.proc.pid, result)
        probe.start()
        tour = open_sessions(browser, server.url, sessions, trainers)
        warm_at = time.monotonic() + min(60.0, minutes * 60 * 0.25)
        deadline = time.monotonic() + minutes * 60
        while time.monotonic() < deadline:
            for s in tour:
                where = PAGES[s.step % len(PAGES)]
                try:
                    act(s, result)
                except Exception as e:  # a timeout is a finding, not a crash of the soak
                    result.errors.append(f"session {s.index} on {where}: {type(e).__name__}: {str(e)[:300]}")
                collect_errors(s, result, where)
                if not result.warm_mb and time.monotonic() > warm_at:
                    result.warm_mb = max(m[1] for m in result.memory_mb)
                if time.monotonic() > deadline:
                    break
        result.warm_mb = result.warm_mb or max(m[1] for m in result.memory_mb)
        result.peak_mb = max(m[1] for m in result.memory_mb)
        for s in tour:
            s.page.context.close()
        time.sleep(15)  # sessions close when their websockets do; give the server time to drop them
        result.end_mb = rss_mb(server.proc.pid)
        probe.halt.set()
        result.errors += server_tracebacks(server.log)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--trainers", type=int, default=2, help="sessions that also train")
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(args.sessions, args.minutes, args.trainers, Path(tmp) / "runs", Path(tmp))
    summary = result.summary()
    print(json.dumps({k: v for k, v in summary.items() if k != "errors"}, indent=2))
    print("memory (s, server MB, with workers MB):", result.memory_mb[:: max(1, len(result.memory_mb) // 20)])
    for e in result.errors:
        print("ERROR", e)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**summary, "memory_mb": result.memory_mb}, indent=2))
    missed = result.goals_missed()
    print("goals:", "all met" if not missed else "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
