"""End to end, in Chromium on a fresh server, as a class uses the board: browser A names itself; runs of A's land
in the server's runs folder and one in A's private space; browser B, on a projector's 1024×768, sees A's runs
under A's name but not the private one, and nowhere A's secret; B pins two runs and opens them in Compare."""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from browser_harness import running_server, wait_settled
from tests.helpers import assert_no_exception, screenshot
from ui.cookie import COOKIE
from vae_core.data.images.private import PrivateSpace
from vae_core.runs.folders import bundled_models_dir
from vae_core.runs.names import NAMES_FILE

pytestmark = pytest.mark.e2e

PROJECTOR = {"width": 1024, "height": 768}
# Bundled runs, copied as if Ada had trained them here: trained models, so the gallery shows real reconstructions.
SHARED = {"ada-sigmoid": "sprites-sigmoid-unit-gaussian", "ada-tanh": "sprites-tanh-symmetric-gaussian"}
PRIVATE = ("ada-hush", "sprites-linear-unit-gaussian")
LIVE = "sprites-tanh-unit-gaussian"


def _owned_copy(source: Path, target: Path, owner: str, **metrics) -> None:
    shutil.copytree(source, target)
    _write_metrics(target, owner=owner, steps=40, **metrics)


def _write_metrics(run: Path, **changes) -> None:
    metrics = json.loads((run / "metrics.json").read_text())
    metrics.update(changes)
    (run / "metrics.json").write_text(json.dumps(metrics))


def _open_board(browser, url: str, viewport: dict):
    page = browser.new_context(viewport=viewport).new_page()
    page.goto(f"{url}/board", wait_until="domcontentloaded")
    wait_settled(page, timeout=60_000)
    return page


def _reload_until(page, text: str, timeout_s: float = 15.0) -> str:
    """The page's main text once it holds `text`, reloading meanwhile: the server lists the runs folder at most
    every 2 s (ui.state.load_run_infos), so a run written just now may not be listed yet."""
    deadline = time.monotonic() + timeout_s
    while text not in (main := page.inner_text("[data-testid='stMain']")) and time.monotonic() < deadline:
        page.wait_for_timeout(500)
        page.reload(wait_until="domcontentloaded")
        wait_settled(page, timeout=60_000)
    return main


def _secret(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)


def test_the_class_board_shows_a_run_trained_in_another_browser_and_not_a_private_one(browser, tmp_path: Path):
    runs, uploads = tmp_path / "runs", tmp_path / "uploads"
    with running_server(runs, tmp_path, env={"VAE_LAB_UPLOADS": str(uploads)}) as server:
        ada = _open_board(browser, server.url, PROJECTOR)
        ada.locator(".st-key-board_name input").fill("Ada L.")
        ada.get_by_role("button", name="Save name").click()
        ada.get_by_text("Your runs show as “Ada L.”").wait_for(timeout=30_000)
        secret = _secret(ada)
        assert secret not in (runs / NAMES_FILE).read_text()
        for name, bundled in SHARED.items():
            _owned_copy(bundled_models_dir() / bundled, runs / name, secret)
        _owned_copy(bundled_models_dir() / PRIVATE[1], PrivateSpace.of(uploads, secret).runs_dir / PRIVATE[0], secret)

        ben = _open_board(browser, server.url, PROJECTOR)
        main = _reload_until(ben, "Ada L.")
        assert "Ada L." in main and "#moid" in main and "#tanh" in main  # the two shared runs, by their tags
        assert "hush" not in main and "hush" not in ben.content()  # A's private run is not on B's board
        assert secret not in ben.content() and secret not in ben.url
        assert ben.locator("[data-testid='stPlotlyChart']").count() == 1  # the gallery
        assert_no_exception(ben, "the class board")
        screenshot(ben, "board-class")

        # A run of Ada's that trains (its writer alive: this process): a reload shows it unranked, and the board
        # redraws by itself when it ends.
        _owned_copy(bundled_models_dir() / LIVE, runs / "ada-live", secret, status="running", heartbeat=time.time(),
                    pid=os.getpid(), host=socket.gethostname(), checkpoint_every_s=5.0)
        assert "still training" in _reload_until(ben, "still training")
        _write_metrics(runs / "ada-live", status="finished")
        ben.wait_for_function("() => !document.body.innerText.includes('still training')", timeout=20_000,
                              polling=250)
        wait_settled(ben)
        assert "#live" in ben.inner_text("[data-testid='stMain']")
        assert_no_exception(ben, "the class board, redrawn when a run ended")

        for tag in ("#moid", "#tanh"):  # pin both of Ada's runs
            ben.locator(".st-key-board_pin [role='combobox']").click()
            ben.get_by_role("option", name=tag).click()
            ben.keyboard.press("Escape")
            wait_settled(ben)
        ben.get_by_role("button", name="Open in Compare").click()
        ben.wait_for_url("**/compare?**", timeout=30_000)
        wait_settled(ben, timeout=60_000)
        assert "ada-sigmoid" in ben.url and "ada-tanh" in ben.url and secret not in ben.content()
        assert_no_exception(ben, "Compare, opened from the board")
        screenshot(ben, "board-to-compare", full_page=False)
