"""The vectors' normalizations and their log-Jacobian, checked against densities computed by hand."""
from __future__ import annotations

import pytest
import torch

from vae_core.config import DataConfig, LossConfig, ModelConfig, RunConfig
from vae_core.data.vector_normalize import SIGMA_FLOOR_STD, VectorNormalizer, fit_vector_normalizer
from vae_core.model.evaluate_vectors import VECTORS_BPD_NOTE, evaluate_vectors
from vae_core.model.vae import build_model

D = 5


def _rows(n: int = 300, seed: int = 0) -> torch.Tensor:
    """Raw rows far from unit: offsets in the hundreds, scales from 0.01 to 100."""
    g = torch.Generator().manual_seed(seed)
    scale = 10 ** torch.linspace(-2, 2, D)
    return 300 + scale * torch.randn(n, D, generator=g) * torch.tensor([1, -2, 3, -4, 5])


@pytest.mark.parametrize("data_scale", [1.0, 10.0])
def test_zscore_takes_each_feature_s_mean_and_population_std_and_none_is_the_identity(data_scale):
    rows = _rows()
    z = fit_vector_normalizer("zscore", rows, data_scale)
    x = rows.double()
    assert z.shift == pytest.approx(x.mean(0).tolist())
    assert z.scale == pytest.approx((x.std(0, correction=0) / data_scale).tolist())
    normalized = z.forward(rows.double())
    assert normalized.mean(0).abs().max() < 1e-9
    assert normalized.std(0, correction=0).tolist() == pytest.approx([data_scale] * D)
    none = fit_vector_normalizer("none", rows, data_scale)
    assert torch.allclose(none.forward(rows), rows * data_scale)
    assert torch.allclose(z.inverse(z.forward(rows.double())), rows.double())


def test_the_log_jacobian_turns_a_normalized_density_into_the_raw_one():
    rows = _rows().double()
    z = fit_vector_normalizer("zscore", rows.float())
    mean, sd = rows.mean(0) + 0.3 * rows.std(0), 0.7 * rows.std(0)  # any Gaussian, in raw units
    raw = torch.distributions.Normal(mean, sd).log_prob(rows).sum(1)
    shift, scale = torch.tensor(z.shift, dtype=torch.float64), torch.tensor(z.scale, dtype=torch.float64)
    normalized = torch.distributions.Normal((mean - shift) / scale, sd / scale).log_prob(z.forward(rows)).sum(1)
    assert torch.allclose(raw, normalized - z.log_det(), atol=1e-9)
    assert z.log_det() == pytest.approx(torch.log(scale).sum().item())
    assert fit_vector_normalizer("none", rows.float()).log_det() == 0.0


@pytest.mark.parametrize("normalization", ["none", "zscore"])
def test_evaluation_reports_the_reconstruction_of_raw_rows_with_the_log_jacobian(normalization):
    rows = _rows(200, seed=1) / 100  # offsets near 3: an untrained encoder would overflow on raw 300s
    normalizer = fit_vector_normalizer(normalization, rows)
    config = RunConfig(DataConfig(dataset="vectors", normalization=normalization),
                       ModelConfig(arch="mlp", features=D, latent_dim=2, hidden_dim=16, output_activation="linear"),
                       LossConfig(likelihood="gaussian", sigma=0.5))
    model = build_model(config.model, "gaussian", 0.5, seed=0, sigma_floor=normalizer.sigma_floor())
    result = evaluate_vectors(model, normalizer, rows, tuple("abcde"), config=config, seed=3)
    # By hand, in raw units (float64): the first z draw (seed 3, one batch) decoded to raw means, sigma 0.5 times
    # each scale. float32 rows at 300 carry 3e-5 of rounding, which the feature of scale 0.01 magnifies: rel 1e-4.
    out = model.eval()(normalizer.forward(rows), torch.Generator().manual_seed(3))
    scale = torch.tensor(normalizer.scale, dtype=torch.float64)
    mean = normalizer.inverse(out.x_hat.double())
    by_hand = torch.distributions.Normal(mean, 0.5 * scale).log_prob(rows.double()).sum(1)
    assert result.recon_nats == pytest.approx(-by_hand.mean().item(), rel=1e-4)
    assert result.log_jacobian_nats == pytest.approx(normalizer.log_det())
    assert result.elbo_nats == pytest.approx(-(result.recon_nats + result.kl_nats), rel=1e-6)
    assert result.bits_per_dim is None and result.bits_per_dim_note == VECTORS_BPD_NOTE
    assert result.feature_names == list("abcde") and len(result.feature_rmse) == D
    assert len(result.posterior_mu_min) == len(result.posterior_sigma_max) == 2


def test_the_sigma_floor_is_a_share_of_each_feature_s_spread_in_normalized_units():
    rows = _rows()
    for kind in ("none", "zscore"):
        n = fit_vector_normalizer(kind, rows)
        expected = [SIGMA_FLOOR_STD * d / s for d, s in zip(n.spread, n.scale)]
        assert n.sigma_floor().tolist() == pytest.approx(expected)
    assert fit_vector_normalizer("zscore", rows).sigma_floor().tolist() == pytest.approx([SIGMA_FLOOR_STD] * D)


def test_a_saved_normalizer_comes_back_and_a_malformed_one_is_refused_saying_what_it_needs():
    n = fit_vector_normalizer("zscore", _rows())
    assert VectorNormalizer.from_dict(n.to_dict(), D) == n
    for broken in ({**n.to_dict(), "kind": "unit"}, {**n.to_dict(), "scale": [1.0] * (D - 1)},
                   {**n.to_dict(), "spread": [0.0] * D}, {**n.to_dict(), "low": [float("nan")] * D}):
        with pytest.raises(ValueError, match=f"lists of {D} numbers"):
            VectorNormalizer.from_dict(broken, D)


def test_the_training_range_is_what_the_compatibility_verdict_reads():
    rows = _rows()
    n = fit_vector_normalizer("zscore", rows)
    lo, hi = n.value_range()
    x = n.forward(rows.double())
    assert lo == pytest.approx(x.min().item()) and hi == pytest.approx(x.max().item())
