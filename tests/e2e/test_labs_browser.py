"""End to end: a lab runs from its button in Chromium, shows live curves, answers from its own runs, keeps
its answer across a reload, and the sampled-z lab answers at once from the bundled model."""
from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import assert_no_exception, screenshot, wait_settled
from .harness import VIEWPORT, running_server

pytestmark = pytest.mark.e2e

CAP_S = "3"  # the host's cap on a job: the lab's minute, cut short for a test


def choose(page, key: str, option: str) -> None:
    page.locator(f".st-key-{key}").click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_settled(page)


def conclusion(page, timeout_ms: float = 120_000) -> str:
    box = page.locator(".st-key-lab_conclusion")
    box.wait_for(state="visible", timeout=timeout_ms)
    wait_settled(page)
    return box.inner_text()


def test_a_lab_runs_in_the_browser_and_answers_from_its_runs(browser, tmp_path: Path):
    with running_server(tmp_path / "runs", tmp_path, env={"VAE_LAB_JOB_TIME_CAP_S": CAP_S}) as server:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        page.goto(f"{server.url}/labs", wait_until="domcontentloaded")
        wait_settled(page, timeout=60_000)
        assert "z-score my CIFAR-10 images" in page.inner_text("[data-testid='stMain']")
        page.locator(".st-key-lab_run button").click()
        page.locator(".st-key-lab_live").wait_for(state="visible", timeout=60_000)  # live while it trains
        found = conclusion(page)
        assert "outside (−1, 1)" in found and "KL" in found
        assert_no_exception(page, "a lab's result")
        screenshot(page, "lab-zscore-tanh")
        page.reload(wait_until="domcontentloaded")  # the token in the URL finds this browser's result again
        wait_settled(page, timeout=60_000)
        assert conclusion(page) == found

        choose(page, "lab", "MSE against the decoding of a sampled z")
        page.locator(".st-key-lab_instant").get_by_role("button", name="Measure the bundled model now").click()
        assert "sample" in conclusion(page, 60_000)
        assert_no_exception(page, "the sampled-z lab, instantly")
        screenshot(page, "lab-sampled-z")
