"""Lab 1: z-scored inputs and a tanh output; does the input's range change how much the KL weighs?

Six variants. The range: tanh and linear outputs on z-scored data and tanh on [-1, 1] data, each with a
sigma fitted to its residuals (gaussian_optimal: sigma* = RMSE, at once, where a learned sigma takes
thousands of steps to get there), so bits/dim compares the three fairly. The
balance: the linear output on z-scored data multiplied by 0.1, 1 and 10 under a fixed sigma (in
normalized units), so that the data's scale alone sets how much the reconstruction weighs.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import torch

from ..config import LossConfig, ModelConfig
from ..evaluate import EvalMetrics
from ..likelihoods import gaussian_log_prob
from ..objective import kl_per_dimension
from .base import Column, Finding, Lab, LabRun, LabSettings, Measured, Variant, base_config, missing, vary

SIGMA = 0.1  # normalized units: fixed, so that multiplying the data by c weighs its squared error c^2 times
SCALES = (0.1, 1.0, 10.0)  # the data multiplied by each, and the same reconstruction probed at each
PROBED = "fixed_x1"  # the model whose reconstruction is probed at every scale


def design(settings: LabSettings) -> tuple[Variant, ...]:
    fixed = base_config(settings, ModelConfig(output_activation="linear"), LossConfig("gaussian", sigma=SIGMA),
                        normalization="zscore")
    fitted = vary(fixed, loss={"likelihood": "gaussian_optimal"})
    tanh = {"output_activation": "tanh"}
    return (Variant("tanh_z", "tanh · z-score", vary(fitted, model=tanh)),
            Variant("linear_z", "linear · z-score", fitted),
            Variant("tanh_sym", "tanh · [-1, 1]", vary(fitted, model=tanh, data={"normalization": "symmetric"})),
            *(Variant(f"fixed_x{c:g}", f"fixed σ · z-score ×{c:g}", vary(fixed, data={"data_scale": c}))
              for c in SCALES))


@torch.no_grad()
def extras(lab_run: LabRun) -> dict[str, float]:
    """The scale's equivalent beta, and for the fixed-sigma model at x1 the same reconstruction at each
    scale: -log N(c x; c x_hat, sigma^2) per image in nats, and the KL, which sees mu and sigma only."""
    scale = lab_run.run.config.data.data_scale
    found = {"beta_of_scale": 1 / scale**2}
    if lab_run.key != PROBED:
        return found
    model, x = lab_run.run.model, lab_run.x
    mu, logvar = model.encode(x)
    x_hat = model.decode(mu)
    log_sigma = torch.tensor(math.log(SIGMA))
    sse = (x - x_hat).pow(2).flatten(1).sum(1).mean().item()
    for c in SCALES:
        found[f"probe_recon_x{c:g}"] = -gaussian_log_prob(c * x, c * x_hat, log_sigma).flatten(1).sum(1).mean().item()
        found[f"probe_sse_x{c:g}"] = c**2 * sse / (2 * SIGMA**2)  # the part that moves: c^2 SSE / (2 sigma^2)
    found["probe_kl"] = kl_per_dimension(mu, logvar).sum(1).mean().item()
    return found


Comparison = Literal["better", "worse", "mixed"]


def compare(a: EvalMetrics, b: EvalMetrics) -> Comparison:
    """a against b on both measures of fit: PSNR (higher is better) and bits/dim (lower is better)."""
    psnr, bits = a.psnr_db > b.psnr_db, _bits(a) < _bits(b)
    return "better" if psnr and bits else "worse" if not psnr and not bits else "mixed"


def _versus(a: EvalMetrics, name_b: str, b: EvalMetrics) -> str:
    """"reconstructs at ... dB against ... dB for <name_b>, at ... against ... bits/dim"."""
    return (f"reconstructs at **{a.psnr_db:.2f} dB** against **{b.psnr_db:.2f} dB** for {name_b}, at "
            f"{_bits_text(a)} against {_bits_text(b)} bits/dim")


def _range_findings(m: Mapping[str, Measured]) -> list[Finding]:
    gone = missing(m, "tanh_z", "linear_z")
    if gone:
        return [gone]
    t, lin = m["tanh_z"].metrics, m["linear_z"].metrics
    share = t.frac_targets_unreachable
    out = [Finding(f"z-scoring puts **{share:.1%}** of this data's normalized values outside (−1, 1), where a "
                   "tanh output can never go.")]
    diff, verdict = "tanh · z-score " + _versus(t, "linear · z-score", lin), compare(t, lin)
    if verdict == "worse":
        out.append(Finding(f"The mismatch costs: {diff}. Here the measurements agree with the textbook.", "agrees"))
    elif verdict == "mixed":
        out.append(Finding(f"{diff}: the two measures disagree, so this run does not settle whether the mismatch "
                           "costs.", "measured"))
    else:
        out.append(Finding(f"{diff}: on this run the mismatch did **not** cost, against the textbook answer "
                           f"(with {share:.1%} of values out of reach, or training this short, it may not show).",
                           "disagrees"))
    return out


def _bits(metrics: EvalMetrics) -> float:
    return metrics.bits_per_dim if metrics.bits_per_dim is not None else math.inf


def _bits_text(metrics: EvalMetrics) -> str:
    return "—" if metrics.bits_per_dim is None else f"{metrics.bits_per_dim:.3f}"


SYMMETRIC_VERDICT = {"better": ("does better than", "agrees"), "worse": ("does worse than", "disagrees"),
                     "mixed": ("is not clearly better than", "measured")}


def _symmetric_finding(m: Mapping[str, Measured]) -> list[Finding]:
    gone = missing(m, "tanh_sym", "tanh_z")
    if gone:
        return [gone]
    s, t = m["tanh_sym"].metrics, m["tanh_z"].metrics
    verb, verdict = SYMMETRIC_VERDICT[compare(s, t)]
    return [Finding(f"tanh on [−1, 1] data (none out of reach: {s.frac_targets_unreachable:.1%}) {verb} tanh on "
                    f"z-scored data: it {_versus(s, 'tanh · z-score', t)} (bits/dim compares across "
                    "normalizations: both are the probability of the same 8-bit images).", verdict)]


def _probe_finding(m: Mapping[str, Measured]) -> list[Finding]:
    if PROBED not in m or "probe_kl" not in m[PROBED].extras:
        return [missing(m, PROBED) or Finding("The scale probe was not measured.", "missing")]
    e = m[PROBED].extras
    recon = ", ".join(f"{e[f'probe_recon_x{c:g}']:,.0f}" for c in SCALES)
    betas = ", ".join(f"{1 / c**2:g} at ×{c:g}" for c in SCALES)
    return [Finding(f"The KL term is computed from q(z|x)'s μ and σ only: for the fixed-σ model it is "
                    f"**{e['probe_kl']:.1f} nats** whatever the data's scale. The reconstruction term of the same "
                    f"reconstruction, data and output multiplied by 0.1, 1 and 10, is **{recon} nats**: the squared "
                    f"error grows with c², which is β divided by c² (β = {betas}).", "agrees")]


def _trained_scale_finding(m: Mapping[str, Measured]) -> list[Finding]:
    keys = tuple(f"fixed_x{c:g}" for c in SCALES)
    gone = missing(m, *keys)
    if gone:
        return [gone]
    kl = [m[k].metrics.kl_nats for k in keys]
    active = [m[k].metrics.active_units for k in keys]
    rising = kl[0] < kl[1] < kl[2]
    text = (f"Trained at ×0.1, ×1 and ×10, the models settle at a KL of **{kl[0]:.1f}, {kl[1]:.1f} and "
            f"{kl[2]:.1f} nats** with {active[0]}, {active[1]} and {active[2]} active units: ")
    if rising:
        return [Finding(text + "the larger the data, the more the KL is outweighed and the more z carries. The "
                        "input's range changes the balance, as the textbook says, though not the KL's formula.",
                        "agrees")]
    return [Finding(text + "the KL does **not** rise with the scale on this run, against the textbook's "
                    "expectation (a short run may not have settled).", "disagrees")]


def conclude(m: Mapping[str, Measured]) -> list[Finding]:
    return _range_findings(m) + _symmetric_finding(m) + _probe_finding(m) + _trained_scale_finding(m)


LAB = Lab(
    id="zscore-tanh",
    title="Z-scored inputs and a tanh output",
    question=("I z-score my CIFAR-10 images but the decoder ends in tanh: is the range mismatch a problem? Does "
              "the input range change how much the KL term weighs?"),
    textbook=("A tanh output cannot reach z-scored values beyond ±1, so those pixels are always wrong: use a "
              "linear output for z-scored data, or scale the data to [−1, 1] for tanh. The KL term does not depend "
              "on the data's range; the reconstruction term does, so multiplying the data by c acts like β / c²."),
    design=design,
    columns=(Column("targets out of reach", "frac_targets_unreachable", ".1%", "lower"),
             Column("PSNR (dB)", "psnr_db", ".2f", "higher"),
             Column("bits/dim", "bits_per_dim", ".3f", "lower"),
             Column("recon (nats)", "recon_nats", ",.1f"),
             Column("KL (nats)", "kl_nats", ".2f"),
             Column("active units", "active_units", "d"),
             Column("β of the scale", "beta_of_scale", "g")),
    conclude=conclude,
    extras=extras,
)
