"""Small display helpers shared by pages."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from vae_plots.views import dataset_words, with_error

PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}


def chart(fig: go.Figure, key: str | None = None) -> None:
    st.plotly_chart(fig, key=key, config=PLOTLY_CONFIG, width="stretch")


def test_metrics_ui(test: dict[str, Any]) -> None:
    """Test-set metrics as cards: the ELBO and its terms in nats/image, bits/dim, pixel MSE/PSNR."""
    if not test:
        st.info("This run has no test metrics.")
        return
    bpd = test.get("bits_per_dim")
    cards = [("ELBO", with_error(test["elbo_nats"], test.get("elbo_se"), 1),
              "nats/image, higher is better; ± one standard error over the test images"),
             ("Recon −log p(x|z)", f"{test['recon_nats']:.1f}", "nats/image"),
             ("KL(q ‖ p)", f"{test['kl_nats']:.2f}", "nats/image"),
             ("Bits/dim", with_error(bpd, test.get("bits_per_dim_se"), 3),
              test.get("bits_per_dim_note") or "8-bit scale; ± one standard error over the test images"),
             ("PSNR", f"{test['psnr_db']:.2f} dB", _psnr_help(test)),
             ("Active units", f"{test['active_units']} / {len(test.get('kl_per_dim', []))}",
              "Cov(E[z]) > 0.01 (Burda et al. 2015)")]
    for col, (label, value, help_text) in zip(st.columns(len(cards)), cards):
        col.metric(label, value, help=help_text)
    st.caption(f"On {test.get('n_test', '?')} test images of {dataset_words(test.get('dataset'))}; "
               "one sample of z per image for the ELBO, the posterior mean for MSE and PSNR.")


def _psnr_help(test: dict[str, Any]) -> str:
    """Metrics saved before psnr_pooled_db existed hold the pooled PSNR in psnr_db: they say only the MSE."""
    mse = f"pixel MSE {test['mse']:.5f}"
    pooled = test.get("psnr_pooled_db")
    return mse if pooled is None else f"the mean of each image's PSNR; pooled (from the mean MSE) {pooled:.2f} dB; {mse}"


# Widgets bound to the URL (bind="query-params"): a link reproduces what the page shows. Streamlit drops a
# URL value outside a widget's bounds silently; these check first, so the person is told what was ignored.
URL_BIND = "query-params"


def _number_ok(raw: str, lo: float, hi: float, integer: bool) -> bool:
    try:
        value = float(raw)
    except ValueError:
        return False
    return lo <= value <= hi and (value.is_integer() or not integer)


def url_refusal_ui(col: Any, key: str, label: str, ok: bool, allowed: str) -> None:
    """A short notice in place of the link's value that the widget will ignore."""
    raw = st.query_params.get(key)
    if raw is not None and not ok:
        col.warning(f"The link's “{label}” = {raw[:40]!r} is not allowed here ({allowed}); showing the default.",
                    icon=":material/link:")


def url_slider(col: Any, label: str, lo: float, hi: float, value: float, key: str, **kw: Any) -> Any:
    """A slider whose value lives in the URL under `key`."""
    raw = st.query_params.get(key)
    integer = all(isinstance(v, int) for v in (lo, hi, value))
    url_refusal_ui(col, key, label, raw is None or _number_ok(raw, lo, hi, integer), f"{lo:g} to {hi:g}")
    _within(key, lo, hi)
    return col.slider(label, lo, hi, value, key=key, bind=URL_BIND, **kw)


def _within(key: str, lo: float, hi: float) -> None:
    """A value kept from another model's range (2,000 test images, then 6) moves to the nearest end of this one."""
    kept = st.session_state.get(key)
    if isinstance(kept, (int, float)) and not isinstance(kept, bool) and not lo <= kept <= hi:
        st.session_state[key] = min(max(kept, lo), hi)


def url_number(col: Any, label: str, lo: int, hi: int, value: int, key: str, **kw: Any) -> int:
    """An integer input whose value lives in the URL under `key`."""
    raw = st.query_params.get(key)
    url_refusal_ui(col, key, label, raw is None or _number_ok(raw, lo, hi, True), f"an integer from {lo} to {hi}")
    _within(key, lo, hi)
    return col.number_input(label, lo, hi, value, key=key, bind=URL_BIND, **kw)


def url_choice(col: Any, widget: Any, label: str, options: list[Any], value: Any, key: str, **kw: Any) -> Any:
    """A select box or select slider whose value lives in the URL under `key` (as its label)."""
    fmt = kw.get("format_func", str)
    raw = st.query_params.get(key)
    url_refusal_ui(col, key, label, raw is None or raw in {fmt(o) for o in options},
                   "one of " + ", ".join(fmt(o) for o in options))
    if widget == "select_slider":
        return col.select_slider(label, options, value, key=key, bind=URL_BIND, **kw)
    return col.selectbox(label, options, options.index(value), key=key, bind=URL_BIND, **kw)
