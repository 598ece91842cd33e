"""The not-unit lab on vectors: the asker's loss in the β/σ algebra on D features by hand, a real tiny run on the
bundled vectors and on a person's CSV (the CLI, as they type it), and every verdict made to fail from hand-built
numbers row by row."""
import contextlib
import dataclasses
from argparse import Namespace
import io
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.test_labs import browser as labs_browser, press, wait
from ui.parts.lab_data import MINE
from ui.parts.labs import PRIVATE_VIEWS_KEY
from ui.session import load_client_registry
from vae_core.cli.lab import check_kind
from vae_core.cli.main import main
from vae_core.config import DataConfig
from vae_core.data.images.private import PrivateSpace
from vae_core.labs import lab, not_unit_vectors as nuv
from vae_core.labs.base import ImageValues, LabSettings, Measured
from vae_core.labs.report import table
from vae_core.labs.rows import lab_vectors
from vae_core.labs.run import run_lab
from vae_core.labs.vector_findings import loss_finding
from vae_core.model.likelihoods import MSE_SIGMA
from vae_core.model.objective import effective_beta, implied_sigma, kl_per_dimension, training_loss

LAB = lab(nuv.LAB_ID)


def _settings(steps: int = 12, seeds: int = 2, vectors: str | None = None) -> LabSettings:
    found = lab_vectors(DataConfig(dataset="vectors", vectors=vectors, normalization="zscore"))
    return LabSettings("vectors", None, 0, steps, seeds=seeds, vectors=found.data, train_images=found.train_rows)


def test_design_is_the_askers_dense_vae_on_zscored_vectors_with_five_likelihoods():
    configs = [v.config for v in LAB.design(_settings())]
    assert [c.loss.likelihood for c in configs] == ["gaussian", "gaussian", "gaussian_learned", "gaussian_optimal",
                                                    "gaussian_feature"]
    assert {(c.model.arch, c.model.latent_dim, c.model.output_activation, c.data.normalization, c.model.features)
            for c in configs} == {("mlp", 5, "linear", "zscore", 12)}
    assert all(c.data == configs[0].data and c.model == configs[0].model for c in configs)


def test_the_askers_loss_is_a_proper_elbo_of_sigma_sqrt_beta_over_2_on_d_features_by_hand():
    loss, d, latent, batch = nuv.askers_loss(), 12, 5, 64
    beta = 1e-4 * d  # a mean over D features is 1/D of their sum: the KL weighs D times more, the batch cancels
    assert effective_beta(loss, d, latent, batch) == pytest.approx(beta)
    sigma = MSE_SIGMA * math.sqrt(beta)  # the mean's own σ, 1/√2, narrowed by √β
    assert implied_sigma(loss, d, latent, batch) == pytest.approx(sigma) == pytest.approx(0.0244949, rel=1e-5)
    g = torch.Generator().manual_seed(0)  # and the loss as the asker wrote it, up to a constant
    x, x_hat = torch.randn(batch, d, generator=g), torch.randn(batch, d, generator=g)
    mu, logvar = torch.randn(batch, latent, generator=g), torch.randn(batch, latent, generator=g)
    recon = ((x - x_hat).pow(2) / (2 * MSE_SIGMA**2) + math.log(MSE_SIGMA) + 0.5 * math.log(2 * math.pi)).sum(1)
    kl = kl_per_dimension(mu, logvar)
    written = (F.mse_loss(x_hat, x, reduction="none").mean(1) + 1e-4 * kl.sum(1)).mean()
    constant = math.log(MSE_SIGMA) + 0.5 * math.log(2 * math.pi)
    assert training_loss(recon, kl, loss, 1e-4, d).item() - written.item() == pytest.approx(constant, abs=1e-5)
    asker = Measured("yours", None, {"features": d, "beta": beta, "sigma": sigma}, LAB.design(_settings())[0].config)
    text = loss_finding(asker).text
    assert "proper ELBO with σ = 0.0245 on z-scored features" in text and "known to within 0.0245" in text
    assert "D = 12 features, L = 5" in text and f"{1 / (2 * sigma**2):,.0f} nats" in text


def test_a_tiny_lab_on_the_bundled_vectors_finishes_with_verdicts(tmp_path: Path):
    outcome = run_lab(LAB, _settings(), tmp_path)
    assert set(outcome.measured) == set(nuv.KEYS)
    verdicts = {f.verdict for f in outcome.findings}
    assert verdicts & {"agrees", "disagrees", "not settled"} and "missing" not in verdicts
    asker = outcome.measured["asker"].extras
    assert asker["sigma"] == pytest.approx(0.0244949, rel=1e-5) and asker["mu_min"] < 0 < asker["mu_max"]
    assert len(outcome.measured["asker"].per_image) == 2 and outcome.measured["asker"].per_image[0].bits is None
    assert any("No bits/dim" in f.text for f in outcome.findings)
    assert len(table(outcome).rows) == 5 and "largest |μ|" in table(outcome).header


def _write_csv(path: Path, rows: int = 300) -> Path:
    """Four unbounded features far from unit scale, two latent factors, and a label column."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(rows, 2))
    x = np.column_stack([1000 + 50 * z[:, 0], -3 + 0.01 * z[:, 1], 40 * z.sum(1), 7 * z[:, 0] - z[:, 1]])
    x += rng.normal(scale=0.05, size=x.shape) * x.std(0)
    lines = ["a,b,c,d,label"] + [",".join(f"{v:.6g}" for v in row) + f",{'lo' if row[2] < 0 else 'hi'}" for row in x]
    path.write_text("\n".join(lines) + "\n")
    return path


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(args))
    return code, out.getvalue()


def test_a_persons_csv_runs_from_the_cli_and_prints_the_verdicts(tmp_path: Path):
    csv = _write_csv(tmp_path / "mine.csv")
    code, out = _cli("lab", nuv.LAB_ID, "--dataset", "vectors", "--vectors", str(csv), "--steps", "10",
                     "--seeds", "2", "--runs-dir", str(tmp_path / "runs"), "--report", str(tmp_path / "report"))
    assert code == 0, out
    assert "D = 4 features" in out and "σ = 0.0141 on z-scored features" in out  # √(1e-4·4/2)
    assert "[agrees]" in out or "[disagrees]" in out or "[not settled]" in out
    report = (tmp_path / "report" / "report.md").read_text()
    assert f"--vectors {csv}" in report and "nats per raw row" in report


def test_a_lab_on_images_refuses_vectors_naming_the_lab_for_them(tmp_path: Path):
    code, _ = _cli("lab", "not-unit", "--dataset", "vectors", "--steps", "1", "--runs-dir", str(tmp_path))
    assert code == 2 and not (tmp_path / "runs").exists()
    with pytest.raises(ValueError, match="runs on images, not vectors.*not-unit-vectors"):
        check_kind(lab("not-unit"), Namespace(dataset="vectors", vectors=None))


# ----------------------------------------------------------------------------- verdicts from hand-built numbers

def _values(key: str, seed: int, elbo: float, reach: float, spread: float = 0.3) -> ImageValues:
    """200 test rows around the given means, with noise of their own for each variant and seed."""
    g = torch.Generator().manual_seed(zlib.crc32(f"{key}/{seed}".encode()))
    around = lambda mean, s: mean + s * torch.randn(200, generator=g, dtype=torch.float64)  # noqa: E731
    zero = torch.zeros(200, dtype=torch.float64)
    return ImageValues(zero, None, zero, zero, {nuv.ELBO_AT_SIGMA: around(elbo, 3.0), nuv.MU_REACH: around(reach,
                                                                                                            spread)})


def _measured(steps: float = 6000.0, **changes) -> dict[str, Measured]:
    """Each variant's (elbo, mean largest |μ|, σ) on three seeds, as the textbook has them unless changed."""
    config = LAB.design(_settings())[4].config
    base = {"asker": (-27.0, 2.2, 0.0245), "fixed": (-35.0, 1.3, 1.0), "learned": (-16.0, 1.6, 0.065),
            "optimal": (-15.9, 1.65, 0.062), "feature": (-12.0, 1.6, 0.07)}
    base.update(changes)
    out = {}
    for k, (elbo, reach, s) in base.items():
        extras = {"sigma": s, "sigma_min": s / 2, "sigma_max": s * 2, "rmse": s, "beta": 1.0, "steps": steps,
                  "elbo_nats": elbo, "mu_min": -reach * 2, "mu_max": reach * 2, "mu_reach": reach, "features": 12.0}
        out[k] = Measured(k, None, extras, config, tuple(_values(k, i, elbo, reach) for i in range(3)),
                          (extras,) * 3)
    return out


def _verdict(m: dict[str, Measured], start: str) -> str:
    return next(f.verdict for f in nuv.conclude(m) if f.text.startswith(start))


def test_the_textbook_case_agrees_on_every_verdict():
    findings = nuv.conclude(_measured())
    assert [f.verdict for f in findings] == ["measured", "agrees", "agrees", "agrees", "agrees", "agrees",
                                             "measured"]
    assert "the narrower σ spread the codes wider" in findings[2].text and "paired SE over 600 rows, 3 seeds" in findings[2].text


def test_codes_narrower_under_the_askers_sigma_disagree_and_codes_within_noise_are_not_settled():
    assert _verdict(_measured(asker=(-27.0, 1.0, 0.0245)), "With asker") == "disagrees"
    assert _verdict(_measured(asker=(-27.0, 1.651, 0.0245)), "With asker") == "not settled"


def test_a_sigma_per_feature_scoring_lower_disagrees_and_one_still_moving_is_not_settled():
    assert _verdict(_measured(feature=(-20.0, 1.6, 0.07)), "A σ per feature") == "disagrees"
    assert _verdict(_measured(feature=(-15.85, 1.6, 0.07)), "A σ per feature") == "not settled"
    moving = _verdict(_measured(steps=300.0), "A σ per feature")
    assert moving == "not settled"  # 300 steps at lr 1e-3 move log σ at most 0.3: from 1 to 0.035 it was on its way


def test_a_hand_chosen_sigma_scoring_best_disagrees_and_seeds_apart_are_not_settled():
    assert _verdict(_measured(fixed=(-5.0, 1.3, 1.0)), "Best ELBO") == "disagrees"
    m = _measured(fixed=(-13.0, 1.3, 1.0))  # the best by hand, against the data's best, σ per feature (-12)
    flipped = tuple(dataclasses.replace(v, extras={**v.extras, nuv.ELBO_AT_SIGMA: v.extras[nuv.ELBO_AT_SIGMA] - 2.0 * i})
                    for i, v in enumerate(m["feature"].per_image))  # +1, -1, -3 against it seed by seed
    m["feature"] = dataclasses.replace(m["feature"], per_image=flipped)
    assert _verdict(m, "Best ELBO") == "not settled"


# ----------------------------------------------------------------------------- the Labs page on a person's vectors

def test_the_labs_page_runs_the_lab_on_this_browsers_own_vectors(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_LAB_JOB_TIME_CAP_S", "2")  # the host's cap on a job: the lab cut short for a test
    monkeypatch.setenv("VAE_LAB_UPLOADS", str(tmp_path / "uploads"))
    at = labs_browser()
    at.selectbox(key="lab").set_value(nuv.LAB_ID).run()
    at.selectbox(key=f"lab_dataset_{nuv.LAB_ID}").set_value(MINE).run()
    assert any("No vectors of yours" in w.value for w in at.warning)  # nothing chosen yet: said, and where to go
    space = PrivateSpace.of(tmp_path / "uploads", at.session_state["client_token"])
    with _write_csv(tmp_path / "mine.csv").open("rb") as f:
        csv = space.save_vectors(f, ".csv")  # what the Your data page's upload leaves in this browser's space
    mine = DataConfig(dataset="vectors", vectors=str(csv), normalization="none")  # the lab z-scores them itself
    load_client_registry().get(at.session_state["client_token"]).vectors = mine
    at.number_input(key=f"lab_steps_{nuv.LAB_ID}").set_value(20).run()
    at.number_input(key=f"lab_seeds_{nuv.LAB_ID}").set_value(2).run()
    assert any(csv.name in c.value and "4 features" in c.value for c in at.caption), [c.value for c in at.caption]
    found = wait(at, press(at))
    assert any("D = 4 features" in f for f in found) and any("No bits/dim" in f for f in found)
    assert at.get("plotly_chart") and at.session_state[PRIVATE_VIEWS_KEY]  # measured in this session only
