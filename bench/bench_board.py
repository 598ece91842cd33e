"""How long does the class board take to draw? Measured in Chromium (1024×768) against a fresh server.

    python -m bench.bench_board [--runs 10] [--rounds 5]

Copies `--runs` bundled runs into a fresh runs folder as if four browsers had trained them, warms the server
on Reconstructions (its imports, a first page), then times opening the board in a new browser session until its
script has finished, nothing is loading and the gallery is drawn: first cold (every run measured on the test images,
its gallery row reconstructed), then warm (`--rounds` new sessions: the server's caches serve them). Reconstructions,
opened the same way, is the baseline.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from browser_harness import chromium, running_server
from vae_core.runs.folders import bundled_models_dir

PROJECTOR = {"width": 1024, "height": 768}
OWNERS = 4
DRAWN_JS = """
(gallery) => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
  if (document.querySelector("[data-testid='stSkeleton']")) return false;
  return !gallery || !!document.querySelector(".st-key-board_gallery_0 image, .st-key-board_gallery_0 img");
}
"""


def class_runs(root: Path, n: int) -> None:
    """n bundled runs under root, as runs of OWNERS browsers."""
    bundled = sorted(p for p in bundled_models_dir().iterdir() if (p / "config.json").is_file())
    for i, source in enumerate(bundled[:n]):
        target = root / f"class-{i}-{source.name}"
        shutil.copytree(source, target)
        metrics = json.loads((target / "metrics.json").read_text())
        metrics.update(owner=f"browser-{i % OWNERS}", steps=500)
        (target / "metrics.json").write_text(json.dumps(metrics))


def visit(browser, url: str, gallery: bool) -> float:
    """Seconds from opening url in a new session until it is drawn."""
    page = browser.new_context(viewport=PROJECTOR).new_page()
    start = time.perf_counter()
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_function(DRAWN_JS, arg=gallery, timeout=120_000, polling=50)
    seconds = time.perf_counter() - start
    page.context.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        class_runs(Path(tmp) / "runs", args.runs)
        with running_server(Path(tmp) / "runs", Path(tmp)) as server:
            visit(browser, server.url, gallery=False)  # the server's first page: imports, caches of its own
            base = [visit(browser, server.url, gallery=False) for _ in range(args.rounds)]
            cold = visit(browser, f"{server.url}/board", gallery=True)
            warm = [visit(browser, f"{server.url}/board", gallery=True) for _ in range(args.rounds)]
    print(f"class board, {args.runs} runs: cold {cold:.2f} s; warm median {statistics.median(warm):.2f} s "
          f"({', '.join(f'{w:.2f}' for w in warm)})")
    print(f"Reconstructions (baseline), warm median {statistics.median(base):.2f} s")


if __name__ == "__main__":
    main()
