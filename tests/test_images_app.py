"""Your images in the app (AppTest): an upload is summarized, measured and trained on; the runs stay in the
uploading browser until it saves one for everyone; a lab runs on the upload; refusals say why."""
from __future__ import annotations

import io
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from ui.session import TOKEN_KEY

ROOT = Path(__file__).resolve().parents[1]
IMAGES_PAGE, TRAIN_PAGE, LABS_PAGE = "app_pages/images.py", "app_pages/train.py", "app_pages/labs.py"


def png(rgb: tuple[int, int, int], size: int = 40, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(rgb) + rng.integers(-30, 30, (size, size, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def upload_zip() -> bytes:
    """Two classes of 30 images, and three files the loader must skip: text, an escape, an empty file."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for k in range(30):
            z.writestr(f"mine/reds/{k:03d}.png", png((200, 30, 30), seed=k))
            z.writestr(f"mine/blues/{k:03d}.png", png((30, 30, 200), seed=100 + k))
        z.writestr("mine/notes.png", b"not an image at all")
        z.writestr("../evil.png", png((0, 255, 0)))
        z.writestr("mine/empty.png", b"")
    return buf.getvalue()


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_LAB_JOB_TIME_CAP_S", "1")
    monkeypatch.setenv("VAE_LAB_MAX_JOBS", "2")
    return tmp_path


def browser(token: str, page: str = IMAGES_PAGE) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state[TOKEN_KEY] = token  # AppTest has no cookies: the session's identity is set directly
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.warning, *at.success, *at.error, *at.info]
    return "\n".join(str(p.value) for p in parts)


def uploaded(token: str, data: bytes, name: str = "mine.zip") -> AppTest:
    at = browser(token)
    at.file_uploader(key="images_upload").upload(name, data, "application/zip").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def picker(at: AppTest) -> list[str]:
    return list(at.sidebar.selectbox[0].options)


def saved_runs(runs: Path) -> list[Path]:
    """Run folders under runs, never a save in progress (a hidden .<name>.tmp-... folder until its rename)."""
    return [c.parent for c in runs.glob("*/config.json") if not c.parent.name.startswith(".")]


def wait_for_run(at: AppTest, runs: Path, timeout_s: float = 60) -> Path:
    deadline = time.monotonic() + timeout_s
    while not saved_runs(runs):
        assert time.monotonic() < deadline and not at.exception, [e.value for e in at.exception]
        time.sleep(0.3)
        at.run()
    return saved_runs(runs)[0]


def test_an_upload_is_summarized_and_measured_before_training(server):
    at = uploaded("alice-token-1", upload_zip())
    shown = texts(at)
    assert "60 images loaded (54 train, 6 test, 2 classes); 3 skipped: " in shown
    for reason in ("not an image", "outside the archive", "empty"):
        assert reason in shown
    assert "of these images' values lie outside (−1, 1)" in shown  # z-scored vs tanh, measured on this data
    assert at.get("plotly_chart") and at.dataframe  # the preview by class, the counts, the reach table
    at.selectbox(key="images_image_size").set_value(64).run()  # a new size: read again, at 64 pixels
    assert "64 × 64 pixels" in texts(at) and not at.exception


def test_the_uploading_browser_trains_on_it_and_nobody_else_sees_it(server):
    alice = uploaded("alice-token-1", upload_zip())
    alice.button(key="images_train").click().run()
    alice.switch_page(TRAIN_PAGE).run()  # AppTest does not follow st.switch_page
    assert alice.selectbox(key="cfg_dataset").value == "images" and "**Your images:** 60 images" in texts(alice)
    alice.selectbox(key="cfg_normalization").set_value("zscore").run()
    alice.selectbox(key="cfg_output_activation").set_value("tanh").run()
    alice.selectbox(key="cfg_likelihood").set_value("gaussian").run()
    assert "**Mismatched:**" in texts(alice) and "of the normalized target values lie outside (-1, 1)" in texts(alice)
    alice.selectbox(key="cfg_normalization").set_value("unit").run()
    alice.selectbox(key="cfg_likelihood").set_value("bernoulli").run()
    alice.selectbox(key="cfg_output_activation").set_value("sigmoid").run()
    alice.button(key="train_start").click().run()
    spaces = server / "uploads"
    run = wait_for_run(alice, next(spaces.iterdir()) / "runs")
    assert not (server / "runs").exists() or not list((server / "runs").iterdir())  # nothing public
    alice.sidebar.checkbox(key="show_short_runs").check().run()  # a tiny run: short, so listed once asked for
    for _ in range(20):  # the job's end loads the run in this browser
        alice.run()
        if any(o.startswith("you, private") for o in picker(alice)):
            break
        time.sleep(0.3)
    assert any(o.startswith("you, private") for o in picker(alice))
    bob = browser("bob-token-22", "app_pages/reconstructions.py")
    assert not any("images" in o for o in picker(bob))  # not in bob's picker
    bob.query_params["run"] = run.name
    bob.run()  # a link naming alice's private run does not open it for bob
    assert "that this server does not have" in " ".join(w.value for w in bob.warning)

    alice.switch_page(IMAGES_PAGE).run()
    alice.button(key=f"images_share_{run.name}").click().run()  # saved for everyone, deliberately
    assert (server / "runs" / run.name / "samples.safetensors").exists()
    bob = browser("bob-token-22", "app_pages/reconstructions.py")
    bob.sidebar.checkbox(key="show_short_runs").check().run()  # a tiny run: listed once asked for
    assert any("images" in o and o.startswith("class") for o in picker(bob))
    bob.query_params["run"] = run.name
    bob.run()  # bob opens it: the pages draw the test images it carries
    assert not bob.exception and not bob.warning and "6 test images of your images" in texts(bob)

    shutil.copytree(server / "runs" / run.name, next(spaces.iterdir()) / "runs" / "another-private-run")
    alice.query_params["run"] = "another-private-run"
    time.sleep(2.1)  # the run list is cached for 2 s
    alice.run()  # a private run loaded: deleting the space must not leave a missing run loaded
    assert alice.session_state["run_path"].endswith("another-private-run")
    alice.button(key="images_delete").click().run()
    assert not alice.exception and not alice.error, [e.value for e in [*alice.exception, *alice.error]]
    left = [p for p in spaces.rglob("*")]
    assert not any(p.is_dir() for p in spaces.iterdir()), left  # the upload and the private runs are gone
    assert (server / "runs" / run.name).is_dir()  # the saved run stays, with the test images it carries


def test_a_sweep_on_the_upload_opens_in_compare_and_every_page_draws_it(server):
    at = uploaded("hana-token-8", upload_zip())
    at.button(key="images_train").click().run()
    at.switch_page(TRAIN_PAGE).run()
    at.selectbox(key="cfg_likelihood").set_value("gaussian")
    at.selectbox(key="cfg_sweep_field").set_value("model.output_activation").run()
    at.button(key="train_start").click().run()
    deadline = time.monotonic() + 90
    while "compare" not in at.query_params:
        assert time.monotonic() < deadline and not at.exception, [e.value for e in at.exception]
        time.sleep(0.5)
        at.run()
    names = at.query_params["compare"]
    names = (names[0] if isinstance(names, list) else names).split(",")
    private = next((server / "uploads").iterdir()) / "runs"
    assert len(names) == 3 and all((private / n / "samples.safetensors").is_file() for n in names)
    for page in ("app_pages/compare.py", "app_pages/reconstructions.py", "app_pages/latent.py",
                 "app_pages/diagnostics.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert at.get("plotly_chart") or at.get("imgs"), page
    toggle = [s for s in at.sidebar.get("button_group")]
    assert toggle  # the family toggle: siblings on the same images


def test_a_lab_runs_on_the_uploaded_images(server):
    at = uploaded("carol-token-3", upload_zip())
    at.switch_page(LABS_PAGE).run()
    at.selectbox(key="lab").set_value("sampled-z").run()
    at.selectbox(key="lab_dataset_sampled-z").set_value("images").run()
    assert "**Your images:** 60 images" in texts(at)
    at.button(key="lab_run").click().run()
    deadline = time.monotonic() + 90
    while "What your run measured" not in [s.value for s in at.subheader]:
        assert time.monotonic() < deadline and not at.exception, [e.value for e in at.exception]
        time.sleep(0.5)
        at.run()
    assert "images, seeds 0, 1 and 2" in texts(at) and "sampled" in texts(at)


@pytest.mark.parametrize("data, message", [
    (b"PK\x03\x04 this is not really a zip", "not a zip archive"),
    (b"\x00" * 10, "not a zip archive"),
    (upload_zip()[:-30], "not a zip archive"),  # cut short: its directory is gone
])
def test_an_unusable_upload_is_refused_with_the_reason(server, data, message):
    at = uploaded("dave-token-4", data)
    assert message in " ".join(e.value for e in at.error)
    assert not at.exception


def test_an_upload_with_no_usable_image_is_refused_with_the_reasons(server):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", b"hello")
        z.writestr("../b.png", png((1, 2, 3)))
    at = uploaded("erin-token-5", buf.getvalue())
    shown = " ".join(e.value for e in at.error)
    assert "No usable image among 2 files" in shown and "outside the archive" in shown


def test_the_train_form_without_an_upload_says_where_to_upload(server):
    at = browser("frank-token-6", TRAIN_PAGE)
    at.selectbox(key="cfg_dataset").set_value("images").run()
    assert "upload a .zip on the Your data page" in texts(at)
    assert at.button(key="train_start").disabled


def test_a_server_folder_is_read_only_where_the_host_opened_it(server, monkeypatch, tmp_path):
    opened = tmp_path / "class-data"
    (opened / "cats").mkdir(parents=True)
    for k in range(4):
        (opened / "cats" / f"{k}.png").write_bytes(png((90, 90, 90), seed=k))
    at = browser("gina-token-7")
    assert not at.text_input  # off by default: no way to name a server path
    monkeypatch.setenv("VAE_LAB_IMAGE_FOLDERS", str(opened))
    at = browser("gina-token-7")
    at.text_input(key="images_folder").set_value("/etc").run()
    at.button(key="images_folder_use").click().run()
    assert "is not inside a folder the host opened" in " ".join(e.value for e in at.error)
    at.text_input(key="images_folder").set_value(str(opened / ".." / "class-data")).run()
    at.button(key="images_folder_use").click().run()
    assert "4 images loaded" in texts(at)
