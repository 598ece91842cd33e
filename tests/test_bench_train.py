"""bench/bench_train.py: the Trainer / plain loop ratio per round, its spread, and its verdict against the bound."""
from __future__ import annotations

import torch

from bench import bench_train as bt
from vae_core.training.trainer import prepare_data


def test_the_verdict_holds_only_where_the_middle_half_of_the_rounds_is_on_one_side():
    assert bt.against_bound(bt.spread([0.96, 0.97, 0.99, 1.0, 0.90])) == "meets"  # one bad round does not decide
    assert bt.against_bound(bt.spread([0.90, 0.91, 0.93, 0.94, 0.99])) == "misses"
    straddling = bt.spread([0.92, 0.94, 0.96, 0.98, 1.0])
    assert (straddling.low, straddling.median, straddling.high) == (0.94, 0.96, 0.98)
    assert bt.against_bound(straddling) == "cannot settle"
    assert "cannot settle" in bt.verdict_words(straddling, "the wall clock")
    assert bt.against_bound(bt.spread([0.97])) == "meets"  # a single round is its own quartiles


def test_a_paired_epoch_takes_a_step_of_each_in_turn_the_named_one_first():
    order: list[str] = []

    def loop(name: str):
        for _ in range(3):
            order.append(name)
            yield name

    trainer, plain = bt.paired_epoch(loop("trainer"), loop("plain"), plain_first=True)
    assert order == ["plain", "trainer"] * 3
    assert len(trainer.wall) == len(trainer.cpu) == len(plain.wall) == 3 and trainer.total().wall_s > 0


def test_a_tiny_bench_times_every_variant_each_round_and_prints_the_verdict(capsys):
    threads = torch.get_num_threads()
    config = bt.bench_config(batch_size=8, steps=2, threads=1)
    try:
        matmul, results = bt.compare_variants(config, prepare_data(config), steps=2, rounds=1)
    finally:
        torch.set_num_threads(threads)
    assert len(matmul) == 1 and all(len(r.ratio) == len(r.ratio_cpu) == len(r.fraction) == 1 for r in results)
    assert all(x > 0 for r in results for x in r.ratio + r.ratio_cpu)
    bt.print_variants(matmul, results)
    out = capsys.readouterr().out
    assert out.count("Trainer / plain loop by") == 2 and "x matmul" in out and "+ fused Adam (shipped)" in out
