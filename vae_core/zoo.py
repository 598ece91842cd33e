"""The zoo: one family of runs, trained alike, that differ only in output activation x normalization x likelihood.

On images, every activation x normalization with the fixed-sigma Gaussian (what MSE is) and with the learned
shared sigma, and sigmoid/unit with Bernoulli and continuous Bernoulli: 20 runs with the same architecture, data,
seed, epochs and initial weights. On the bundled vectors, z-scored, every activation with the learned sigma, and
the linear output with a fixed sigma = 1 (what MSE is) and with a sigma per feature: 5 dense VAEs, where a bounded
output on unbounded numbers is the lesson. (Unnormalized, the bundled vectors diverge at the first step: the
Train page says why and what to pick.) The mismatched cells (tanh on z-scored data, sigmoid on symmetric data)
are there on purpose. `build_zoo` trains them with the CLI's `train` code path (jobs.run_in_foreground),
one thread each, in a pool of processes; the same machine gives byte-identical weights. `refresh_run`
evaluates a saved run again with the current evaluation, without training.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, get_args

import torch

from vae_core.config import (DataConfig, DatasetName, LikelihoodName, LossConfig, ModelConfig,
                             Normalization, OutputActivation, RunConfig, TrainConfig, dataset_kind, default_for)
from vae_core.model.compatibility import compatibility, degeneracy
from vae_core.runs.folders import LoadedRun, RunLoadError, read_config, read_metrics
from vae_core.runs.listing import RunInfo, list_runs

# 10 epochs of 20,000 sprites: the whole zoo takes about 25 minutes with 2 processes on a 2-core machine.
ZOO_EPOCHS = 10
# Config fields that a zoo key sets: (section, field). Two entries differ in these and nothing else.
MAX_WORKERS = 64
KEY_FIELDS = (("model", "output_activation"), ("data", "normalization"), ("loss", "likelihood"))


@dataclass(frozen=True)
class ZooKey:
    """What one zoo entry is: its output activation, normalization and likelihood."""
    output_activation: OutputActivation
    normalization: Normalization
    likelihood: LikelihoodName


def _grid() -> tuple[ZooKey, ...]:
    cells = [(a, n) for a in get_args(OutputActivation) for n in get_args(Normalization)]
    gaussians = [ZooKey(a, n, lik) for lik in ("gaussian", "gaussian_learned") for a, n in cells]
    return (*gaussians, ZooKey("sigmoid", "unit", "bernoulli"), ZooKey("sigmoid", "unit", "continuous_bernoulli"))


ZOO_KEYS: tuple[ZooKey, ...] = _grid()
VECTOR_ZOO_KEYS: tuple[ZooKey, ...] = (
    *(ZooKey(a, "zscore", "gaussian_learned") for a in get_args(OutputActivation)),
    ZooKey("linear", "zscore", "gaussian"), ZooKey("linear", "zscore", "gaussian_feature"))


BUNDLED_ZOOS = ("sprites", "vectors")  # the datasets whose zoo ships in models/: generated in code, so offline


def zoo_keys(dataset: str) -> tuple[ZooKey, ...]:
    """The zoo's grid on a dataset: its kind of data decides it."""
    return VECTOR_ZOO_KEYS if dataset_kind(dataset) == "vectors" else ZOO_KEYS


@dataclass(frozen=True)
class ZooEntry:
    name: str  # the run folder's name: {dataset}-{activation}-{normalization}-{likelihood}
    key: ZooKey
    config: RunConfig


def entry_name(dataset: str, key: ZooKey) -> str:
    return f"{dataset}-{key.output_activation}-{key.normalization}-{key.likelihood}"


def base_config(dataset: DatasetName = "sprites", data_dir: str | None = None) -> RunConfig:
    """What every zoo entry shares; the image shape (vectors: the feature count) comes from the dataset."""
    from vae_core.training.trainer import make_run_config  # train imports the models; a listing does not need them

    if dataset == "vectors":
        return make_run_config(*_vector_parts())
    return make_run_config(DataConfig(dataset=dataset, image_size=32, data_dir=data_dir),
                           ModelConfig(arch="conv", latent_dim=10, width=32, depth=3),
                           LossConfig(sigma=0.1, beta=1.0),  # sigma in normalized units
                           TrainConfig(epochs=ZOO_EPOCHS, batch_size=64, lr=1e-3, seed=0, num_threads=1))


def _vector_parts() -> tuple[DataConfig, ModelConfig, LossConfig, TrainConfig]:
    """The bundled vectors' dense VAE, as `train --dataset vectors` makes it (DATASET_DEFAULTS), seed 0, one thread."""
    d = lambda path: default_for(path, "vectors")  # noqa: E731
    return (DataConfig(dataset="vectors", normalization=d("data.normalization")),
            ModelConfig(arch="mlp", hidden_dim=d("model.hidden_dim"), mlp_layers=d("model.mlp_layers"),
                        latent_dim=d("model.latent_dim")),
            LossConfig(likelihood=d("loss.likelihood"), sigma=d("loss.sigma")),
            TrainConfig(epochs=d("train.epochs"), batch_size=d("train.batch_size"), seed=0, num_threads=1))


def with_key(config: RunConfig, key: ZooKey) -> RunConfig:
    """config with the key's three fields set, the rest unchanged."""
    return RunConfig(dataclasses.replace(config.data, normalization=key.normalization),
                     dataclasses.replace(config.model, output_activation=key.output_activation),
                     dataclasses.replace(config.loss, likelihood=key.likelihood), config.train)


def zoo_configs(dataset: DatasetName = "sprites", data_dir: str | None = None) -> list[ZooEntry]:
    """The zoo entries on a dataset (20 on images, 6 on vectors), in the grid's order."""
    base = base_config(dataset, data_dir)
    return [ZooEntry(entry_name(dataset, key), key, with_key(base, key)) for key in zoo_keys(dataset)]


@dataclass(frozen=True)
class ZooResult:
    """How training one entry ended."""
    name: str
    run_dir: Path | None  # None if nothing was saved
    status: str  # a jobs.JobStatus: finished, diverged, stopped, failed...
    message: str
    seconds: float


def train_entry(entry: ZooEntry, out_dir: Path) -> ZooResult:
    """Train and save one entry into out_dir/<name>, as `python -m vae_core train --out` does."""
    from vae_core.jobs.training_job import run_in_foreground

    start = time.monotonic()
    snap = run_in_foreground(entry.config, Path(out_dir), Path(out_dir) / entry.name)
    return ZooResult(entry.name, snap.run_dir, snap.status, snap.message, time.monotonic() - start)


def build_zoo(entries: Sequence[ZooEntry], out_dir: Path, workers: int = 2,
              on_done: Callable[[ZooResult], None] | None = None) -> list[ZooResult]:
    """Train every entry, `workers` at a time in spawned processes (1: in this process); results in entry order.

    on_done is called in this process as each entry ends, in the order they end.
    """
    check_workers(workers)
    if entries:
        _check_data(entries[0].config)
    done = {}
    for result in _train_all(list(entries), Path(out_dir), workers):
        done[result.name] = result
        if on_done:
            on_done(result)
    return [done[e.name] for e in entries]


def check_workers(workers: int) -> None:
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers={workers} is out of range; it must be an integer from 1 to {MAX_WORKERS}.")


def _check_data(config: RunConfig) -> None:
    """Fail once, here, when the dataset is missing, rather than once per entry in the workers."""
    from vae_core.data.datasets import load_dataset

    load_dataset(config.data, "test")


def _train_all(entries: list[ZooEntry], out_dir: Path, workers: int) -> Iterator[ZooResult]:
    train = functools.partial(train_entry, out_dir=out_dir)
    if workers == 1 or len(entries) <= 1:
        yield from map(train, entries)
        return
    # spawn: a fresh interpreter per worker (fork would copy this process's torch threads and state).
    with multiprocessing.get_context("spawn").Pool(min(workers, len(entries))) as pool:
        yield from pool.imap_unordered(train, entries)


def refresh_run(run_dir: Path) -> dict[str, Any]:
    """Evaluate a saved run again with the current evaluation and rewrite its metrics' `test` block (the
    folder atomically); the weights and the rest of metrics.json are kept. Returns the new test block.

    The same calls as the end of training (jobs.TrainingJob._finish: gaussian_optimal's sigma* fitted on the
    training set, then the whole test split, the run's loss, evaluate's default seed and batch size) under the
    run's thread count, so it writes what a rebuild would.
    """
    from vae_core.jobs.data_kinds import keeps_images
    from vae_core.runs.evaluations import save_page_evaluations
    from vae_core.runs.folders import load_run, read_samples, save_run

    run = load_run(run_dir)
    with _threads(run.config.train.num_threads):
        _refit_sigma(run)
        test = _evaluate_test(run)
    save_run(Path(run_dir), run.model, run.config, run.normalizer, {**run.metrics, "test": test},
             read_samples(run_dir))
    if keeps_images(run.config):  # a vector run keeps no page estimates
        with _threads(run.config.train.num_threads):
            save_page_evaluations(load_run(run_dir))  # the folder was replaced: its page estimates with it
    return test


def _evaluate_test(run: LoadedRun) -> dict[str, Any]:
    """The run's test block, as the end of its training computes it (data_kinds.evaluate_test)."""
    from vae_core.data.datasets import load_splits
    from vae_core.jobs.data_kinds import evaluate_test
    from vae_core.training.trainer import TrainingData

    data = TrainingData(*load_splits(run.config.data), run.normalizer)
    return evaluate_test(run.model, data, run.config, run.metrics.get("steps") or 0).summary().to_dict()


def _refit_sigma(run: LoadedRun) -> None:
    """gaussian_optimal: the sigma* of the whole training set, as training's end now keeps (Trainer.fit_sigma)."""
    from vae_core.data.datasets import load_dataset
    from vae_core.training.trainer import fit_optimal_log_sigma

    if run.model.lik.sigma != "optimal":
        return
    train = load_dataset(run.config.data, "train").images
    with torch.no_grad():
        run.model.log_sigma.copy_(fit_optimal_log_sigma(run.model, train, run.normalizer, run.config.train.seed))


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """torch's intra-op threads set to n (None: unchanged) inside the block: as many as the run trained with,
    since the split of a sum over threads can move its last bits."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class ZooRecord:
    """One zoo run as `zoo list` shows it: what it is and its test metrics (from metrics.json, no weights)."""
    path: Path
    name: str
    status: str
    dataset: str
    normalization: str
    output_activation: str
    likelihood: str
    verdict: str  # compatibility: works / mismatched / degenerate
    epochs: int
    steps: int | None
    elbo_nats: float | None
    bits_per_dim: float | None  # None for Bernoulli (see evaluate.BERNOULLI_BPD_NOTE)
    psnr_db: float | None
    active_units: int | None
    frac_targets_unreachable: float | None  # share of normalized test targets out of the output's reach
    frac_outputs_saturated: float | None
    elbo_se: float | None = None  # standard errors over the test images; None in metrics saved before them
    bits_per_dim_se: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "path": str(self.path)}


ZOO_NAMES = frozenset(entry_name(d, k) for d in get_args(DatasetName) for k in zoo_keys(d))


def zoo_list(*roots: Path) -> list[ZooRecord]:
    """The zoo runs directly under the roots (folders named as zoo entries), by dataset and grid order."""
    records = [zoo_record(info) for info in list_runs(*roots) if info.name in ZOO_NAMES and info.config]
    return sorted(records, key=lambda r: (r.dataset != "sprites", r.dataset, zoo_keys(r.dataset).index(_key(r)),
                                          str(r.path)))


def _key(r: ZooRecord) -> ZooKey:
    return ZooKey(r.output_activation, r.normalization, r.likelihood)  # type: ignore[arg-type]


METRIC_FIELDS = ("elbo_nats", "bits_per_dim", "psnr_db", "frac_targets_unreachable", "frac_outputs_saturated",
                 "elbo_se", "bits_per_dim_se")


def zoo_record(info: RunInfo) -> ZooRecord:
    """What a zoo run is and how it scored on its test split, from config.json and metrics.json."""
    config, normalizer = read_config(info.path)
    m, d, loss = config.model, config.data, config.loss
    test = _test_metrics(info.path)
    verdict = degeneracy(loss.likelihood, _finite(test.get("frac_pixels_at_edges"))) or \
        compatibility(m.output_activation, d.normalization, loss.likelihood, normalizer.value_range())
    units = test.get("active_units")
    return ZooRecord(path=info.path, name=info.name, status=info.status, dataset=d.dataset,
                     normalization=d.normalization, output_activation=m.output_activation, likelihood=loss.likelihood,
                     verdict=verdict.status, epochs=config.train.epochs, steps=info.steps,
                     active_units=units if type(units) is int else None,  # not a bool
                     **{k: _finite(test.get(k)) for k in METRIC_FIELDS})


def _test_metrics(run_dir: Path) -> dict[str, Any]:
    try:
        test = read_metrics(run_dir).get("test")
    except RunLoadError:
        return {}
    return test if isinstance(test, dict) else {}


def _finite(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


TABLE_HEADER = ("| run | verdict | ELBO ({unit}) | bits/dim | PSNR | targets out of reach | outputs saturated |\n"
                "|---|---|---:|---:|---:|---:|---:|")
# A vector run's ELBO is per raw row, tens of nats: two decimals show its standard error.
ELBO_UNIT = {"images": ("nats/image", "{:,.1f}"), "vectors": ("nats/row", "{:,.2f}")}


def zoo_table(records: Sequence[ZooRecord]) -> str:
    """The README's markdown tables of the zoo, one per kind of data, one row per run."""
    tables = []
    for kind, (unit, _) in ELBO_UNIT.items():
        rows = [_row(r) for r in records if dataset_kind(r.dataset) == kind]
        tables += ["\n".join([TABLE_HEADER.format(unit=unit), *rows])] if rows else []
    return "\n\n".join(tables)


def _row(r: ZooRecord) -> str:
    bpd = "— (Bernoulli)" if r.likelihood == "bernoulli" else _fmt_se(r.bits_per_dim, r.bits_per_dim_se, "{:.3f}")
    name = r.name if r.status == "finished" else f"{r.name} ({r.status})"
    cells = [name, r.verdict, _fmt_se(r.elbo_nats, r.elbo_se, ELBO_UNIT[dataset_kind(r.dataset)][1]), bpd, _fmt(r.psnr_db, "{:.2f} dB"),
             _fmt(r.frac_targets_unreachable, "{:.1%}"), _fmt(r.frac_outputs_saturated, "{:.1%}")]
    return "| " + " | ".join(cells) + " |"


def _fmt(value: float | None, fmt: str) -> str:
    """A number as the README writes it (a real minus sign), or a dash for none."""
    return "—" if value is None else fmt.format(value).replace("-", "−")


def _fmt_se(value: float | None, se: float | None, fmt: str) -> str:
    """The value ± its standard error, where it has one."""
    return _fmt(value, fmt) if value is None or se is None else f"{_fmt(value, fmt)} ± {_fmt(se, fmt)}"
