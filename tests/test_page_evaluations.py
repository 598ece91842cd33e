"""A run's saved page estimates (vae_core/runs/evaluations.py): read back exactly as computed, never stale, never
a crash, saved by a single run's training and by the CLI, and carried by every bundled run."""
from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path

import pytest
import torch

from tests.helpers import tiny_config
from vae_core.cli.main import main as cli
from vae_core.jobs.training_job import run_in_foreground
from vae_core.model.evaluate import evaluate
from vae_core.runs.evaluations import (COMPARE, DIAGNOSTICS_DENSITY, DIAGNOSTICS_POSTERIOR, EVALUATIONS, PAGE_REQUESTS,
                                       EvalRequest, evaluate_loaded, read_evaluation, save_page_evaluations)
from vae_core.runs.folders import bundled_models_dir, load_run, save_run
from vae_core.runs.test_images import page_images
from vae_core.training.sweeps import parse_sweep
from vae_plots.figures import format_number

BUNDLED = "sprites-sigmoid-unit-gaussian"


@pytest.fixture()
def run_dir(tmp_path: Path) -> Path:
    """A bundled run copied without its saved estimates."""
    dst = tmp_path / "run"
    shutil.copytree(bundled_models_dir() / BUNDLED, dst)
    (dst / EVALUATIONS).unlink(missing_ok=True)
    return dst


def live(run_dir: Path, request: EvalRequest):
    run = load_run(run_dir)
    return evaluate_loaded(run, page_images(run)[:request.n_images], request.iwae_k)


def test_a_saved_estimate_reads_back_as_computed_with_its_image_by_image_values(run_dir):
    save_page_evaluations(load_run(run_dir), (COMPARE,))
    images = page_images(load_run(run_dir))[:COMPARE.n_images]
    saved, fresh = read_evaluation(run_dir, images, COMPARE.iwae_k), live(run_dir, COMPARE)
    assert saved is not None and saved.to_dict() == fresh.to_dict()
    for name in ("elbo", "iwae", "bits", "iwae_bits", "psnr"):
        a, b = getattr(saved.per_image, name), getattr(fresh.per_image, name)
        assert (a is None and b is None) or torch.equal(a, b), name


def test_an_estimate_is_used_only_for_its_weights_its_images_and_its_k(run_dir):
    save_page_evaluations(load_run(run_dir), (COMPARE,))
    run = load_run(run_dir)
    images = page_images(run)
    assert read_evaluation(run_dir, images[:COMPARE.n_images], COMPARE.iwae_k) is not None
    assert read_evaluation(run_dir, images[:COMPARE.n_images], 20) is None  # another k
    assert read_evaluation(run_dir, images[1:COMPARE.n_images + 1], COMPARE.iwae_k) is None  # other images, same n
    assert read_evaluation(run_dir, images[:100], COMPARE.iwae_k) is None  # fewer images
    with torch.no_grad():
        next(run.model.parameters()).add_(1e-3)  # a resumed run: new weights, same folder
    save_run(run_dir, run.model, run.config, run.normalizer, run.metrics)
    assert not (run_dir / EVALUATIONS).exists()  # a save replaces the folder whole


def test_an_estimate_of_other_weights_left_in_the_folder_is_not_used(run_dir, tmp_path):
    save_page_evaluations(load_run(run_dir), (COMPARE,))
    kept = (run_dir / EVALUATIONS).read_bytes()
    run = load_run(run_dir)
    with torch.no_grad():
        next(run.model.parameters()).add_(1e-3)
    save_run(run_dir, run.model, run.config, run.normalizer, run.metrics)
    (run_dir / EVALUATIONS).write_bytes(kept)  # e.g. copied back by hand
    assert read_evaluation(run_dir, page_images(load_run(run_dir))[:COMPARE.n_images], COMPARE.iwae_k) is None


@pytest.mark.parametrize("content", [b"", b"not safetensors at all", b"\xff" * 64])
def test_a_broken_file_is_ignored_with_a_warning_and_recomputed(run_dir, content, caplog):
    (run_dir / EVALUATIONS).write_bytes(content)
    images = page_images(load_run(run_dir))[:COMPARE.n_images]
    with caplog.at_level(logging.WARNING, logger="vae_core.runs.evaluations"):
        assert read_evaluation(run_dir, images, COMPARE.iwae_k) is None
    assert "recomputing" in caplog.text
    save_page_evaluations(load_run(run_dir), (COMPARE,))  # and a save replaces it
    assert read_evaluation(run_dir, images, COMPARE.iwae_k) is not None


def test_every_bundled_run_carries_the_estimates_the_pages_ask_for_first():
    """So a fresh server's first visits to Diagnostics and Compare compute nothing (bench/load.py). A dense VAE's
    estimates on the bundled vectors take milliseconds: its runs keep none (data_kinds.keeps_images)."""
    for d in sorted(p for p in bundled_models_dir().iterdir() if p.is_dir()):
        run = load_run(d)
        if run.config.data.kind == "vectors":
            assert not (d / "evaluations.safetensors").exists(), d.name
            continue
        images = page_images(run)
        for r in PAGE_REQUESTS:
            assert read_evaluation(d, images[:r.n_images], r.iwae_k) is not None, (d.name, r)


def test_the_pages_read_their_defaults_from_the_saved_requests():
    from app_pages import diagnostics  # noqa: F401  (a page runs at import: read its constants from the source)
    text = (Path(diagnostics.__file__)).read_text()
    assert "DIAGNOSTICS_DENSITY" in text and "DIAGNOSTICS_POSTERIOR" in text
    from ui.parts import compare
    assert (compare.N_EVAL, compare.IWAE_K) == (COMPARE.n_images, COMPARE.iwae_k)
    assert DIAGNOSTICS_POSTERIOR.iwae_k == 0 and DIAGNOSTICS_DENSITY.iwae_k > 0


def test_a_single_run_saves_its_page_estimates_when_it_ends_and_a_sweep_does_not(tmp_path):
    config = tiny_config(epochs=1)
    done = run_in_foreground(config, tmp_path / "runs", checkpoint_every_s=60)
    run = load_run(done.run_dir)
    images = page_images(run)
    for r in PAGE_REQUESTS:  # the tiny run has 32 test images: each request is capped at what it has
        saved = read_evaluation(run.path, images[:r.n_images], r.iwae_k)
        assert saved is not None and saved.n_test == min(r.n_images, len(images)), r
    snap = run_in_foreground(config, tmp_path / "sweep", checkpoint_every_s=60,
                             sweep=parse_sweep("output_activation=sigmoid,linear"))
    assert snap.status == "finished"
    assert not any((tmp_path / "sweep").glob(f"*/{EVALUATIONS}"))


def test_the_cli_saves_a_runs_page_estimates(run_dir, capsys):
    assert cli(["evaluate", str(run_dir), "--save-pages"]) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / EVALUATIONS)
    images = page_images(load_run(run_dir))
    assert all(read_evaluation(run_dir, images[:r.n_images], r.iwae_k) for r in PAGE_REQUESTS)


def test_requests_are_keyed_by_their_size_and_k():
    assert EvalRequest(200, 10).key() != EvalRequest(200, 20).key() != EvalRequest(1000, 20).key()
    assert dataclasses.replace(COMPARE).key() == COMPARE.key()


@pytest.fixture()
def evaluations_counted(monkeypatch) -> list[int]:
    """Every evaluate the pages' own threads call, counted (and done): a fresh cache, as on a fresh server."""
    import ui.estimates
    import vae_core.runs.evaluations
    calls: list[int] = []

    def counted(*args, **kwargs):
        calls.append(kwargs.get("iwae_k", 0))
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(vae_core.runs.evaluations, "evaluate", counted)
    ui.estimates._evaluate.clear()
    return calls


def test_a_first_visit_to_diagnostics_and_compare_computes_nothing_for_a_bundled_run(evaluations_counted,
                                                                                      tmp_path, monkeypatch):
    from tests.helpers import open_app
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    at = open_app("app_pages/diagnostics.py")
    assert any(m.label == "ELBO" for m in at.metric) and any(m.label == "Active units" for m in at.metric)
    at.switch_page("app_pages/compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert evaluations_counted == []


def test_a_run_without_saved_estimates_is_evaluated_on_its_first_visit(evaluations_counted, run_dir, monkeypatch):
    from tests.helpers import open_app
    monkeypatch.setenv("VAE_LAB_RUNS", str(run_dir.parent))
    at = open_app("app_pages/diagnostics.py", run=run_dir.name)
    assert [i.value for i in at.info if i.value.startswith("Computing on")]  # drawn at once, computed behind
    for _ in range(120):  # AppTest fires no run_every timer: rerun as the poller would (each rerun costs CPU)
        if {"ELBO", "Active units"} <= {m.label for m in at.metric}:
            break
        time.sleep(0.5)
        at.run()
    assert {"ELBO", "Active units"} <= {m.label for m in at.metric} and not at.exception
    assert evaluations_counted == []  # computed by the background evaluator's process, not by the page's thread
    shown = next(m.value for m in at.metric if m.label == "ELBO")
    assert shown == format_number(live(run_dir, DIAGNOSTICS_DENSITY).elbo_nats, 1)


def test_compare_draws_at_once_and_fills_in_the_metrics_of_runs_without_saved_estimates(evaluations_counted,
                                                                                         run_dir, monkeypatch):
    from tests.helpers import open_app
    other = run_dir.parent / "other"
    shutil.copytree(bundled_models_dir() / "sprites-tanh-unit-gaussian", other)
    (other / EVALUATIONS).unlink()
    monkeypatch.setenv("VAE_LAB_RUNS", str(run_dir.parent))
    at = open_app("app_pages/compare.py", compare=f"{run_dir.name},{other.name}")
    assert [i.value for i in at.info if "first 200 test images of each run" in i.value]
    assert at.get("plotly_chart")  # the reconstructions and curves did not wait
    for _ in range(120):
        if at.table:
            break
        time.sleep(0.5)
        at.run()
    assert at.table and not at.exception and evaluations_counted == []


def test_the_board_reads_compares_saved_estimate_whose_elbo_is_the_one_it_would_compute():
    from ui.parts.board import load_board_entry
    from ui.state import config_mtime
    from vae_plots.board import board_data
    d = bundled_models_dir() / BUNDLED
    run = load_run(d)
    entry = load_board_entry(str(d), config_mtime(d), board_data(run.config.data))
    fresh = live(d, EvalRequest(COMPARE.n_images, 0))  # what the board computed before: k = 0
    assert entry.metrics.elbo_nats == fresh.elbo_nats and entry.metrics.bits_per_dim == fresh.bits_per_dim
    assert torch.equal(entry.metrics.per_image.elbo, fresh.per_image.elbo)


EVALUATOR_OWNER = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from vae_core.runs.evaluations import evaluator_process
if __name__ == "__main__":
    pool = ProcessPoolExecutor(1, multiprocessing.get_context("spawn"), evaluator_process, (1, os.getpid()))
    print(pool.submit(os.getpid).result(), flush=True)
    time.sleep(600)
"""


def test_a_server_killed_outright_takes_its_background_evaluator_with_it(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    from tests.helpers import REPO, wait_for
    script = tmp_path / "server.py"
    script.write_text(EVALUATOR_OWNER)
    server = subprocess.Popen([sys.executable, str(script)], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    evaluator = int(server.stdout.readline())
    server.send_signal(signal.SIGKILL)
    server.wait()
    assert wait_for(lambda: not Path(f"/proc/{evaluator}").exists() or "Z" in Path(f"/proc/{evaluator}/stat")
                    .read_text().split()[2], timeout=10)


def test_an_evaluator_whose_server_is_already_gone_ends_at_once():
    """As happens when a server exiting asks for one more estimate: its evaluator must not outlive it."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from vae_core.runs.evaluations import evaluator_process
    gone = 2**22 + 12345  # above pid_max's default: no process has it
    with ProcessPoolExecutor(1, multiprocessing.get_context("spawn"), evaluator_process, (1, gone)) as pool:
        with pytest.raises(BrokenProcessPool):
            pool.submit(time.sleep, 30).result(timeout=60)
