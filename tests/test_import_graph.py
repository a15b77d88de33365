"""The project's import graph: no cycles, and a project-internal import inside a function
only with its reason (a comment on its line or the line above) -- it is there to keep an
optional dependency optional or the CLI's start-up fast, nothing else.

The graph is read from the source (``ast``), function-level imports included, over the four
folders the distribution installs as ``damf``, ``damf.hdl``, ``damf.sim`` and ``damf.golden``."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"damf": "damf", "hdl": "damf.hdl", "sim": "damf.sim", "golden": "damf.golden"}


def modules():
    """``{module name: path}`` of every project module."""
    out = {}
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([package] + parts)] = path
    return out


def imports(name, path, known):
    """``[(imported module, line, inside a function)]`` of project modules imported by ``name``."""
    tree = ast.parse(path.read_text(), str(path))
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets = []
            if isinstance(child, ast.ImportFrom):
                base = ".".join(package[:len(package) - child.level + 1] + ([child.module] if child.module else [])) \
                    if child.level else (child.module or "")
                targets = [f"{base}.{a.name}" for a in child.names] + [base]
            elif isinstance(child, ast.Import):
                targets = [a.name for a in child.names]
            seen = set()        # `from . import a, b`: both modules; `from .m import x, y`: m once
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name and target not in seen:
                    seen.add(target)
                    found.append((target, child.lineno, in_function))
            visit(child, inner)

    visit(tree, False)
    return found


def graph():
    known = modules()
    return known, {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                connect(w)
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
                out.append(sorted(component))

    for v in edges:
        if v not in index:
            connect(v)
    return out


def test_the_graph_is_read():
    known, found = graph()
    assert {"damf.cli", "damf.blocks", "damf.hdl.damf_head", "damf.golden.vectors", "damf.sim.runner"} <= set(known)
    assert ("damf.blocks", False) in {(t, f) for t, _, f in found["damf.cli"]}
    assert ("damf.cli.sim", False) in {(t, f) for t, _, f in found["damf.cli"]}     # `from . import ..., sim, ...`
    assert ("damf.sim.runner", True) in {(t, f) for t, _, f in found["damf.cli.sim"]}    # run_sim's lazy import


def test_no_import_cycle():
    _, found = graph()
    edges = {name: sorted({t for t, _, _ in targets}) for name, targets in found.items()}
    assert cycles(edges) == []


def test_cycles_are_found():
    assert cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


def test_every_function_level_import_has_its_reason():
    known, found = graph()
    missing = []
    for name, targets in found.items():
        lines = known[name].read_text().splitlines()
        for target, line, in_function in targets:
            if not in_function:
                continue
            here, above = lines[line - 1], lines[line - 2].strip() if line > 1 else ""
            if "#" not in here and not above.startswith("#"):
                missing.append(f"{known[name].relative_to(ROOT)}:{line}: {here.strip()}")
    assert not missing, "project imports inside a function without a reason:\n" + "\n".join(missing)
