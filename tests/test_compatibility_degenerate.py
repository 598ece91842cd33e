"""The degenerate verdict: a likelihood whose density is unbounded on the data's exact 0/1 pixels."""
import torch

from vae_core.model.compatibility import DEGENERATE_EDGE_SHARE, degeneracy, edge_share


def test_edge_share_counts_exact_black_and_white():
    images = torch.tensor([[[[0, 255, 1, 254]]]], dtype=torch.uint8)
    assert edge_share(images) == 0.5


def test_only_an_unbounded_density_on_edge_heavy_data_is_degenerate():
    above, below = DEGENERATE_EDGE_SHARE + 0.01, DEGENERATE_EDGE_SHARE - 0.01
    verdict = degeneracy("continuous_bernoulli", above)
    assert verdict.status == "degenerate" and "Bernoulli" in verdict.reason and "bits/dim" in verdict.reason
    assert degeneracy("continuous_bernoulli", below) is None
    assert degeneracy("continuous_bernoulli", None) is None  # not measured: no verdict rather than a guess
    assert degeneracy("bernoulli", 0.99) is None and degeneracy("gaussian", 0.99) is None
