"""VAE models: encode -> (mu, logvar), reparameterize, decode, as in PyTorch's VAE example.

ConvVAE: `depth` stride-2 3x3 conv blocks (width, 2*width, ...) down to a small grid, linear heads
for mu and logvar; the decoder mirrors it with transposed convolutions whose output_padding is
chosen so that 28, 32 and 64 pixel inputs come back at exactly their size, the last one giving the
image's channels directly (an extra full-resolution conv cost 4x the decoder's time on a CPU).
MLPVAE: the classic 784-400-20 model (Kingma & Welling 2014; PyTorch's examples/vae).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .config import LikelihoodName, ModelConfig


@dataclass(frozen=True)
class VAEOutput:
    x_hat: torch.Tensor  # (B, C, H, W) decoder mean in normalized space (after the output activation)
    logits: torch.Tensor  # (B, C, H, W) the decoder's pre-activation output
    mu: torch.Tensor  # (B, L)
    logvar: torch.Tensor  # (B, L)
    z: torch.Tensor  # (B, L) one sample of q(z|x)
    log_sigma: torch.Tensor | None  # broadcastable to x_hat; Gaussian likelihoods only


def _activation(name: str) -> nn.Module:
    return {"sigmoid": nn.Sigmoid(), "tanh": nn.Tanh(), "linear": nn.Identity()}[name]


class VAE(nn.Module):
    """Shared machinery; subclasses build `encoder` (x -> features) and `decoder` (z -> logits)."""

    def __init__(self, cfg: ModelConfig, likelihood: LikelihoodName, sigma: float = 1.0):
        super().__init__()
        self.cfg = cfg
        self.likelihood = likelihood
        self.out_act = _activation(cfg.output_activation)
        # Fixed sigma is a buffer (saved with the weights, never trained); learned sigma is a parameter
        # shared by all pixels (sigma-VAE, Rybkin et al. 2021).
        log_sigma = torch.tensor(math.log(sigma))
        if likelihood == "gaussian_learned":
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)  # (B, F)
        return self.fc_mu(h), self.fc_logvar(h)

    def reparameterize(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        std = torch.exp(0.5 * logvar)
        return mu + std * torch.randn_like(std)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, C, H, W)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (B, L) -> decoder means (B, C, H, W) in normalized space."""
        return self.out_act(self.decode_logits(z))

    def decoder_log_sigma(self) -> torch.Tensor | None:
        return None if self.likelihood == "bernoulli" else self.log_sigma

    def forward(self, x: torch.Tensor) -> VAEOutput:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        logits = self.decode_logits(z)
        return VAEOutput(self.out_act(logits), logits, mu, logvar, z, self.decoder_log_sigma())


class ConvVAE(VAE):
    def __init__(self, cfg: ModelConfig, likelihood: LikelihoodName, sigma: float = 1.0):
        super().__init__(cfg, likelihood, sigma)
        sizes = [cfg.image_size]
        for _ in range(cfg.depth):
            sizes.append((sizes[-1] + 1) // 2)  # a 3x3, stride 2, padding 1 conv rounds up
        chans = [cfg.channels] + [cfg.width * 2**i for i in range(cfg.depth)]
        feat = chans[-1] * sizes[-1] ** 2
        enc: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:]):
            enc += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.fc_mu = nn.Linear(feat, cfg.latent_dim)
        self.fc_logvar = nn.Linear(feat, cfg.latent_dim)
        dec: list[nn.Module] = [nn.Linear(cfg.latent_dim, feat), nn.LeakyReLU(0.2),
                                nn.Unflatten(1, (chans[-1], sizes[-1], sizes[-1]))]
        for i in range(cfg.depth, 0, -1):
            pad = sizes[i - 1] - (2 * sizes[i] - 1)  # 0 or 1: lands on the encoder's size exactly
            dec.append(nn.ConvTranspose2d(chans[i], chans[i - 1], 3, 2, 1, pad))
            if i > 1:  # the last layer outputs the image's channels, pre-activation (as in DCGAN)
                dec.append(nn.LeakyReLU(0.2))
        self.decoder = nn.Sequential(*dec)


class MLPVAE(VAE):
    def __init__(self, cfg: ModelConfig, likelihood: LikelihoodName, sigma: float = 1.0):
        super().__init__(cfg, likelihood, sigma)
        d = cfg.channels * cfg.image_size**2
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, cfg.hidden_dim), nn.ReLU())
        self.fc_mu = nn.Linear(cfg.hidden_dim, cfg.latent_dim)
        self.fc_logvar = nn.Linear(cfg.hidden_dim, cfg.latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(cfg.latent_dim, cfg.hidden_dim), nn.ReLU(), nn.Linear(cfg.hidden_dim, d),
            nn.Unflatten(1, (cfg.channels, cfg.image_size, cfg.image_size)))


def build_model(cfg: ModelConfig, likelihood: LikelihoodName, sigma: float = 1.0) -> VAE:
    """The model a config describes, freshly initialized (seed torch first for reproducibility)."""
    cls = ConvVAE if cfg.arch == "conv" else MLPVAE
    return cls(cfg, likelihood, sigma)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
