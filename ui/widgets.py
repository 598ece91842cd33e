"""Small display helpers shared by pages."""
from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

from ui.present import present_figure, presenting
from vae_core.data.vectors.dataset import DATASET_NAME as VECTORS
from vae_core.model.evaluate_vectors import NATS_PER_ROW, VECTORS_BPD_NOTE
from vae_plots.figures import format_number
from vae_core.model.compatibility import ACTIVATION_RANGE
from vae_core.model.evaluate import COLLAPSE_KL
from vae_plots.views import ACTIVE_UNIT_WORDS, collapse_message, collapse_verdict, dataset_words, uncertainty_words

PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
CARDS_PER_ROW = 3


def chart(fig: go.Figure, key: str | None = None) -> None:
    st.plotly_chart(present_figure(fig) if presenting() else fig, key=key, config=PLOTLY_CONFIG, width="stretch")


Card = tuple[str, str, str | None, str]  # label, value, second line, help


def test_metrics_ui(test: dict[str, Any]) -> None:
    """Test-set metrics as cards: the ELBO and its terms in nats/image, bits/dim, pixel MSE/PSNR; for vectors in nats
    per raw row, without bits/dim (saying why)."""
    if not test:
        st.info("This run has no test metrics.")
        return
    vectors = test.get("dataset") == VECTORS
    cards = _vector_cards(test) if vectors else _image_cards(test)
    for row in range(0, len(cards), CARDS_PER_ROW):  # three to a row: a 1024-pixel projector shows each value whole
        for col, (label, value, delta, help_text) in zip(st.columns(CARDS_PER_ROW), cards[row:row + CARDS_PER_ROW]):
            col.metric(label, value, delta, delta_color="off", delta_arrow="off", help=help_text)
    if vectors:
        st.caption(f"On {test.get('n_test', '?')} test rows, {test.get('unit', NATS_PER_ROW)}; one sample of z per "
                   f"row for the ELBO. Bits/dim is {test.get('bits_per_dim_note') or VECTORS_BPD_NOTE}.")
        return
    st.caption(f"On {test.get('n_test', '?')} test images of {dataset_words(test.get('dataset'))}; "
               "one sample of z per image for the ELBO, the posterior mean for MSE and PSNR.")


def _image_cards(test: dict[str, Any]) -> list[Card]:
    bpd, n = test.get("bits_per_dim"), test.get("n_test")
    return [("ELBO", format_number(test["elbo_nats"], 1), monte_carlo(test.get("elbo_mc_se"), 1),
             "nats/image, higher is better. A density's ELBO can be positive (a density may exceed 1) and changes "
             "with the normalization; bits/dim compares across them. "
             + uncertainty_words(test.get("elbo_mc_se"), test.get("elbo_se"), n, 1)),
            ("−log p(x|z)", format_number(test['recon_nats'], 1), None,
             "negative log-likelihood −log p(x|z), nats/image (the ELBO's reconstruction term)"),
            ("KL(q ‖ p)", format_number(test['kl_nats'], 2), None, "nats/image"),
            ("Bits/dim", format_number(bpd, 3), monte_carlo(test.get("bits_per_dim_mc_se"), 3),
             test.get("bits_per_dim_note") or "the 8-bit images' grey-level masses, KL included, per dimension. "
             + uncertainty_words(test.get("bits_per_dim_mc_se"), test.get("bits_per_dim_se"), n, 3)),
            ("PSNR", f"{test['psnr_db']:.2f} dB", None, _psnr_help(test)),
            ("Active units", f"{test['active_units']} / {len(test.get('kl_per_dim', []))}", None, ACTIVE_UNIT_WORDS)]


def _vector_cards(test: dict[str, Any]) -> list[Card]:
    """Nats per row of the raw vectors, so they compare across normalizations: no bits/dim, no PSNR (no 8-bit bins,
    no peak value), the normalization's log-Jacobian instead."""
    n = test.get("n_test")
    return [("ELBO", format_number(test["elbo_nats"], 1), monte_carlo(test.get("elbo_mc_se"), 1),
             f"{NATS_PER_ROW}, higher is better; it compares across normalizations. "
             + uncertainty_words(test.get("elbo_mc_se"), test.get("elbo_se"), n, 1)),
            ("−log p(x|z)", format_number(test["recon_nats"], 1), None,
             f"the ELBO's reconstruction term, {NATS_PER_ROW}"),
            ("KL(q ‖ p)", format_number(test["kl_nats"], 2), None, "nats per row"),
            ("Log-Jacobian", format_number(test.get("log_jacobian_nats"), 1), None,
             "Σ log scale over the features: the nats −log p(x|z) of the normalized rows gains in raw units "
             "(included in the two cards before)"),
            ("Active units", f"{test['active_units']} / {len(test.get('kl_per_dim', []))}", None, ACTIVE_UNIT_WORDS)]


def monte_carlo(se: float | None, decimals: int) -> str | None:
    """A card's second line: its Monte-Carlo standard error (under the value, so the value keeps the width)."""
    return None if se is None else f"± {format_number(se, decimals)} Monte-Carlo"


def _psnr_help(test: dict[str, Any]) -> str:
    """Metrics saved before psnr_pooled_db existed hold the pooled PSNR in psnr_db: they say only the MSE."""
    mse = f"pixel MSE {test['mse']:.5f}"
    pooled = test.get("psnr_pooled_db")
    return mse if pooled is None else f"the mean of each image's PSNR; pooled (from the mean MSE) {pooled:.2f} dB; {mse}"


# Widgets bound to the URL (bind="query-params"): a link reproduces what the page shows. Streamlit drops a
# URL value outside a widget's bounds silently; these check first, so the person is told what was ignored.
URL_BIND = "query-params"
UNBOUND_KEY = "url_unbound"  # session: the keys of widgets drawn unbound last time, their link's value refused


def _number_ok(raw: str, lo: float, hi: float, integer: bool) -> bool:
    try:
        value = float(raw)
    except ValueError:
        return False
    return lo <= value <= hi and (value.is_integer() or not integer)


def url_refusal_ui(col: Any, key: str, label: str, ok: bool, allowed: str) -> str | None:
    """A short notice in place of the link's value that the widget will ignore; returns the widget's bind."""
    raw = st.query_params.get(key)
    if raw is None or ok:
        _rebind(key)
        return URL_BIND
    col.warning(f"The link's “{label}” = {raw[:40]!r} is not allowed here ({allowed}); showing the default.",
                icon=":material/link:")
    _drop_param(key)
    st.session_state.setdefault(UNBOUND_KEY, set()).add(key)
    # Unbound for this run: a bound widget is seeded from the link before any code of ours runs, and Streamlit
    # catches only ValueError there, so "inf" or "1e309" in an integer input raised OverflowError (int(inf)).
    return None


def _drop_param(key: str) -> None:
    try:
        del st.query_params[key]
    except st.errors.StreamlitAPIException:  # bound since an earlier run: the unbound widget call clears it
        pass


def _rebind(key: str) -> None:
    """Bound again: a change made while unbound reached only the server (the browser had no binding to write
    it to the URL); set again, Streamlit writes it there."""
    unbound = st.session_state.get(UNBOUND_KEY, set())
    if key in unbound:
        unbound.discard(key)
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def url_slider(col: Any, label: str, lo: float, hi: float, value: float, key: str, **kw: Any) -> Any:
    """A slider whose value lives in the URL under `key`."""
    raw = st.query_params.get(key)
    integer = all(isinstance(v, int) for v in (lo, hi, value))
    bind = url_refusal_ui(col, key, label, raw is None or _number_ok(raw, lo, hi, integer), f"{lo:g} to {hi:g}")
    _within(key, lo, hi)
    return col.slider(label, lo, hi, value, key=key, bind=bind, **kw)


def _within(key: str, lo: float, hi: float) -> None:
    """A value kept from another model's range (2,000 test images, then 6) moves to the nearest end of this one."""
    kept = st.session_state.get(key)
    if isinstance(kept, (int, float)) and not isinstance(kept, bool) and not lo <= kept <= hi:
        st.session_state[key] = min(max(kept, lo), hi)


def url_number(col: Any, label: str, lo: int, hi: int, value: int, key: str, **kw: Any) -> int:
    """An integer input whose value lives in the URL under `key`."""
    raw = st.query_params.get(key)
    bind = url_refusal_ui(col, key, label, raw is None or _number_ok(raw, lo, hi, True),
                          f"an integer from {lo} to {hi}")
    _within(key, lo, hi)
    return col.number_input(label, lo, hi, value, key=key, bind=bind, **kw)


def url_choice(col: Any, widget: Any, label: str, options: list[Any], value: Any, key: str, **kw: Any) -> Any:
    """A select box, select slider or segmented control whose value lives in the URL under `key` (as its label)."""
    fmt = kw.get("format_func", str)
    raw = st.query_params.get(key)
    bind = url_refusal_ui(col, key, label, raw is None or raw in {fmt(o) for o in options},
                          "one of " + ", ".join(fmt(o) for o in options))
    if widget == "select_slider":
        return col.select_slider(label, options, value, key=key, bind=bind, **kw)
    if widget == "segmented_control":
        return col.segmented_control(label, options, default=value, key=key, bind=bind, **kw)
    return col.selectbox(label, options, options.index(value), key=key, bind=bind, **kw)


def posterior_cards_ui(run: Any, m: Any, per: str) -> None:
    """Active units, KL per image (or row), the dimensions under the collapse line, and the collapse alarm (m: an
    EvalMetrics or a VectorEvalMetrics of the loaded run)."""
    c = st.columns(3)
    c[0].metric("Active units", f"{m.active_units} / {len(m.kl_per_dim)}", help=ACTIVE_UNIT_WORDS)
    c[1].metric(f"KL, nats/{per}", format_number(m.kl_nats), help=f"on {m.n_test:,} test {per}s")
    c[2].metric(f"Dimensions < {COLLAPSE_KL:g} nats", f"{sum(k < COLLAPSE_KL for k in m.kl_per_dim)}",
                help=f"Latent dimensions whose KL is under {COLLAPSE_KL:g} nats per {per}: they carry almost nothing.")
    verdict = collapse_verdict(run, m)
    if verdict.alarm:
        st.error(f"{collapse_message(m, per)} Check that the output can reach the targets (above), then try a "
                 "lower β, a KL warm-up, free bits, or a likelihood with a smaller σ.")
    elif verdict.note:
        st.caption(verdict.note)


def reach_cards_ui(frac_unreachable: float, frac_saturated: float, activation: str) -> None:
    """The share of normalized targets out of the output activation's reach, and of outputs saturated at its bounds."""
    lo, hi = ACTIVATION_RANGE[activation]
    c1, c2 = st.columns(2)
    c1.metric("Targets out of the output's reach", f"{frac_unreachable:.2%}",
              help=f"Normalized target values outside the {activation} output's range ({lo:g}, {hi:g}).")
    c2.metric("Outputs saturated", f"{frac_saturated:.2%}",
              help="Decoder outputs (at the posterior mean) within 1e-3 of the activation's bounds.")
