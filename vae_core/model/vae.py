"""VAE models: encode -> (mu, logvar), reparameterize, decode, as in PyTorch's VAE example.

ConvVAE: `depth` stride-2 3x3 conv blocks (width, 2*width, ...) down to a small grid, linear heads
for mu and logvar; the decoder mirrors it with transposed convolutions whose output_padding is
chosen so that 28, 32 and 64 pixel inputs come back at exactly their size, the last one giving the
image's channels directly (an extra full-resolution conv cost 4x the decoder's time on a CPU).
MLPVAE: the classic 784-400-20 model (Kingma & Welling 2014; PyTorch's examples/vae); with
hidden_activation="relu" it is that example exactly.
"""
from __future__ import annotations

import dataclasses
import math
import zlib
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from vae_core.config import LikelihoodName, ModelConfig
from vae_core.model.likelihoods import (UNIT_LOG_SIGMA_FLOOR, continuous_bernoulli_mean, likelihood_spec,
                                        optimal_log_sigma)


@dataclass(frozen=True)
class VAEOutput:
    x_hat: torch.Tensor  # (B, C, H, W), vectors (B, D): the decoder's output after its activation, normalized space
    logits: torch.Tensor  # shaped as x_hat: the decoder's pre-activation output
    mu: torch.Tensor  # (B, L)
    logvar: torch.Tensor  # (B, L)
    z: torch.Tensor  # (B, L) one sample of q(z|x)
    log_sigma: torch.Tensor | None  # broadcastable to x_hat: the decoder's sigma (Laplace: scale), if fixed or predicted


@dataclass(frozen=True)
class BatchShare:
    """This process's rows [start, start + size) of a batch of `whole` images split across `world` processes
    (torchrun). Each process draws the whole batch's z noise and keeps its rows, and pools batch statistics
    with `total` (a tensor summed over the processes), so together they compute what one process would."""
    start: int
    size: int
    whole: int
    world: int
    total: Callable[[torch.Tensor], torch.Tensor]


def draw_noise(std: torch.Tensor, generator: torch.Generator | None, share: BatchShare | None) -> torch.Tensor:
    """eps ~ N(0, I) shaped like std (B, L): this process's rows of the whole batch's draw."""
    if share is None:
        return torch.randn(std.shape, generator=generator, dtype=std.dtype, device=std.device)
    eps = torch.randn((share.whole, *std.shape[1:]), generator=generator, dtype=std.dtype, device=std.device)
    return eps[share.start:share.start + share.size]


def _activation(name: str) -> nn.Module:
    return {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "linear": nn.Identity()}[name]


def _hidden(name: str) -> nn.Module:
    return nn.LeakyReLU(0.2) if name == "leaky_relu" else nn.ReLU()


class VAE(nn.Module):
    """Shared machinery; subclasses build `encoder` (x -> features) and `decoder` (z -> logits)."""

    # The weights' layout that trains fastest on a CPU (Trainer); the conv VAE's is channels_last.
    cpu_memory_format = torch.contiguous_format

    def __init__(self, cfg: ModelConfig, likelihood: LikelihoodName, sigma: float = 1.0):
        super().__init__()
        self.cfg = cfg
        self.likelihood = likelihood
        self.lik = likelihood_spec(likelihood)
        # BatchNorm right before the output activation, as some practitioners do (the questions ask why).
        norm = nn.BatchNorm1d(cfg.features) if cfg.features else nn.BatchNorm2d(cfg.channels)
        self.out_norm = norm if cfg.output_norm == "batchnorm" else nn.Identity()
        self.out_act = _activation(cfg.output_activation)
        # Fixed sigma is a buffer (saved with the weights, never trained); learned sigma is a parameter
        # shared by all pixels (sigma-VAE, Rybkin et al. 2021), or one per feature (pixel); gaussian_optimal keeps
        # the training set's.
        log_sigma = torch.tensor(math.log(sigma))
        if self.lik.sigma == "per_feature":
            self.log_sigma = nn.Parameter(log_sigma.expand(self.data_shape).clone())
        elif self.lik.sigma == "learned":
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)
        # Not saved with the weights (persistent=False): it follows from the run's normalization, so a run saved
        # before it existed loads unchanged. Until set_sigma_floor, the unit normalization's.
        floor_shape = (cfg.features,) if cfg.features else (cfg.channels, 1, 1)
        self.register_buffer("log_sigma_floor", torch.full(floor_shape, UNIT_LOG_SIGMA_FLOOR), persistent=False)

    def set_sigma_floor(self, sigma_floor: torch.Tensor) -> None:
        """The smallest sigma per channel, (C, 1, 1) in normalized units (Normalizer.sigma_floor); vectors: per
        feature, (D,) (VectorNormalizer.sigma_floor)."""
        self.log_sigma_floor = torch.log(sigma_floor).to(self.log_sigma_floor)

    @property
    def data_shape(self) -> tuple[int, ...]:
        """One input's shape: (C, H, W) for an image, (D,) for a row of vectors."""
        cfg = self.cfg
        return (cfg.features,) if cfg.features else (cfg.channels, cfg.image_size, cfg.image_size)

    @property
    def out_channels(self) -> int:
        """Decoder output channels (vectors: features): the data's, twice over when the decoder also predicts a
        sigma per pixel."""
        return self.data_shape[0] * (2 if self.lik.sigma == "per_pixel" else 1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)  # (B, F)
        return self.fc_mu(h), self.fc_logvar(h)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                       share: BatchShare | None = None) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I) drawn from `generator` (torch's global one if None)."""
        std = torch.exp(0.5 * logvar)
        return mu + std * draw_noise(std, generator, share)

    def _decode_raw(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.decoder(z)  # (B, out_channels, H, W); vectors (B, out_channels)
        c = self.data_shape[0]
        pixel_log_sigma = None
        floor = self.log_sigma_floor  # (C, 1, 1); vectors (D,)
        if self.lik.sigma == "per_pixel":  # a soft floor keeps sigma above the floor with gradients intact
            pixel_log_sigma = floor + F.softplus(h[:, c:] - floor)
        elif self.lik.sigma == "per_feature":  # (C, H, W) or (D,), the same soft floor
            pixel_log_sigma = floor + F.softplus(self.log_sigma - floor)
        return self.out_norm(h[:, :c]), pixel_log_sigma

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(B, L) -> the pre-activation output (B, C, H, W)."""
        return self._decode_raw(z)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (B, L) -> the mean of p(x|z), (B, C, H, W), in normalized space."""
        return self.mean_of(self.decode_logits(z))

    def mean_of(self, logits: torch.Tensor) -> torch.Tensor:
        """The decoder's pre-activation output -> the mean of p(x|z)."""
        if self.lik.density == "continuous_bernoulli":  # its mean is not its parameter lambda
            return continuous_bernoulli_mean(logits)
        return self.out_act(logits)

    def decode_log_sigma(self, z: torch.Tensor) -> torch.Tensor | None:
        """The decoder's log sigma for codes z, broadcastable to (B, C, H, W); None where it has none."""
        pixel_log_sigma = self._decode_raw(z)[1]
        return pixel_log_sigma if pixel_log_sigma is not None else self.decoder_log_sigma()

    def decoder_log_sigma(self) -> torch.Tensor | None:
        """The shared sigma (Laplace: scale); None for the Bernoulli families and the per-pixel and per-feature
        Gaussians (decode_log_sigma has theirs).

        gaussian_optimal: None while training (forward fits each batch's sigma*), then the training set's
        sigma* (train.fit_optimal_log_sigma), so evaluation uses a sigma learned from training data only.
        """
        if not self.lik.shared_sigma:
            return None
        if self.lik.sigma == "optimal" and self.training:
            return None
        return self.log_sigma

    def output_at(self, z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> VAEOutput:
        """Decode given codes z (B, L) into everything the likelihood needs."""
        logits, pixel_log_sigma = self._decode_raw(z)
        log_sigma = pixel_log_sigma if pixel_log_sigma is not None else self.decoder_log_sigma()
        return VAEOutput(self.out_act(logits), logits, mu, logvar, z, log_sigma)

    def sample_output(self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None,
                      share: BatchShare | None = None) -> VAEOutput:
        """Draw z ~ q(z|x) and decode it: one more sample for the same encoder output."""
        return self.output_at(self.reparameterize(mu, logvar, generator, share), mu, logvar)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                share: BatchShare | None = None) -> VAEOutput:
        return self.with_batch_sigma(self.sample_output(*self.encode(x), generator, share), x, share)

    def with_batch_sigma(self, out: VAEOutput, x: torch.Tensor, share: BatchShare | None = None) -> VAEOutput:
        """gaussian_optimal while training: `out` with the batch's sigma* (only a caller that sees x can fit it)."""
        if self.lik.sigma != "optimal" or not self.training:
            return out
        total = share.total if share else None
        return dataclasses.replace(out, log_sigma=optimal_log_sigma(x, out.x_hat, self.log_sigma_floor, total))


class ConvVAE(VAE):
    # NHWC: the six convolutions' forward and backward run 1.6x faster in it on a CPU than in NCHW, which oneDNN
    # reorders to and from (bench/bench_train.py times the whole step).
    cpu_memory_format = torch.channels_last

    def __init__(self, cfg: ModelConfig, likelihood: LikelihoodName, sigma: float = 1.0):
        super().__init__(cfg, likelihood, sigma)
        sizes = [cfg.image_size]
        for _ in range(cfg.depth):
            sizes.append((sizes[-1] + 1) // 2)  # a 3x3, stride 2, padding 1 conv rounds up
        chans = [cfg.channels] + [cfg.width * 2**i for i in range(cfg.depth)]
        feat = chans[-1] * sizes[-1] ** 2
        enc: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            enc += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), _hidden(cfg.hidden_activation)]
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.fc_mu = nn.Linear(feat, cfg.latent_dim)
        self.fc_logvar = nn.Linear(feat, cfg.latent_dim)
        dec: list[nn.Module] = [nn.Linear(cfg.latent_dim, feat), _hidden(cfg.hidden_activation),
                                nn.Unflatten(1, (chans[-1], sizes[-1], sizes[-1]))]
        chans[0] = self.out_channels
        for i in range(cfg.depth, 0, -1):
            pad = sizes[i - 1] - (2 * sizes[i] - 1)  # 0 or 1: lands on the encoder's size exactly
            dec.append(nn.ConvTranspose2d(chans[i], chans[i - 1], 3, 2, 1, pad))
            if i > 1:  # the last layer outputs the image's channels, pre-activation (as in DCGAN)
                dec.append(_hidden(cfg.hidden_activation))
        self.decoder = nn.Sequential(*dec)


class MLPVAE(VAE):
    def __init__(self, cfg: ModelConfig, likelihood: LikelihoodName, sigma: float = 1.0):
        super().__init__(cfg, likelihood, sigma)
        d, h, rest = math.prod(self.data_shape), cfg.hidden_dim, self.data_shape[1:]  # rest: (H, W); vectors ()
        self.encoder = nn.Sequential(nn.Flatten(), *self._hidden_layers(d))
        self.fc_mu = nn.Linear(h, cfg.latent_dim)
        self.fc_logvar = nn.Linear(h, cfg.latent_dim)
        d_out = self.out_channels * math.prod(rest)
        self.decoder = nn.Sequential(*self._hidden_layers(cfg.latent_dim), nn.Linear(h, d_out),
                                     nn.Unflatten(1, (self.out_channels, *rest)))

    def _hidden_layers(self, d_in: int) -> list[nn.Module]:
        """mlp_layers of (Linear, activation), d_in -> hidden_dim -> ... -> hidden_dim."""
        layers: list[nn.Module] = []
        for d in [d_in] + [self.cfg.hidden_dim] * (self.cfg.mlp_layers - 1):
            layers += [nn.Linear(d, self.cfg.hidden_dim), _hidden(self.cfg.hidden_activation)]
        return layers


def build_model(cfg: ModelConfig, likelihood: LikelihoodName, sigma: float = 1.0,
                seed: int | None = None, sigma_floor: torch.Tensor | None = None) -> VAE:
    """The model a config describes, freshly initialized: from `seed` if given (torch's global random
    state is left as it was), else from the global state. sigma_floor: Normalizer.sigma_floor of its data.

    With a seed, each layer draws its initial weights from its own stream, seeded by (seed, its name):
    two models share every layer whose name and shape agree, whatever else differs (the activation, the
    likelihood, the latent size for the layers it does not touch). What lets a family start from one point.
    """
    cls = ConvVAE if cfg.arch == "conv" else MLPVAE
    model = cls(cfg, likelihood, sigma)
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            for name, module in model.named_modules():
                if hasattr(module, "reset_parameters") and any(True for _ in module.parameters(recurse=False)):
                    torch.manual_seed(_layer_seed(seed, name))
                    module.reset_parameters()  # the layer's own default initialization, from its own stream
    if sigma_floor is not None:
        model.set_sigma_floor(sigma_floor)
    return model


def _layer_seed(seed: int, name: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**63


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
