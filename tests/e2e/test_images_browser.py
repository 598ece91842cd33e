"""End to end, in Chromium on a fresh server: upload the CIFAR-10 zip (../shared/data, as a person would upload
their own images), see its statistics and the share z-scoring puts beyond tanh's reach, train on it briefly, see
reconstructions of CIFAR images; a second browser sees neither the upload nor the run."""
from __future__ import annotations

from pathlib import Path

import pytest

from browser_harness import REPO, VIEWPORT, go_to, running_server, wait_settled
from tests.helpers import assert_no_exception, screenshot

pytestmark = pytest.mark.e2e

CIFAR_ZIP = REPO.parent / "shared" / "data" / "cifar10-5k-png.zip"
CAP_S = "2"  # the host's cap on a job: brief training, for a test


def picker_text(page) -> str:
    """Every option of the sidebar's model picker (the list opens, is read, and closes)."""
    page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    return "\n".join(options)


@pytest.mark.skipif(not CIFAR_ZIP.is_file(), reason=f"{CIFAR_ZIP} is not here (a fresh clone has no ../shared)")
def test_a_person_uploads_cifar_sees_what_normalization_does_trains_and_keeps_it_private(browser, tmp_path: Path):
    env = {"VAE_LAB_JOB_TIME_CAP_S": CAP_S, "VAE_LAB_UPLOADS": str(tmp_path / "uploads")}
    with running_server(tmp_path / "runs", tmp_path, env=env) as server:
        alice = browser.new_context(viewport=VIEWPORT).new_page()
        alice.goto(f"{server.url}/images", wait_until="domcontentloaded")
        wait_settled(alice, timeout=60_000)
        alice.locator(".st-key-images_upload input[type='file']").set_input_files(str(CIFAR_ZIP))
        alice.get_by_text("5,000 images loaded (4,000 train, 1,000 test, 10 classes)").wait_for(timeout=60_000)
        wait_settled(alice, timeout=60_000)
        main = alice.inner_text("[data-testid='stMain']")
        assert "36.2% of these images' values lie outside (−1, 1)" in main  # z-scored CIFAR against tanh
        assert "mean 0.4916, 0.4818, 0.4447" in main and "airplane" in main and "truck" in main
        assert_no_exception(alice, "the Your images page")
        screenshot(alice, "images-cifar-upload")

        alice.locator(".st-key-images_train button").click()
        alice.wait_for_url("**/train**", timeout=30_000)
        wait_settled(alice, timeout=60_000)
        assert "Your images: 5,000 images loaded" in alice.inner_text("[data-testid='stMain']")
        alice.locator(".st-key-train_start button").click()
        alice.wait_for_function("() => document.body.innerText.includes('trained by you, on your own data')",
                                timeout=90_000, polling=500)  # the finished run, loaded in the sidebar
        go_to(alice, "Reconstructions")
        wait_settled(alice, timeout=60_000)
        text = alice.inner_text("[data-testid='stMain']")
        assert "1000 test images of your images" in text and alice.locator("[data-testid='stPlotlyChart']").count() >= 2
        assert_no_exception(alice, "reconstructions of CIFAR images")
        screenshot(alice, "images-cifar-reconstructions")  # (every page on an upload's runs: test_images_app.py)
        assert "you, private" in picker_text(alice)

        bob = browser.new_context(viewport=VIEWPORT).new_page()  # another browser on the same server
        bob.goto(f"{server.url}/images", wait_until="domcontentloaded")
        wait_settled(bob, timeout=60_000)
        assert "Upload a .zip of your images" in bob.inner_text("[data-testid='stMain']")
        assert "5,000 images" not in bob.inner_text("[data-testid='stApp']")
        assert "images" not in picker_text(bob).replace("photo_library", "")
        assert_no_exception(bob, "a second browser's Your images page")
        screenshot(bob, "images-second-browser")
