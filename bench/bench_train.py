"""Training speed on one core: the default conv VAE's training step in GFLOP/s, as a share of what the same core does
in a large float32 matmul, measured in the same run; each CPU optimization off and on; the Trainer against a plain
loop doing the same.

    python -m bench.bench_train [--steps 30] [--rounds 5] [--threads 1] [--batch-size 64] [--batch-sizes 32,128]
                                [--compile]

FLOPs per step: torch's FlopCounterMode over one Trainer step (forward and backward: the convolutions and matrix
products; the elementwise ops it does not count). The variants add the Trainer's optimizations one at a time
("before" is the Trainer as it was: NCHW weights, F.binary_cross_entropy_with_logits, Adam's for-loop); each is
timed as the Trainer and as a plain loop (PyTorch's examples/vae loop) making the same choices. The machine is
shared and noisy: the rounds interleave the matmul and every variant, each round's fraction is taken against that
round's matmul, and the medians are printed with the load average. Trainer / plain: each round runs the two loops'
epochs a step of each in turn (which goes first alternates from round to round), so each pair of steps, 40 ms
apart, meets the same load; the round's ratio is the median over its pairs (a burst of another process's work
lands on one step of a pair, which the median sets aside). Over the rounds: the median, the quartiles and the
range, by the wall clock and by CPU time; against the bound (the shipped Trainer at TRAINER_BOUND of the plain
loop's speed or better) the verdict holds only where the quartiles lie on one side of it, else the bench says the
rounds cannot settle it. --compile also times torch.compile on the plain loop: its compile seconds, and after how
many seconds of training it would pay back.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal
from unittest import mock

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.data.base import pixels
from vae_core.model import likelihoods
from vae_core.model.vae import VAE, build_model
from vae_core.training.trainer import Trainer, TrainingData, make_run_config, prepare_data

MATMUL_N = 2048  # a 2048 x 2048 float32 product: 17 GFLOP, large enough for the core's best
MATMUL_REPS = 3  # best of these, each round
CLASSROOM_RUN_S = 60  # a typical classroom training run, for whether torch.compile pays
TRAINER_BOUND = 0.95  # issue 20: the Trainer trains at this share of a plain loop's speed, or better

Bce = Literal["torch", "fused"]
AdamKind = Literal["for-loop", "foreach", "fused"]
BoundVerdict = Literal["meets", "misses", "cannot settle"]


@dataclass(frozen=True)
class Variant:
    name: str
    memory_format: torch.memory_format
    bce: Bce  # torch: F.binary_cross_entropy_with_logits (log_sigmoid); fused: likelihoods.bernoulli_log_prob
    adam: AdamKind


VARIANTS = (
    Variant("before", torch.contiguous_format, "torch", "for-loop"),
    Variant("+ channels_last", torch.channels_last, "torch", "for-loop"),
    Variant("+ fused BCE", torch.channels_last, "fused", "for-loop"),
    Variant("+ foreach Adam", torch.channels_last, "fused", "foreach"),
    Variant("+ fused Adam (shipped)", torch.channels_last, "fused", "fused"),
)


def make_adam(model: VAE, lr: float, kind: AdamKind) -> torch.optim.Adam:
    return torch.optim.Adam(model.parameters(), lr=lr, foreach=kind == "foreach", fused=kind == "fused" or None)


def torch_bernoulli_log_prob(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The Trainer's Bernoulli log-likelihood before: torch's BCE with logits."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none")


@contextmanager
def loss_as(bce: Bce) -> Iterator[None]:
    """The library's Bernoulli likelihood as the variant has it, while the block runs."""
    swap = mock.patch.dict(likelihoods._FROM_LOGITS, bernoulli=torch_bernoulli_log_prob)
    with swap if bce == "torch" else nullcontext():
        yield


def variant_trainer(config: RunConfig, data: TrainingData, v: Variant) -> Trainer:
    """The Trainer, its weights in the variant's layout and its optimizer the variant's."""
    model = build_model(config.model, config.loss.likelihood, config.loss.sigma, seed=config.train.seed)
    model.cpu_memory_format = v.memory_format  # what the Trainer lays the weights out in
    trainer = Trainer(config, data.train.images, data.normalizer, model=model)
    trainer.optimizer = make_adam(trainer.model, config.train.lr, v.adam)
    return trainer


def plain_step(model: VAE, x: torch.Tensor, bce: Bce) -> torch.Tensor:
    """The loss of PyTorch's examples/vae: BCE summed over pixels + KL, mean over the batch."""
    mu, logvar = model.encode(x)
    logits = model.decode_logits(model.reparameterize(mu, logvar))
    nll = (F.binary_cross_entropy_with_logits(logits, x, reduction="sum") if bce == "torch"
           else -likelihoods.bernoulli_log_prob(x, logits).sum())
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (nll + kld) / len(x)


@dataclass
class PlainLoop:
    """A DataLoader over the whole set normalized up front (what such loops usually get), and the loop."""
    model: VAE
    optimizer: torch.optim.Optimizer
    loader: DataLoader
    loss: Callable[[torch.Tensor], torch.Tensor]

    def epoch(self) -> int:
        """One epoch; the images it trained on."""
        return sum(self.steps())

    def steps(self) -> Iterator[int]:
        """One epoch, a step at a time; each step's images."""
        for (x,) in self.loader:
            loss = self.loss(x)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            yield len(x)


def plain_loop(config: RunConfig, data: TrainingData, v: Variant, compiled: bool = False) -> PlainLoop:
    model = build_model(config.model, config.loss.likelihood, seed=config.train.seed)
    model.to(memory_format=v.memory_format)
    x_all = data.normalizer.forward(pixels(data.train.images))
    loader = DataLoader(TensorDataset(x_all), batch_size=config.train.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    loss = lambda x: plain_step(model, x, v.bce)  # noqa: E731
    optimizer = make_adam(model, config.train.lr, v.adam)
    return PlainLoop(model, optimizer, loader, torch.compile(loss) if compiled else loss)


def trainer_epoch(trainer: Trainer, v: Variant) -> int:
    """One epoch of the Trainer, its metrics taken every step as a job takes them; the images it trained on."""
    return trainer.config.train.batch_size * sum(1 for _ in trainer_steps(trainer, v))


def trainer_steps(trainer: Trainer, v: Variant) -> Iterator[object]:
    """One epoch of the Trainer, a step at a time (the plain loop, with its own loss, is untouched by loss_as)."""
    with loss_as(v.bce):
        yield from trainer.steps()


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float  # this process's CPU time: steadier than the wall under other processes' load


def timed(fn: Callable[[], object]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu)


def matmul_timing() -> Timing:
    """The best of MATMUL_REPS products of two MATMUL_N-square float32 matrices."""
    a, b = torch.randn(MATMUL_N, MATMUL_N), torch.randn(MATMUL_N, MATMUL_N)
    a @ b
    times = [timed(lambda: a @ b) for _ in range(MATMUL_REPS)]
    return Timing(min(t.wall_s for t in times), min(t.cpu_s for t in times))


MATMUL_FLOP = 2 * MATMUL_N**3


def step_flop(config: RunConfig, data: TrainingData) -> int:
    """FLOPs of one Trainer step, forward and backward, as FlopCounterMode counts them."""
    trainer = Trainer(config, data.train.images, data.normalizer)
    with FlopCounterMode(display=False) as counter:
        trainer.train_on(torch.arange(config.train.batch_size))
    return counter.get_total_flops()


def bench_config(batch_size: int, steps: int, threads: int) -> RunConfig:
    """The app's default conv VAE on sprites, one epoch of `steps` batches."""
    return make_run_config(DataConfig(n_train=batch_size * steps), ModelConfig(), LossConfig(likelihood="bernoulli"),
                           TrainConfig(epochs=1, batch_size=batch_size, num_threads=threads))


@dataclass
class Rounds:
    """Per-round measurements of one variant: GFLOP/s (wall, CPU time) and the fractions of that round's matmul."""
    trainer: list[float]
    trainer_cpu: list[float]
    plain: list[float]
    fraction: list[float]
    fraction_cpu: list[float]
    ratio: list[float]  # Trainer / plain loop, images per second by the wall clock
    ratio_cpu: list[float]  # the same by this process's CPU time


def new_rounds() -> Rounds:
    return Rounds([], [], [], [], [], [], [])


def record(r: Rounds, flop: int, matmul: Timing, trainer: Timing) -> None:
    """flop: one epoch's FLOPs."""
    r.trainer.append(flop / trainer.wall_s / 1e9)
    r.trainer_cpu.append(flop / trainer.cpu_s / 1e9)
    r.fraction.append(r.trainer[-1] / (MATMUL_FLOP / matmul.wall_s / 1e9))
    r.fraction_cpu.append(r.trainer_cpu[-1] / (MATMUL_FLOP / matmul.cpu_s / 1e9))


def record_pair(r: Rounds, flop: int, matmul: Timing, trainer: StepTimes, plain: StepTimes) -> None:
    """A paired epoch (Trainer and plain loop train the same images): speeds, and the round's ratios."""
    record(r, flop, matmul, trainer.total())
    r.plain.append(flop / plain.total().wall_s / 1e9)
    r.ratio.append(statistics.median(p / t for p, t in zip(plain.wall, trainer.wall)))
    r.ratio_cpu.append(statistics.median(p / t for p, t in zip(plain.cpu, trainer.cpu)))


@dataclass
class StepTimes:
    """One loop's steps in a paired epoch, seconds each."""
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def total(self) -> Timing:
        return Timing(sum(self.wall), sum(self.cpu))


def take_step(steps: Iterator[object], times: StepTimes) -> bool:
    """Time the loop's next step; False once its epoch is over."""
    wall, cpu = time.perf_counter(), time.process_time()
    if next(steps, None) is None:
        return False
    times.wall.append(time.perf_counter() - wall)
    times.cpu.append(time.process_time() - cpu)
    return True


def paired_epoch(trainer: Iterator[object], plain: Iterator[object], plain_first: bool
                 ) -> tuple[StepTimes, StepTimes]:
    """The two loops' epochs (as many steps each) a step of each in turn, the given one first in every pair."""
    t, p = StepTimes(), StepTimes()
    pair = ((plain, p), (trainer, t)) if plain_first else ((trainer, t), (plain, p))
    while all([take_step(steps, times) for steps, times in pair]):  # a list: both take their step
        pass
    return t, p


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


@dataclass(frozen=True)
class Spread:
    """Per-round ratios over the rounds."""
    median: float
    low: float  # lower quartile
    high: float  # upper quartile
    least: float
    most: float

    def words(self) -> str:
        return (f"{self.median:.3f} (quartiles {self.low:.3f} to {self.high:.3f}, range {self.least:.3f} to "
                f"{self.most:.3f})")


def spread(ratios: list[float]) -> Spread:
    one = len(ratios) == 1  # a single round is its own quartiles (quantiles needs two)
    low, _, high = ratios * 3 if one else statistics.quantiles(ratios, n=4, method="inclusive")
    return Spread(statistics.median(ratios), low, high, min(ratios), max(ratios))


def against_bound(s: Spread, bound: float = TRAINER_BOUND) -> BoundVerdict:
    """The middle half of the rounds above the bound, below it, or on both sides (then noise decides a median)."""
    if s.low >= bound:
        return "meets"
    return "misses" if s.high < bound else "cannot settle"


def verdict_words(s: Spread, clock: str, bound: float = TRAINER_BOUND) -> str:
    found = against_bound(s, bound)
    says = {"meets": f"meets the bound {bound:g}", "misses": f"misses the bound {bound:g}",
            "cannot settle": f"straddles {bound:g}: these rounds cannot settle whether it meets the bound"}[found]
    return f"Trainer / plain loop by {clock}: {s.words()}; {says}"


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def compare_variants(config: RunConfig, data: TrainingData, steps: int, rounds: int
                     ) -> tuple[list[float], list[Rounds]]:
    """Every variant as the Trainer and as a plain loop, interleaved with the matmul, `rounds` times; the matmul's
    GFLOP/s each round, and each variant's rounds."""
    flop = step_flop(config, data) * steps
    trainers = [variant_trainer(config, data, v) for v in VARIANTS]
    plains = [plain_loop(config, data, v) for v in VARIANTS]
    for trainer, plain, v in zip(trainers, plains, VARIANTS):  # warm up
        trainer_epoch(trainer, v), plain.epoch()
    matmul, results = [], [new_rounds() for _ in VARIANTS]
    for i in range(rounds):
        mm = matmul_timing()
        matmul.append(MATMUL_FLOP / mm.wall_s / 1e9)
        for trainer, plain, v, r in zip(trainers, plains, VARIANTS, results):
            record_pair(r, flop, mm, *paired_epoch(trainer_steps(trainer, v), plain.steps(), i % 2 == 1))
    return matmul, results


def print_variants(matmul: list[float], results: list[Rounds]) -> None:
    print(f"matmul {MATMUL_N}^3 float32: {median(matmul):.1f} GFLOP/s (median of the rounds' best of {MATMUL_REPS})")
    print(f"{'variant':<24} {'Trainer GFLOP/s':>15} {'x matmul':>9} {'x matmul (CPU s)':>17} "
          f"{'plain GFLOP/s':>14} {'Trainer/plain':>14} {'(quartiles)':>13} {'by CPU s':>9}")
    for v, r in zip(VARIANTS, results):
        s = spread(r.ratio)
        print(f"{v.name:<24} {median(r.trainer):15.1f} {median(r.fraction):9.3f} {median(r.fraction_cpu):17.3f} "
              f"{median(r.plain):14.1f} {s.median:14.3f} {s.low:6.3f}-{s.high:.3f} {median(r.ratio_cpu):9.3f}")
    shipped = results[-1]
    print(f"{VARIANTS[-1].name}, each round the median over its pairs of steps (a step of each loop in turn):")
    print("  " + verdict_words(spread(shipped.ratio), "the wall clock"))
    print("  " + verdict_words(spread(shipped.ratio_cpu), "CPU time (steadier under other processes' load)"))


def batch_sizes(sizes: list[int], steps: int, threads: int, rounds: int) -> None:
    """The shipped Trainer at other batch sizes: GFLOP/s and the fraction of the matmul."""
    for bs in sizes:
        config = bench_config(bs, steps, threads)
        data = prepare_data(config)
        flop, r = step_flop(config, data) * steps, new_rounds()
        trainer = Trainer(config, data.train.images, data.normalizer)
        trainer_epoch(trainer, VARIANTS[-1])
        for _ in range(rounds):
            mm = matmul_timing()
            record(r, flop, mm, timed(lambda: trainer_epoch(trainer, VARIANTS[-1])))
        print(f"batch {bs:>4}: Trainer {median(r.trainer):6.1f} GFLOP/s, {median(r.fraction):.3f} x matmul")


def compile_payback(config: RunConfig, data: TrainingData, steps: int, rounds: int) -> None:
    """torch.compile on the plain loop (shipped choices): compile seconds, speed, and when it pays back."""
    flop = step_flop(config, data) * steps
    eager, compiled = plain_loop(config, data, VARIANTS[-1]), plain_loop(config, data, VARIANTS[-1], compiled=True)
    eager.epoch()
    first = timed(compiled.epoch).wall_s
    e, c = [], []
    for _ in range(rounds):
        e.append(timed(eager.epoch).wall_s)
        c.append(timed(compiled.epoch).wall_s)
    te, tc = median(e), median(c)
    compile_s = first - tc
    gain = 1 - tc / te
    pays = f"after {compile_s / gain:.0f} s of training" if gain > 0 else "never (no faster than eager)"
    print(f"torch.compile: {compile_s:.1f} s to compile; plain loop {flop / te / 1e9:.1f} GFLOP/s eager, "
          f"{flop / tc / 1e9:.1f} compiled ({gain:+.1%}); pays back {pays} (a classroom run: {CLASSROOM_RUN_S} s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30, help="steps per timed epoch")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the app trains on 1)")
    ap.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    ap.add_argument("--batch-sizes", default="", help="also the shipped Trainer at these, e.g. 32,128,256")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (over a minute to compile)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{load()}; threads={args.threads}, batch {args.batch_size}, {args.steps} steps a round, "
          f"{args.rounds} rounds")
    config = bench_config(args.batch_size, args.steps, args.threads)
    data = prepare_data(config)
    print(f"default conv VAE: {step_flop(config, data) / 1e9:.3f} GFLOP a step (forward + backward)")
    print_variants(*compare_variants(config, data, args.steps, args.rounds))
    if args.batch_sizes:
        batch_sizes([int(b) for b in args.batch_sizes.split(",")], args.steps, args.threads, args.rounds)
    if args.compile:
        compile_payback(config, data, args.steps, args.rounds)
    print(f"at the end: {load()}")


if __name__ == "__main__":
    main()
