"""Lab 4: why may I compare the input with the decoding of a *sampled* z using MSE?

One variant, the bundled sprites model's (sigmoid output, unit data, a Gaussian with a fixed sigma = 0.1): on
test images, how far a sample z ~ q(z|x) lies from mu against how far the nearest other image's mu is; which
test image each decoded sample is nearest to; MSE as the Gaussian's negative log-likelihood with its constant;
and the decodings of samples beside the input. On sprites it is measured instantly on the bundled run.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from vae_core.config import RunConfig
from vae_core.data.base import pixels
from vae_core.labs.base import (NOT_SETTLED, Column, Finding, Lab, LabRun, LabSettings, Measured, OwnMeasures, Variant,
                                Verdict, base_config, missing)
from vae_core.labs.evidence import Direction, Evidence, level_evidence, verdict
from vae_core.model.latent import reconstruct
from vae_core.model.likelihoods import HALF_LOG_2PI
from vae_core.model.objective import reconstruction_nats
from vae_core.runs.folders import LoadedRun, RunLoadError, bundled_models_dir, read_config
from vae_core.zoo import ZooKey
from vae_core.zoo import base_config as zoo_base_config
from vae_core.zoo import entry_name, with_key

KEY = "model"
ZOO_KEY = ZooKey("sigmoid", "unit", "gaussian")  # the bundled run this lab's variant is
SAMPLES = 8  # decoded z ~ q(z|x) per test image
NEAR_SELF_SHARE = 0.5  # most decoded samples nearest to x itself: a sampled z stays in x's neighbourhood
SAMPLED_MSE_RATIO = 1.5  # a sampled z decodes nearly as well as mu when its MSE is within this factor
NLL_TOLERANCE = 1e-4  # relative: the formula and the likelihood code are one number


def design(settings: LabSettings) -> tuple[Variant, ...]:
    """The zoo entry's model, loss and normalization, on the lab's data subset, seed and budget."""
    # the zoo's model and loss (a person's images have no zoo: the sprites entry's, at the images' own shape)
    zoo = with_key(zoo_base_config("sprites" if settings.images else settings.dataset, settings.data_dir), ZOO_KEY)
    config = base_config(settings, zoo.model, zoo.loss, normalization=zoo.data.normalization)
    return (Variant(KEY, f"sigmoid · [0, 1] · Gaussian σ = {zoo.loss.sigma:g}", config),)


def same_model(a: RunConfig, b: RunConfig) -> bool:
    """Whether two configs train the same model on the same data: epochs, budget (a step budget's training subset,
    n_train, included) and test-set size aside."""
    data = ("dataset", "image_size", "normalization", "seed", "data_scale")
    train = ("batch_size", "lr", "seed")
    return (a.model == b.model and a.loss == b.loss and all(getattr(a.data, f) == getattr(b.data, f) for f in data)
            and all(getattr(a.train, f) == getattr(b.train, f) for f in train))


def instant(settings: LabSettings) -> tuple[Path, ...] | None:
    """The bundled zoo run, where it is the design's variant (sprites, seed 0); None otherwise."""
    run_dir = bundled_models_dir() / entry_name(settings.dataset, ZOO_KEY)
    try:
        config, _ = read_config(run_dir)
    except (RunLoadError, OSError):
        return None
    return (run_dir,) if same_model(config, design(settings)[0].config) else None


# ----------------------------------------------------------------------------- measuring

def posterior_spread(logvar: torch.Tensor) -> torch.Tensor:
    """(N,) the RMS length of z - mu for z ~ q(z|x): sqrt(sum of the posterior's variances)."""
    return logvar.exp().sum(1).sqrt()


def nearest_other(points: torch.Tensor) -> torch.Tensor:
    """(N,) each point's distance to the nearest other one; points (N, L), N >= 2."""
    distances = torch.cdist(points.double(), points.double())
    return distances.fill_diagonal_(math.inf).min(1).values


def nearest_self_share(decoded: torch.Tensor, images: torch.Tensor) -> float:
    """The share of decodings (S, N, D) whose nearest image of images (N, D), in squared error, is their own
    (row n decodes image n); a tie counts for the image itself."""
    return nearest_self_shares(decoded, images).mean().item()


def nearest_self_shares(decoded: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """(N,) for each image, the share of its S decodings (S, N, D) nearest to it among images (N, D)."""
    s, n = decoded.shape[:2]
    sq = torch.cdist(decoded.reshape(s * n, -1).double(), images.double()).pow(2).view(s, n, n)  # (S, N, N)
    own = sq.diagonal(dim1=1, dim2=2)  # (S, N)
    return (own <= sq.min(2).values).double().mean(0)


def gaussian_nll(x: torch.Tensor, x_hat: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N,) -log N(x; x_hat, sigma^2 I) per image, written out: SSE / (2 sigma^2) + D (log sigma + 0.5 log 2 pi)."""
    sse = (x - x_hat).pow(2).flatten(1).sum(1)
    return sse / (2 * sigma**2) + x[0].numel() * nll_constant(sigma)


def nll_constant(sigma: float) -> float:
    """The Gaussian's constant per dimension, nats: log sigma + 0.5 log 2 pi (what MSE leaves out)."""
    return math.log(sigma) + HALF_LOG_2PI


@dataclass(frozen=True)
class SampleDecodings:
    """For the page's figure: pixels in [0, 1]."""
    inputs: torch.Tensor  # (K, C, H, W)
    means: torch.Tensor  # (K, C, H, W) decodings of the posterior means
    samples: torch.Tensor  # (K, n, C, H, W) decodings of z ~ q(z|x)


@torch.no_grad()
def sample_decodings(run: LoadedRun, images: torch.Tensor, n: int, seed: int = 0) -> SampleDecodings:
    """The inputs (uint8 (K, C, H, W)), their posterior-mean decodings and n sampled decodings each, as pixels."""
    x = run.normalizer.from_grey_levels(images)
    samples = reconstruct(run.model, x, "sample", n, seed).transpose(0, 1)  # (K, n, C, H, W)
    means = reconstruct(run.model, x, "mean")
    return SampleDecodings(pixels(images), *(run.normalizer.inverse(t).clamp(0, 1) for t in (means, samples)))


SPREAD_EXCESS, SELF_SHARE, MSE_EXCESS = "spread_excess", "self_share", "mse_excess"  # paired, image by image


@torch.no_grad()
def own(lab_run: LabRun) -> OwnMeasures:
    """The posterior's spread against the gap between images (and image by image (N,), the spread minus the gap to
    the nearest other μ), which image a sampled decoding is nearest to, the MSE of sampled and mean decodings, and
    the Gaussian NLL written out against the model's own."""
    run, seed = lab_run.run, lab_run.run.config.train.seed
    mu, logvar = run.model.encode(lab_run.x)
    spread, gap = posterior_spread(logvar), nearest_other(mu)  # (N,) each
    near = _neighbours(sample_decodings(run, lab_run.images, SAMPLES, seed))
    means = {"spread": spread.mean().item(), "gap": gap.mean().item(),
             "spread_over_gap": spread.mean().item() / gap.mean().item()}
    return OwnMeasures(means | near.means | _nll(lab_run, seed),
                       {SPREAD_EXCESS: (spread - gap).double()} | near.per_image)


N_PICTURED = 6  # test images shown with their sampled decodings


def pictures(lab_run: LabRun) -> list[tuple[str, torch.Tensor]]:
    """Per test image: the input, its decoding at mu, then decodings of z ~ q(z|x), side by side."""
    d = sample_decodings(lab_run.run, lab_run.images[:N_PICTURED], N_PICTURED, lab_run.run.config.train.seed)
    return [(f"test image {i + 1}: input · decoded at μ · decoded at {N_PICTURED} samples z ~ q(z|x)",
             torch.cat([d.inputs[i:i + 1], d.means[i:i + 1], d.samples[i]])) for i in range(len(d.inputs))]


def _neighbours(decoded: SampleDecodings) -> OwnMeasures:
    """Nearest-image shares and pixel MSEs of the sampled and the posterior-mean decodings; image by image (N,), the
    share of an image's decoded samples nearest to itself, and its sampled decodings' MSE minus SAMPLED_MSE_RATIO
    times its posterior mean's."""
    images = decoded.inputs.flatten(1)  # (N, D)
    samples = decoded.samples.transpose(0, 1).flatten(2)  # (S, N, D)
    means = decoded.means.flatten(1).unsqueeze(0)  # (1, N, D)
    shares = nearest_self_shares(samples, images)  # (N,)
    mse_sampled, mse_mean = (samples - images).pow(2).mean((0, 2)), (means - images).pow(2).mean((0, 2))  # (N,)
    return OwnMeasures({"share_self": shares.mean().item(), "share_self_mean": nearest_self_share(means, images),
                        "mse_sampled": mse_sampled.mean().item(), "mse_mean": mse_mean.mean().item()},
                       {SELF_SHARE: shares, MSE_EXCESS: (mse_sampled - SAMPLED_MSE_RATIO * mse_mean).double()})


def _nll(lab_run: LabRun, seed: int) -> dict[str, float]:
    """One z ~ q(z|x) per image: the NLL from the formula, its parts, and the likelihood code's own term."""
    model, x = lab_run.run.model, lab_run.x
    log_sigma = model.decoder_log_sigma()
    if log_sigma is None or log_sigma.dim() > 0 or model.lik.density != "gaussian":
        return {}  # not one shared Gaussian sigma: the formula does not apply
    out = model(x, torch.Generator().manual_seed(seed))
    sigma = log_sigma.exp().item()
    formula = gaussian_nll(x, out.x_hat, sigma)
    constant = x[0].numel() * nll_constant(sigma)
    return {"sigma": sigma, "nll_formula": formula.mean().item(), "nll_constant": constant,
            "nll_sse_term": formula.mean().item() - constant, "dims": float(x[0].numel()),
            "recon_term": reconstruction_nats(out, x, model.likelihood).mean().item()}


# ----------------------------------------------------------------------------- concluding

def _claim(found: Evidence | None, expected: Direction) -> tuple[Verdict, str]:
    """The verdict on a margin measured image by image, and its text with the noise (or what keeps it open)."""
    if found is None:
        return NOT_SETTLED, " (nothing to pair)"
    open_ = "" if found.settled else f"; {found.why_not_settled()}"
    return verdict(found, expected), f" (margin {found.text(3)}{open_})"


def _neighbourhood_findings(m: Measured) -> list[Finding]:
    e = m.extras
    ratio = e["spread_over_gap"]
    narrow, noise = _claim(level_evidence(m, SPREAD_EXCESS, 0.0), "negative")
    words = {"agrees": "so the posterior is narrow against the gap between images",
             "disagrees": "so the posterior is **not** narrow against the gap between images",
             NOT_SETTLED: "whether the posterior is narrow against the gap is not settled at this budget"}
    spread = Finding(f"A sample z ~ q(z|x) lies on average **{e['spread']:.3g}** from μ (the RMS length √Σσ²), the "
                     f"nearest other test image's μ **{e['gap']:.3g}** away: a ratio of **{ratio:.2g}**, "
                     f"{words[narrow]}{noise}.", narrow)
    share, share_mean = e["share_self"], e["share_self_mean"]
    most, noise = _claim(level_evidence(m, SELF_SHARE, NEAR_SELF_SHARE), "positive")
    ending = {"agrees": ": a sampled z still decodes to x's own neighbourhood, so comparing it with x compares like "
                        "with like",
              "disagrees": ": most sampled z do **not** decode nearest to x itself",
              NOT_SETTLED: ": whether most do is not settled at this budget"}
    text = (f"**{share:.1%}** of the decoded samples ({SAMPLES} per image) are nearest, among the test images, to "
            f"x itself ({share_mean:.1%} of the posterior-mean decodings); each image's share minus "
            f"{NEAR_SELF_SHARE:.0%}{noise}")
    return [spread, Finding(text + ending[most] + ".", most)]


def _nll_finding(e: Mapping[str, float]) -> Finding:
    formula, recon = e["nll_formula"], e["recon_term"]
    same = abs(formula - recon) <= NLL_TOLERANCE * max(abs(recon), 1.0)
    text = (f"MSE is the Gaussian log-likelihood up to scale and a constant: −log N(x; x̂, σ²I) = SSE / (2σ²) + "
            f"D (log σ + ½ log 2π). With σ = {e['sigma']:.3g} and D = {e['dims']:.0f} that is "
            f"**{e['nll_sse_term']:,.1f} + ({e['nll_constant']:,.1f}) = {formula:,.1f} nats** per image, against "
            f"**{recon:,.1f}** from the model's likelihood code on the same z")
    if same:  # an identity, checked: a calculation, which no measurement can contradict
        return Finding("A calculation, not a test: " + text + ": the same number. The constant moves no gradient; "
                       "1/(2σ²) is the weight against the KL.")
    return Finding(text + ": they **differ**, so this model's reconstruction term is not that Gaussian.",
                   "disagrees")


def _expectation_finding(m: Measured) -> Finding:
    e, recon_nats = m.extras, m.metrics.recon_nats
    ratio = e["mse_sampled"] / e["mse_mean"]
    close, noise = _claim(level_evidence(m, MSE_EXCESS, 0.0), "negative")
    text = (f"The ELBO's reconstruction term is E_q(z|x)[−log p(x|z)], an expectation over z ~ q: sampling z is what "
            f"estimates it (the run's test evaluation: {recon_nats:,.1f} nats per image). A sampled z's decoding has "
            f"pixel MSE **{e['mse_sampled']:.3g}** against **{e['mse_mean']:.3g}** from μ ({ratio:.2f}×; each "
            f"image's sampled MSE minus {SAMPLED_MSE_RATIO:g}× its μ's{noise})")
    ending = {"agrees": ": nearly as good, because q is narrow.",
              "disagrees": ": sampling costs much more than the posterior's width would suggest.",
              NOT_SETTLED: ": whether it is nearly as good is not settled at this budget."}
    return Finding(text + ending[close], close)


def conclude(m: Mapping[str, Measured]) -> list[Finding]:
    gone = missing(m, KEY)
    if gone:
        return [gone]
    e = m[KEY].extras
    found = _neighbourhood_findings(m[KEY])
    if "nll_formula" in e:
        found.append(_nll_finding(e))
    return found + [_expectation_finding(m[KEY])]


LAB = Lab(
    id="sampled-z",
    title="MSE against the decoding of a sampled z",
    question="Why may I compare the input with the decoding of a *sampled* z using MSE?",
    textbook=("MSE is the negative log-likelihood of a Gaussian decoder up to its scale 1/(2σ²) and a constant, and "
              "the ELBO's reconstruction term is its expectation over z ~ q(z|x): one sampled z is an unbiased "
              "estimate of it. A trained encoder's q(z|x) is narrow against the distance between images, so a "
              "sampled z still decodes to x's neighbourhood."),
    design=design,
    columns=(Column("spread of q (√Σσ²)", "spread", ".3g"),
             Column("gap to nearest μ", "gap", ".3g"),
             Column("spread / gap", "spread_over_gap", ".2g", "lower"),
             Column("samples nearest x", "share_self", ".1%", "higher"),
             Column("MSE, sampled z", "mse_sampled", ".3g", "lower"),
             Column("MSE, μ", "mse_mean", ".3g", "lower"),
             Column("NLL formula (nats)", "nll_formula", ",.1f"),
             Column("recon term (nats)", "recon_term", ",.1f")),
    conclude=conclude,
    own=own,
    instant=instant,
    pictures=pictures,
)
