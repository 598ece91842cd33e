"""Whatever a link holds for a URL-bound widget, on every page: a short notice and the default, never a
traceback (headless, AppTest). Streamlit seeds a bound widget from the link itself, before the page's code
can check it, and raised OverflowError on `inf` in an integer input."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["app_pages/reconstructions.py", "app_pages/latent.py", "app_pages/diagnostics.py", "app_pages/compare.py",
         "app_pages/images.py", "app_pages/train.py", "app_pages/labs.py"]
BAD = ("inf", "-inf", "nan", "1e309", "9" * 400, "0x1f", "some text", "")
# Found on the pages as drawn (a widget's proto names its query parameter); these must be among them.
KNOWN = {"app_pages/reconstructions.py": {"recon_n", "recon_start", "samples_index", "samples_seed"},
         "app_pages/latent.py": {"traverse_anchor", "traverse_range", "traverse_dims", "interp_a", "interp_b",
                                 "prior_seed", "map_color"},
         "app_pages/diagnostics.py": {"iwae_k", "iwae_n"},
         "app_pages/compare.py": {"compare_start", "compare_anchor"},
         "app_pages/labs.py": {"lab"}}
WIDGETS = ("slider", "select_slider", "number_input", "selectbox", "multiselect", "radio", "text_input",
           "text_area", "checkbox", "toggle", "button_group", "date_input", "time_input", "color_picker")


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_LAB_RUNS", str(tmp_path / "runs"))


def open_link(page: str, **params: str) -> AppTest:
    """A fresh browser opening a link to `page` with these query parameters."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page(page)
    return at.run()


def bound_keys(at: AppTest) -> set[str]:
    return {w.proto.query_param_key for kind in WIDGETS for w in at.get(kind)
            if getattr(w.proto, "query_param_key", "")}


@pytest.fixture(scope="module")
def keys_by_page(tmp_path_factory) -> dict[str, set[str]]:
    """Each page's URL-bound widget keys, as a plain link draws it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VAE_LAB_RUNS", str(tmp_path_factory.mktemp("runs")))
        return {page: bound_keys(open_link(page)) for page in PAGES}


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.exception]


def test_every_bound_widget_is_found(keys_by_page):
    for page, keys in KNOWN.items():
        assert keys <= keys_by_page[page], (page, keys - keys_by_page[page])


def refused(at: AppTest) -> bool:
    return any("is not allowed here" in w.value and "showing the default" in w.value for w in at.warning)


@pytest.mark.parametrize("page", PAGES)  # a page without bound widgets (yet) checks nothing
def test_any_value_in_the_link_gets_a_notice_not_a_traceback(page, keys_by_page):
    for key in sorted(keys_by_page[page]):
        for value in BAD:
            at = open_link(page, **{key: value})
            assert not errors(at), (page, key, value[:12], errors(at))
            assert refused(at), (page, key, value[:12], [w.value for w in at.warning])
            assert key not in at.query_params, (page, key, value[:12])  # the link, fixed
        at.run()  # the next rerun binds the widget again: still no traceback
        assert not errors(at), (page, key, errors(at))


@pytest.mark.parametrize("param", ["run", "compare"])
def test_any_run_name_in_the_link_falls_back_without_a_traceback(param):
    page = "app_pages/compare.py"
    for value in BAD:
        at = open_link(page, **{param: value})
        assert not errors(at), (param, value[:12], errors(at))
        if value:
            said = " ".join(w.value for w in at.warning)
            assert "does not have" in said or "No run here is named" in said, (param, value[:12], said)
