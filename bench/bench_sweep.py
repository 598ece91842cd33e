"""A family in lockstep vs the same variants one after the other, interleaved in one run.

    python -m bench.bench_sweep [--steps 300] [--rounds 2] [--threads 1] [--sweep output_activation=sigmoid,tanh,linear]

Each round trains the whole family both ways (LockstepTrainer; then one Trainer per variant in turn),
the order alternating between rounds to be fair to both, and checks that both ways end with the same
weights. Prints wall and CPU seconds per round and the ratio lockstep / sequential of the medians
(goal: <= 1). Machines here are shared and noisy: the CPU-time ratio (this process's own time) is the
steadier figure.
"""
import argparse
import statistics
import time

import torch

from vae_core.config import DataConfig, LossConfig, ModelConfig, TrainConfig
from vae_core.data.normalize import fit_normalizer
from vae_core.training.lockstep import LockstepTrainer
from vae_core.training.sweeps import parse_sweep, sweep_configs
from vae_core.training.trainer import Trainer, make_run_config, prepare_data


def lockstep(configs, images, normalizers) -> list[dict]:
    trainer = LockstepTrainer(configs, images, normalizers)
    for _ in trainer.steps():
        pass
    return [t.model.state_dict() for t in trainer.trainers]


def sequential(configs, images, normalizers) -> list[dict]:
    states = []
    for config, normalizer in zip(configs, normalizers):
        trainer = Trainer(config, images, normalizer)
        for _ in trainer.steps():
            pass
        states.append(trainer.model.state_dict())
    return states


def timed(fn, *args) -> tuple[float, float, list[dict]]:
    wall, cpu = time.perf_counter(), time.process_time()
    states = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, states


def same(a: list[dict], b: list[dict]) -> bool:
    return all(torch.equal(x[k], y[k]) for x, y in zip(a, b) for k in x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300, help="steps per variant")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (a job trains on 1)")
    ap.add_argument("--sweep", default="output_activation=sigmoid,tanh,linear")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    bs = 64
    base = make_run_config(DataConfig(n_train=bs * args.steps, n_test=64), ModelConfig(),
                           LossConfig(likelihood="gaussian_learned"),
                           TrainConfig(epochs=1, batch_size=bs, num_threads=args.threads))
    configs = sweep_configs(base, parse_sweep(args.sweep))
    data = prepare_data(base)
    normalizers = [fit_normalizer(c.data.normalization, data.train.images, c.data.data_scale) for c in configs]
    run_args = (configs, data.train.images, normalizers)
    lockstep(*((configs, data.train.images[:bs * 5], normalizers)))  # warm up
    times = {"lockstep": ([], []), "sequential": ([], [])}
    for r in range(args.rounds):
        order = ("lockstep", "sequential") if r % 2 == 0 else ("sequential", "lockstep")
        states = {}
        for name in order:
            wall, cpu, states[name] = timed(lockstep if name == "lockstep" else sequential, *run_args)
            times[name][0].append(wall)
            times[name][1].append(cpu)
        assert same(states["lockstep"], states["sequential"]), "lockstep and sequential weights differ"
        print(f"round {r + 1}: " + " | ".join(f"{n} {times[n][0][-1]:6.2f} s wall, {times[n][1][-1]:6.2f} s CPU"
                                              for n in order), flush=True)
    print(f"{len(configs)} variants ({args.sweep}) x {args.steps} steps of batch {bs}, default conv VAE, "
          f"threads={args.threads}; the same weights both ways")
    for i, unit in enumerate(("wall", "CPU")):
        lock, seq = statistics.median(times["lockstep"][i]), statistics.median(times["sequential"][i])
        print(f"{unit:>4}: lockstep {lock:6.2f} s, sequential {seq:6.2f} s, ratio lockstep/sequential {lock / seq:.3f}")


if __name__ == "__main__":
    main()
