"""Trainer vs a plain PyTorch loop: same model, same data, same batches, interleaved in one run.

    python -m bench.bench_train [--steps 60] [--rounds 5] [--threads 1]

Prints images/s for each and their ratio (goal: Trainer / plain >= 0.95). Machines here are shared
and noisy, so rounds alternate between the two, the medians are compared, and the rate is given per
second of this process's CPU time (steady under load from other processes) as well as wall time.
"""
import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from vae_core.config import DataConfig, LossConfig, ModelConfig, TrainConfig
from vae_core.data.base import pixels
from vae_core.model.vae import build_model
from vae_core.training.trainer import Trainer, make_run_config, prepare_data


def plain_loop(model, optimizer, loader):
    """The loop of PyTorch's examples/vae: a DataLoader, BCE summed over pixels + KL, mean over the batch."""
    for (x,) in loader:
        x_hat_logits = model.decode_logits(z := model.reparameterize(*(mu_logvar := model.encode(x))))
        mu, logvar = mu_logvar
        bce = F.binary_cross_entropy_with_logits(x_hat_logits, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        loss = (bce + kld) / len(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        del z


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the app trains on 1)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bs = 64
    config = make_run_config(DataConfig(n_train=bs * args.steps), ModelConfig(), LossConfig(likelihood="bernoulli"),
                             TrainConfig(epochs=1, batch_size=bs, num_threads=args.threads))
    data = prepare_data(config)
    # The plain loop gets what such loops usually get: the whole set normalized up front, shuffled
    # by a DataLoader. The Trainer keeps uint8 and normalizes each batch (4x less memory).
    x_all = data.normalizer.forward(pixels(data.train.images))
    loader = DataLoader(TensorDataset(x_all), batch_size=bs, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    plain_model = build_model(config.model, "bernoulli")
    plain_opt = torch.optim.Adam(plain_model.parameters(), lr=config.train.lr)
    trainer = Trainer(config, data.train.images, data.normalizer)
    plain_loop(plain_model, plain_opt, loader)  # warm up both
    for _ in zip(range(5), trainer.steps()):
        pass
    rates = {"plain": ([], []), "Trainer": ([], [])}  # (wall, cpu) images/s per round
    n_images = len(x_all)

    def timed(name, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        n = fn()
        rates[name][0].append(n / (time.perf_counter() - wall))
        rates[name][1].append(n / (time.process_time() - cpu))

    for r in range(args.rounds):
        timed("plain", lambda: plain_loop(plain_model, plain_opt, loader) or n_images)
        timed("Trainer", lambda: bs * sum(1 for _ in trainer.steps()))  # one epoch, same images
        print(f"round {r + 1}: plain {rates['plain'][0][-1]:6.0f} img/s wall, {rates['plain'][1][-1]:6.0f} "
              f"img/CPU-s | Trainer {rates['Trainer'][0][-1]:6.0f} img/s wall, {rates['Trainer'][1][-1]:6.0f} img/CPU-s")
    params = sum(x.numel() for x in plain_model.parameters())
    print(f"threads={args.threads} batch={bs} default conv VAE ({params:,} params), {n_images} images per round")
    for i, unit in enumerate(("img/s wall", "img/CPU-s")):
        p, tr = statistics.median(rates["plain"][i]), statistics.median(rates["Trainer"][i])
        print(f"median {unit}: plain loop {p:.0f}, Trainer {tr:.0f}, ratio {tr / p:.3f} (goal >= 0.95)")


if __name__ == "__main__":
    main()
