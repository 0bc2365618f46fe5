"""The package's layout: no import cycle anywhere (lazy imports included), and tests that mirror the package."""

import ast
from pathlib import Path

import networkx as nx

from tests.conftest import ROOT

PACKAGE = ROOT / "riskgym"


def module_graph(root: Path) -> nx.DiGraph:
    """Module -> the riskgym modules it imports, read from the source (imports inside functions count too)."""
    files = {".".join(f.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__"): f
             for f in root.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(files)
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in files:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph.add_edge(name, target)
    return graph


def test_the_graph_is_read_from_the_source():
    graph = module_graph(PACKAGE)
    assert len(graph) > 50 and graph.number_of_edges() > 150
    assert graph.has_edge("riskgym.running.env", "riskgym.running.pool")  # a top-level import
    assert graph.has_edge("riskgym.cli_check", "riskgym.grading.proof")  # one inside a function


def test_no_import_cycle_in_the_package():
    cycles = [" -> ".join([*c, c[0]]) for c in nx.simple_cycles(module_graph(PACKAGE))]
    assert cycles == [], "import cycles:\n" + "\n".join(sorted(cycles, key=len)[:10])


def test_a_cycle_is_found_when_there_is_one(tmp_path):
    pkg = tmp_path / "riskgym"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("from riskgym.b import y\n")
    (pkg / "b.py").write_text("def f():\n    from riskgym.a.x import z\n")
    assert list(nx.simple_cycles(module_graph(pkg))) != []


def test_tests_mirror_the_package():
    rooms = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert rooms == {"core", "world", "tools", "running", "grading", "monitoring", "viewing", "importers"}
    for room in rooms:
        assert list((ROOT / "tests" / room).glob("test_*.py")), f"tests/{room}/ has no tests"
