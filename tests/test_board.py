"""The class board: display names (checked, kept under a hash, never the secret), the anonymous animals, and the
page itself headless (AppTest): a class's runs under their owners' names, never a private run, filters from the
link, unranked runs with their reason, and the paired difference of two really trained runs."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.helpers import save_activation_family
from ui.cookie import new_secret
from ui.session import TOKEN_KEY
from vae_core.config import DataConfig, LossConfig, ModelConfig, TrainConfig
from vae_core.data.datasets import load_dataset
from vae_core.data.images.private import PrivateSpace
from vae_core.jobs.training_job import run_in_foreground
from vae_core.model.evaluate import evaluate
from vae_core.model.paired import paired_difference
from ui.parts import board as board_parts
from vae_core.runs.folders import load_run
from vae_core.runs.listing import list_runs
from vae_core.runs.manifest import SweepManifest, manifest_path, write_manifest
from vae_core.runs.names import (NAME_MAX, anonymous_name, check_name, display_names, names_path, owner_key,
                                 read_names, save_name)
from vae_core.training.sweeps import parse_sweep
from vae_core.training.trainer import make_run_config
from vae_plots.board import BOARD_IMAGES, board_data

ROOT = Path(__file__).resolve().parents[1]
ADA, BEN = new_secret(), new_secret()  # two browsers' secrets


# --------------------------------------------------------------------------- names


def test_a_name_is_trimmed_and_checked_and_a_refusal_says_what_is_allowed():
    assert check_name("  Ada L.  ").name == "Ada L."
    assert check_name("Zoë O'Neil-2_x").name == "Zoë O'Neil-2_x"
    for bad in ("", "   ", "x" * (NAME_MAX + 1), "<b>Ada</b>", "Ada\u202e", "[me](http://x)", "anonymous otter"):
        refused = check_name(bad)
        assert refused.name is None and refused.error, bad
    assert f"1 to {NAME_MAX} letters, digits" in check_name("<b>").error and "'<'" in check_name("<b>").error
    assert check_name("x" * NAME_MAX).name


def test_the_animal_name_is_stable_and_holds_nothing_of_the_secret():
    key = owner_key(ADA)
    assert anonymous_name(key) == anonymous_name(owner_key(ADA)) != anonymous_name(owner_key(BEN))
    assert anonymous_name(key).startswith("anonymous ") and ADA not in key and ADA[:6] not in anonymous_name(key)
    assert key != PrivateSpace.of(Path("/"), ADA).root.name  # the names file names no private folder
    shown = display_names([ADA, BEN, None], {owner_key(ADA): "Sam", owner_key(BEN): "Sam"})
    assert shown[ADA] != shown[BEN] and shown[ADA].startswith("Sam #") and shown[None] == "the command line"


def test_the_names_file_keeps_a_hash_never_the_secret(tmp_path):
    save_name(tmp_path, owner_key(ADA), "Ada")
    save_name(tmp_path, owner_key(BEN), "Ben")
    save_name(tmp_path, owner_key(BEN), None)  # Ben goes back to his animal
    text = names_path(tmp_path).read_text()
    assert ADA not in text and BEN not in text
    assert read_names(tmp_path) == {owner_key(ADA): "Ada"}
    with pytest.raises(ValueError, match="letters, digits"):
        save_name(tmp_path, owner_key(ADA), "<script>")
    raw = json.loads(text)
    raw["names"]["forged"] = "<img src=x>"  # a hand-edited file: a bad name reads as none
    names_path(tmp_path).write_text(json.dumps(raw))
    assert read_names(tmp_path) == {owner_key(ADA): "Ada"}


# --------------------------------------------------------------------------- the page


def _own(run: Path, owner: str | None, **metrics) -> Path:
    m = json.loads((run / "metrics.json").read_text())
    m.update(owner=owner, **metrics)
    (run / "metrics.json").write_text(json.dumps(m))
    return run


@pytest.fixture(scope="module")
def class_runs(tmp_path_factory) -> Path:
    """A class's runs folder: Ada's two-variant sweep, trained for a few steps; Ben's untrained runs (one failed,
    one saved before its first step, one of a lab that diverged); one unreadable; Ada's run on her own images, in her
    private space."""
    root = tmp_path_factory.mktemp("board")
    config = make_run_config(DataConfig(n_train=128, n_test=32), ModelConfig(width=8, depth=2, latent_dim=4),
                             LossConfig(likelihood="gaussian"), TrainConfig(epochs=2, batch_size=32, lr=2e-3))
    run_in_foreground(config, root / "runs", owner=ADA, sweep=parse_sweep("output_activation=sigmoid,linear"),
                      checkpoint_every_s=60.0)
    ben = save_activation_family(root / "ben", ("sigmoid", "tanh"))
    _own(shutil.copytree(ben["sigmoid"], root / "runs" / "ben-failed"), BEN, status="failed", steps=3)
    _own(shutil.copytree(ben["tanh"], root / "runs" / "ben-early"), BEN, steps=0)
    _own(shutil.copytree(ben["tanh"], root / "runs" / "ben-lab"), BEN, status="diverged", steps=5, sweep="lab-id")
    write_manifest(manifest_path(root / "runs", "lab-id"), SweepManifest("lab-id", "lab:zscore-tanh", (), "finished",
                                                                          BEN, None, ()))
    shutil.copytree(ben["tanh"], root / "runs" / "broken")
    (root / "runs" / "broken" / "config.json").write_text("{")
    private = PrivateSpace.of(root / "uploads", ADA).runs_dir
    _own(shutil.copytree(ben["tanh"], private / "ada-private-run"), ADA, steps=5)
    save_name(root / "runs", owner_key(ADA), "Ada L.")
    return root


@pytest.fixture(autouse=True)
def server(class_runs, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(class_runs / "runs"))
    monkeypatch.setenv("VAE_LAB_UPLOADS", str(class_runs / "uploads"))


def open_board(token: str = BEN, **params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state[TOKEN_KEY] = token
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page("app_pages/board.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def table_rows(at: AppTest) -> list[dict]:
    return [row for t in at.table for row in t.value.to_dict("records")]


def page_text(at: AppTest) -> str:
    parts = [str(t.value.to_dict()) for t in at.table]
    for kind in ("markdown", "caption", "info", "warning", "success", "error", "subheader", "selectbox"):
        parts += [str(getattr(e, "value", "")) + str(getattr(e, "options", "")) for e in at.get(kind)]
    return "\n".join(parts)


def test_the_board_shows_another_browsers_runs_under_its_name_and_never_a_private_run(class_runs):
    at = open_board(BEN)
    rows = table_rows(at)
    assert {r["who"] for r in rows} == {"Ada L.", anonymous_name(owner_key(BEN)) + " (you)", "unknown"}
    assert [r["rank"] for r in rows if r["who"] == "Ada L."] == ["1", "2"]  # both trained: ranked
    text = page_text(at)
    assert "private" not in " ".join(r["run"] for r in rows) and "#-run" not in text
    assert ADA not in text and BEN not in text and owner_key(ADA) not in text
    unranked = {r["run"].split(" · ")[1][:-7]: r["vs best (paired)"] for r in rows if r["rank"] == "–"}
    assert unranked == {"3 steps, failed": "failed: not ranked", "5 steps, diverged": "diverged: not ranked",
                        "0 steps": "too short to evaluate: saved before its first training step",
                        "? steps, unreadable": "unreadable: not ranked"}
    assert [t.value for t in at.subheader] == ["Sprites, 32 px", "Unreadable runs"]


def test_the_filters_come_from_the_link_and_a_bad_one_says_so(monkeypatch):
    lab = open_board(BEN, board_lab="zscore-tanh")
    assert [r["run"].split(" · ")[1][:-7] for r in table_rows(lab)] == ["5 steps, diverged"]
    only_ada = open_board(BEN, board_who="Ada L.")
    assert {r["who"] for r in table_rows(only_ada)} == {"Ada L."}
    sweep = only_ada.selectbox(key="board_sweep").options[1]
    assert {r["who"] for r in table_rows(open_board(BEN, board_sweep=sweep))} == {"Ada L."}
    nobody = open_board(BEN, board_who="Zed")
    assert "“Owner” = 'Zed' is not allowed here" in nobody.warning[0].value and len(table_rows(nobody)) == 6
    monkeypatch.setattr(board_parts, "MAX_SHOWN", 2)
    assert "Showing the newest 2 of 6 runs: narrow the filters" in page_text(open_board(BEN))


def test_a_name_typed_is_saved_for_this_browser_and_a_bad_one_refused(class_runs):
    at = open_board(BEN)
    at.text_input(key="board_name").input("<Ben>")
    at.button[0].click().run()  # the form's submit button
    assert "'<'" in at.error[0].value
    at.text_input(key="board_name").input("  Ben  ")
    at.button[0].click().run()
    assert at.success[0].value == "Your runs show as “Ben”."
    assert {r["who"] for r in table_rows(open_board(ADA))} == {"Ada L. (you)", "Ben", "unknown"}
    save_name(class_runs / "runs", owner_key(BEN), None)


def test_the_paired_difference_is_vae_cores_over_the_same_test_images(class_runs):
    rows = [r for r in table_rows(open_board(BEN)) if r["who"] == "Ada L."]
    runs = {i.name: load_run(i.path) for i in list_runs(class_runs / "runs") if i.owner == ADA}
    assert len(runs) == 2 == len(rows)
    images = load_dataset(board_data(next(iter(runs.values())).config.data), "test").images
    assert len(images) == BOARD_IMAGES
    bits = {n: evaluate(r.model, r.normalizer, images, config=r.config, steps=8).per_image.bits
            for n, r in runs.items()}
    best, other = sorted(bits, key=lambda n: bits[n].mean())
    assert rows[0]["bits/dim"].startswith(f"{bits[best].mean().item():.3f} ± ")
    diff = paired_difference(bits[other], bits[best])
    assert rows[1]["vs best (paired)"].startswith(diff.text(3))
    assert rows[1]["vs best (paired)"].endswith("not settled") != diff.distinguishable
