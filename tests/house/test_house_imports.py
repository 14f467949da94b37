"""The package's import graph, read with ast (module-level AND in-function imports; an
``if TYPE_CHECKING:`` block is not a run-time import): no circles, rooms that import only
downwards (at most 2 climbs, each with a ``# climb: reason`` on its line), and a product that
never imports the emulated GPU. ``python tests/house/test_house_imports.py`` prints the rooms' graph."""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = "avgn_edge"
# The rooms, lowest floor first: a room may import the rooms before it, never one after it.
FLOORS = ["version", "errors", "deps", "cachedir", "media", "assets", "config", "bundle", "model", "data", "kernels", "io",
          "trt", "runtime", "events", "train", "export", "precision", "sinks", "serve", "live", "bench",
          "triton", "archive", "emulator", "cli", "__main__", "__init__"]
MAX_CLIMBS = 2


def modules() -> dict[str, Path]:
    out = {}
    for p in (ROOT / PKG).rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def _type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking(node):
            yield from (n for s in node.orelse for n in _imports(ast.Module(body=[s], type_ignores=[])))
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        yield from _imports(node)


def edges(mods: dict[str, Path]) -> dict[str, set[tuple[str, int]]]:
    """module -> {(imported module of the package, line)}."""
    out = defaultdict(set)
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parts = mod.split(".")[:len(mod.split(".")) - node.level + (1 if is_pkg else 0)]
                    base = ".".join(parts + ([base] if base else []))
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for name in names:
                while name and name not in mods:
                    name = name.rpartition(".")[0]
                if name.startswith(PKG) and name != mod:
                    out[mod].add((name, node.lineno))
    return out


def cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in list(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(t for t, _ in graph.get(start, ()))))]
        index[start] = low[start] = counter[0]; counter[0] += 1; stack.append(start); on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1; stack.append(w); on.add(w)
                    work.append((w, iter(sorted(t for t, _ in graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop(); on.discard(x); comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def room(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def climbs(mods, graph) -> list[tuple[str, int, str, str]]:
    """(module, line, imported module, the line's text) for each import into a higher room."""
    out = []
    for mod, targets in graph.items():
        for target, line in targets:
            if FLOORS.index(room(target)) > FLOORS.index(room(mod)):
                out.append((mod, line, target, mods[mod].read_text().splitlines()[line - 1]))
    return sorted(out)


def test_every_room_has_a_floor():
    assert sorted({room(m) for m in modules()} - set(FLOORS)) == []


def test_the_package_has_no_import_circles():
    assert cycles(edges(modules())) == []


def test_imports_run_down_the_floors_with_at_most_two_stated_climbs():
    mods = modules()
    found = climbs(mods, edges(mods))
    unexplained = [f"{m}:{line} -> {t}" for m, line, t, text in found if "# climb:" not in text]
    assert unexplained == [] and len(found) <= MAX_CLIMBS, found


def test_no_product_module_imports_the_emulated_gpu():
    graph = edges(modules())
    users = sorted(f"{m}:{line}" for m, targets in graph.items() if room(m) != "emulator"
                   for t, line in targets if room(t) == "emulator")
    assert users == []


def test_the_checker_sees_what_it_must(tmp_path, monkeypatch):
    """The checker itself: an in-function import that closes a circle and climbs is found."""
    pkg = tmp_path / PKG
    (pkg / "errors").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors" / "__init__.py").write_text("def f():\n    from ..cli import x\n")
    (pkg / "cli").mkdir()
    (pkg / "cli" / "__init__.py").write_text("from ..errors import f\nx = 1\n")
    (pkg / "version.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .cli import x\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    mods = modules()
    graph = edges(mods)
    assert cycles(graph) == [[f"{PKG}.cli", f"{PKG}.errors"]]
    assert [(m, t) for m, _, t, _ in climbs(mods, graph)] == [(f"{PKG}.errors", f"{PKG}.cli")]
    assert f"{PKG}.version" not in graph                      # TYPE_CHECKING imports do not count


def test_names_a_reader_would_confuse_are_defined_once():
    defs = defaultdict(list)
    for mod, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name in ("ModelConfig", "CudaError"):
                defs[node.name].append(mod)
    basenames = [p.name for p in modules().values()].count("device.py")
    assert {k: len(v) for k, v in defs.items()} == {"ModelConfig": 1, "CudaError": 1} and basenames == 1, defs


if __name__ == "__main__":
    mods = modules()
    rooms = defaultdict(set)
    for m, ts in edges(mods).items():
        rooms[room(m)].update(room(t) for t, _ in ts if room(t) != room(m))
    for r in FLOORS:
        print(f"{r:>10}: {' '.join(sorted(rooms[r], key=FLOORS.index))}")
