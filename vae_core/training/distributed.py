"""Training across processes under torchrun: DistributedDataParallel, gloo on CPUs and nccl on GPUs.

Every process loads the data and draws the same batch order (one seeded permutation per epoch). A run's
batch_size is the whole batch, N processes x B each (the CLI multiplies the per-process --batch-size by N); each
batch is split in N contiguous parts, rank r taking part r, so over an epoch each rank reads its own shard.
Each process draws the whole batch's z noise and keeps its rows, pools the batch statistics a loss may use
(sigma*, free bits) and scales its loss so that DDP's average of the gradients is the whole batch's: N processes
follow the trajectory of one process on the whole batches, to float rounding. Rank 0 alone evaluates, prints
and saves. BatchNorm statistics are each process's own on a CPU (SyncBatchNorm needs a GPU), pooled on GPUs.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from vae_core.config import LossConfig, RunConfig
from vae_core.data.normalize import Normalizer
from vae_core.model.objective import LossTerms, loss_terms
from vae_core.model.vae import VAE, BatchShare
from vae_core.training.trainer import BatchMeans, Trainer

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")  # what torchrun sets in each process it starts


@dataclass(frozen=True)
class Dist:
    """This process's place among those torchrun started."""
    rank: int
    world: int
    local_rank: int  # its index on this machine: which GPU it takes

    @property
    def main(self) -> bool:
        """Rank 0: the process that evaluates, prints and saves."""
        return self.rank == 0


def dist_from_env() -> Dist | None:
    """The place torchrun gave this process (RANK, WORLD_SIZE, LOCAL_RANK); None when it runs on its own."""
    if not all(k in os.environ for k in TORCHRUN_ENV):
        return None
    return Dist(*(int(os.environ[k]) for k in TORCHRUN_ENV))


def join(dist: Dist, device: torch.device) -> torch.device:
    """Join the process group (nccl for CUDA, else gloo); the device this process trains on."""
    if device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
    if not tdist.is_initialized():
        tdist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=dist.rank, world_size=dist.world)
    return device


def leave() -> None:
    """Leave the process group together: a rank that tore gloo down while rank 0 still evaluated and saved was
    seen to abort ("terminate called without an active exception") on a loaded machine."""
    if tdist.is_initialized():
        tdist.barrier()
        tdist.destroy_process_group()


def total(t: torch.Tensor) -> torch.Tensor:
    """t summed over every process (a copy, without gradient)."""
    t = t.detach().clone()
    tdist.all_reduce(t)
    return t


def rank0_clock(clock: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Rank 0's clock (LockstepTrainer.clock), for every process: they stop at the same step and follow the same
    learning-rate schedule, though their own clocks need not agree."""
    clock = clock.to(device)
    tdist.broadcast(clock, src=0)
    return clock.cpu()


def share_of(indices: torch.Tensor, dist: Dist) -> tuple[torch.Tensor, BatchShare]:
    """This rank's contiguous part of a whole batch's indices (parts differ in size by at most one)."""
    parts = torch.tensor_split(indices, dist.world)
    start = sum(len(p) for p in parts[:dist.rank])
    mine = parts[dist.rank]
    return mine, BatchShare(start, len(mine), len(indices), dist.world, total)


def check_batches(n_images: int, batch_size: int, world: int) -> None:
    """Every process needs an image of every batch, the last one of an epoch included."""
    last = n_images % batch_size or batch_size
    if min(batch_size, last) < world:
        raise ValueError(f"With {world} processes every batch needs at least {world} images, but the last batch of "
                         f"each epoch of {n_images} images would have {last}: change --batch-size.")


class _Objective(nn.Module):
    """The training loss as one module, so DDP's forward covers every z sample and pooled statistic."""

    def __init__(self, model: VAE, loss: LossConfig):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, x: torch.Tensor, step: int, generator: torch.Generator, share: BatchShare) -> LossTerms:
        return loss_terms(self.model, x, self.loss, step, generator, share)


class DistributedTrainer(Trainer):
    """A Trainer that takes its share of each whole batch and trains through DistributedDataParallel."""

    def __init__(self, config: RunConfig, images: torch.Tensor, normalizer: Normalizer, *, dist: Dist,
                 device: str | torch.device):
        check_batches(len(images), config.train.batch_size, dist.world)
        super().__init__(config, images, normalizer, device=device)
        device = self.device
        if device.type == "cuda":
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        self.dist = dist
        ids = [device] if device.type == "cuda" else None
        self.ddp = DistributedDataParallel(_Objective(self.model, config.loss), device_ids=ids)
        self._share: BatchShare | None = None

    def train_on(self, indices: torch.Tensor) -> LossTerms:
        mine, self._share = share_of(indices, self.dist)
        return self.train_step(self.batch(mine))

    def _terms(self, x: torch.Tensor) -> LossTerms:
        return self.ddp(x, self.step, self.generator, self._share)

    def _means(self, terms: LossTerms) -> BatchMeans:
        """The whole batch's means: one all-reduce."""
        size, whole = len(terms.recon_nats), self._share.whole
        parts = torch.cat([terms.loss.detach().view(1) / self.dist.world, terms.recon_nats.detach().sum().view(1),
                           terms.kl_nats.detach().sum().view(1), terms.kl_per_dim.detach() * size])
        pooled = total(parts.float())
        return BatchMeans(pooled[0], pooled[1] / whole, pooled[2] / whole, pooled[3:] / whole)


def trainer_factory(dist: Dist):
    """What LockstepTrainer builds its trainer with, under torchrun."""
    def make(config: RunConfig, images: torch.Tensor, normalizer: Normalizer, device: str | torch.device) -> Trainer:
        return DistributedTrainer(config, images, normalizer, dist=dist, device=device)
    return make
