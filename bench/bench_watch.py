"""Is watching a run free? Measured in Chromium against a fresh server.

    python -m bench.bench_watch [--phase-s 15] [--rounds 3]

1. Steps/s of one job while nobody watches it (its tab closed) and while its owner watches the Train
   page (live curves every second), in alternating phases of one run; the ratio watched/unwatched
   (goal: at least 0.9). Steps and times come from the run's own checkpoints (metrics.json).
2. While the server trains as many jobs as its limit allows (VAE_LAB_MAX_JOBS, default cores - 1),
   each watched by its owner: a third person's traversal latency on Latent space, slider key press
   to redrawn figure (goal: p90 under 0.4 s), and how often the owners' curves redraw (goal: at
   least once a second).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from browser_harness import (VIEWPORT, chart_signature, chromium, go_to, running_server, start_training, train_status,
                             wait_changed, wait_settled)
from vae_core.host import HostSettings

CHECKPOINT_EVERY_S = 1.0
GOAL_RATIO, GOAL_TRAVERSAL_P90_S, GOAL_CURVE_INTERVAL_S = 0.9, 0.4, 1.0


def open_page(browser, url: str):
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.set_default_timeout(60_000)
    page.goto(url, wait_until="domcontentloaded")
    wait_settled(page, timeout=90_000)
    return page


def launch_job(browser, url: str, budget_s: float) -> tuple[object, str]:
    """A new browser starts a long job; returns its page and its URL (with the browser token)."""
    page = open_page(browser, url)
    go_to(page, "Train")
    start_training(page, n_train=2000, epochs=10_000, budget_s=budget_s)
    deadline = time.monotonic() + 120
    while "step" not in train_status(page):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the job never started: {train_status(page)!r}")
        page.wait_for_timeout(300)
    return page, page.url


def progress(runs_dir: Path) -> dict[str, tuple[int, float]]:
    """Each running run's (steps, heartbeat) from its last checkpoint."""
    out = {}
    for path in runs_dir.glob("*/metrics.json"):
        if path.parent.name.startswith("."):
            continue  # a checkpoint being written (pathlib's glob matches hidden folders)
        try:
            m = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # being swapped in right now
        if m.get("status") == "running" and m.get("heartbeat"):
            out[path.parent.name] = (m["steps"], m["heartbeat"])
    return out


def rate_over(runs_dir: Path, seconds: float) -> float:
    """Steps per second of the (single) running job over the next `seconds`, from its checkpoints."""
    time.sleep(CHECKPOINT_EVERY_S * 1.5)  # skip the transition
    (s0, t0), = progress(runs_dir).values()
    time.sleep(seconds)
    (s1, t1), = progress(runs_dir).values()
    return (s1 - s0) / (t1 - t0)


def watch_ratio(browser, url: str, runs_dir: Path, phase_s: float, rounds: int) -> dict:
    page, job_url = launch_job(browser, url, budget_s=rounds * 2 * (phase_s + 5) + 60)
    page.context.close()  # the owner's tab is gone: nobody watches
    unwatched, watched = [], []
    for _ in range(rounds):
        unwatched.append(rate_over(runs_dir, phase_s))
        watcher = open_page(browser, job_url)  # the owner comes back to the Train page (same token)
        watched.append(rate_over(runs_dir, phase_s))
        watcher.context.close()
    return {"unwatched_steps_per_s": [round(r, 2) for r in unwatched],
            "watched_steps_per_s": [round(r, 2) for r in watched],
            "ratio": round(statistics.median(watched) / statistics.median(unwatched), 3)}


def curve_intervals(page, seconds: float) -> list[float]:
    """Seconds between redraws of the live curves on a watching page."""
    chart = page.locator(".st-key-train_curves").first
    chart.wait_for(state="visible", timeout=60_000)
    changes, last = [], chart_signature(chart)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        page.wait_for_timeout(50)
        sig = chart_signature(chart)
        if sig != last:
            changes.append(time.monotonic())
            last = sig
    return [b - a for a, b in zip(changes, changes[1:])]


def traversal_latency(page, moves: int) -> list[float]:
    chart = page.locator(".st-key-traversal_chart").first
    chart.wait_for(state="visible", timeout=60_000)
    slider = page.locator(".st-key-traverse_range").get_by_role("slider").first
    times = []
    for i in range(moves):
        before = chart_signature(chart)
        slider.focus()
        t = time.perf_counter()
        slider.press("ArrowLeft" if i % 2 else "ArrowRight")
        wait_changed(chart, before, timeout_s=30)
        times.append(time.perf_counter() - t)
        page.wait_for_timeout(300)
    return times


def under_full_load(browser, url: str, moves: int) -> dict:
    watchers = [launch_job(browser, url, budget_s=300)[0] for _ in range(HostSettings.from_env().max_jobs)]
    third = open_page(browser, url)
    go_to(third, "Latent space")
    latency = traversal_latency(third, moves)
    intervals = curve_intervals(watchers[0], 10)
    for w in watchers:
        w.context.close()
    q = statistics.quantiles(latency, n=10)
    return {"jobs": len(watchers), "traversal_p50_s": round(q[4], 3), "traversal_p90_s": round(q[8], 3),
            "curve_interval_median_s": round(statistics.median(intervals), 3) if intervals else None,
            "curve_interval_max_s": round(max(intervals), 3) if intervals else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase-s", type=float, default=15.0, help="seconds per watched/unwatched phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--moves", type=int, default=20, help="traversal slider moves")
    args = parser.parse_args()
    env = {"VAE_LAB_CHECKPOINT_EVERY_S": str(CHECKPOINT_EVERY_S)}
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        with running_server(Path(tmp) / "runs", Path(tmp), env) as server:
            ratio = watch_ratio(browser, server.url, Path(tmp) / "runs", args.phase_s, args.rounds)
        with running_server(Path(tmp) / "runs2", Path(tmp), env) as server:
            load = under_full_load(browser, server.url, args.moves)
    print(json.dumps({**ratio, **load}, indent=2))
    missed = [m for m, bad in (
        (f"ratio {ratio['ratio']} < {GOAL_RATIO}", ratio["ratio"] < GOAL_RATIO),
        (f"traversal p90 {load['traversal_p90_s']} s >= {GOAL_TRAVERSAL_P90_S}", load["traversal_p90_s"] >= GOAL_TRAVERSAL_P90_S),
        (f"curves redrew after {load['curve_interval_max_s']} s at worst", (load["curve_interval_max_s"] or 99) > GOAL_CURVE_INTERVAL_S),
    ) if bad]
    print("goals:", "all met" if not missed else "; ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
