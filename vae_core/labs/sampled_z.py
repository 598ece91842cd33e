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

from ..config import RunConfig
from ..data import pixels
from ..latent import reconstruct
from ..likelihoods import HALF_LOG_2PI
from ..objective import reconstruction_nats
from ..runs import LoadedRun, RunLoadError, bundled_models_dir, read_config
from ..zoo import ZooKey, entry_name, with_key
from ..zoo import base_config as zoo_base_config
from .base import Column, Finding, Lab, LabRun, LabSettings, Measured, Variant, base_config, missing

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
    s, n = decoded.shape[:2]
    sq = torch.cdist(decoded.reshape(s * n, -1).double(), images.double()).pow(2).view(s, n, n)  # (S, N, N)
    own = sq.diagonal(dim1=1, dim2=2)  # (S, N)
    return (own <= sq.min(2).values).double().mean().item()


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


@torch.no_grad()
def extras(lab_run: LabRun) -> dict[str, float]:
    """The posterior's spread against the gap between images, which image a sampled decoding is nearest to,
    the MSE of sampled and mean decodings, and the Gaussian NLL written out against the model's own."""
    run, seed = lab_run.run, lab_run.run.config.train.seed
    mu, logvar = run.model.encode(lab_run.x)
    spread, gap = posterior_spread(logvar).mean().item(), nearest_other(mu).mean().item()
    found = {"spread": spread, "gap": gap, "spread_over_gap": spread / gap}
    decoded = sample_decodings(run, lab_run.images, SAMPLES, seed)
    found |= _neighbours(decoded)
    return found | _nll(lab_run, seed)


N_PICTURED = 6  # test images shown with their sampled decodings


def pictures(lab_run: LabRun) -> list[tuple[str, torch.Tensor]]:
    """Per test image: the input, its decoding at mu, then decodings of z ~ q(z|x), side by side."""
    d = sample_decodings(lab_run.run, lab_run.images[:N_PICTURED], N_PICTURED, lab_run.run.config.train.seed)
    return [(f"test image {i + 1}: input · decoded at μ · decoded at {N_PICTURED} samples z ~ q(z|x)",
             torch.cat([d.inputs[i:i + 1], d.means[i:i + 1], d.samples[i]])) for i in range(len(d.inputs))]


def _neighbours(decoded: SampleDecodings) -> dict[str, float]:
    """Nearest-image shares and pixel MSEs of the sampled and the posterior-mean decodings."""
    images = decoded.inputs.flatten(1)  # (N, D)
    samples = decoded.samples.transpose(0, 1).flatten(2)  # (S, N, D)
    means = decoded.means.flatten(1).unsqueeze(0)  # (1, N, D)
    return {"share_self": nearest_self_share(samples, images), "share_self_mean": nearest_self_share(means, images),
            "mse_sampled": (samples - images).pow(2).mean().item(), "mse_mean": (means - images).pow(2).mean().item()}


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

def _neighbourhood_findings(e: Mapping[str, float]) -> list[Finding]:
    ratio = e["spread_over_gap"]
    small = ratio < 1
    spread = Finding(f"A sample z ~ q(z|x) lies on average **{e['spread']:.3g}** from μ (the RMS length √Σσ²), the "
                     f"nearest other test image's μ **{e['gap']:.3g}** away: a ratio of **{ratio:.2g}**, "
                     + ("so the posterior is narrow against the gap between images." if small else
                        "so the posterior is **not** narrow against the gap between images."),
                     "agrees" if small else "disagrees")
    share, share_mean = e["share_self"], e["share_self_mean"]
    most = share >= NEAR_SELF_SHARE
    text = (f"**{share:.1%}** of the decoded samples ({SAMPLES} per image) are nearest, among the test images, to "
            f"x itself ({share_mean:.1%} of the posterior-mean decodings)")
    return [spread, Finding(text + (": a sampled z still decodes to x's own neighbourhood, so comparing it with x "
                                     "compares like with like." if most else
                                     ": most sampled z do **not** decode nearest to x itself."),
                            "agrees" if most else "disagrees")]


def _nll_finding(e: Mapping[str, float]) -> Finding:
    formula, recon = e["nll_formula"], e["recon_term"]
    same = abs(formula - recon) <= NLL_TOLERANCE * max(abs(recon), 1.0)
    text = (f"MSE is the Gaussian log-likelihood up to scale and a constant: −log N(x; x̂, σ²I) = SSE / (2σ²) + "
            f"D (log σ + ½ log 2π). With σ = {e['sigma']:.3g} and D = {e['dims']:.0f} that is "
            f"**{e['nll_sse_term']:,.1f} + ({e['nll_constant']:,.1f}) = {formula:,.1f} nats** per image, against "
            f"**{recon:,.1f}** from the model's likelihood code on the same z")
    if same:
        return Finding(text + ": the same number. The constant moves no gradient; 1/(2σ²) is the weight against "
                       "the KL.", "agrees")
    return Finding(text + ": they **differ**, so this model's reconstruction term is not that Gaussian.",
                   "disagrees")


def _expectation_finding(e: Mapping[str, float], recon_nats: float) -> Finding:
    ratio = e["mse_sampled"] / e["mse_mean"]
    close = ratio <= SAMPLED_MSE_RATIO
    text = (f"The ELBO's reconstruction term is E_q(z|x)[−log p(x|z)], an expectation over z ~ q: sampling z is what "
            f"estimates it (the run's test evaluation: {recon_nats:,.1f} nats per image). A sampled z's decoding has "
            f"pixel MSE **{e['mse_sampled']:.3g}** against **{e['mse_mean']:.3g}** from μ ({ratio:.2f}×)")
    if close:
        return Finding(text + ": nearly as good, because q is narrow.", "agrees")
    return Finding(text + ": sampling costs much more than the posterior's width would suggest.", "disagrees")


def conclude(m: Mapping[str, Measured]) -> list[Finding]:
    gone = missing(m, KEY)
    if gone:
        return [gone]
    e = m[KEY].extras
    found = _neighbourhood_findings(e)
    if "nll_formula" in e:
        found.append(_nll_finding(e))
    return found + [_expectation_finding(e, m[KEY].metrics.recon_nats)]


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
    extras=extras,
    instant=instant,
    pictures=pictures,
)
