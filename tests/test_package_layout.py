"""Package layout rules: no import cycles (module-level or deferred) and small modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "live_mind"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """Package modules imported anywhere in the file (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            candidates = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found.update(c for c in candidates if c.startswith("live_mind"))
    return found


def test_no_import_cycles():
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in _imports(path, name) if m in files and m != name} for name, path in files.items()}
    # packages (__init__) import nothing of substance here; leave them out of the cycle search
    graph = {n: {m for m in deps if not files[m].name == "__init__.py"} for n, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph[node]:
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(dep):] + [node, dep]))
            if dep not in state:
                visit(dep, stack + [node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])


def test_no_module_over_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


def test_every_module_is_in_the_test_index():
    """``tests/conftest.py`` maps every module to its test files, and those files exist."""
    index = (Path(__file__).parent / "conftest.py").read_text(encoding="utf-8").split('"""')[1]
    listed = {}
    for line in index.splitlines():
        parts = line.split()
        if parts and parts[0].startswith("live_mind/"):
            listed[parts[0]] = [name.rstrip(",") for name in parts[1:]]
    modules = {str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py")}
    assert not modules - set(listed), f"modules missing from the index: {sorted(modules - set(listed))}"
    assert not set(listed) - modules, f"index names modules that do not exist: {sorted(set(listed) - modules)}"
    missing = {t for tests in listed.values() for t in tests if not (Path(__file__).parent / t).is_file()}
    assert not missing, missing
