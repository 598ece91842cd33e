"""Families: runs that differ in exactly one field are found from their configs, not their names."""
import dataclasses
from pathlib import Path

from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from vae_core.runs.families import differences, family_axes, family_of, siblings
from vae_core.runs.listing import RunInfo


def config(act="sigmoid", norm="unit", lik="gaussian", **loss) -> RunConfig:
    return RunConfig(DataConfig(normalization=norm), ModelConfig(output_activation=act),
                     LossConfig(likelihood=lik, **loss), TrainConfig())


def info(name: str, cfg: RunConfig) -> RunInfo:
    return RunInfo(Path("/runs") / name, "finished", 0.0, config=cfg)


def test_one_difference_is_a_sibling_two_are_not():
    base = info("base", config())
    tanh = info("odd-name-1", config(act="tanh"))
    both = info("odd-name-2", config(act="tanh", norm="symmetric"))
    found = siblings(base, [tanh, both])
    assert found == {"model.output_activation": {"tanh": tanh}}


def test_unused_and_incidental_fields_are_not_differences():
    bern = config(lik="bernoulli", sigma=0.5)  # a Bernoulli likelihood never reads sigma
    gauss = config(lik="gaussian")
    assert differences(bern, gauss) == {"loss.likelihood"}
    elsewhere = dataclasses.replace(gauss, data=dataclasses.replace(gauss.data, data_dir="/elsewhere"),
                                    train=dataclasses.replace(gauss.train, num_threads=4))
    assert differences(gauss, elsewhere) == set()
    assert differences(gauss, config(lik="gaussian", sigma=0.5)) == {"loss.sigma"}


def test_the_first_candidate_with_a_value_wins():
    base = info("base", config())
    mine, zoo = info("mine", config(act="linear")), info("zoo", config(act="linear"))
    assert siblings(base, [mine, zoo])["model.output_activation"]["linear"] is mine


def test_toggle_axes_show_every_activation_and_mark_the_missing_ones():
    base = info("base", config(norm="zscore"))
    linear = info("linear", config(act="linear", norm="zscore"))
    beta = info("beta4", config(norm="zscore", beta=4.0))
    axes = {a.field: a for a in family_axes(base, [linear, beta])}
    act = axes["model.output_activation"]
    assert [m.value for m in act.members] == ["sigmoid", "tanh", "linear"]
    assert act.run_for("sigmoid") is base and act.run_for("linear") is linear and act.missing == ("tanh",)
    assert axes["data.normalization"].missing == ("unit", "symmetric")
    assert [m.value for m in axes["loss.beta"].members] == [1.0, 4.0]  # another swept field shows up


def test_family_of_picks_the_fullest_axis_in_its_order():
    base = info("base", config(act="tanh"))
    runs = [info("lin", config(act="linear")), info("sig", config(act="sigmoid")),
            info("sym", config(act="tanh", norm="symmetric"))]
    assert [r.name for r in family_of(base, runs)] == ["sig", "base", "lin"]
    assert [r.name for r in family_of(base, runs, "data.normalization")] == ["base", "sym"]
    assert [r.name for r in family_of(info("alone", config(act="linear", norm="zscore", lik="laplace")), runs)] == ["alone"]


def test_an_unreadable_run_has_no_family():
    broken = RunInfo(Path("/runs/x"), "unreadable", 0.0)
    assert family_axes(broken, [info("a", config())]) == []
    assert siblings(info("a", config()), [broken]) == {}
