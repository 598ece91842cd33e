"""The zoo: its grid, a deterministic build, `zoo list --json`, `zoo refresh`, and the sample test images a
run carries."""
import dataclasses
import itertools
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vae_core.cli import main as cli
from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.data.datasets import load_dataset
from vae_core.data.base import ImageDataset
from vae_core.data.normalize import fit_normalizer
from vae_core.model.evaluate_vectors import VectorEvalMetrics
from vae_core.model.evaluate import EvalMetrics
from vae_core.model.vae import build_model
from vae_core.runs import folders as runs
from vae_core.runs import listing
from vae_core.runs import samples as run_samples
from vae_core.runs.folders import RunLoadError, load_run, read_samples, save_run
from vae_core.runs.samples import samples_to_keep
from vae_core.training.trainer import Trainer, make_run_config, prepare_data
from vae_core.zoo import KEY_FIELDS, ZooEntry, build_zoo, refresh_run, zoo_configs

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # real files, outside the repo
REQUIRED = {"path", "dataset", "normalization", "output_activation", "likelihood", "elbo_nats", "bits_per_dim",
            "psnr_db"}


def flat(config: RunConfig) -> dict[tuple[str, str], object]:
    return {(section, k): v for section, fields in config.to_dict().items() for k, v in fields.items()}


def key_fields(entry: ZooEntry) -> dict[tuple[str, str], object]:
    k = entry.key
    return dict(zip(KEY_FIELDS, (k.output_activation, k.normalization, k.likelihood)))


def test_the_grid_has_20_distinct_keys_and_entries_differ_only_in_their_key():
    entries = zoo_configs()
    assert len(entries) == 20 and len({e.key for e in entries}) == 20 and len({e.name for e in entries}) == 20
    for a, b in itertools.combinations(entries, 2):
        differ = {f for f, v in flat(a.config).items() if flat(b.config)[f] != v}
        assert differ == {f for f, v in key_fields(a).items() if key_fields(b)[f] != v}, (a.name, b.name)
    for e in entries:
        assert {f: flat(e.config)[f] for f in KEY_FIELDS} == key_fields(e)
        assert e.name == f"sprites-{e.key.output_activation}-{e.key.normalization}-{e.key.likelihood}"
    mnist = zoo_configs("mnist", "/data")[0].config
    assert (mnist.model.channels, mnist.model.image_size, mnist.data.data_dir) == (1, 28, "/data")


def tiny(entry: ZooEntry, **data) -> ZooEntry:
    """The entry shrunk to seconds: 64 training images, one epoch, width 8."""
    c = entry.config
    config = RunConfig(dataclasses.replace(c.data, **{"n_train": 64, "n_test": 32, **data}),
                       dataclasses.replace(c.model, width=8), c.loss, dataclasses.replace(c.train, epochs=1))
    return dataclasses.replace(entry, config=config)


def tiny_pair() -> list[ZooEntry]:
    entries = {e.name: e for e in zoo_configs()}
    return [tiny(entries[n]) for n in ("sprites-tanh-zscore-gaussian_learned", "sprites-sigmoid-unit-bernoulli")]


@pytest.fixture(scope="module")
def tiny_builds(tmp_path_factory) -> tuple[Path, Path]:
    """The same two-entry zoo built twice: in a pool of 2 spawned processes, and in this process."""
    a, b = tmp_path_factory.mktemp("zoo_a"), tmp_path_factory.mktemp("zoo_b")
    ended = []
    results = build_zoo(tiny_pair(), a, workers=2, on_done=ended.append)
    assert [r.status for r in results] == ["finished", "finished"] and len(ended) == 2
    assert [r.status for r in build_zoo(tiny_pair(), b, workers=1)] == ["finished", "finished"]
    return a, b


def test_a_build_is_byte_identical_when_repeated(tiny_builds):
    a, b = tiny_builds
    for entry in tiny_pair():
        assert (a / entry.name / runs.WEIGHTS).read_bytes() == (b / entry.name / runs.WEIGHTS).read_bytes()
        assert load_run(a / entry.name).config == entry.config
        assert not (a / entry.name / run_samples.SAMPLES).exists()  # sprites need no samples


def test_entries_start_from_identical_weights():
    states = []
    for entry in tiny_pair():
        data = prepare_data(entry.config)
        states.append(Trainer(entry.config, data.train.images, data.normalizer).model.state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_zoo_list_json_and_table(tiny_builds, capsys):
    a, _ = tiny_builds
    assert cli.main(["zoo", "list", "--json", "--dir", str(a)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [Path(r["path"]).name for r in rows] == [e.name for e in tiny_pair()]  # grid order
    assert all(REQUIRED <= r.keys() and Path(r["path"]).is_dir() for r in rows)
    bernoulli = rows[1]
    assert bernoulli["bits_per_dim"] is None and bernoulli["elbo_nats"] < 0 and bernoulli["psnr_db"] > 0
    assert rows[0]["verdict"] == "mismatched" and rows[0]["frac_targets_unreachable"] > 0  # tanh on z-scores
    assert cli.main(["zoo", "table", "--dir", str(a)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| run |") and len(table) == 4 and "— (Bernoulli)" in table[3]


def test_refresh_writes_what_training_wrote_and_keeps_the_rest(tiny_builds, tmp_path, capsys):
    # A run whose test block is stale (an old evaluation): `zoo refresh` evaluates it again as the end of
    # training does, so it writes back the very bytes the build wrote, and touches nothing else.
    a, _ = tiny_builds
    shutil.copytree(a, tmp_path / "zoo")
    run_dir = tmp_path / "zoo" / tiny_pair()[0].name
    files = {f: (run_dir / f).read_bytes() for f in (runs.WEIGHTS, runs.CONFIG, runs.METRICS)}
    metrics = json.loads(files[runs.METRICS])
    stale = {**metrics, "test": {**metrics["test"], "bits_per_dim": -5.9}}
    stale["test"].pop("iwae_bits_per_dim")
    (run_dir / runs.METRICS).write_text(json.dumps(stale, indent=2))
    assert cli.main(["zoo", "refresh", "--dir", str(tmp_path / "zoo")]) == 0
    out, err = capsys.readouterr()
    assert out.split() == [str(tmp_path / "zoo" / e.name) for e in tiny_pair()] and "bits/dim" in err
    assert {f: (run_dir / f).read_bytes() for f in files} == files
    assert sorted(p.name for p in (tmp_path / "zoo").iterdir()) == sorted(e.name for e in tiny_pair())  # no debris


def test_the_bundled_runs_carry_the_current_evaluation():
    """Every bundled run's test block has every field of its kind's metrics (`zoo refresh` wrote it) and a
    bits/dim that is a discrete likelihood: never negative; none for the Bernoulli, nor for vectors."""
    fields = {"images": {f.name for f in dataclasses.fields(EvalMetrics)} - {"per_image"},  # in memory, never saved
              "vectors": {f.name for f in dataclasses.fields(VectorEvalMetrics)} - {"per_row"}}
    for info in listing.list_runs(runs.bundled_models_dir()):
        test = runs.read_metrics(info.path)["test"]
        assert set(test) == fields[info.config.data.kind], info.name
        if info.name.endswith("-bernoulli") or info.config.data.kind == "vectors":
            assert test["bits_per_dim"] is None and test["bits_per_dim_note"], info.name
        else:
            assert test["bits_per_dim"] >= 0 and test["bits_per_dim_note"] == "", info.name


def test_bad_workers_are_refused(tmp_path, capsys):
    assert cli.main(["zoo", "build", "--workers", "0", "--out", str(tmp_path)]) == 2
    assert "workers=0 is out of range" in capsys.readouterr().err


MNIST_LIKE = make_run_config(DataConfig(dataset="mnist"), ModelConfig(width=8, latent_dim=3), LossConfig(),
                             TrainConfig())


@pytest.fixture
def grey_run(tmp_path) -> tuple[Path, torch.Tensor]:
    images = torch.randint(0, 256, (100, 1, 28, 28), dtype=torch.uint8)
    model = build_model(MNIST_LIKE.model, MNIST_LIKE.loss.likelihood, seed=0)
    labels = torch.arange(100) % 10
    samples = samples_to_keep(MNIST_LIKE, ImageDataset("mnist", images, labels, tuple("0123456789")))
    path = save_run(tmp_path / "run", model, MNIST_LIKE, fit_normalizer("unit", images), {"status": "finished"},
                    samples)
    return path, images


def test_samples_round_trip(grey_run):
    path, images = grey_run
    labels = torch.arange(100) % 10
    samples = read_samples(path)
    assert torch.equal(samples.images, images[:run_samples.N_SAMPLES])
    assert torch.equal(samples.labels, torch.arange(run_samples.N_SAMPLES) % 10)
    assert samples.label_names == tuple("0123456789")
    assert samples_to_keep(RunConfig(), ImageDataset("sprites", images, labels, ("x",))) is None  # generated anywhere
    (path / run_samples.SAMPLES).unlink()
    assert read_samples(path) is None


def test_samples_without_labels_still_load(grey_run):
    """A samples file written before labels were kept: one class, "sample"."""
    path, images = grey_run
    save_file({"images": images[:4].contiguous()}, str(path / run_samples.SAMPLES))
    samples = read_samples(path)
    assert samples.label_names == ("sample",) and samples.labels.tolist() == [0, 0, 0, 0]


@pytest.mark.parametrize("bad", ["garbage", "float", "rgb", "3-d", "no images", "empty", "too big",
                                 "label out of range", "labels without names"])
def test_bad_samples_are_refused_clearly(grey_run, bad, monkeypatch):
    path, images = grey_run
    labels = torch.tensor([0, 1, 2, 1])
    tensors = {"float": {"images": images[:4].float()}, "rgb": {"images": images[:4].expand(4, 3, 28, 28)},
               "3-d": {"images": images[:4, 0]}, "no images": {"x": images[:4]},
               "empty": {"images": images[:0]}, "labels without names": {"images": images[:4], "labels": labels}}
    if bad in tensors:
        save_file({k: v.contiguous() for k, v in tensors[bad].items()}, str(path / run_samples.SAMPLES))
    elif bad == "label out of range":
        save_file({"images": images[:4].contiguous(), "labels": labels}, str(path / run_samples.SAMPLES),
                  metadata={"label_names": '["a", "b"]'})
    elif bad == "garbage":
        (path / run_samples.SAMPLES).write_bytes(b"\xff" * 100)
    else:
        monkeypatch.setattr(run_samples, "MAX_SAMPLES_BYTES", 1000)
    with pytest.raises(RunLoadError, match="samples.safetensors"):
        read_samples(path)
    assert load_run(path).config == MNIST_LIKE  # the run itself still loads


@pytest.mark.skipif(not (SHARED_DATA / "MNIST" / "raw").is_dir(), reason="real MNIST not at ../shared/data")
def test_an_mnist_zoo_run_carries_its_test_samples(tmp_path):
    entry = tiny(zoo_configs("mnist", str(SHARED_DATA))[0], n_test=16)
    [result] = build_zoo([entry], tmp_path, workers=1)
    assert result.status == "finished"
    test = load_dataset(entry.config.data, "test").images
    assert torch.equal(read_samples(result.run_dir).images, test[:run_samples.N_SAMPLES])  # all 16: fewer than N_SAMPLES


def test_the_bundled_models_are_the_zoo():
    """models/ holds exactly the sprites zoo and the vectors zoo, each run trained from its zoo config to the end."""
    bundled = {r.name: r for r in listing.list_runs(runs.bundled_models_dir())}
    entries = [*zoo_configs(), *zoo_configs("vectors")]
    assert sorted(bundled) == sorted(e.name for e in entries)
    for e in entries:
        assert bundled[e.name].status == "finished" and bundled[e.name].config == e.config, e.name


def test_refresh_fits_gaussian_optimal_sigma_on_the_training_set_as_training_does(tmp_path):
    # A stale sigma* in the weights (the last batch's, as runs saved before the fit kept): refresh puts back the
    # training set's, byte for byte what the end of training saved.
    from safetensors.torch import load_file

    base = tiny(zoo_configs()[0])
    entry = dataclasses.replace(base, name="tiny-optimal", config=dataclasses.replace(
        base.config, loss=dataclasses.replace(base.config.loss, likelihood="gaussian_optimal")))
    assert [r.status for r in build_zoo([entry], tmp_path, workers=1)] == ["finished"]
    weights = tmp_path / entry.name / runs.WEIGHTS
    built = weights.read_bytes()
    state = load_file(weights)
    state["log_sigma"] = state["log_sigma"] + 0.1
    save_file(state, weights, metadata={"format": runs.FORMAT})
    refresh_run(tmp_path / entry.name)  # not a zoo entry's name: `zoo refresh` lists only those
    assert weights.read_bytes() == built


def test_the_continuous_bernoulli_on_black_sprites_is_named_degenerate():
    """Its density is unbounded at exact 0 (torch's own ContinuousBernoulli says so) and 96% of the sprites'
    pixels are exactly 0 or 255: the zoo calls it degenerate, and no other run."""
    from torch.distributions import ContinuousBernoulli

    from vae_core.zoo import zoo_list
    at_black = [ContinuousBernoulli(probs=torch.tensor(p)).log_prob(torch.tensor(0.0)).item()
                for p in (1e-2, 1e-4, 1e-8)]
    assert at_black[0] < at_black[1] < at_black[2] and at_black[2] > 2.5  # grows without bound as λ -> 0
    verdicts = {r.name: r.verdict for r in zoo_list(runs.bundled_models_dir())}
    assert verdicts.pop("sprites-sigmoid-unit-continuous_bernoulli") == "degenerate"
    assert "degenerate" not in verdicts.values()
