"""Your data in the app (AppTest): a CSV or .npy of rows of numbers is uploaded into this browser's private space,
summarized with every skipped row and refused column counted, shown (first rows, per-feature statistics, each
feature's range against each output activation's), kept across reruns, and never seen by another browser."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui.session import TOKEN_KEY
from vae_core.data.images.private import PrivateSpace

ROOT = Path(__file__).resolve().parents[1]
DATA_PAGE = "app_pages/images.py"


def hostile_csv() -> bytes:
    """40 good rows of unbounded numbers with a label, then a row each with NaN, an infinity, text, a missing cell
    and a value past float32, and a constant column."""
    good = [f"{k * 1.5 - 20},{(k % 7) * 300 - 900},7,{'ab'[k % 2]}" for k in range(40)]
    bad = ["nan,1,7,a", "3,inf,7,b", "4,hello,7,a", "5,6,7", "1e39,2,7,a"]
    return "\n".join(["x1,x2,const,label", *good, *bad]).encode()


@pytest.fixture
def server(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_LAB_UPLOADS", str(tmp_path / "uploads"))
    return tmp_path


def browser(token: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state[TOKEN_KEY] = token  # AppTest has no cookies: the session's identity is set directly
    at.run()
    at.switch_page(DATA_PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.file_uploader(key="vectors_upload").upload(name, data, "text/csv").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [*at.markdown, *at.caption, *at.warning, *at.success, *at.error, *at.info]
    return "\n".join(str(p.value) for p in parts)


def test_a_hostile_csv_is_summarized_with_every_skip_and_refusal_counted(server):
    at = upload(browser("alice-token"), "mine.csv", hostile_csv())
    summary = at.warning[0].value
    assert summary.startswith("40 rows kept of 45")
    for words in ("1 with NaN", "1 with an infinity", "1 with text in a numeric column",
                  "1 with the wrong number of cells", "1 beyond float32's range", "1 column refused: 1 constant"):
        assert words in summary, (words, summary)
    preview, stats = at.dataframe[2].value, at.dataframe[3].value  # after the skipped rows and refused columns
    assert list(preview.columns) == ["row", "split", "label", "x1", "x2"] and len(preview) == 10
    assert list(stats["feature"]) == ["x1", "x2"] and stats["max"].iloc[1] == 900.0  # raw units
    text = texts(at)
    assert "**sigmoid**: 2 of 2 features leave (0, 1) under zscore" in text
    assert "**linear**: 0 of 2 features leave (−∞, ∞) under zscore" in text
    at.selectbox(key="vectors_range_norm").select("none").run()
    assert "**tanh**: 2 of 2 features leave (-1, 1) under none" in texts(at)
    assert at.get("plotly_chart")  # the ranges figure


def test_a_refused_file_says_why_and_nothing_breaks(server):
    at = upload(browser("alice-token"), "empty.csv", b"a,b\n")
    assert "cannot be used: The file holds a header and no rows" in at.error[0].value
    at = upload(at, "wrong.npy", b"\x93NUMPY not really")
    assert at.error and not at.exception


def test_a_npy_upload_keeps_its_suffix_and_is_read(server):
    rows = np.random.default_rng(0).normal(0, 50, (30, 3)).astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, rows)
    at = upload(browser("alice-token"), "rows.npy", buf.getvalue())
    assert at.success[0].value.startswith("30 rows kept of 30")
    space = next((server / "uploads").iterdir())
    assert [p.suffix for p in PrivateSpace(space).vector_uploads()] == [".npy"] and not PrivateSpace(space).uploads()


def test_the_choice_survives_a_rerun_and_a_new_session_of_the_same_browser(server):
    at = upload(browser("alice-token"), "mine.csv", hostile_csv())
    at.number_input(key="vectors_test_share").set_value(0.25).run()
    assert "(30 train, 10 test" in at.warning[0].value
    at.run()
    assert "(30 train, 10 test" in at.warning[0].value
    again = browser("alice-token")  # a reload: a new session, the same browser's record
    assert "(30 train, 10 test" in again.warning[0].value


def test_two_browsers_never_see_each_others_vectors(server):
    upload(browser("alice-token"), "mine.csv", hostile_csv())
    bob = browser("bob-token")
    assert not bob.warning and not bob.dataframe
    assert "Upload a CSV or .npy of rows of numbers" in texts(bob)
    assert len(list((server / "uploads").iterdir())) == 1  # alice's space alone


def test_delete_my_data_removes_the_vectors(server):
    at = upload(browser("alice-token"), "mine.csv", hostile_csv())
    at.button(key="images_delete").click().run()
    assert not at.exception and not list((server / "uploads").iterdir())
    assert "Upload a CSV or .npy of rows of numbers" in texts(at)
