"""Sweeps: specs and their refusals, lockstep determinism, refused and diverging variants, the sweep job
(thread and child process), its manifest, Stop, the scheduler and the CLI."""
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import settings, wait_for
from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.data.normalize import fit_normalizer
from vae_core.jobs.process_job import ProcessJob
from vae_core.jobs.progress import JobSnapshot, thin_snapshot
from vae_core.jobs.training_job import TrainingJob
from vae_core.runs.folders import load_run
from vae_core.runs.listing import list_runs
from vae_core.runs.manifest import list_sweeps, read_manifest
from vae_core.training.lockstep import GroupedLockstep, LockstepTrainer, NothingToTrain
from vae_core.training.sweeps import (SWEEP_MAX_VARIANTS, FamilySpec, SweepSpec, check_lockstep, lockstep_groups,
                                      parse_sweep, sweep_configs, sweepable_fields)
from vae_core.training.trainer import Trainer, TrainingDiverged, make_run_config, prepare_data

ROOT = Path(__file__).resolve().parents[1]


def tiny(likelihood: str = "gaussian_learned", normalization: str = "unit", **train) -> RunConfig:
    """128 sprites, a 2-block width-8 conv VAE: 4 steps an epoch, a few ms each."""
    return make_run_config(DataConfig(n_train=128, n_test=32, normalization=normalization),
                           ModelConfig(width=8, depth=2, latent_dim=3), LossConfig(likelihood=likelihood),
                           TrainConfig(**{"epochs": 2, "batch_size": 32, "lr": 2e-3, **train}))


@pytest.fixture(scope="module")
def data():
    return prepare_data(tiny())


def normalizers(configs, data):
    return [fit_normalizer(c.data.normalization, data.train.images, c.data.data_scale) for c in configs]


def flat(config: RunConfig) -> dict:
    return {f"{s}.{n}": v for s, section in dataclasses.asdict(config).items() for n, v in section.items()}


# ----------------------------------------------------------------------------- specs

def test_a_spec_resolves_its_field_and_types_its_values():
    spec = parse_sweep("output_activation=sigmoid,tanh,linear")
    assert (spec.field, spec.values) == ("model.output_activation", ("sigmoid", "tanh", "linear"))
    assert spec.labels == ("output_activation=sigmoid", "output_activation=tanh", "output_activation=linear")
    assert parse_sweep("loss.beta=0.5, 1,4").values == (0.5, 1.0, 4.0)
    assert parse_sweep("latent_dim=2,8").values == (2, 8)
    assert SweepSpec("lr", (1e-3, 1)).values == (1e-3, 1.0)  # typed values from a form; an int made a float
    assert "data.dataset" not in sweepable_fields() and "train.lr" in sweepable_fields()


@pytest.mark.parametrize("text,message", [
    ("nothing=1,2", "'nothing' is not a config field"),
    ("model.nope=1,2", "'model.nope' is not a config field"),
    ("dataset=sprites,mnist", "data.dataset cannot be swept in lockstep: it changes the images"),
    ("batch_size=32,64", "train.batch_size cannot be swept in lockstep: it changes the batch order"),
    ("train.seed=1,2", "train.seed cannot be swept in lockstep"),
    ("epochs=1,2", "train.epochs cannot be swept"),
    ("data_dir=a,b", "data.data_dir cannot be swept"),
    ("seed=1,2", "'seed' names several fields (data.seed, train.seed)"),
    ("beta=-1,2", "beta=-1.0 is out of range; it must be a number from 0 to 10000"),
    ("latent_dim=2,x", "latent_dim='x' is out of range; it must be an integer from 1 to 256"),
    ("output_activation=relu,tanh", "output_activation='relu' is not an option"),
    ("beta=1", "needs 2 to 6 values; it got 1"),
    ("beta=" + ",".join(str(b) for b in range(SWEEP_MAX_VARIANTS + 1)), "needs 2 to 6 values; it got 7"),
    ("beta=1,2,1.0", "1 is given more than once"),
    ("beta", "should read FIELD=VALUE,VALUE"),
    ("=1,2", "should read FIELD=VALUE,VALUE"),
])
def test_a_bad_spec_is_refused_with_a_sentence(text, message):
    with pytest.raises(ValueError) as e:
        parse_sweep(text)
    assert message in str(e.value)


@pytest.mark.parametrize("text", ["output_activation=tanh,linear", "normalization=unit,zscore", "latent_dim=2,5",
                                  "beta=0.5,2", "likelihood=bernoulli,laplace"])
def test_sweep_configs_differ_exactly_in_the_swept_field(text):
    base, spec = tiny(), parse_sweep(text)
    configs = sweep_configs(base, spec)
    assert [flat(c)[spec.field] for c in configs] == list(spec.values)
    for config in configs:
        assert {k for k, v in flat(config).items() if flat(base)[k] != v} <= {spec.field}
    check_lockstep(configs)


def test_configs_that_differ_in_a_shared_field_cannot_train_together():
    with pytest.raises(ValueError, match="they differ in train.batch_size, and it changes the batch order"):
        check_lockstep([tiny(), tiny(batch_size=16)])


# ----------------------------------------------------------------------------- lockstep training

@pytest.mark.parametrize("text", ["output_activation=sigmoid,tanh,linear", "normalization=unit,zscore",
                                  "lr=0.001,0.01"])
def test_a_variant_trained_alone_equals_it_trained_in_a_sweep(data, text):
    configs = sweep_configs(tiny(), parse_sweep(text))
    lockstep = LockstepTrainer(configs, data.train.images, normalizers(configs, data))
    swept = [[m.loss for m in step.metrics] for step in lockstep.steps()]
    assert len(swept) == 2 * 4 and lockstep.live == tuple(range(len(configs)))
    for i, config in enumerate(configs):
        alone = Trainer(config, data.train.images, normalizers([config], data)[0])
        assert [m.loss for m in alone.steps()] == [losses[i] for losses in swept]
        a, b = alone.model.state_dict(), lockstep.trainers[i].model.state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_variants_start_from_the_same_weights(data):
    configs = sweep_configs(tiny(), parse_sweep("likelihood=gaussian_learned,laplace,continuous_bernoulli"))
    trainers = LockstepTrainer(configs, data.train.images, normalizers(configs, data)).trainers
    first = trainers[0].model.state_dict()
    for trainer in trainers[1:]:
        other = trainer.model.state_dict()
        assert all(torch.equal(first[k], other[k]) for k in first.keys() & other.keys() if k != "log_sigma")


def test_a_refused_and_a_diverging_variant_do_not_stop_the_others(data):
    configs = sweep_configs(tiny(normalization="symmetric"),
                            parse_sweep("likelihood=bernoulli,gaussian_learned,laplace"))
    lockstep = LockstepTrainer(configs, data.train.images, normalizers(configs, data))
    assert lockstep.status == ["refused", "training", "training"] and lockstep.trainers[0] is None
    assert "Bernoulli (BCE) likelihood needs targets in [0, 1]" in lockstep.messages[0]
    with torch.no_grad():  # the next loss of the Laplace variant is not finite, as a blow-up would make it
        lockstep.trainers[2].model.fc_logvar.bias.fill_(1e4)
    steps = list(lockstep.steps())
    assert steps[0].diverged == (2,) and steps[0].metrics[2] is None and steps[0].metrics[0] is None
    assert lockstep.status == ["refused", "training", "diverged"] and "diverged at step 1" in lockstep.messages[2]
    assert len(steps) == 8 and all(s.metrics[1] is not None for s in steps) and lockstep.trainers[1].step == 8
    assert all(torch.isfinite(p).all() for p in lockstep.trainers[2].model.parameters())


def test_a_sweep_whose_every_variant_is_refused_raises_with_each_reason(data):
    configs = sweep_configs(tiny(normalization="symmetric", likelihood="bernoulli"),
                            parse_sweep("beta=1,2"))
    with pytest.raises(NothingToTrain, match="Every variant was refused: A Bernoulli") as e:
        LockstepTrainer(configs, data.train.images, normalizers(configs, data))
    assert len(e.value.reasons) == 2


def seeded(config: RunConfig, seed: int) -> RunConfig:
    return dataclasses.replace(config, data=dataclasses.replace(config.data, seed=seed),
                               train=dataclasses.replace(config.train, seed=seed))


def test_a_family_on_two_seeds_trains_each_seed_as_it_would_alone(data):
    """Two lockstep groups, taking steps in turn on their own images, equal each group trained alone."""
    designs = [tiny(), tiny(normalization="zscore")]
    configs = [seeded(c, s) for s in (0, 1) for c in designs]
    assert lockstep_groups(configs) == ((0, 1), (2, 3))
    seed1 = prepare_data(configs[2])
    assert not torch.equal(seed1.train.images, data.train.images)  # another seed, another training subset
    images = [data.train.images] * 2 + [seed1.train.images] * 2
    grouped = GroupedLockstep(configs, images, normalizers(configs[:2], data) + normalizers(configs[2:], seed1))
    steps = list(grouped.steps())
    assert len(steps) == 2 * 8 and [s.metrics[0] is None for s in steps[:2]] == [False, True]  # in turn
    for group, seed_data in (((0, 1), data), ((2, 3), seed1)):
        part = [configs[i] for i in group]
        alone = LockstepTrainer(part, seed_data.train.images, normalizers(part, seed_data))
        losses = [[m.loss for m in s.metrics] for s in alone.steps()]
        assert losses == [[s.metrics[i].loss for i in group] for s in steps if s.metrics[group[0]] is not None]
        for j, i in enumerate(group):
            a, b = alone.trainers[j].model.state_dict(), grouped.trainers[i].model.state_dict()
            assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_family_may_repeat_its_design_on_seeds_but_not_vary_a_shared_field():
    configs = [seeded(tiny(), s) for s in range(3)]
    FamilySpec("lab:x", ("a", "b", "c"), tuple(configs))  # three seeds, one variant each
    with pytest.raises(ValueError, match="differ in train.batch_size"):
        FamilySpec("lab:x", ("a", "b"), (configs[0], seeded(tiny(batch_size=16), 1)))
    with pytest.raises(ValueError, match="1 to 5 seeds"):
        FamilySpec("lab:x", tuple("abcdef"), tuple(seeded(tiny(), s) for s in range(6)))


def test_a_family_job_on_two_seeds_saves_every_seeds_runs(tmp_path):
    configs = tuple(seeded(c, s) for s in (0, 1) for c in (tiny(), tiny(normalization="zscore")))
    job = TrainingJob(configs[0], tmp_path, checkpoint_every_s=60.0, preview_every_s=60.0,
                      sweep=FamilySpec("lab:x", ("a 0", "b 0", "a 1", "b 1"), configs)).start()
    assert job.join(120)
    snap = job.snapshot()
    assert snap.status == "finished" and [v.status for v in snap.variants] == ["finished"] * 4
    runs = [load_run(v.run_dir) for v in snap.variants]
    assert [r.config.train.seed for r in runs] == [0, 0, 1, 1] and [r.metrics["steps"] for r in runs] == [8] * 4
    assert runs[2].config.data.seed == 1 and runs[2].metrics["test"]["elbo_nats"] != runs[0].metrics["test"]["elbo_nats"]


# ----------------------------------------------------------------------------- the sweep job

def test_a_sweep_job_saves_one_run_per_variant_and_a_manifest(tmp_path):
    base = tiny(normalization="symmetric")  # the job loads its data (symmetric: Bernoulli refused)
    job = TrainingJob(base, tmp_path, checkpoint_every_s=0.0, preview_every_s=0.0,
                      sweep=parse_sweep("likelihood=bernoulli,gaussian_learned,laplace")).start()
    assert job.join(120)
    snap = job.snapshot()
    assert snap.status == "finished" and snap.done and snap.sweep.field == "loss.likelihood"
    assert [v.status for v in snap.variants] == ["refused", "finished", "finished"]
    assert "bernoulli refused, gaussian_learned finished, laplace finished. 2 runs saved" in snap.message
    refused, gaussian, laplace = snap.variants
    assert refused.run_dir is None and refused.verdict.status == "refused" and "Bernoulli" in refused.message
    assert gaussian.history[-1].step == 8 and gaussian.preview.recon_pixels.shape == (8, 3, 32, 32)
    assert snap.history == gaussian.history and snap.run_dir == gaussian.run_dir  # the lead variant's
    assert job.run_dir == snap.sweep.run_dirs[0] and laplace.run_dir == snap.sweep.run_dirs[2]
    runs = list_runs(tmp_path)  # the manifest's folder is not taken for a run
    assert sorted(r.path for r in runs) == sorted([gaussian.run_dir, laplace.run_dir])
    assert {r.sweep for r in runs} == {snap.sweep.id}
    assert {r.likelihood for r in runs} == {"gaussian_learned", "laplace"}
    manifest = read_manifest(snap.sweep.manifest)
    assert manifest == list_sweeps(tmp_path)[0] and manifest.status == "finished"
    assert (manifest.field, manifest.values) == ("loss.likelihood", ("bernoulli", "gaussian_learned", "laplace"))
    assert [v.status for v in manifest.variants] == ["refused", "finished", "finished"]
    assert manifest.run_dirs(tmp_path) == [gaussian.run_dir, laplace.run_dir]
    assert manifest.variants[0].run is None and "Bernoulli" in manifest.variants[0].message
    assert load_run(laplace.run_dir).metrics["test"]["n_test"] == 32


def test_stop_stops_every_variant_and_saves_them_all(tmp_path, data):
    job = TrainingJob(tiny(epochs=10_000, time_budget_s=60.0), tmp_path, data=data, checkpoint_every_s=0.2,
                      sweep=parse_sweep("output_activation=sigmoid,tanh")).start()
    wait_for(lambda: all(v.history and v.history[-1].step >= 5 for v in job.snapshot().variants))
    wait_for(lambda: all((d / "metrics.json").exists() for d in job.snapshot().sweep.run_dirs))
    assert read_manifest(job.snapshot().sweep.manifest).status == "running"
    job.stop()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status == "stopped" and [v.status for v in snap.variants] == ["stopped", "stopped"]
    steps = {load_run(v.run_dir).metrics["steps"] for v in snap.variants}
    assert len(steps) == 1 and steps.pop() == snap.variants[0].history[-1].step  # in lockstep to the end
    assert [v.status for v in read_manifest(snap.sweep.manifest).variants] == ["stopped", "stopped"]
    assert all(load_run(v.run_dir).metrics["status"] == "stopped" for v in snap.variants)


class _DivergesAtStep3(Trainer):
    def train_step(self, x):
        if self.config.loss.beta == 2.0 and self.step == 2:
            raise TrainingDiverged(self.step + 1, float("nan"), self.config.train.lr)
        return super().train_step(x)


def test_a_diverged_variant_is_saved_as_diverged_and_the_job_goes_on(tmp_path, data, monkeypatch):
    monkeypatch.setattr("vae_core.training.lockstep.Trainer", _DivergesAtStep3)
    job = TrainingJob(tiny(), tmp_path, data=data, sweep=parse_sweep("beta=1,2")).start()
    assert job.join(120)
    snap = job.snapshot()
    assert snap.status == "finished" and [v.status for v in snap.variants] == ["finished", "diverged"]
    assert "diverged at step 3" in snap.variants[1].message and snap.variants[1].history[-1].step == 2
    assert load_run(snap.variants[1].run_dir).metrics["status"] == "diverged"
    assert load_run(snap.variants[0].run_dir).metrics["steps"] == 8


def test_a_sweep_has_one_folder_per_variant_and_a_single_run_no_variants(tmp_path):
    with pytest.raises(ValueError, match="a sweep saves one per variant"):
        TrainingJob(tiny(), tmp_path, run_dir=tmp_path / "one", sweep=parse_sweep("beta=1,2"))
    single = TrainingJob(tiny(), tmp_path).snapshot()
    assert (single.status, single.variants, single.sweep) == ("starting", (), None)


def test_a_sweep_that_cannot_train_fails_and_writes_no_manifest(tmp_path):
    job = TrainingJob(tiny(normalization="symmetric", likelihood="bernoulli"), tmp_path,
                      sweep=parse_sweep("beta=1,2")).start()
    assert job.join(60)
    snap = job.snapshot()
    assert snap.status == "failed" and "Every variant was refused" in snap.message
    assert [v.status for v in snap.variants] == ["refused", "refused"] and not list_sweeps(tmp_path)


def test_a_finished_sweeps_record_keeps_a_few_points_per_variant(tmp_path, data):
    job = TrainingJob(tiny(), tmp_path, data=data, sweep=parse_sweep("beta=1,2")).start()
    assert job.join(120)
    thinned = thin_snapshot(job.snapshot(), 3)
    assert [len(v.history) for v in thinned.variants] == [3, 3] and len(thinned.history) == 3
    single = JobSnapshot("failed", (), "no", None, None, None, None)
    assert thin_snapshot(single, 3) == single and single.variants == () and single.sweep is None


def test_a_sweep_in_a_child_process_streams_each_variant_and_saves_them(tmp_path):
    job = ProcessJob(tiny(epochs=3), tmp_path, preview_every_s=0.0,
                     sweep=parse_sweep("output_activation=sigmoid,linear")).start()
    assert job.join(120)
    snap = job.snapshot()
    assert snap.status == "finished" and [v.status for v in snap.variants] == ["finished", "finished"]
    assert all([m.step for m in v.history] == list(range(1, 13)) for v in snap.variants)  # each its own steps
    assert all(v.preview for v in snap.variants)
    assert [v.run_dir for v in snap.variants] == list(snap.sweep.run_dirs)
    assert {r.sweep for r in list_runs(tmp_path)} == {snap.sweep.id}


def test_the_scheduler_submits_a_sweep_as_one_job(tmp_path):
    from vae_core.jobs.scheduler import JobScheduler

    made = []

    def factory(config, runs_dir, **kw):
        made.append(kw.get("sweep"))
        return TrainingJob(config, runs_dir, owner=kw["owner"], token=kw["token"], on_done=kw["on_done"],
                           checkpoint_every_s=kw["checkpoint_every_s"], sweep=kw.get("sweep"))

    scheduler = JobScheduler(settings(tmp_path), job_factory=factory)
    with pytest.raises(ValueError, match="needs 2 to 6"):
        scheduler.submit("bob", tiny(), SweepSpec("beta", (1.0,)))
    token = scheduler.submit("alice", tiny(), parse_sweep("beta=1,2"))
    record = wait_for(lambda: (r := scheduler.get(token)).done and r)
    spec = parse_sweep("beta=1,2")  # planned once, at submit: the job and the record hold that one plan
    assert len(made) == 1 and made[0] is record.sweep and (made[0].field, made[0].values) == (spec.field, spec.values)
    assert record.status == "finished" and len(record.snapshot.variants) == 2
    assert record.config.train.time_budget_s == 60.0  # the host's cap is the whole sweep's


# ----------------------------------------------------------------------------- the CLI

def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vae_core", "train", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_the_cli_prints_one_run_folder_per_variant_and_why_one_was_refused(tmp_path):
    result = cli("--n-train", "64", "--n-test", "16", "--epochs", "1", "--width", "8", "--depth", "2",
                 "--latent-dim", "2", "--normalization", "symmetric", "--runs-dir", str(tmp_path),
                 "--sweep", "likelihood=bernoulli,gaussian,laplace")
    assert result.returncode == 0, result.stderr
    folders = [Path(line) for line in result.stdout.splitlines()]
    assert len(folders) == 2 and [load_run(f).config.loss.likelihood for f in folders] == ["gaussian", "laplace"]
    assert "refused: likelihood=bernoulli: A Bernoulli (BCE) likelihood needs targets in [0, 1]" in result.stderr
    manifest = list_sweeps(tmp_path)[0]
    assert manifest.run_dirs(tmp_path) == folders and manifest.variants[1].value == "gaussian"


@pytest.mark.parametrize("args,message", [
    (["--sweep", "batch_size=32,64"], "train.batch_size cannot be swept in lockstep"),
    (["--sweep", "beta=1"], "needs 2 to 6 values"),
    (["--sweep", "beta=1,2", "--out", "somewhere"], "--out names one run folder"),
])
def test_a_bad_sweep_gives_one_line_and_status_2(tmp_path, capsys, args, message):
    from vae_core.cli.main import main

    assert main(["train", "--n-train", "64", "--runs-dir", str(tmp_path), *args]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and out == "", err
    assert not list(tmp_path.iterdir())
