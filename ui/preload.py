"""Import, once, everything any page needs, before any page runs.

Why: sessions run their scripts in threads of one process. A module imported lazily by one session
(pandas, on the Train page's compatibility table) is visible in sys.modules, half initialized, to the
others: Plotly's validators test `sys.modules.get("pandas")` and then read `pd.Series`, which raised
"partially initialized module 'pandas' has no attribute 'Series'" on most pages of a fresh server.
Python's import lock only protects `import` statements, not such look-ups, and it hands a partially
initialized module to a thread when two imports are circular across threads.

How: app.py imports this module first. The first session's script thread runs the imports below
while holding this module's import lock; every other session's first run blocks on that same
`import ui.preload` until they are all done, so no page code runs while anything is half imported.
Nothing here calls st.*: importing is all it does (and drawing one tiny figure of each kind Plotly
builds lazily).
"""
from __future__ import annotations

import gc
import importlib
import pkgutil
import time
from types import ModuleType

# Third-party modules that pages reach lazily (measured: the modules a first visit to every page adds to
# sys.modules). Order matters a little: numpy before pandas before pyarrow, as they import each other.
THIRD_PARTY = (
    "numpy",
    "pandas",
    "pandas.io.formats.style",  # st.dataframe(df.style): the compatibility matrix; pulls in jinja2
    "pyarrow",
    "pyarrow.compute",
    "pyarrow.ipc",
    "narwhals",
    "PIL.Image",
    "PIL.PngImagePlugin",
    "torch",
    "torch.nn.functional",
    "torchvision",
    "torchvision.datasets",  # vae_core.data.datasets imports it inside a function (slow): import it here instead
    "safetensors.torch",
    "plotly.graph_objects",
    "plotly.io",
    "plotly.io._json",
    "plotly.tools",
    "plotly.colors",
    "streamlit.emojis",
    "streamlit.material_icon_names",
    "streamlit.runtime.scriptrunner.magic_funcs",
    "streamlit.components.v2.manifest_scanner",
)

# Our own packages: every module, so no page is the first to import one (except the CLI entry point,
# which would run the CLI).
OWN_PACKAGES = ("vae_core", "vae_plots", "ui")
SKIP = {"vae_core.__main__", __name__}


def _import_package(name: str) -> list[ModuleType]:
    package = importlib.import_module(name)
    modules = [package]
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{name}."):
        if info.name not in SKIP:
            modules.append(importlib.import_module(info.name))
    return modules


def _warm_plotly() -> None:
    """Plotly loads each trace class, its validators and the templates on first use: build one of each
    trace the figures use and serialize it as Streamlit does, so those lazy loads happen here."""
    import numpy as np
    import plotly.graph_objects as go
    import plotly.io as pio
    import plotly.tools
    from PIL import Image

    Image.init()  # registers every image plugin now rather than on a page's first PNG
    pixel = np.zeros((1, 1, 3), dtype=np.uint8)
    font = {"size": 10}
    fig = go.Figure([go.Image(z=pixel), go.Heatmap(z=[[0.0]], colorbar={"title": {"text": "a"}}),
                     go.Scatter(x=[0], y=[0], line={"width": 1}, marker={"colorbar": {"title": {"text": "a"}}}),
                     go.Scattergl(x=[0], y=[0], marker={"size": 2}), go.Bar(x=[0], y=[0]), go.Histogram(x=[0])])
    fig.update_layout(template=pio.templates["plotly_white"], margin={"t": 0}, title={"text": "a", "font": font},
                      legend={"title": {"text": "a"}, "font": font}, annotations=[{"text": "a", "font": font}],
                      shapes=[{"type": "rect"}], xaxis={"tickfont": font, "title": {"text": "a"}},
                      yaxis={"tickfont": font, "title": {"text": "a"}}, hoverlabel={"font": font})
    figure = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
    pio.to_json(figure, validate=False)


def _warm_pandas() -> None:
    """A Styler and its Arrow conversion, as st.dataframe(df.style) does on the Train page."""
    import pandas as pd
    import pyarrow as pa

    table = pd.DataFrame({"a": ["works"]})
    table.style.map(lambda s: "").to_html()
    pa.Table.from_pandas(table)


def preload() -> float:
    """Import and warm everything; return the seconds it took."""
    start = time.perf_counter()
    for name in THIRD_PARTY:
        importlib.import_module(name)
    for name in OWN_PACKAGES:
        _import_package(name)
    _warm_plotly()
    _warm_pandas()
    return time.perf_counter() - start


preload()
# What the imports built lives as long as the server: out of the collector's sight, so that every
# later collection walks only what sessions create (a full collection otherwise walks all of torch).
gc.freeze()
