"""End to end: a three-variant sweep from the Train page draws three live curves, survives a page change
(the other pages stay usable meanwhile), Stop saves all three as one family, and the family opens in Compare."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from browser_harness import PLOTLY, chart_signature, fill_number, go_to, wait_settled
from tests.helpers import assert_no_exception, screenshot, wait_for_status

pytestmark = pytest.mark.e2e

# The live curves are an <img> of an SVG: read its markup, inline or served from Streamlit's media store.
SVG_OF_IMG = """
async (el) => {
  const src = el.querySelector("img").getAttribute("src");
  if (src.startsWith("data:")) {
    const body = src.slice(src.indexOf(",") + 1);
    return src.includes(";base64,") ? atob(body) : decodeURIComponent(body);
  }
  return await (await fetch(src)).text();
}
"""


def choose(page, key: str, option: str) -> None:
    """Pick `option` in the select box with widget key `key`."""
    page.locator(f".st-key-{key}").click()
    page.keyboard.type(option)  # filters a long list (it only renders the options in view)
    page.get_by_role("option", name=option, exact=True).click()
    wait_settled(page)


def new_family(runs_dir: Path, before: set[Path], n: int, timeout_s: float = 30) -> list[Path]:
    deadline = time.monotonic() + timeout_s
    runs: list[Path] = []
    while time.monotonic() < deadline and len(runs) < n:
        runs = sorted({p.parent for p in runs_dir.glob("*/weights.safetensors")} - before)
        time.sleep(0.5)
    return runs


def test_a_sweep_trains_three_variants_live_stops_and_opens_in_compare(page, runs_dir: Path):
    before = {p.parent for p in runs_dir.glob("*/weights.safetensors")}
    go_to(page, "Train")
    fill_number(page, "cfg_n_train", 500)
    fill_number(page, "cfg_epochs", 1000)  # long enough that it cannot finish before we stop it
    fill_number(page, "cfg_time_budget", 0)
    choose(page, "cfg_likelihood", "gaussian")
    choose(page, "cfg_sweep_field", "Decoder output activation (output_activation)")
    start = page.locator(".st-key-train_start button")
    assert "Start 3 in lockstep" in start.inner_text()
    start.click()

    live = page.locator(".st-key-train_curves").first
    live.locator("img").wait_for(state="visible", timeout=60_000)
    wait_for_status(page, "running", timeout_s=60)
    page.wait_for_timeout(1_500)  # a few steps of each variant
    svg = live.evaluate(SVG_OF_IMG)
    shot = screenshot(page, "sweep-running")
    assert_no_exception(page, "a sweep while running", shot)
    assert svg.count("<polyline") == 9, f"three panels of three variants ({shot})"
    status = page.locator(".st-key-sweep_status").inner_text()
    assert all(f"output_activation={a}" in status for a in ("sigmoid", "tanh", "linear")), status

    # the job survives a page change: away to the latent space (usable meanwhile) and back, further on
    curves = chart_signature(live)
    go_to(page, "Latent space")
    assert page.locator(f".st-key-traversal_panel {PLOTLY}").count() == 1
    assert_no_exception(page, "Latent space while a sweep trains", screenshot(page, "latent-while-training"))
    go_to(page, "Train")
    wait_for_status(page, "running", timeout_s=30)
    page.locator(".st-key-train_curves img").wait_for(state="visible", timeout=30_000)
    assert chart_signature(page.locator(".st-key-train_curves").first) != curves  # it went on training

    page.locator(".st-key-train_stop button").click()
    page.wait_for_url("**/compare**", timeout=60_000)  # the stopped family opens in Compare
    wait_settled(page, timeout=90_000)
    shot = screenshot(page, "sweep-in-compare")
    assert_no_exception(page, "the sweep in Compare", shot)
    runs = new_family(runs_dir, before, 3)
    assert len(runs) == 3, f"{runs} ({shot})"
    metrics = [json.loads((r / "metrics.json").read_text()) for r in runs]
    assert {m["status"] for m in metrics} == {"stopped"} and len({m["sweep"] for m in metrics}) == 1
    assert all(r.name in page.url for r in runs), page.url
