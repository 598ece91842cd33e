"""What resuming a run needs beyond its weights, saved beside them as safetensors (no pickles): the step,
the optimizer's state and the z-noise generator's state. (The batch order needs nothing: it is drawn from
the seed, one permutation per epoch, so the step says where it is.)

The optimizer's tensors are stored flat ("opt.<param index>.<name>"), its hyperparameters as JSON in the
file's metadata. A file that does not fit the model is refused with the reason.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from vae_core.config import RunConfig

TRAIN_STATE = "train_state.safetensors"
# What a resumed run may change: how long and where it trains, never what it learns.
RESUME_MAY_CHANGE = ("epochs", "time_budget_s", "device", "precision", "num_threads")
FORMAT = "vae-lab-train-state/1"
MAX_STATE_BYTES = 2 * 512 * 2**20  # Adam keeps two tensors per parameter: twice the largest weights file


@dataclass(frozen=True)
class TrainState:
    step: int  # optimizer steps taken
    noise: torch.Tensor  # uint8: the z generator's state
    optimizer: dict[str, Any]  # torch.optim's state_dict


def same_run(a: RunConfig, b: RunConfig) -> bool:
    """Whether b continues a: equal but for RESUME_MAY_CHANGE."""
    kept = {f: getattr(a.train, f) for f in RESUME_MAY_CHANGE}
    return dataclasses.replace(b, train=dataclasses.replace(b.train, **kept)) == a


def write_train_state(path: Path, state: TrainState) -> None:
    tensors = {"noise": state.noise.cpu()}
    for index, values in state.optimizer["state"].items():
        tensors.update({f"opt.{index}.{name}": t.detach().cpu().contiguous() for name, t in values.items()})
    meta = {"format": FORMAT, "step": str(state.step), "param_groups": json.dumps(state.optimizer["param_groups"])}
    save_file(tensors, str(path), metadata=meta)


def read_train_state(path: Path) -> TrainState:
    """The saved state; ValueError says what is wrong with a file that is not one."""
    if path.stat().st_size > MAX_STATE_BYTES:
        raise ValueError(f"{path} is larger than {MAX_STATE_BYTES // 2**20} MB: not a VAE Lab training state.")
    try:
        with safe_open(str(path), "pt") as f:
            tensors, meta = {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
        groups, step = json.loads(meta["param_groups"]), int(meta["step"])
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as e:
        raise ValueError(f"{path} is not a readable training state ({type(e).__name__}: {e}).") from None
    if "noise" not in tensors or step < 0:
        raise ValueError(f"{path} lacks the noise generator's state or has a negative step: not a training state.")
    return TrainState(step, tensors["noise"], {"state": _optimizer_state(tensors), "param_groups": groups})


def _optimizer_state(tensors: dict[str, torch.Tensor]) -> dict[int, dict[str, torch.Tensor]]:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, t in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = t
    return state
