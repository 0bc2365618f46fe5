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


KIND_SPECS = {"core/parts.py", "core/desktop.py", "core/emulation.py"}
"""The built-in kinds' field models, which live in core (what a scenario says of a part is core's)."""


def part_branches(root: Path) -> list[str]:
    """Places outside a part kind's folder that test what a part is instead of reading its kind's record.

    ``hasattr``/``getattr`` on a part, ``isinstance`` against a part or part-spec class, a part's ``kind`` compared
    with a kind's name, and a sandbox compared with a sandbox's name (``opts.sandbox == "docker"``: the sandbox's
    record says what it is).
    """
    folders = [p.parent for p in (root / "world").glob("*/kind.py")]
    classes = {"ServicePart", "DesktopPart", "EmulatorPart", "PostgresPart", "SinkholePart", "Web", "EmulatedBox",
               "ServiceSpec", "DesktopSpec", "EmulatorSpec", "PostgresSpec", "MailSpec", "SocialSpec", "BankSpec",
               "ShopSpec", "WikiSpec", "SiteSpec"}
    names = {"mail", "social", "bank", "shop", "wiki", "site", "desktop", "emulator", "postgres"}
    out = []
    for path in sorted(root.rglob("*.py")):
        if any(f in path.parents for f in folders) or str(path.relative_to(root)) in KIND_SPECS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(root.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
                first = ast.unparse(node.args[0])
                if node.func.id in ("hasattr", "getattr") and "part" in first:
                    out.append(f"{where}: {ast.unparse(node)}")
                if node.func.id == "isinstance" and len(node.args) == 2 and classes & {
                        n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}:
                    out.append(f"{where}: {ast.unparse(node)}")
            if isinstance(node, ast.Compare) and ".kind" in ast.unparse(node) and any(
                    isinstance(c, ast.Constant) and c.value in names for c in ast.walk(node)):
                out.append(f"{where}: {ast.unparse(node)}")
            if isinstance(node, ast.Compare) and "sandbox" in ast.unparse(node).split("==")[0].split("!=")[0] and any(
                    isinstance(c, ast.Constant) and c.value in ("docker", "fake", "emulated") for c in ast.walk(node)):
                out.append(f"{where}: {ast.unparse(node)}")
    return out


def test_what_a_part_or_a_sandbox_can_do_is_read_from_its_kind_not_guessed():
    assert part_branches(PACKAGE) == []


def test_a_branch_on_a_part_outside_its_kind_is_found(tmp_path):
    pkg = tmp_path / "riskgym"
    (pkg / "world" / "postgres").mkdir(parents=True)
    (pkg / "world" / "postgres" / "kind.py").write_text("x = isinstance(p, PostgresPart)\n")  # its own folder: fine
    (pkg / "running.py").write_text("if hasattr(part, 'offer'):\n    pass\nok = spec.kind == 'desktop'\n"
                                    "y = isinstance(p, ServicePart)\nz = opts.sandbox != 'docker'\n")
    assert [line.split(": ", 1)[1] for line in part_branches(pkg)] == [
        "hasattr(part, 'offer')", "spec.kind == 'desktop'", "isinstance(p, ServicePart)", "opts.sandbox != 'docker'"]

