"""Renaming and deleting one's own runs (vae_core.runs.tidy): refused for bundled runs, others' runs, a run still
training and any path that is not a run folder directly in the owner's folders; a rename keeps the folder (links
name it) and a delete removes it for good, a cleanup after a crash included."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import save_owned_run
from vae_core.data.images.private import PrivateSpace
from vae_core.runs.folders import TITLE_MAX_CHARS, bundled_models_dir, read_metrics
from vae_core.runs.listing import cleanup_stale_temporaries, list_runs, writer_fields
from vae_core.runs.tidy import RunRefused, delete_run, rename_run

ME, THEM = "browser-a-secret-0123456789", "browser-b-secret-0123456789"


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "runs"
    monkeypatch.setenv("VAE_LAB_RUNS", str(root))
    return root


@pytest.fixture
def mine(runs) -> Path:
    return save_owned_run(runs, "20250101-120000-sprites-unit-sigmoid-bernoulli-ab12", ME)


def refused(reason: str, call, *args) -> str:
    with pytest.raises(RunRefused) as e:
        call(*args)
    assert e.value.reason == reason, str(e.value)
    return str(e.value)


def test_a_rename_stores_a_title_and_keeps_the_folder(mine, runs):
    assert rename_run(mine, "  Best sigmoid so far ", ME) == "Best sigmoid so far"
    assert mine.is_dir() and read_metrics(mine)["title"] == "Best sigmoid so far"
    assert read_metrics(mine)["steps"] == 100  # the rest of metrics.json is kept
    [info] = list_runs(runs)
    assert info.name == mine.name and info.title == "Best sigmoid so far"


@pytest.mark.parametrize("title,words", [
    ("", f"1 to {TITLE_MAX_CHARS} characters"), ("   ", f"1 to {TITLE_MAX_CHARS} characters"),
    ("x" * (TITLE_MAX_CHARS + 1), f"at most {TITLE_MAX_CHARS}"), ("two\nlines", "line breaks"),
    ("bell\x07", "control characters")])
def test_a_title_that_is_not_one_line_of_1_to_40_printable_characters_is_refused(mine, title, words):
    assert words in refused("title", rename_run, mine, title, ME)
    assert read_metrics(mine)["title"] is None


def test_a_title_of_exactly_the_most_characters_is_taken(mine):
    assert rename_run(mine, "é" * TITLE_MAX_CHARS, ME) == "é" * TITLE_MAX_CHARS


@pytest.mark.parametrize("call", [delete_run, lambda path, owner: rename_run(path, "mine now", owner)])
def test_others_runs_and_runs_of_no_browser_are_refused(runs, call):
    theirs = save_owned_run(runs, "theirs", THEM)
    cli = save_owned_run(runs, "from-the-cli", None)
    assert "someone else" in refused("not_yours", call, theirs, ME)
    refused("not_yours", call, cli, ME)
    refused("not_yours", call, theirs, "")  # no identity owns nothing
    assert theirs.is_dir() and cli.is_dir() and read_metrics(theirs)["title"] is None


@pytest.mark.parametrize("call", [delete_run, lambda path, owner: rename_run(path, "mine now", owner)])
def test_bundled_runs_are_refused(call):
    bundled = next(p for p in bundled_models_dir().iterdir() if p.is_dir())
    assert "bundled" in refused("bundled", call, bundled, ME)
    assert bundled.is_dir()


def test_a_run_still_training_cannot_be_renamed_or_deleted(runs):
    live = save_owned_run(runs, "live", ME, status="running", **writer_fields())
    assert "still training" in refused("running", delete_run, live, ME)
    refused("running", rename_run, live, "x", ME)
    assert live.is_dir()
    gone_writer = save_owned_run(runs, "interrupted", ME, status="running", pid=None, heartbeat=1.0)
    delete_run(gone_writer, ME)  # its writer is gone: "interrupted", so it may go
    assert not gone_writer.exists()


def test_a_run_being_saved_cannot_be_deleted(mine):
    saving = mine.parent / f".{mine.name}.tmp-{os.getpid()}-0123abcd"
    saving.mkdir()
    refused("running", delete_run, mine, ME)


def test_paths_that_are_not_a_run_folder_directly_in_the_owner_s_folders_are_refused(mine, runs, tmp_path):
    outside = save_owned_run(tmp_path / "elsewhere", "outside", ME)
    link = runs / "link"
    link.symlink_to(outside)
    nested = save_owned_run(mine, "nested", ME)
    for path in (outside, link, runs / "x" / ".." / mine.name, nested, runs, runs / "missing", Path("/etc")):
        assert "not one of your run folders" in refused("not_a_run", delete_run, path, ME), path
        refused("not_a_run", rename_run, path, "x", ME)
    assert outside.is_dir() and mine.is_dir() and nested.is_dir()


def test_a_delete_removes_the_folder_and_the_listing_forgets_it(mine, runs):
    other = save_owned_run(runs, "kept", ME)
    assert delete_run(mine, ME) == mine
    assert not mine.exists() and [r.name for r in list_runs(runs)] == [other.name]
    assert os.listdir(runs) == [other.name]  # no hidden debris either


def test_a_private_run_is_deleted_from_its_owner_s_space_only(runs):
    mine, theirs = (PrivateSpace.of(Path(os.environ["VAE_LAB_UPLOADS"]), who).runs_dir for who in (ME, THEM))
    private = save_owned_run(mine, "private", ME)
    refused("not_a_run", delete_run, save_owned_run(theirs, "their-private", ME), ME)  # not in ME's space
    delete_run(private, ME)
    assert not private.exists()


def test_a_cleanup_after_a_crash_mid_delete_removes_the_run_never_restores_it(mine, runs):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    debris = runs / f".{mine.name}.del-{int(dead.stdout)}-0123abcd"
    os.rename(mine, debris)  # a delete that died between its rename and its removal
    cleanup = cleanup_stale_temporaries(runs)
    assert cleanup.restored == [] and cleanup.removed == [debris]
    assert not mine.exists() and not debris.exists() and list_runs(runs) == []
