"""The layers (README, "Layout"): imports point down (app_pages -> ui -> vae_plots -> vae_core), never up.

vae_core is what a trainer on a GPU node or under torchrun loads: it must pull in neither streamlit
nor plotly (nor pandas, which plotly drags in), and must never import the layers above it.
"""
import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "vae_core"
UPPER = ("vae_plots", "ui", "app_pages", "app", "streamlit", "plotly")  # what vae_core may not import
FORBIDDEN_MODULES = ("streamlit", "plotly", "pandas")


def test_importing_every_vae_core_module_loads_neither_streamlit_nor_plotly():
    code = ("import importlib, pkgutil, sys, vae_core\n"
            "names = [i.name for i in pkgutil.walk_packages(vae_core.__path__, 'vae_core.')]\n"
            "for name in names:\n"
            "    importlib.import_module(name)\n"
            f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN_MODULES!r})\n"
            "assert not bad, bad\n"
            "assert 'vae_core.model.vae' in sys.modules and 'vae_core.cli.main' in sys.modules, names\n"
            "print(len(names))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.split()[-1]) >= 10  # the walk found the package's modules


def _imported_roots(path: Path) -> set[str]:
    """Top-level names of every absolute import in a file (relative imports stay inside vae_core)."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_vae_core_imports_nothing_above_it():
    files = sorted(CORE.rglob("*.py"))
    assert len(files) >= 10
    offenders = {str(f.relative_to(REPO)): sorted(_imported_roots(f) & set(UPPER)) for f in files}
    assert not {f: names for f, names in offenders.items() if names}
