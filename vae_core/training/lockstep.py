"""Lockstep training: the variants of a family fed the same batches in the same order, one Trainer each.

Each variant starts from the weights and draws the z noise that the same config trained alone would, so a
variant trained in lockstep equals it trained alone, bit for bit. A family on several seeds trains as one
lockstep group per seed, the groups taking their steps in turn (GroupedLockstep).
"""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal, Sequence

import torch

from vae_core.config import RunConfig
from vae_core.data.normalize import Normalizer
from vae_core.training.sweeps import check_lockstep, lockstep_groups
from vae_core.training.trainer import (StepMetrics, Trainer, TrainingDiverged, batch_indices, run_progress, skip_epochs,
                                       steps_per_epoch)

LockstepStatus = Literal["training", "refused", "diverged"]


class NothingToTrain(ValueError):
    """Every variant was refused; `reasons` has one sentence per variant."""

    def __init__(self, reasons: Sequence[str]):
        self.reasons = tuple(reasons)
        super().__init__(reasons[0] if len(reasons) == 1 else "Every variant was refused: " + " ".join(reasons))


@dataclass(frozen=True)
class LockstepStep:
    """One shared batch, one optimizer step for each variant still training."""
    step: int  # 1, 2, ...: batches seen by the family
    metrics: tuple[StepMetrics | None, ...]  # one per variant; None where it is refused or has diverged
    diverged: tuple[int, ...]  # the variants that diverged at this step (LockstepTrainer.messages says why)


class LockstepTrainer:
    """One Trainer per variant, fed the same batches in the same order from one shared generator.

    A variant that Trainer refuses (e.g. a Bernoulli likelihood on symmetric data) is recorded with its
    reason and left out; one that diverges is marked and the others go on. A plain loop over the
    variants: batching them (torch.func.vmap) would change the arithmetic, and a variant trained here
    must equal it trained alone; bench/bench_sweep.py measures the loop against training them in turn.
    """

    def __init__(self, configs: Sequence[RunConfig], images: torch.Tensor, normalizers: Sequence[Normalizer],
                 device: str | torch.device = "cpu", make_trainer: Callable[..., Trainer] | None = None,
                 agree: Callable[[torch.Tensor], torch.Tensor] = lambda clock: clock):
        check_lockstep(configs)
        self.configs = tuple(configs)
        self.images = images  # (N, C, H, W) uint8, shared
        self.make_trainer = make_trainer or Trainer  # Trainer, or (under torchrun) a DistributedTrainer
        self.agree = agree  # the clock every process goes by: its own, or (under torchrun) rank 0's
        self.trainers: list[Trainer | None] = []
        self.status: list[LockstepStatus] = []
        self.messages: list[str] = []  # why a variant was refused or diverged; "" while it trains
        for config, normalizer in zip(configs, normalizers):
            self._add(config, normalizer, device)
        if not self.live:
            raise NothingToTrain(self.messages)
        self.step = 0

    def _add(self, config: RunConfig, normalizer: Normalizer, device: str | torch.device) -> None:
        try:
            trainer, status, message = self.make_trainer(config, self.images, normalizer, device=device), "training", ""
        except ValueError as e:  # refused before training: say why, keep the others
            trainer, status, message = None, "refused", str(e)
        self.trainers.append(trainer)
        self.status.append(status)
        self.messages.append(message)

    @property
    def live(self) -> tuple[int, ...]:
        """The variants still training."""
        return tuple(i for i, s in enumerate(self.status) if s == "training")

    def steps(self) -> Iterator[LockstepStep]:
        """Train every variant for the shared epochs or time budget, or until none is left."""
        cfg = self.configs[0].train
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        order = torch.Generator().manual_seed(cfg.seed)  # as Trainer.steps seeds it: the same batches
        per_epoch = steps_per_epoch(len(self.images), cfg.batch_size)
        first, done = divmod(self.step, per_epoch)  # a resumed run goes on where it stopped
        skip_epochs(len(self.images), order, first)
        start = time.perf_counter()
        for i in self.live:
            self.trainers[i].model.train()
        for _ in range(first, cfg.epochs):
            for indices in itertools.islice(batch_indices(len(self.images), cfg.batch_size, order), done, None):
                over, progress = self.agree(self.clock(start, per_epoch)).tolist()
                if over or not self.live:
                    return
                for i in self.live:
                    self.trainers[i].set_progress(progress)
                yield self.train_step(indices, per_epoch, start)
            done = 0

    def clock(self, start: float, per_epoch: int) -> torch.Tensor:
        """(2,) whether the time is up (1 or 0), and how far through the run the next step is (0 to 1)."""
        cfg, elapsed = self.configs[0].train, time.perf_counter() - start
        over = cfg.time_budget_s is not None and elapsed >= cfg.time_budget_s
        return torch.tensor([float(over), run_progress(cfg, self.step, per_epoch, elapsed)], dtype=torch.float64)

    def train_step(self, indices: torch.Tensor, per_epoch: int, start: float) -> LockstepStep:
        """One step of every live variant on the images at `indices`, each normalized its own way."""
        metrics: list[StepMetrics | None] = [None] * len(self.trainers)
        diverged = []
        for i in self.live:
            trainer, t0 = self.trainers[i], time.perf_counter()
            try:
                terms = trainer.train_on(indices)
            except TrainingDiverged as e:  # its last good weights are back; the others go on
                self.status[i], self.messages[i] = "diverged", str(e)
                diverged.append(i)
                continue
            metrics[i] = trainer.metrics(terms, len(indices), per_epoch, t0, start)
        self.step += 1
        return LockstepStep(self.step, tuple(metrics), tuple(diverged))


class GroupedLockstep:
    """A family on several seeds: one LockstepTrainer per seed's group, each on its own images, taking their steps
    in turn. Every trainer draws from its own seeded generators, so the interleaving changes no variant's numbers."""

    def __init__(self, configs: Sequence[RunConfig], images: Sequence[torch.Tensor],
                 normalizers: Sequence[Normalizer], device: str | torch.device = "cpu", **lockstep: Any):
        """images: each variant's (N, C, H, W) uint8 training images (a group's variants share theirs)."""
        self.groups = lockstep_groups(configs)
        self.parts: list[LockstepTrainer | None] = []
        self._refused: dict[int, str] = {}
        for group in self.groups:
            try:
                self.parts.append(LockstepTrainer([configs[i] for i in group], images[group[0]],
                                                  [normalizers[i] for i in group], device, **lockstep))
            except NothingToTrain as e:  # this seed's variants all refused: the other seeds go on
                self.parts.append(None)
                self._refused.update(zip(group, e.reasons))
        if not any(self.parts):
            raise NothingToTrain(self.messages)

    def _each(self, attribute: str, when_refused: Callable[[int], Any]) -> list[Any]:
        """A per-variant attribute of the groups' trainers, in the family's order (a refused group's: when_refused)."""
        out: list[Any] = [None] * sum(map(len, self.groups))
        for group, part in zip(self.groups, self.parts):
            for j, i in enumerate(group):
                out[i] = getattr(part, attribute)[j] if part else when_refused(i)
        return out

    @property
    def trainers(self) -> list[Trainer | None]:
        return self._each("trainers", lambda i: None)

    @property
    def status(self) -> list[LockstepStatus]:
        return self._each("status", lambda i: "refused")

    @property
    def messages(self) -> list[str]:
        return self._each("messages", self._refused.__getitem__)

    @property
    def live(self) -> tuple[int, ...]:
        return tuple(i for i, s in enumerate(self.status) if s == "training")

    def steps(self) -> Iterator[LockstepStep]:
        """Each group's next step in turn, numbered and indexed as the family's, until every group has ended."""
        running = [(group, part.steps()) for group, part in zip(self.groups, self.parts) if part]
        while running:
            for entry in list(running):
                group, steps = entry
                step = next(steps, None)
                if step is None:
                    running.remove(entry)
                    continue
                yield self._widened(group, step)

    def _widened(self, group: tuple[int, ...], step: LockstepStep) -> LockstepStep:
        metrics: list[StepMetrics | None] = [None] * sum(map(len, self.groups))
        for j, i in enumerate(group):
            metrics[i] = step.metrics[j]
        return LockstepStep(step.step, tuple(metrics), tuple(group[j] for j in step.diverged))
