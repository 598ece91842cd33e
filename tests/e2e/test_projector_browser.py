"""End to end at a projector's 1024×768: on every page every metric card's value is shown whole (no ellipsis, no
clipping), nothing raises, and no server path is shown to a student; a screenshot of each page."""
from __future__ import annotations

import pytest

from browser_harness import wait_settled
from tests.helpers import assert_no_exception, screenshot

pytestmark = pytest.mark.e2e

PROJECTOR = {"width": 1024, "height": 768}
CB = "sprites-sigmoid-unit-continuous_bernoulli"  # the largest numbers of the zoo: an ELBO of +29,571
COMPARED = ",".join([CB, "sprites-sigmoid-unit-gaussian", "sprites-tanh-zscore-gaussian"])
# The pages with metric cards or crowded forms (Latent space and Labs have neither: their screenshots come from
# bench/bench_toggle.py and the labs' own tests); one browser visits them in turn.
PAGES = {"reconstructions": f"?run={CB}", "diagnostics": f"diagnostics?run={CB}",
         "compare": f"compare?compare={COMPARED}", "train": "train"}

# Each card's value and every element inside it: the text must fit the box it is drawn in.
_CLIPPED_JS = """
() => Array.from(document.querySelectorAll("[data-testid='stMetricValue']")).flatMap(card =>
    [card, ...card.querySelectorAll("*")].filter(e => e.scrollWidth > e.clientWidth + 1)
        .map(() => card.innerText)).filter((t, i, all) => all.indexOf(t) === i)
"""
_METRICS_JS = "() => Array.from(document.querySelectorAll(\"[data-testid='stMetricValue']\")).map(e => e.innerText)"


def test_every_metric_is_whole_at_1024_by_768(browser, app_url, runs_dir):
    context = browser.new_context(viewport=PROJECTOR)
    page = context.new_page()
    try:
        for name, address in PAGES.items():
            page.goto(f"{app_url}/{address}", wait_until="domcontentloaded")
            wait_settled(page, timeout=120_000)
            page.wait_for_timeout(500)  # the cards' fonts and widths settle after the script
            shot = screenshot(page, f"projector-{name}")
            assert_no_exception(page, f"the {name} page at 1024x768", shot)
            values = page.evaluate(_METRICS_JS)
            assert page.evaluate(_CLIPPED_JS) == [], (name, values, shot)
            if name in ("reconstructions", "diagnostics"):
                assert values, f"no metric cards on {name}"
            text = page.get_by_test_id("stApp").inner_text()
            assert str(runs_dir) not in text and "/work/" not in text and "site-packages" not in text, shot
    finally:
        context.close()
