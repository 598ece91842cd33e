"""One source of field metadata: the validator, check_field and the CLI read the same ranges and
refuse a value just outside one with the same sentence."""
import math

import pytest

from vae_core.cli import main as cli
from vae_core.cli import options
from vae_core.config import SECTIONS, RunConfig, check_field, field_options, fields_info, range_text

FIELDS = [(section, info) for section, cls in SECTIONS.items() for info in fields_info(cls).values()]
NUMERIC = [(section, info) for section, info in FIELDS if info.kind in ("integer", "number")]
SETTABLE = [(section, info) for section, info in NUMERIC if (section, info.name) not in options.DERIVED]  # a flag each


def just_outside(info, side: str):
    lo, hi = info.spec.lo, info.spec.hi
    if info.kind == "integer":
        return lo - 1 if side == "below" else hi + 1
    return math.nextafter(lo, -math.inf) if side == "below" else math.nextafter(hi, math.inf)


def cli_value(value) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def test_every_field_has_a_label_and_help_and_every_number_a_range():
    for section, info in FIELDS:
        assert info.spec.label and info.spec.help, f"{section}.{info.name} has no label or help"
    for section, info in NUMERIC:
        lo, hi = info.spec.lo, info.spec.hi
        assert lo is not None and hi is not None and lo < hi, f"{section}.{info.name} has no range"
        assert info.default is None or check_field(SECTIONS[section], info.name, info.default) is None


@pytest.mark.parametrize("side", ["below", "above"])
@pytest.mark.parametrize("section,info", SETTABLE, ids=[f"{s}.{i.name}" for s, i in SETTABLE])
def test_a_value_just_outside_is_refused_with_one_sentence_everywhere(section, info, side, tmp_path, capsys):
    cls, value = SECTIONS[section], just_outside(info, side)
    message = check_field(cls, info.name, value)
    assert message == f"{info.name}={value!r} is out of range; it must be {range_text(info)}."
    with pytest.raises(ValueError) as refused:
        cls(**{info.name: value})
    assert str(refused.value) == message
    flag = options.option_flag(section, info.name)
    assert cli.main(["train", f"{flag}={cli_value(value)}", "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == f"python -m vae_core: error: {message}\n"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("side", ["lo", "hi"])
@pytest.mark.parametrize("section,info", SETTABLE, ids=[f"{s}.{i.name}" for s, i in SETTABLE])
def test_the_bounds_themselves_are_accepted_everywhere(section, info, side):
    cls, value = SECTIONS[section], getattr(info.spec, side)
    assert check_field(cls, info.name, value) is None
    assert getattr(cls(**{info.name: value}), info.name) == value
    ns = cli.build_parser().parse_args(["train", f"{options.option_flag(section, info.name)}={cli_value(value)}"])
    assert getattr(getattr(options.config_from_args(ns), section), info.name) == value


def test_cli_help_shows_each_option_s_range_and_help_from_the_metadata(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for section, info in FIELDS:
        if (section, info.name) in options.DERIVED:
            continue
        assert " ".join(options.option_help(info).replace("%%", "%").split()) in text
    for section, info in SETTABLE:
        assert range_text(info) in text


@pytest.mark.parametrize("cls,name,value", [
    (SECTIONS["model"], "channels", True), (SECTIONS["model"], "channels", 3.0), (SECTIONS["data"], "image_size", 48),
    (SECTIONS["loss"], "likelihood", "mse"), (SECTIONS["train"], "epochs", 2.0), (SECTIONS["train"], "lr", math.nan),
    (SECTIONS["train"], "lr", "0.1"),
])
def test_wrong_types_and_non_options_are_refused(cls, name, value):
    message = check_field(cls, name, value)
    assert message and message.startswith(f"{name}={value!r} is ")
    with pytest.raises(ValueError, match="is (out of range|not an option)"):
        cls(**{name: value})


def test_options_come_from_the_type_or_the_spec():
    assert field_options(SECTIONS["data"], "dataset") == ("sprites", "mnist", "fashion_mnist", "cifar10", "images",
                                                               "vectors")
    assert field_options(SECTIONS["data"], "image_size") == (28, 32, 64)


def test_from_dict_stays_strict():
    with pytest.raises(ValueError, match="unknown fields"):
        RunConfig.from_dict({"train": {"lr": 0.1, "learning_rate": 0.1}})
    with pytest.raises(ValueError, match="lr='0.1' is out of range"):
        RunConfig.from_dict({"train": {"lr": "0.1"}})
    assert RunConfig.from_dict(RunConfig().to_dict()) == RunConfig()


def test_a_retired_field_of_an_older_run_is_dropped_and_no_longer_a_flag(capsys):
    old = RunConfig().to_dict()
    old["train"]["eval_every"] = 500  # runs saved before it was retired (the bundled zoo's among them) carry it
    assert RunConfig.from_dict(old) == RunConfig()
    old["train"]["evaluate_every"] = 1  # an unknown field is still refused
    with pytest.raises(ValueError, match="unknown fields \\['evaluate_every'\\]"):
        RunConfig.from_dict(old)
    with pytest.raises(SystemExit):
        cli.main(["train", "--eval-every", "10"])
    assert "unrecognized arguments: --eval-every" in capsys.readouterr().err


def test_the_test_images_key_ignores_what_a_run_makes_of_them():
    import torch

    from vae_core.config import DataConfig, images_only
    from vae_core.data.datasets import load_dataset

    flipped = DataConfig(n_test=50, normalization="zscore", data_scale=10.0, n_train=200)
    assert images_only(flipped) == images_only(DataConfig(n_test=50))  # a toggle flip reuses the cached images
    assert images_only(DataConfig(n_test=50, seed=1)) != images_only(DataConfig(n_test=50))
    assert torch.equal(load_dataset(flipped, "test").images, load_dataset(images_only(flipped), "test").images)
