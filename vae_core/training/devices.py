"""Where a run trains: --device auto|cpu|cuda|mps, resolved once, with a clear refusal where the asked-for
accelerator is not there."""
from __future__ import annotations

import torch

from vae_core.config import Device


def resolve_device(choice: Device) -> torch.device:
    """auto: CUDA, else Apple's MPS, else the CPU; cuda or mps only where torch sees one (else ValueError)."""
    cuda, mps = torch.cuda.is_available(), _mps_available()
    if choice == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (choice == "cuda" and not cuda) or (choice == "mps" and not mps):
        raise ValueError(f"device={choice!r}: torch sees no {choice.upper()} device on this machine. Use "
                         "--device cpu, or auto (an accelerator where there is one, else the CPU).")
    return torch.device(choice)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())
