"""The server's import structure: no circles, and no import back up a layer.

Read from the source (every import statement, including those inside functions
and under TYPE_CHECKING: a circle there still ties the modules together)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "server" / "tunixrt_server"
ROOT = "tunixrt_server"
# The layers, lowest first, as the package's folders; a module may import its own
# layer and those below. A module's layer is that of its longest matching prefix.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("core",)),  # pure: no gRPC, SQL or JAX
    ("storage", ("storage",)),
    ("settings", ("config",)),  # read by training workers and the API alike
    ("training", ("training",)),
    ("api", ("api",)),
    ("composition", ("app", "standalone_worker")),
]
# What storage must never see: the layer that speaks proto and gRPC.
PROTO = ("tunixrt.v1", "grpc")


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def imports(path: Path, name: str) -> Iterable[list[str]]:
    """For each import statement's name, the absolute names it may mean, most specific
    first (`from . import x` is module x when there is one, else a name in `.`)."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ([alias.name] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                stem = ".".join([ROOT, *base, *([node.module] if node.module else [])])
            else:
                stem = node.module or ""
            yield from ([f"{stem}.{alias.name}", stem] for alias in node.names)


def graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    files = {module_name(p, package): p for p in package.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = set()
        for meanings in imports(path, name):
            local = [m.removeprefix(f"{ROOT}.") for m in meanings if m.startswith(f"{ROOT}.")]
            found = next((m for m in local if m in files), None)
            if found is not None and found != name:
                targets.add(found)
        edges[name] = targets
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def layer(module: str) -> int:
    """The module's layer; one in none (the package's __init__) is -1, below all."""
    best, depth = -1, 0
    for level, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = level, len(prefix)
    return best


def upward(edges: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} -> {b}" for a, targets in edges.items() for b in targets if layer(b) > layer(a)
    )


def test_no_import_circles() -> None:
    assert circles(graph()) == []


def test_no_import_runs_back_up_a_layer() -> None:
    assert upward(graph()) == []


def test_the_core_knows_nothing_of_grpc_sql_or_jax() -> None:
    forbidden = ("grpc", "sqlalchemy", "jax", "flax", "tunix")
    for path in (PACKAGE / "core").rglob("*.py"):
        name = module_name(path)
        bad = [m[-1] for m in imports(path, name) if m[-1].split(".")[0] in forbidden]
        assert not bad, (name, bad)


def test_storage_knows_nothing_of_proto_or_grpc() -> None:
    for path in (PACKAGE / "storage").rglob("*.py"):
        name = module_name(path)
        bad = [m[-1] for m in imports(path, name) if m[-1].startswith(PROTO)]
        assert not bad, (name, bad)


def test_the_checks_above_can_fail(tmp_path: Path) -> None:
    """A circle and an upward import made on purpose are both caught."""
    package = tmp_path / ROOT
    (package / "storage").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "storage" / "__init__.py").write_text("")
    (package / "api").mkdir()
    (package / "api" / "__init__.py").write_text("")
    (package / "api" / "convert.py").write_text("from ..storage import runs\n")
    (package / "storage" / "runs.py").write_text("from ..api.convert import RunState\n")
    edges = graph(package)
    assert circles(edges) == [["api.convert", "storage.runs"]]
    assert upward(edges) == ["storage.runs -> api.convert"]
