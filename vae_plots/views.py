"""What each page shows, as pure functions: (loaded run, uint8 test images, choices) -> figures.

Pages call these and draw the result; the benchmark times them, so the latency it reports is the
server-side work of a page update, minus Streamlit's own overhead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from vae_core.config import DataKind, RunConfig
from vae_core.data.base import pixels
from vae_core.export.frames import (INTERPOLATION_STEPS, PRIOR_COLUMNS, PRIOR_SAMPLES, TRAVERSAL_MAX_DIMS,
                                    TRAVERSAL_VALUES, error_maps, interpolation_row, prior_grid, reconstruction_rows,
                                    to_pixels, traversal_grid)
from vae_core.jobs.progress import Preview
from vae_core.model.compatibility import ACTIVATION_RANGE, Verdict, degeneracy
from vae_core.model.evaluate import (ACTIVE_UNIT_THRESHOLD, COLLAPSE_KL, EvalMetrics, posterior_collapse,
                                     range_fractions, too_early_for_collapse)
from vae_core.model.latent import embed, reconstruct
from vae_core.model.objective import EquivalentBeta, equivalent_beta
from vae_core.runs.folders import LoadedRun
from vae_core.training.trainer import StepMetrics

from . import diagnostic_figures, figures, live_svg


def dataset_words(dataset: str | None) -> str:
    """How a page names a dataset: a person's images are "your images"."""
    return "your images" if dataset == "images" else str(dataset)


def uncertainty_words(mc_se: float | None, spread_se: float | None, n: int | None, decimals: int = 2,
                      per: str = "image") -> str:
    """What a card's ± is (the Monte-Carlo error over z), and the spread over the test images (or rows) beside it."""
    f = lambda v: figures.format_number(v, decimals)  # noqa: E731
    words = []
    if mc_se is not None:
        words.append(f"± {f(mc_se)}: the Monte-Carlo standard error, over z alone (a second seeded draw per {per})")
    if spread_se is not None:
        words.append(f"± {f(spread_se)} over the test {per}s (std/√N, N = {n}): how far other test {per}s would "
                     "move it")
    return "; ".join(words) + "." if words else ""


def degenerate(run: LoadedRun) -> Verdict | None:
    """The run's "degenerate" verdict (compatibility.degeneracy), from the edge share its test metrics measured."""
    return degeneracy(run.config.loss.likelihood, _test_metrics(run).get("frac_pixels_at_edges"))


def _test_metrics(run: LoadedRun) -> dict:
    """The run's test metrics; {} when it has none (a stopped run, or one saved elsewhere)."""
    test = run.metrics.get("test")
    return test if isinstance(test, dict) else {}


def _normalized(run: LoadedRun, images: torch.Tensor) -> torch.Tensor:
    return run.normalizer.forward(pixels(images))


def reconstruction_figures(run: LoadedRun, images: torch.Tensor) -> tuple[go.Figure, go.Figure]:
    """Inputs over their reconstructions from the posterior mean; and the per-pixel squared error
    in pixel space (mean over channels), from the same reconstructions."""
    rows = reconstruction_rows(run, images)  # (2, N, C, H, W), as their download
    grid = figures.image_grid(rows, len(images), row_labels=["input", "reconstruction"])
    return grid, figures.error_heatmap(error_maps(rows), len(images))


def posterior_samples(run: LoadedRun, image: torch.Tensor, n_samples: int = 7, seed: int = 0) -> go.Figure:
    """One input, its reconstruction from the posterior mean, and decodings of samples z ~ q(z|x)."""
    x = _normalized(run, image[None])
    mean = reconstruct(run.model, x)  # (1, C, H, W)
    samples = reconstruct(run.model, x, "sample", n_samples, seed)[:, 0]  # (S, C, H, W)
    row = np.concatenate([pixels(image[None]).numpy(), to_pixels(run, mean), to_pixels(run, samples)])
    labels = ["input", "mean z"] + [f"z ~ q #{i + 1}" for i in range(n_samples)]
    return figures.image_grid(row[None], len(row), col_labels=labels)


def traversal_dims_limit(run: LoadedRun) -> int:
    """The most rows a traversal of this run shows."""
    return min(run.config.model.latent_dim, TRAVERSAL_MAX_DIMS)


def traversal(run: LoadedRun, image: torch.Tensor, dims: Sequence[int], span: float,
              n_values: int = TRAVERSAL_VALUES) -> go.Figure:
    """Decode the image's posterior mean with one dimension swept over [-span, span] per row (as its export)."""
    grid = traversal_grid(run, image, dims, span, n_values)  # (D, V, C, H, W)
    values = np.linspace(-span, span, n_values).tolist()
    kl = _test_metrics(run).get("kl_per_dim") or []
    rows = [f"z{d} ({figures.format_number(kl[d], 1)} nats)" if d < len(kl) else f"z{d}" for d in dims]
    return figures.image_grid(grid, n_values, row_labels=rows, col_labels=[f"{v:+g}σ" for v in values])


def interpolation(run: LoadedRun, image_a: torch.Tensor, image_b: torch.Tensor,
                  steps: int = INTERPOLATION_STEPS) -> go.Figure:
    """Straight line between two posterior means, decoded; the two inputs at the ends (as its export)."""
    row = interpolation_row(run, image_a, image_b, steps)
    labels = ["A"] + [f"{t:.2f}" for t in np.linspace(0, 1, steps)] + ["B"]
    return figures.image_grid(row[None], len(row), col_labels=labels)


def prior_samples(run: LoadedRun, n: int = PRIOR_SAMPLES, seed: int = 0, ncols: int = PRIOR_COLUMNS) -> go.Figure:
    return figures.image_grid(prior_grid(run, n, seed), ncols)


def training_figure(history: Sequence[StepMetrics], kind: DataKind = "images") -> go.Figure:
    return figures.training_curves([m.step for m in history], [m.recon_nats for m in history],
                                   [m.kl_nats for m in history], [m.elbo_nats for m in history],
                                   per=figures.TRAINING_PER[kind])


def preview_picture(preview: Preview, zoom: int) -> np.ndarray:
    """A job's preview, inputs over reconstructions, as one uint8 picture enlarged `zoom` times (nearest
    neighbour: the browser would blur a small image). An <img>, far lighter than a figure."""
    grid = figures.tile(np.stack([preview.inputs, preview.recons]), 2, len(preview.inputs))
    return grid.repeat(zoom, 0).repeat(zoom, 1)


def training_svg(history: Sequence[StepMetrics], kind: DataKind = "images") -> str:
    """The live curves as a light SVG (see live_svg)."""
    return live_svg.training_curves_svg([m.step for m in history], [m.recon_nats for m in history],
                                        [m.kl_nats for m in history], [m.elbo_nats for m in history],
                                        figures.TRAINING_PER[kind])


def saved_history_figure(run: LoadedRun) -> go.Figure | None:
    """The training curves stored in a run's metrics.json, if any."""
    h = run.metrics.get("history")
    if not isinstance(h, dict) or not h.get("step"):
        return None
    return figures.training_curves(h["step"], h["recon_nats"], h["kl_nats"], h["elbo_nats"],
                                   per=figures.TRAINING_PER[run.config.data.kind])


@dataclass(frozen=True)
class RangeView:
    figure: go.Figure
    frac_unreachable: float  # of normalized targets, outside the output activation's range
    frac_saturated: float  # of decoder outputs (at the posterior mean), within 1e-3 of a bound
    bounds: tuple[float, float]


def range_view(run: LoadedRun, images: torch.Tensor, max_values: int = 200_000) -> RangeView:
    """Where the normalized targets lie against what the output activation can reach, and where outputs land."""
    x = _normalized(run, images)
    mu, _ = embed(run.model, x)
    with torch.no_grad():
        outputs = run.model.out_act(run.model.decode_logits(mu))
    activation = run.config.model.output_activation
    unreachable, saturated = range_fractions(x, outputs, activation)
    g = torch.Generator().manual_seed(0)
    pick = torch.randperm(x.numel(), generator=g)[:max_values]  # a histogram needs a sample, not all
    fig = diagnostic_figures.range_histogram(
        x.flatten()[pick].numpy(), outputs.flatten()[pick].numpy(), ACTIVATION_RANGE[activation],
        activation=activation, frac_unreachable=unreachable, frac_saturated=saturated)
    return RangeView(fig, unreachable, saturated, ACTIVATION_RANGE[activation])


def sigma_map(run: LoadedRun, images: torch.Tensor) -> go.Figure | None:
    """The decoder's per-pixel sigma in pixel units (mean over channels), when it predicts one."""
    if run.model.lik.sigma != "per_pixel":
        return None
    mu, _ = embed(run.model, _normalized(run, images))
    with torch.no_grad():
        log_sigma = run.model.decode_log_sigma(mu)  # (N, C, H, W), normalized units
    scale = torch.tensor(run.normalizer.scale).view(1, -1, 1, 1)
    sigma = (log_sigma.exp() * scale).mean(1)  # pixel units: sigma_x * d(pixel)/dx
    return figures.error_heatmap(sigma.numpy(), len(images), colorbar_title="decoder σ (pixel units)")


# What an active unit is, in the words every card and alarm uses.
ACTIVE_UNIT_WORDS = f"Cov_x(E_q[z_u]) > {ACTIVE_UNIT_THRESHOLD:g} (Burda et al. 2015)"


@dataclass(frozen=True)
class CollapseVerdict:
    alarm: bool  # no active unit, after enough training to say so
    note: str  # why the question is not asked yet, or ""


def run_steps(run: LoadedRun) -> int | None:
    """The optimizer steps a run was trained for, from metrics.json; None when it does not say."""
    steps = run.metrics.get("steps")
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None


def collapse_verdict(run: LoadedRun, metrics: EvalMetrics) -> CollapseVerdict:
    """The posterior-collapse alarm for this run, silent (with the reason) for one trained too briefly."""
    return collapse_verdict_at(metrics, run_steps(run))


def collapse_verdict_at(metrics: EvalMetrics, steps: int | None) -> CollapseVerdict:
    """The alarm from the active units of freshly evaluated metrics, never a saved posterior_collapse flag."""
    if too_early_for_collapse(steps):
        return CollapseVerdict(False, f"Trained for {steps} step{'s' * (steps != 1)} only: too early to speak "
                               "of posterior collapse (an untrained encoder's KL is near zero too).")
    return CollapseVerdict(posterior_collapse(metrics.posterior_var, steps), "")


def collapse_message(metrics: EvalMetrics, per: str = "image") -> str:
    """The alarm's words: no unit is active, so z tells the decoder next to nothing about the image (or row)."""
    return (f"**Posterior collapse:** 0 of {len(metrics.posterior_var)} latent dimensions are active "
            f"({ACTIVE_UNIT_WORDS}): the posterior mean hardly moves from one {per} to another, so the decoder "
            "ignores z, whatever KL each dimension pays.")


def config_beta(config: RunConfig, steps: int, kl_per_dim: Sequence[float] = ()) -> EquivalentBeta:
    """The β a run's loss amounted to after `steps` steps, free bits judged on the given KL per dimension."""
    m = config.model
    return equivalent_beta(config.loss, m.channels * m.image_size**2, m.latent_dim, config.train.batch_size,
                           steps, kl_per_dim)


def run_beta(run: LoadedRun, kl_per_dim: Sequence[float] = ()) -> EquivalentBeta:
    """config_beta at the run's last step (0 where metrics.json does not say), as evaluate_cached counts it."""
    return config_beta(run.config, run_steps(run) or 0, kl_per_dim)


def status_note(run: LoadedRun) -> str | None:
    """What a diverged run's numbers mean, or None for a run that ended normally."""
    if run.metrics.get("status") != "diverged":
        return None
    message = run.metrics.get("message") or "Training diverged; the weights of its last finite step were kept."
    return f"{message} Every number on this page describes those weights."


SIGMA_HIGHLIGHT_WORDS = f"coloured where the KL is ≥ {COLLAPSE_KL:g} nats"  # the KL figure's split


def posterior_figures(metrics: EvalMetrics) -> tuple[go.Figure, go.Figure]:
    """KL per dimension and the mean posterior sigma per dimension (the prior's is 1), coloured where
    the KL reaches COLLAPSE_KL (SIGMA_HIGHLIGHT_WORDS), as the KL figure is."""
    over_kl = [k >= COLLAPSE_KL for k in metrics.kl_per_dim]
    kl = figures.kl_per_dim_bars(metrics.kl_per_dim, threshold=COLLAPSE_KL)
    sigma = diagnostic_figures.per_dim_bars(metrics.posterior_sigma, axis_title="mean posterior σ",
                                            reference=1.0, reference_name="prior σ = 1", highlight=over_kl)
    return kl, sigma
