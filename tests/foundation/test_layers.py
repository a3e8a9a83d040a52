"""The project's import rules, read from the source (ast): no circles anywhere, and every import points down.

Top level: jiaoying → console → responses → warning → geo → config. Inside ``responses``:
drill → audit → duty → reports → measures → callouts → runs → messaging, contacts (the last two are peers).
Every import counts, a late one inside a function as much as one at the top of a file.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOP = ["config", "geo", "warning", "responses", "console", "jiaoying"]  # lowest first
RESPONSES = [{"messaging", "contacts"}, {"runs"}, {"callouts"}, {"measures"}, {"reports"}, {"duty"}, {"audit"},
             {"drill"}]


def modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for top in TOP:
        for p in sorted((ROOT / top).rglob("*.py")) if (ROOT / top).is_dir() else []:
            if "migrations" in p.parts:
                continue
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = p
    return out


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules a file imports (``from a import b`` counts module ``a.b`` when that is one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(path, name, known) for name, path in mods.items()}


def _rank_top(mod: str) -> int:
    return TOP.index(mod.split(".")[0])


def _rank_responses(mod: str) -> int | None:
    parts = mod.split(".")
    if parts[0] != "responses" or len(parts) < 2:
        return None
    for i, group in enumerate(RESPONSES):
        if parts[1] in group:
            return i
    raise AssertionError(f"{mod}: a package of responses/ that the written order does not name")


def test_the_graph_sees_the_project() -> None:
    g = graph()
    assert len(g) > 120
    assert "responses.runs.models" in g["responses.callouts.service"]  # a plain import is seen
    assert "warning.changes" in g["responses.runs.engine"]


def test_no_import_circles() -> None:
    g = graph()
    # Packages' __init__ files import their own modules to re-export them: an edge into the package itself is
    # not a circle of modules, so a module's import of its own package is left out.
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in g.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))

    import sys

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not circles, "import circles:\n" + "\n".join(" ↔ ".join(c) for c in circles)


def test_imports_point_down() -> None:
    wrong: dict[str, list[str]] = defaultdict(list)
    for mod, deps in graph().items():
        for dep in deps:
            if _rank_top(dep) > _rank_top(mod):
                wrong[mod].append(dep)
                continue
            a, b = _rank_responses(mod), _rank_responses(dep)
            if a is not None and b is not None and mod.split(".")[1] != dep.split(".")[1] and b >= a:
                wrong[mod].append(dep)
    assert not wrong, "imports against the written order:\n" + "\n".join(
        f"{m} → {', '.join(sorted(d))}" for m, d in sorted(wrong.items()))


def test_the_order_is_written_where_a_newcomer_reads() -> None:
    order = "drill → audit → duty → reports → measures → callouts → runs → messaging, contacts"
    assert order in (ROOT / "README.md").read_text(encoding="utf-8")
    for pkg in ("runs", "contacts", "messaging", "callouts", "measures", "reports", "duty", "audit", "drill"):
        assert order in (ROOT / "responses" / pkg / "__init__.py").read_text(encoding="utf-8"), pkg
    assert not [p.name for p in (ROOT / "responses").glob("*.py") if p.name != "__init__.py"]
    assert not list((ROOT / "warning").glob("consultation_*.py"))


def test_core_modules_are_pure() -> None:
    """A capability's ``core.py`` holds its rules on plain data: no database, HTTP, provider or web imports."""
    impure = ("sqlalchemy", "httpx", "twilio", "fastapi", "starlette")
    cores = [p for p in [*ROOT.glob("responses/*/core.py"), ROOT / "warning/consultation/core.py"] if p.is_file()]
    assert len(cores) >= 7
    found = {}
    for path in cores:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad = [n for n in names if n.split(".")[0] in impure]
            if bad:
                found.setdefault(str(path.relative_to(ROOT)), []).extend(bad)
    assert not found, found
