"""The four questions as labs, the third also on rows of numbers in its asker's own setting (base.py says what a lab
is); LABS lists them in the order people ask them."""
from __future__ import annotations

from vae_core.labs import grey_sigmoid, not_unit, not_unit_vectors, sampled_z, zscore_tanh
from vae_core.labs.base import Lab

LABS: dict[str, Lab] = {lab.id: lab for lab in (zscore_tanh.LAB, grey_sigmoid.LAB, not_unit.LAB, not_unit_vectors.LAB,
                                                     sampled_z.LAB)}


def lab(lab_id: str) -> Lab:
    """The lab with this id; ValueError naming the labs there are."""
    if lab_id not in LABS:
        raise ValueError(f"There is no lab {lab_id!r}; the labs are {', '.join(LABS)}.")
    return LABS[lab_id]
