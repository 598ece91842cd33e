"""Small display helpers shared by pages."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def chart(fig: go.Figure, key: str | None = None) -> None:
    st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, width="stretch")


def test_metrics_ui(test: dict[str, Any]) -> None:
    """Test-set metrics as cards: the ELBO and its terms in nats/image, bits/dim, pixel MSE/PSNR."""
    if not test:
        st.info("This run has no test metrics.")
        return
    bpd = test.get("bits_per_dim")
    cards = [("ELBO", f"{test['elbo_nats']:.1f}", "nats/image, higher is better"),
             ("Recon −log p(x|z)", f"{test['recon_nats']:.1f}", "nats/image"),
             ("KL(q ‖ p)", f"{test['kl_nats']:.2f}", "nats/image"),
             ("Bits/dim", "—" if bpd is None else f"{bpd:.3f}", test.get("bits_per_dim_note") or "8-bit scale"),
             ("PSNR", f"{test['psnr_db']:.2f} dB", f"pixel MSE {test['mse']:.5f}"),
             ("Active units", f"{test['active_units']} / {len(test.get('kl_per_dim', []))}",
              "Cov(E[z]) > 0.01 (Burda et al. 2015)")]
    for col, (label, value, help_text) in zip(st.columns(len(cards)), cards):
        col.metric(label, value, help=help_text)
    st.caption(f"On {test.get('n_test', '?')} test images of {test.get('dataset', '?')}; "
               "one sample of z per image for the ELBO, the posterior mean for MSE and PSNR.")
