"""End to end: a lab runs from its button in Chromium on a fresh server, shows its live view, answers from its
own run, keeps its answer across a reload, and answers at once from the bundled model. (The sampled-z lab: one
model, the cheapest to train; tests/test_labs.py runs every lab headless, bench/bench_labs.py every lab here.)"""
from __future__ import annotations

from pathlib import Path

import pytest

from browser_harness import VIEWPORT, running_server, wait_settled
from tests.helpers import assert_no_exception, screenshot

pytestmark = pytest.mark.e2e

CAP_S = "1"  # the host's cap on a job: the lab's training, cut short for a test
SAMPLED_Z = "MSE against the decoding of a sampled z"


def choose(page, key: str, option: str) -> None:
    page.locator(f".st-key-{key}").click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_settled(page)


def conclusion(page, before: str = "", timeout_ms: float = 120_000) -> str:
    """The conclusion's text once it is drawn (and differs from `before`)."""
    page.wait_for_function("""(before) => {
        const box = document.querySelector(".st-key-lab_conclusion");
        return box && box.innerText !== before && !document.querySelector(".st-key-lab_live"); }""",
                           arg=before, timeout=timeout_ms, polling=250)
    wait_settled(page)
    return page.inner_text(".st-key-lab_conclusion")


def test_a_lab_runs_in_the_browser_and_answers_from_its_runs(browser, tmp_path: Path):
    with running_server(tmp_path / "runs", tmp_path, env={"VAE_LAB_JOB_TIME_CAP_S": CAP_S}) as server:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(f"{server.url}/labs", wait_until="domcontentloaded")
        wait_settled(page, timeout=60_000)
        assert "z-score my CIFAR-10 images" in page.inner_text("[data-testid='stMain']")
        choose(page, "lab", SAMPLED_Z)
        page.locator(".st-key-lab_run button").click()
        page.locator(".st-key-lab_live").wait_for(state="visible", timeout=60_000)  # live while it trains
        found = conclusion(page)
        assert "nearest" in found and "Gaussian log-likelihood" in found
        assert page.locator("[data-testid='stImage']").count() >= 8  # its pictures and reconstructions
        assert_no_exception(page, "a lab's result")
        screenshot(page, "lab-sampled-z-trained")
        page.reload(wait_until="domcontentloaded")  # the token in the URL finds this browser's result again
        wait_settled(page, timeout=60_000)
        assert conclusion(page) == found

        page.locator(".st-key-lab_instant").get_by_role("button", name="Measure the bundled model now").click()
        bundled = conclusion(page, before=found, timeout_ms=60_000)
        assert "What the bundled model measured" in page.inner_text("[data-testid='stMain']") and "97" in bundled
        assert_no_exception(page, "the sampled-z lab, instantly")
        screenshot(page, "lab-sampled-z-bundled")
