"""The house's structure: no import circle among the project's modules (imports inside functions included), vae_core's
rooms import only their own room or the rooms below, and no source file passes 400 lines."""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("vae_core", "ui", "vae_plots", "app_pages")
MAX_LINES = 400
# vae_core's rooms from the bottom up: a module imports its own room or one below (README, "Layout")
ROOMS = ("config", "host", "data", "model", "training", "runs", "export", "jobs", "zoo", "labs", "cli", "__main__")
LAYERS = ("vae_core", "vae_plots", "ui", "app_pages", "app")  # the same, between the packages


def _modules() -> dict[str, Path]:
    found = {"app": REPO / "app.py"}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project's modules that `name` imports anywhere in its file (a function's imports too)."""
    found = set()
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = ".".join(base[:len(base) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module or ""
            found |= {m for m in (module, *(f"{module}.{a.name}" for a in node.names)) if m in modules}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
    return found - {name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while v not in component:
                component.add(stack.pop())
            on.difference_update(component)
            if len(component) > 1:
                found.append(component)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def _room(module: str) -> int:
    parts = module.split(".")
    return ROOMS.index(parts[1]) if len(parts) > 1 else len(ROOMS)


def _layer(module: str) -> int:
    return LAYERS.index(module.split(".")[0])


def test_no_module_imports_itself_round_a_circle():
    assert _circles(_graph()) == []


def test_vae_core_rooms_import_downward_only():
    upward = {(a, b) for a, targets in _graph().items() if a.startswith("vae_core.")
              for b in targets if b.startswith("vae_core.") and _room(b) > _room(a)}
    assert upward == set()


def test_the_layers_import_downward_only():
    upward = {(a, b) for a, targets in _graph().items() for b in targets if _layer(b) > _layer(a)}
    assert upward == set()


def test_the_ui_plumbing_never_imports_a_pages_parts():
    upward = {(a, b) for a, targets in _graph().items() if a.startswith("ui.") and not a.startswith("ui.parts.")
              for b in targets if b.startswith("ui.parts")}
    assert upward == set()


def test_a_circle_is_found_where_there_is_one():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_no_source_file_passes_the_limit():
    files = [REPO / "app.py"] + [p for package in (*PACKAGES, "browser_harness", "bench", "tests")
                                 for p in (REPO / package).rglob("*.py")]
    assert len(files) > 50
    long = {str(p.relative_to(REPO)): n for p in files if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
