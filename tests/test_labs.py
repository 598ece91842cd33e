"""Labs as a whole: every design is a family that trains in lockstep; a lab runs from the CLI to a measured
conclusion and a report; the Labs page runs one, shows its conclusion, and finds it again after a reload."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from ui.parts.labs import VERDICT_ICON
from vae_core.cli.main import main
from vae_core.labs import LABS, lab
from vae_core.labs.base import LAB_SEEDS, NOT_SETTLED, STEP_BUDGETS, ImageValues, LabSettings, Measured, step_plan
from vae_core.labs.evidence import Evidence, contradicted, evidence, joint_verdict, verdict
from vae_core.labs.report import VERDICT_MARK
from vae_core.labs.run import conclude_family, run_lab
from vae_core.model.paired import DISTINGUISHABLE_SE, PairedDifference
from vae_core.runs.folders import load_run
from vae_core.training.sweeps import SWEEP_MAX_VARIANTS, check_lockstep, lockstep_groups
from vae_core.training.trainer import steps_per_epoch

ROOT = Path(__file__).resolve().parents[1]
LABS_PAGE = "app_pages/labs.py"


IMAGE_LABS = [i for i, one in LABS.items() if one.kind == "images"]  # the vector lab: test_lab_not_unit_vectors.py


def test_there_are_four_labs_each_asking_its_question():
    assert len(IMAGE_LABS) == 4 and [i for i in LABS if i not in IMAGE_LABS] == ["not-unit-vectors"]
    for one in LABS.values():
        assert len(one.question) > 40  # the asker's own words
        assert one.textbook and one.columns and lab(one.id) is one
    with pytest.raises(ValueError, match="There is no lab 'nope'; the labs are"):
        lab("nope")


@pytest.mark.parametrize("lab_id", IMAGE_LABS)
@pytest.mark.parametrize("dataset", ["sprites", "mnist", "cifar10"])
def test_every_design_is_a_family_that_trains_in_lockstep(lab_id, dataset):
    settings = LabSettings(dataset, "/nowhere" if dataset != "sprites" else None, seed=3, steps=7)
    family, design = lab(lab_id).family(settings), lab(lab_id).variants(settings)
    assert 1 <= len(design) <= SWEEP_MAX_VARIANTS and len(family.configs) == LAB_SEEDS * len(design)
    groups = lockstep_groups(family.configs)  # the design on seeds 3, 4 and 5, each group in lockstep
    assert [[family.configs[i].train.seed for i in g] for g in groups] == [[s] * len(design) for s in (3, 4, 5)]
    for group in groups:
        check_lockstep([family.configs[i] for i in group])
        seed = family.configs[group[0]].train.seed
        assert [family.configs[i] for i in group] == [v.config for v in lab(lab_id).design(settings.at_seed(seed))]
    for config in family.configs:
        assert config.data.dataset == dataset and config.train.seed == config.data.seed
        t = config.train  # a budget in steps, not seconds: no clock ends the run
        assert t.time_budget_s is None and t.epochs * steps_per_epoch(config.data.n_train, t.batch_size) == 7
    assert family.labels[len(design)].endswith("· seed 4") and family.keys[0].endswith("-s3")
    command = settings.command(lab_id)
    assert f"--dataset {dataset}" in command and "--seed 3 --seeds 3" in command and "--steps 7" in command


@pytest.mark.parametrize("lab_id", list(LABS))
def test_a_lab_with_nothing_measured_says_so_and_does_not_crash(lab_id):
    findings = lab(lab_id).conclude({})
    assert findings and all(f.verdict == "missing" for f in findings)


def test_a_lab_runs_from_the_cli_to_a_measured_conclusion_and_a_report(tmp_path, capsys):
    # --instant: the bundled model, measured at once (training a family in the foreground is run_lab, which the
    # AppTest below exercises through a job, and bench/bench_labs.py at full length)
    assert main(["lab", "sampled-z", "--instant", "--report", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert "samples nearest x" in out and "[agrees]" in out
    report = (tmp_path / "report" / "report.md").read_text()
    steps = STEP_BUDGETS["sampled-z"].steps
    assert f"python -m vae_core lab sampled-z --dataset sprites --seed 0 --seeds 1 --steps {steps}" in report
    assert "![Reconstructions" in report and (tmp_path / "report" / "reconstructions.png").stat().st_size > 1000
    assert (tmp_path / "report" / "pictures.png").stat().st_size > 1000  # inputs beside sampled decodings
    assert "sprites-sigmoid-unit-gaussian" in report  # the run it measured, named


def test_a_lab_without_bundled_runs_says_so_for_instant(capsys):
    assert main(["lab", "grey-sigmoid", "--instant"]) == 2
    assert "has no bundled runs for sprites" in capsys.readouterr().err


@pytest.fixture
def labs_server(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("VAE_LAB_JOB_TIME_CAP_S", "1")  # the lab's minute, capped by the host: a short test
    monkeypatch.setenv("VAE_LAB_MAX_JOBS", "2")  # two browsers' labs train at once, a core each
    return tmp_path / "runs"


def browser(token: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    if token:
        at.session_state["client_token"] = token  # ui.session.TOKEN_KEY: be that browser
    at.run()
    at.switch_page(LABS_PAGE).run()
    return at


def conclusion(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith(tuple(VERDICT_ICON.values()))]


def press(at: AppTest, button: str = "lab_run") -> list[str]:
    """Press a lab's button; returns the conclusion shown before, so that wait() can tell the new one."""
    before = conclusion(at)
    at.button(key=button).click().run()
    assert not at.exception, [e.value for e in at.exception]
    return before


WAIT_POLL_S = 1.0  # each poll reruns the whole page in this process, which shares two cores with the labs' jobs


def wait(at: AppTest, before: list[str], timeout_s: float = 120) -> list[str]:
    """Rerun (AppTest fires no run_every timers) until a conclusion other than `before` is drawn."""
    deadline = time.monotonic() + timeout_s
    while not conclusion(at) or conclusion(at) == before:
        assert time.monotonic() < deadline and not at.exception, [e.value for e in at.exception]
        time.sleep(WAIT_POLL_S)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return conclusion(at)


# What each lab's conclusion must talk about, and whether it draws a chart of its own.
EXPECTED = {"zscore-tanh": ("outside (−1, 1)", True), "grey-sigmoid": ("grey levels", True),
            "not-unit": ("σ", True), "sampled-z": ("sampled", False)}


def test_the_labs_page_runs_every_lab_and_finds_its_answers_again_after_a_reload(labs_server):
    first, second = browser(), browser()  # two browsers, each running a lab at a time, side by side
    assert not first.exception and "z-score my CIFAR-10 images" in first.markdown[0].value
    assert not conclusion(first) and "No result yet" in " ".join(c.value for c in first.caption)
    found = {}
    labs = list(EXPECTED)
    for pair in (labs[:2], labs[2:]):
        started = []
        for at, lab_id in zip((first, second), pair):
            at.selectbox(key="lab").set_value(lab_id).run()
            # one seed each, but two for the one-model lab: the page measures every lab and a family on seeds
            at.number_input(key=f"lab_seeds_{lab_id}").set_value(2 if lab_id == "sampled-z" else 1).run()
            started.append(press(at))
        for at, lab_id, before in zip((first, second), pair, started):
            found[lab_id] = wait(at, before)
            topic, charted = EXPECTED[lab_id]
            assert any(topic in f for f in found[lab_id]), (lab_id, found[lab_id])
            assert bool(at.get("plotly_chart")) == charted and at.get("download_button")  # its chart, its report
            seeds = "seeds 0 and 1" if lab_id == "sampled-z" else "seed 0,"
            assert any(seeds in c.value for c in at.caption), [c.value for c in at.caption]
    bundled = wait(second, press(second, "lab_instant"))  # the sampled-z lab, measured on the bundled model
    assert bundled != found["sampled-z"] and "What the bundled model measured" in [s.value for s in second.subheader]
    again = browser(first.session_state["client_token"])
    assert conclusion(again) == found["zscore-tanh"]  # found from its manifest, by this browser's token
    again.selectbox(key="lab").set_value("not-unit").run()
    assert conclusion(again) == found["not-unit"]
    assert not conclusion(browser())  # a browser that ran nothing has no result


def test_the_form_asks_for_steps_and_says_how_long_they_take(labs_server):
    at = browser()
    field = at.number_input(key="lab_steps_zscore-tanh")
    budget = STEP_BUDGETS["zscore-tanh"]
    assert field.value == budget.steps and "Training steps" in field.label
    assert f"about {budget.seconds():.0f} s" in field.help and "same numbers" in field.help
    expected = round(budget.seconds() * LAB_SEEDS)  # the whole family, its seeds in turn, said beside Run
    said = f"6 models in lockstep on each of {LAB_SEEDS} seeds, {budget.steps} steps each: about " \
           f"{expected // 60} min {expected % 60} s of training"
    assert any(said in c.value for c in at.caption), [c.value for c in at.caption]
    at.number_input(key="lab_seeds_zscore-tanh").set_value(1).run()
    assert any("on each of 1 seed, " in c.value for c in at.caption)
    assert set(VERDICT_ICON) == set(VERDICT_MARK)  # every verdict has its icon and its words, "not settled" too


def test_a_dataset_missing_on_this_server_is_refused_with_the_reason(labs_server, monkeypatch, tmp_path):
    monkeypatch.setenv("VAE_LAB_DATA", str(tmp_path / "no-data-here"))
    at = browser()
    at.selectbox(key="lab_dataset_zscore-tanh").set_value("cifar10").run()
    assert not at.exception and at.button(key="lab_run").disabled
    assert any("cifar10" in e.value.lower() and "Pick sprites" in e.value for e in at.error), [e.value for e in at.error]


def test_a_missing_variant_is_named_by_its_label():
    outcome = conclude_family(lab("zscore-tanh"), LabSettings(), (None,) * 6)  # nothing was saved
    texts = " ".join(f.text for f in outcome.findings)
    assert "“tanh · z-score”" in texts and "“fixed σ · z-score ×10”" in texts and "`" not in texts


# ----------------------------------------------------------------------------- verdicts with their noise

def _difference(mean: float, se: float) -> PairedDifference:
    return PairedDifference(mean, se, 100)


def test_a_verdict_needs_the_pooled_difference_beyond_its_noise_and_every_seed_agreeing():
    within = Evidence((_difference(0.0125, 0.015),))  # issue 17's seed 0: inside its noise
    assert not within.settled and verdict(within, "positive") == NOT_SETTLED
    assert "within 2 standard errors" in within.why_not_settled()
    beyond = Evidence((_difference(0.05, 0.01), _difference(0.04, 0.01), _difference(0.06, 0.02)))
    assert beyond.settled and verdict(beyond, "positive") == "agrees" and verdict(beyond, "negative") == "disagrees"
    split = Evidence((_difference(0.5, 0.01), _difference(0.5, 0.01), _difference(-0.02, 0.01)))
    assert split.pooled.distinguishable and not split.settled and verdict(split, "positive") == NOT_SETTLED
    assert "the seeds disagree in sign" in split.why_not_settled() and split.signs() == "+ + −"
    edge = DISTINGUISHABLE_SE * 0.01  # exactly at the threshold is not beyond it
    assert verdict(Evidence((_difference(edge, 0.01),)), "positive") == NOT_SETTLED


def test_the_issue_17_numbers_pooled_over_three_seeds_are_not_settled():
    seeds = Evidence((_difference(0.0125, 0.015), _difference(-0.0018, 0.014), _difference(-0.014, 0.005)))
    assert verdict(seeds, "positive") == NOT_SETTLED and "per seed + − −" in seeds.text(4, "bits/dim")


def test_several_measures_settle_a_claim_only_together():
    assert joint_verdict(["agrees", "agrees"]) == "agrees"
    assert joint_verdict(["agrees", NOT_SETTLED]) == NOT_SETTLED
    assert joint_verdict(["agrees", "disagrees"]) == NOT_SETTLED and contradicted(["agrees", "disagrees"])
    assert not contradicted(["agrees", NOT_SETTLED])
    assert all(v in VERDICT_MARK for v in ("agrees", "disagrees", NOT_SETTLED, "measured", "missing"))


def _per_image(bits: torch.Tensor) -> ImageValues:
    zero = torch.zeros_like(bits)
    return ImageValues(zero, bits, zero, zero)


def test_evidence_pairs_the_same_images_seed_by_seed():
    g = torch.Generator().manual_seed(0)
    hard = torch.randn(200, generator=g, dtype=torch.float64) * 3  # the images' spread, shared by both
    a = Measured("a", None, per_image=(_per_image(hard + 0.1),))  # type: ignore[arg-type]
    b = Measured("b", None, per_image=(_per_image(hard + 0.1 * torch.randn(200, generator=g, dtype=torch.float64)),))
    found = evidence(a, b, "bits")
    assert found is not None and found.pooled.n == 200 and found.settled  # paired: the spread of 3 cancels
    assert evidence(a, b, "kl") is not None and evidence(a, Measured("c", None), "bits") is None  # type: ignore


# ----------------------------------------------------------------------------- budgets in steps

def test_a_step_budget_is_whole_epochs_over_a_seeded_subset():
    assert step_plan(130).epochs == 1 and step_plan(130).steps() == 130
    small = step_plan(100, 64, available=1000)  # 6,400 images asked of a 1,000-image split: whole epochs
    assert small.epochs == 7 and small.n_train <= 1000 and small.steps() >= 100


def test_the_cli_says_a_budget_is_steps_and_how_long_the_default_takes(capsys):
    with pytest.raises(SystemExit):
        main(["lab", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    b = STEP_BUDGETS["zscore-tanh"]
    assert "--steps" in out and "--budget" not in out
    assert f"{b.steps} (about {b.seconds():.0f} s a seed)" in out and "default: the lab's own" in out
    assert "--seeds" in out and f"(default {LAB_SEEDS})" in out


def _numbers(outcome) -> list:
    return [(k, m.metrics.to_dict(), dict(m.extras)) for k, m in outcome.measured.items()]


def test_a_lab_with_the_same_seed_and_steps_is_reproduced_bit_for_bit(tmp_path):
    settings = LabSettings(seed=1, steps=3, seeds=2)
    first, second = (run_lab(lab("sampled-z"), settings, tmp_path / name) for name in ("a", "b"))
    assert len(first.measured) == 1 and _numbers(first) == _numbers(second)
    assert [load_run(d).config.train.seed for d in first.run_dirs] == [1, 2]  # seeds 1 and 2, one run each
    values = first.measured["model"].per_image
    assert len(values) == 2 and not torch.equal(values[0].elbo, values[1].elbo)
    assert [f.text for f in first.findings] == [f.text for f in second.findings]
    assert all(load_run(d).metrics["steps"] == 3 for d in first.run_dirs if d)  # the budget, whatever the load


def test_a_difference_is_placed_against_the_least_that_matters():
    from vae_core.labs.evidence import against_margin

    def seeds(*means: float, se: float = 0.1) -> Evidence:
        return Evidence(tuple(PairedDifference(m, se, 100) for m in means))

    assert against_margin(seeds(5.0, 4.0, 6.0), 3.0) == "above" and against_margin(seeds(-5.0, -4.0), 3.0) == "below"
    assert against_margin(seeds(1.2, 1.1, 1.3), 3.0) == "within"  # settled, yet too small to see
    assert against_margin(seeds(3.0, 3.1, 2.9), 3.0) == "unsure"  # at the margin
    assert against_margin(seeds(6.0, -1.0, 8.0), 3.0) == "unsure"  # a seed of the other sign
