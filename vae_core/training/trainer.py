"""Training: a Trainer that yields per-step metrics, free of any UI concern.

The Trainer keeps the data as uint8 in memory and normalizes each batch on the fly (a float copy of
the whole set would cost 4x the memory for no speed gain on these models).
"""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Iterator

import torch

from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.data.base import ImageDataset
from vae_core.data.datasets import dataset_shape, load_splits, vector_features
from vae_core.data.normalize import Normalizer, run_normalizer
from vae_core.data.vector_normalize import VectorNormalizer
from vae_core.data.vectors.dataset import VectorDataset
from vae_core.model.compatibility import Verdict, compatibility
from vae_core.model.likelihoods import log_sigma_of_mse
from vae_core.model.objective import LossTerms, loss_terms
from vae_core.model.vae import VAE, build_model
from vae_core.training.resume import TrainState


@dataclass(frozen=True)
class StepMetrics:
    step: int
    epoch: float  # fractional: 1.5 = half way through the second epoch
    recon_nats: float  # batch mean of -log p(x|z), nats/image
    kl_nats: float  # batch mean KL, nats/image
    elbo_nats: float  # batch mean ELBO, nats/image
    loss: float  # the training loss backward() saw
    beta: float  # the KL coefficient in effect at this step (after the schedule)
    images_per_s: float  # throughput of this step
    elapsed_s: float  # wall time since training started
    kl_per_dim: tuple[float, ...]  # batch mean KL of each latent dimension, nats
    sigma: float | None  # the decoder's shared sigma (Gaussian likelihoods), normalized units


@dataclass(frozen=True)
class BatchMeans:
    """A step's training loss and per-image batch means, float32 nats, without gradients."""
    loss: torch.Tensor  # ()
    recon: torch.Tensor  # ()
    kl: torch.Tensor  # ()
    kl_per_dim: torch.Tensor  # (L,)


@dataclass(frozen=True)
class StepValues:
    """A step's batch means as Python floats, nats."""
    loss: float
    recon: float
    kl: float
    kl_per_dim: tuple[float, ...]


def read_means(means: BatchMeans) -> StepValues:
    """The means in one read from the device (a GPU waits once a step, not once a number): the same floats as
    .item() on each (cat only places float32 values side by side)."""
    flat = torch.cat([means.loss.reshape(1), means.recon.reshape(1), means.kl.reshape(1),
                      means.kl_per_dim.reshape(-1)]).tolist()
    return StepValues(flat[0], flat[1], flat[2], tuple(flat[3:]))


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the model holds the last weights that gave a finite loss."""

    def __init__(self, step: int, value: float, lr: float, normalizer: Normalizer | VectorNormalizer | None = None):
        self.step = step
        super().__init__(
            f"Training diverged at step {step}: the loss became {value}. The weights from the last "
            f"finite step were kept. " + (unscaled_input_hint(normalizer) or
                                           f"Try a lower learning rate (it was {lr:g}), a larger fixed sigma, "
                                           "or a different output activation."))


UNSCALED_INPUT = 100.0  # |normalized value| past which an encoder's log-variance can overflow exp at its first steps


def unscaled_input_hint(normalizer: Normalizer | VectorNormalizer | None) -> str | None:
    """Why a run on vectors fed far from unit scale diverges, and the fix; None where its inputs are in scale."""
    if normalizer is None:
        return None
    largest = max(abs(v) for v in normalizer.value_range())
    if largest <= UNSCALED_INPUT:
        return None
    return (f"The encoder was fed values as large as {largest:.3g} ({normalizer.kind} normalization): weights "
            "that start at unit scale turn them into log-variances whose exponential overflows. Pick "
            "normalization zscore (each feature to mean 0, std 1), then compare runs in nats per raw row.")


@dataclass(frozen=True)
class TrainingData:
    train: ImageDataset | VectorDataset
    test: ImageDataset | VectorDataset
    normalizer: Normalizer | VectorNormalizer  # fitted on the training split


def prepare_data(config: RunConfig) -> TrainingData:
    """Load both splits and fit the normalization on the training split."""
    train, test = load_splits(config.data)
    return TrainingData(train, test, run_normalizer(config.data, train.stored))


def check_compatibility(config: RunConfig, normalizer: Normalizer) -> Verdict:
    """The verdict for this run's activation x normalization x likelihood; raise if it is refused."""
    verdict = compatibility(config.model.output_activation, config.data.normalization,
                            config.loss.likelihood, normalizer.value_range())
    if verdict.status == "refused":
        raise ValueError(verdict.reason)
    return verdict


NOISE_SEED_OFFSET = 7919  # the z noise's generator is seeded apart from the batch order's
# gaussian_optimal's sigma* is fitted on at most this many training images (a seeded subset beyond it): with
# thousands of pixels each, its standard error is still a fraction of a percent of sigma*, and the pass costs
# about a second on a CPU (all 20,000 sprites: 4 s, for each such model of a lab's family).
SIGMA_FIT_MAX_IMAGES = 5_000
SIGMA_FIT_BATCH = 500


def batch_indices(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    """One epoch of image indices in a seeded random order, a batch at a time (what a family shares)."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def skip_epochs(n: int, generator: torch.Generator, epochs: int) -> None:
    """Advance the batch-order generator past `epochs` epochs: the draws batch_indices makes for them."""
    for _ in range(epochs):
        torch.randperm(n, generator=generator)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return math.ceil(n / batch_size)


def run_progress(cfg: TrainConfig, step: int, per_epoch: int, elapsed_s: float) -> float:
    """How far through its run a step (0-based) is, from 0: by its epochs' steps, or by the time budget where
    that is further (a time budget counts this job's seconds: a resumed run starts its budget anew)."""
    progress = step / (cfg.epochs * per_epoch)
    if cfg.time_budget_s is not None:
        progress = max(progress, elapsed_s / cfg.time_budget_s)
    return min(progress, 1.0)


def lr_factor(cfg: TrainConfig, progress: float) -> float:
    """The schedule's multiplier on the learning rate at a point of the run (cosine: Loshchilov & Hutter 2017)."""
    return 0.5 * (1 + math.cos(math.pi * progress)) if cfg.lr_schedule == "cosine" else 1.0


class Trainer:
    """Owns the model and optimizer; `steps()` trains and yields a StepMetrics after every step.

    Randomness comes from the seed only, never from torch's global state: the initial weights from
    `config.train.seed`, the batch order from a generator seeded with it, and the z noise from
    `generator` (by default seeded with it plus NOISE_SEED_OFFSET). Two trainers whose configs differ
    only in, say, the output activation start from the same weights and see the same batches and noise.
    """

    def __init__(self, config: RunConfig, images: torch.Tensor, normalizer: Normalizer,
                 model: VAE | None = None, generator: torch.Generator | None = None,
                 device: str | torch.device = "cpu"):
        self.verdict = check_compatibility(config, normalizer)  # refused: raises; else carried to the job's page
        self.config = config
        self.images = images  # (N, C, H, W) uint8, vectors (N, D) float32 raw rows; on the CPU
        self.normalizer = normalizer
        self.device = torch.device(device)
        loss = config.loss
        self.model = (model or build_model(config.model, loss.likelihood, loss.sigma, seed=config.train.seed))
        self.model.set_sigma_floor(normalizer.sigma_floor())
        on_cpu = self.device.type == "cpu"
        self.model.to(self.device, memory_format=self.model.cpu_memory_format if on_cpu else torch.contiguous_format)
        self.generator = generator or torch.Generator(self.device).manual_seed(config.train.seed + NOISE_SEED_OFFSET)
        # fused: one pass over each parameter, not a dozen small ops (1.7 ms of a 30 ms CPU step, 0.8 fused); GPUs
        # keep their default
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.train.lr, fused=on_cpu or None)
        self.step = 0
        self.values: StepValues | None = None  # the last step's batch means, as train_step read them
        # Parameters and float buffers (BatchNorm statistics, sigma*): a NaN in either spoils a checkpoint.
        # state_dict() tensors share storage with the model, and every update is in place.
        self._live = [t for t in self.model.state_dict().values() if t.is_floating_point()]
        self._good = [t.clone() for t in self._live]

    def batch(self, indices: torch.Tensor) -> torch.Tensor:
        """The images (vectors: rows) at `indices`, normalized, on the trainer's device: (B, C, H, W) or (B, D)."""
        return self.normalizer.from_stored(self.images[indices]).to(self.device)

    def batches(self, generator: torch.Generator) -> Iterator[torch.Tensor]:
        """One epoch of normalized batches in a seeded random order."""
        for indices in batch_indices(len(self.images), self.config.train.batch_size, generator):
            yield self.batch(indices)

    def steps(self) -> Iterator[StepMetrics]:
        """Train for the configured epochs or time budget, whichever ends first."""
        cfg = self.config.train
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        order = torch.Generator().manual_seed(cfg.seed)
        per_epoch = steps_per_epoch(len(self.images), cfg.batch_size)
        start = time.perf_counter()
        self.model.train()
        for _ in range(cfg.epochs):
            for x in self.batches(order):
                if cfg.time_budget_s is not None and time.perf_counter() - start >= cfg.time_budget_s:
                    return
                t0 = time.perf_counter()
                self.set_progress(run_progress(cfg, self.step, per_epoch, t0 - start))
                metrics = self.train_step(x)
                yield self.metrics(metrics, len(x), per_epoch, t0, start)

    def set_progress(self, progress: float) -> None:
        """The learning rate for the next step, at this point of the run (0 to 1): lr x the schedule's factor."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.train.lr * lr_factor(self.config.train, progress)

    def train_on(self, indices: torch.Tensor) -> LossTerms:
        """One optimizer step on the images at `indices` (a whole batch)."""
        return self.train_step(self.batch(indices))

    def train_step(self, x: torch.Tensor) -> LossTerms:
        """One optimizer step on a normalized batch; raises TrainingDiverged on a non-finite loss."""
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.config.train.precision == "bf16"):
            terms = self._terms(x)
        if self.model.lik.sigma == "optimal":  # the batch's sigma*, for a checkpoint; fit_sigma replaces it at the end
            with torch.no_grad():
                self.model.log_sigma.copy_(terms.out.log_sigma)
        # once a step: under torchrun _means is an all-reduce; the read is the step's one wait for the device
        self.values = values = read_means(self._means(terms))
        if not math.isfinite(values.loss):
            self._restore_good()
            raise TrainingDiverged(self.step + 1, values.loss, self.config.train.lr, self.normalizer)
        self._keep_good()
        self.optimizer.zero_grad(set_to_none=True)
        terms.loss.backward()
        self.optimizer.step()
        self.step += 1
        return terms

    def _terms(self, x: torch.Tensor) -> LossTerms:
        return loss_terms(self.model, x, self.config.loss, self.step, self.generator)

    def _means(self, terms: LossTerms) -> BatchMeans:
        """The step's batch means (DistributedTrainer pools them over its processes)."""
        return BatchMeans(terms.loss.detach(), terms.recon_nats.detach().mean(), terms.kl_nats.detach().mean(),
                          terms.kl_per_dim.detach())

    def state(self) -> TrainState:
        """What resuming needs beyond the weights: the step, the optimizer's moments, the z noise."""
        return TrainState(self.step, self.generator.get_state(), self.optimizer.state_dict())

    def resume(self, weights: dict[str, torch.Tensor], state: TrainState) -> None:
        """Continue a saved run: its weights, then its optimizer, z noise and step; ValueError if they do not fit."""
        try:
            self.model.load_state_dict(weights)
            _check_moments(self.optimizer, state.optimizer)
            _load_moments(self.optimizer, state.optimizer)
            self.generator.set_state(state.noise)
        except (ValueError, RuntimeError, KeyError, TypeError) as e:
            raise ValueError(f"The saved training state does not fit this run's model ({e}).") from None
        self.step = state.step
        self._keep_good()

    def fit_sigma(self) -> None:
        """gaussian_optimal: keep the sigma* of the whole training set, not the last batch's (which varies by
        several percent from batch to batch); other likelihoods: nothing. Call it before evaluating or saving."""
        if self.model.lik.sigma != "optimal":
            return
        log_sigma = fit_optimal_log_sigma(self.model, self.images, self.normalizer, self.config.train.seed)
        with torch.no_grad():
            self.model.log_sigma.copy_(log_sigma)

    def _keep_good(self) -> None:
        with torch.no_grad():  # these weights just gave a finite loss: the fallback if the next ones do not
            torch._foreach_copy_(self._good, self._live)

    def _restore_good(self) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self._live, self._good)

    def metrics(self, terms: LossTerms, batch: int, per_epoch: int, t0: float, start: float) -> StepMetrics:
        """The StepMetrics of the step just taken (t0: when it began; start: when training began)."""
        now = time.perf_counter()
        log_sigma = self.model.decoder_log_sigma()  # after the step: the sigma it learned (a second read, if any)
        v = self.values
        return StepMetrics(
            step=self.step, epoch=self.step / per_epoch, recon_nats=v.recon, kl_nats=v.kl, elbo_nats=-(v.recon + v.kl),
            loss=v.loss, beta=terms.beta, images_per_s=batch / max(now - t0, 1e-9), elapsed_s=now - start,
            kl_per_dim=v.kl_per_dim, sigma=None if log_sigma is None else math.exp(log_sigma.item()))


def _check_moments(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Every saved moment has its parameter's shape (load_state_dict would accept a wrong one until a step)."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, values in saved["state"].items():
        for name, t in values.items():
            if t.dim() and (index >= len(params) or t.shape != params[index].shape):
                raise ValueError(f"optimizer state {index}.{name} has shape {tuple(t.shape)}")


def _load_moments(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """The saved moments, in their parameters' layout (a saved state is contiguous), under this optimizer's own
    implementation (fused or not: the saved groups carry the saving run's choice): a resumed run then takes the
    straight run's steps exactly."""
    own = [{k: group[k] for k in ("fused", "foreach")} for group in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, kind in zip(optimizer.param_groups, own):
        group.update(kind)
        for p in group["params"]:
            _lay_out_like(optimizer.state.get(p, {}), p)


def _lay_out_like(moments: dict[str, torch.Tensor], param: torch.Tensor) -> None:
    for name, t in moments.items():
        if t.shape == param.shape:  # not the scalar step
            moments[name] = torch.empty_like(param).copy_(t)


@torch.no_grad()
def fit_optimal_log_sigma(model: VAE, images: torch.Tensor, normalizer: Normalizer, seed: int) -> torch.Tensor:
    """() log sigma* = log sqrt(mean squared error over every training pixel), floored as in training: one pass
    in eval mode, z drawn as in training (a generator seeded with seed + NOISE_SEED_OFFSET)."""
    device = model.log_sigma.device
    generator = torch.Generator(device).manual_seed(seed + NOISE_SEED_OFFSET)
    was_training = model.training
    model.eval()
    sse, count = torch.zeros((), dtype=torch.float64, device=device), 0
    for chunk in _sigma_fit_images(images, seed).split(SIGMA_FIT_BATCH):
        x = normalizer.from_stored(chunk).to(device)  # (B, C, H, W); vectors (B, D)
        sse += (x - model(x, generator).x_hat).double().pow(2).sum()
        count += x.numel()
    model.train(was_training)
    return log_sigma_of_mse(sse / count, model.log_sigma_floor).float()


def _sigma_fit_images(images: torch.Tensor, seed: int) -> torch.Tensor:
    """The training images, or a seeded subset of SIGMA_FIT_MAX_IMAGES of them."""
    if len(images) <= SIGMA_FIT_MAX_IMAGES:
        return images
    return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:SIGMA_FIT_MAX_IMAGES]]


def make_run_config(data: DataConfig, model: ModelConfig, loss: LossConfig, train: TrainConfig) -> RunConfig:
    """Bundle the four parts, taking the model's image shape (vectors: its feature count) from the dataset."""
    if data.kind == "vectors":
        return RunConfig(data, dataclasses.replace(model, features=vector_features(data)), loss, train)
    channels, size = dataset_shape(data)
    return RunConfig(data, dataclasses.replace(model, channels=channels, image_size=size), loss, train)
