"""End to end at 1024×768, two browsers: A renames and deletes its own run on the Train page (deleting the loaded
run loads the default and says so) and finds its short run only with "Show short runs"; B sees A's run in the
picker as the class's but is offered no control for it."""
from __future__ import annotations

import pytest

from browser_harness import fill_number, picker_options, wait_settled
from tests.helpers import assert_no_exception, save_owned_run, screenshot, wait_for
from ui.form_fields import BY_NAME, start_value
from ui.state import SHORT_RUN_STEPS

pytestmark = pytest.mark.e2e

PROJECTOR = {"width": 1024, "height": 768}
COOKIE = "vae_lab_browser"  # ui/cookie.py COOKIE: the identity a run's metrics.json names as its owner
LONG, SHORT = (f"20250101-120000-sprites-unit-sigmoid-bernoulli-{tag}" for tag in ("a1b2", "c3d4"))


def identity(page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == COOKIE)


def open_page(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    wait_settled(page, timeout=90_000)


def open_your_runs(page) -> None:
    page.locator(".st-key-your_runs_open summary").click()
    wait_settled(page)


def test_a_renames_and_deletes_its_run_and_b_is_offered_nothing_for_it(browser, app_url, runs_dir):
    a, b = (browser.new_context(viewport=PROJECTOR).new_page() for _ in range(2))
    try:
        open_page(a, app_url)
        open_page(b, app_url)
        long_run = save_owned_run(runs_dir, LONG, identity(a), steps=SHORT_RUN_STEPS * 4)
        save_owned_run(runs_dir, SHORT, identity(a), steps=1, status="stopped")
        a.wait_for_timeout(2_100)  # the picker's listing is cached for 2 s

        open_page(a, f"{app_url}/train?run={LONG}")
        fill_number(a, "cfg_epochs", 77)
        a.locator(".st-key-cfg_reset").get_by_role("button", name="Reset to defaults").click()
        wait_settled(a)
        assert a.locator(".st-key-cfg_epochs input").input_value() == str(start_value(BY_NAME[("train", "epochs")]))
        screenshot(a, "tidy-form-reset", full_page=False)
        assert not any("#c3d4" in o for o in picker_options(a, "c3d4")), "a short run is in the picker"
        a.locator(".st-key-show_short_runs label").click()
        wait_settled(a)
        assert any("#c3d4" in o for o in picker_options(a, "c3d4"))

        open_your_runs(a)
        box = a.locator(f".st-key-run_title_yours-{LONG} input")
        box.fill("My first sigmoid")
        box.press("Enter")
        wait_settled(a)
        a.locator(f".st-key-run_rename_yours-{LONG} button").click()
        wait_settled(a)
        assert "My first sigmoid" in a.get_by_test_id("stSidebar").inner_text()
        assert a.url.endswith(f"run={LONG}") or f"run={LONG}&" in a.url  # the link still names the folder
        a.locator(f".st-key-run_row_yours-{LONG}").scroll_into_view_if_needed()
        shot = screenshot(a, "tidy-renamed", full_page=False)
        assert_no_exception(a, "after a rename", shot)

        open_page(b, f"{app_url}/train")
        open_your_runs(b)
        assert b.locator("[class*='st-key-run_row_']").count() == 0
        assert "No runs of yours yet" in b.locator(".st-key-your_runs_open").inner_text()
        assert any("My first sigmoid" in o for o in picker_options(b, "a1b2"))  # listed as the class's, no control
        shot = screenshot(b, "tidy-other-browser", full_page=False)
        assert_no_exception(b, "B's Train page", shot)

        a.locator(f".st-key-run_delete_yours-{LONG}").get_by_role("button", name="Delete", exact=True).click()
        wait_settled(a)
        a.locator(f".st-key-run_confirm_yours-{LONG}").scroll_into_view_if_needed()
        screenshot(a, "tidy-confirm-delete", full_page=False)
        a.locator(f".st-key-run_confirm_yours-{LONG} button").click()
        wait_settled(a)
        wait_for(lambda: not long_run.exists(), timeout=10)
        text = a.get_by_test_id("stMain").inner_text()
        assert "It was the loaded model: the default bundled model is loaded now" in text
        assert "run=" not in a.url and "My first sigmoid" not in a.get_by_test_id("stSidebar").inner_text()
        shot = screenshot(a, "tidy-deleted", full_page=False)
        assert_no_exception(a, "after a delete", shot)
    finally:
        a.context.close()
        b.context.close()
