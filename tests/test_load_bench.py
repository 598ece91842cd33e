"""bench/load.py against a real server: protocol-level sessions (no browser) whose every action finishes.

One fresh `streamlit run app.py` server for the file; two sessions act on it for about 15 s, one of them
training, and a third session checks that what it sends really reruns the page it asks for.
"""
from __future__ import annotations

import json

import pytest

from bench import load
from bench import st_protocol as sp
from browser_harness import running_server
from ui.pages import LATENT, TRAIN

LOAD_SECONDS = 15


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("load")
    with running_server(tmp / "runs", tmp, env={"VAE_LAB_UPLOADS": str(tmp / "uploads")}) as s:
        load.warm_up(s.url)  # as `python -m bench.load` does: the first page load imports torch and the app
        yield s


def test_two_sessions_every_action_finishes_without_errors(server, tmp_path):
    plan = load.Plan(server.url, sessions=2, seconds=LOAD_SECONDS, think_s=1.0, trainers=1, seed=0)
    summary = load.run(plan, (server.proc.pid,)).summary()
    out = tmp_path / "load.json"
    out.write_text(json.dumps(summary))
    written = json.loads(out.read_text())
    assert written["errors"] == [], written["errors"]  # a run that never finished would be listed here
    assert written["sessions"] == 2 and written["actions"] >= 6, written["by_kind"]
    assert 0 < written["p50_s"] <= written["p90_s"] < load.ACTION_TIMEOUT_S
    assert written["by_kind"]["open"]["n"] == 2
    assert written["by_kind"]["train_start"]["n"] >= 1  # the trainer's second action
    assert written["memory_mb"] and written["memory_peak_mb"] > 100  # a server with torch holds more than that


def test_a_page_switch_and_a_slider_rerun_what_they_ask_for(server):
    async def visit() -> None:
        s = sp.Session(server.url)
        try:
            opened = await s.open()
            assert opened.seen.status == "FINISHED_SUCCESSFULLY" and set(s.pages) >= {LATENT.title, TRAIN.title}
            switched = await s.rerun(page=LATENT.title)
            assert switched.seen.headings[0] == LATENT.title and s.page == LATENT.title
            slider = s.widgets["traverse_range"]
            assert slider.fragment_id  # the traversal is a fragment: only it reruns
            moved = await s.change(slider, sp.slider_state(slider, 2.0))
            assert moved.seen.status == "FINISHED_FRAGMENT_RUN_SUCCESSFULLY" and moved.seen.headings == ["Traversal"]
            assert "traverse_range=2" in s.query  # bound to the address, as the browser writes it
            assert s.exceptions == []
        finally:
            await s.close()

    load.run_async(visit())
