"""A lab's verdicts with their noise: a difference between two variants (or a variant and a line) image by image on
each seed, pooled over the seeds; "agrees" or "disagrees" only where every seed has the pooled difference's sign
and it exceeds DISTINGUISHABLE_SE standard errors, else not settled."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from vae_core.labs.base import NOT_SETTLED, Measured, PairedMeasure, Verdict
from vae_core.model.paired import DISTINGUISHABLE_SE, PairedDifference, paired_difference, pooled

Direction = Literal["positive", "negative"]  # the sign of a - b the textbook expects
SETTLE_ADVICE = "more steps (--steps) or more seeds (--seeds) would settle it"


@dataclass(frozen=True)
class Evidence:
    """a - b on one measure over the same test images, seed by seed, and pooled over the seeds."""
    per_seed: tuple[PairedDifference, ...]

    @property
    def pooled(self) -> PairedDifference:
        return pooled(self.per_seed)

    @property
    def signs_agree(self) -> bool:
        """Every seed's difference has the pooled one's sign."""
        sign = math.copysign(1.0, self.pooled.mean)
        return all(d.mean * sign > 0 for d in self.per_seed)

    @property
    def settled(self) -> bool:
        """The seeds agree in sign and the pooled difference exceeds DISTINGUISHABLE_SE standard errors."""
        return self.signs_agree and self.pooled.distinguishable

    def signs(self) -> str:
        """Each seed's sign: "+ + −"."""
        return " ".join("+" if d.mean > 0 else "−" if d.mean < 0 else "0" for d in self.per_seed)

    def text(self, decimals: int = 3, unit: str = "", over: str = "images") -> str:
        """"+0.013 ± 0.015 bits/dim (paired SE over 500 images, 3 seeds; per seed + − +)"; over: "rows" for vectors."""
        p, seeds = self.pooled, len(self.per_seed)
        by_seed = f"; per seed {self.signs()}" if seeds > 1 else ""
        return (f"{p.text(decimals)}{' ' + unit if unit else ''} (paired SE over {p.n} {over}, {seeds} "
                f"seed{'s' if seeds > 1 else ''}{by_seed})")

    def why_not_settled(self) -> str:
        """What keeps it open and what would close it; "" where it is settled."""
        if self.settled:
            return ""
        reason = "the seeds disagree in sign" if not self.signs_agree else \
            f"the difference is within {DISTINGUISHABLE_SE:g} standard errors of zero"
        return f"{reason}, so not settled at this budget ({SETTLE_ADVICE})"


def evidence(a: Measured, b: Measured, measure: PairedMeasure) -> Evidence | None:
    """a - b on `measure`, paired image by image for each seed both were measured on (images where either value
    is nan left out); None where no seed has both."""
    return _evidence([(x.get(measure), y.get(measure)) for x, y in zip(a.per_image, b.per_image)
                      if x is not None and y is not None])


def level_evidence(a: Measured, measure: PairedMeasure, level: float) -> Evidence | None:
    """a's values on `measure` minus a fixed level, image by image for each seed (e.g. a background against the
    grey it must stay under); None where no seed has them."""
    return _evidence([(x, torch.full_like(x, level)) for v in a.per_image if v is not None
                      and (x := v.get(measure)) is not None])


def _evidence(pairs: list[tuple[torch.Tensor | None, torch.Tensor | None]]) -> Evidence | None:
    kept = []
    for x, y in pairs:
        if x is None or y is None or x.shape != y.shape:
            return None
        finite = torch.isfinite(x) & torch.isfinite(y)
        kept.append((x[finite], y[finite]))
    if not kept or any(len(x) < 2 for x, _ in kept):
        return None
    return Evidence(tuple(paired_difference(x, y) for x, y in kept))


def verdict(found: Evidence, expected: Direction) -> Verdict:
    """"agrees" or "disagrees" where the evidence is settled, by its sign against the expected; else not settled."""
    if not found.settled:
        return NOT_SETTLED
    return "agrees" if (found.pooled.mean > 0) == (expected == "positive") else "disagrees"


def joint_verdict(verdicts: Sequence[Verdict]) -> Verdict:
    """Several measures of one claim: settled only where each is and all say the same. Two settled measures that
    contradict each other settle nothing either (contradicted() tells the finding to say so)."""
    settled = set(verdicts)
    return settled.pop() if len(settled) == 1 and NOT_SETTLED not in settled else NOT_SETTLED


def contradicted(verdicts: Sequence[Verdict]) -> bool:
    """Whether two measures of one claim are settled in opposite directions."""
    return {"agrees", "disagrees"} <= set(verdicts)


Practical = Literal["above", "below", "within", "unsure"]


def against_margin(found: Evidence, margin: float) -> Practical:
    """Where a difference lies against ±margin, the least that matters (a few grey levels do not show): above or
    below it beyond the noise with every seed's sign, within it (its 2-SE interval inside ±margin), or unsure."""
    p = found.pooled
    half = DISTINGUISHABLE_SE * p.se
    if found.signs_agree and p.mean - half > margin:
        return "above"
    if found.signs_agree and p.mean + half < -margin:
        return "below"
    return "within" if abs(p.mean) + half < margin else "unsure"
