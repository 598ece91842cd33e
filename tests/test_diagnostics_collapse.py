"""Posterior collapse: judged from active units (the encoder's means moving with x), not from the KL, by the
rule, the zoo's collapsed and healthy runs, and the diagnostics page."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from vae_core.config import DataConfig
from vae_core.data.datasets import load_dataset
from vae_core.model.evaluate import (ACTIVE_UNIT_THRESHOLD, COLLAPSE_KL, COLLAPSE_MIN_STEPS, count_active_units,
                                     evaluate, kl_collapse_alarm, posterior_collapse)
from vae_core.runs.folders import bundled_models_dir, load_run
from ui.sidebar import run_summary
from vae_plots import views

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- posterior collapse


def test_posterior_collapse():
    # posterior_collapse reads Cov_x(E_q[z_u]) per dimension (EvalMetrics.posterior_var): collapsed = none active
    assert posterior_collapse([0.001] * 10)
    assert not posterior_collapse([0.001] * 9 + [3.0])  # one active unit: z is not ignored
    assert not posterior_collapse([0.001] * 8 + [3.0, 2.0])
    assert not posterior_collapse([0.5, 1.0, 2.0])
    assert posterior_collapse([ACTIVE_UNIT_THRESHOLD] * 4)  # active is strictly over the threshold (Burda et al.)
    assert count_active_units([0.001, 0.02, ACTIVE_UNIT_THRESHOLD, 3.0]) == 2
    assert not posterior_collapse([0.001] * 10, steps=COLLAPSE_MIN_STEPS - 1)  # too early to say
    assert posterior_collapse([0.001] * 10, steps=COLLAPSE_MIN_STEPS)


def test_the_live_alarm_is_named_for_the_kl_it_reads():
    """A step's metrics hold the KL per dimension only: the live alarm sees a posterior at the prior."""
    assert kl_collapse_alarm([0.001] * 10, steps=5000) and not kl_collapse_alarm([0.001] * 10, steps=3)
    assert not kl_collapse_alarm([0.001] * 9 + [COLLAPSE_KL])  # one dimension carries COLLAPSE_KL nats
    assert not kl_collapse_alarm([])


COLLAPSED_ZOO = ("sprites-sigmoid-symmetric-gaussian", "sprites-sigmoid-symmetric-gaussian_learned")


@pytest.fixture(scope="module")
def zoo_test_images():
    return load_dataset(DataConfig(n_test=500), "test").images  # the zoo's sprites test split, its first 500


def _zoo(name: str, images: torch.Tensor):
    run = load_run(bundled_models_dir() / name)
    return run, evaluate(run.model, run.normalizer, images, dataset="sprites", config=run.config,
                         steps=run.metrics["steps"])


@pytest.mark.parametrize("name", COLLAPSED_ZOO)
def test_a_posterior_that_pays_kl_but_never_moves_with_x_is_collapsed(name, zoo_test_images):
    """The sigmoid output on symmetric data (PSNR 6 dB): every dimension pays over COLLAPSE_KL nats, so a KL
    rule calls it used, yet no posterior mean moves with the image: 0 active units, a collapse."""
    run, m = _zoo(name, zoo_test_images)
    assert m.active_units == 0 and max(m.posterior_var) < ACTIVE_UNIT_THRESHOLD
    assert min(m.kl_per_dim) > COLLAPSE_KL  # what the KL rule saw: no dimension under 0.01 nats
    assert m.psnr_db < 10
    assert m.posterior_collapse
    verdict = views.collapse_verdict(run, m)
    assert verdict.alarm and verdict.note == ""
    assert "0 of 10 latent dimensions are active" in views.collapse_message(m)
    assert run.metrics["test"]["active_units"] == 0  # the bundled metrics agree on the count


@pytest.fixture
def collapsed_with_free_bits(tmp_path) -> Path:
    """The sigmoid/symmetric zoo run, its config saying free bits of 0.5 nats (its KL: 9 dimensions under them),
    its metrics.json the stale flag of a KL-based judgement (posterior_collapse false)."""
    run_dir = tmp_path / "runs" / "collapsed-free-bits"
    shutil.copytree(bundled_models_dir() / COLLAPSED_ZOO[0], run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    config["run"]["loss"]["free_bits"] = 0.5
    (run_dir / "config.json").write_text(json.dumps(config))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics["test"]["posterior_collapse"] = False
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    return run_dir


def test_the_diagnostics_page_judges_collapse_from_active_units(collapsed_with_free_bits, monkeypatch):
    """The page's alarm, its KL legend and its β, for a run whose saved metrics.json says posterior_collapse false."""
    monkeypatch.setenv("VAE_LAB_RUNS", str(collapsed_with_free_bits.parent))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["run_path"] = str(collapsed_with_free_bits)
    at.run()
    at.switch_page("app_pages/diagnostics.py").run()
    assert not at.exception
    assert any("0 of 10 latent dimensions are active" in e.value for e in at.error)
    cards = {m.label: m.value for m in at.metric}
    assert cards["Active units"] == "0 / 10"
    kl = json.loads(next(c for c in at.get("plotly_chart") if "diag_kl" in c.proto.id).proto.spec)
    names = [t["name"] for t in kl["data"]]
    assert names == ["KL ≥ 0.01 nats: 10", "KL < 0.01 nats: 0"] and not any("active" in n for n in names)
    assert any("β = 0 on 9 of 10 dimensions" in c.value and "β = 1 on the other 1" in c.value for c in at.caption)
    summary = run_summary(load_run(collapsed_with_free_bits))
    assert "equivalent β at its last step: β = 0 on 9 of 10 dimensions" in summary


def test_a_used_latent_space_is_not_collapsed(zoo_test_images):
    run, m = _zoo("sprites-sigmoid-unit-gaussian", zoo_test_images)
    assert m.active_units == 10 and not m.posterior_collapse and not views.collapse_verdict(run, m).alarm
