"""Packages import downward only: no package imports one that imports it back (directly or around
a loop), and no module imports another package's private (_underscored) names. Imports inside
functions count: a lazy import is still a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import nlpx

ROOT = Path(nlpx.__file__).resolve().parent


def _unit(module: str) -> str:
    """nlpx.data.cache -> nlpx.data; top-level modules (nlpx.cli) are units of their own."""
    return ".".join(module.split(".")[:2])


def import_graph(root: Path) -> tuple[dict[str, set[str]], list[tuple[str, str, str]]]:
    """{unit: units it imports} and (module, imported module, name) for private names imported
    across units."""
    edges: dict[str, set[str]] = {}
    private = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        src = _unit(module)
        edges.setdefault(src, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [(node.module, a.name) for a in node.names]
            else:
                continue
            for target, name in targets:
                if target.split(".")[0] != root.name or _unit(target) in (src, root.name):
                    continue
                edges[src].add(_unit(target))
                if name and name.startswith("_"):
                    private.append((module, target, name))
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one unit (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_package_imports_one_that_imports_it_back():
    edges, _ = import_graph(ROOT)
    assert {"nlpx.data", "nlpx.recipes", "nlpx.run", "nlpx.cli"} <= set(edges)  # the walk saw the tree
    assert cycles(edges) == []


def test_no_module_imports_another_packages_private_names():
    assert import_graph(ROOT)[1] == []


def test_lower_layers_do_not_import_the_commands():
    edges, _ = import_graph(ROOT)
    for low in ("nlpx.data", "nlpx.models", "nlpx.objectives", "nlpx.tricks", "nlpx.run", "nlpx.embeddings",
                "nlpx.finetune", "nlpx.train", "nlpx.eval"):
        assert not edges[low] & {"nlpx.recipes", "nlpx.cli", "nlpx.ablate", "nlpx.sweep"}, low


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_walk_finds_a_loop_through_a_lazy_import_and_a_private_name(tmp_path):
    pkg = _write(tmp_path / "pkg", {
        "__init__.py": "", "a/__init__.py": "", "b/__init__.py": "", "c/__init__.py": "",
        "a/x.py": "from pkg.b.y import f\n",
        "b/y.py": "def f():\n    from pkg.c.z import _g\n",
        "c/z.py": "import pkg.a.x\n",
    })
    edges, private = import_graph(pkg)
    assert edges == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}}
    assert cycles(edges) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert private == [("pkg.b.y", "pkg.c.z", "_g")]
    assert cycles({"pkg.a": {"pkg.b"}, "pkg.b": set()}) == []
