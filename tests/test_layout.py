"""The engine's layout: no import circle between the kit's modules, and no module importing one
of a phase above its own (``autograder/__init__.py`` lists the phases).

Imports are read from the source (every ``import`` statement, those inside functions too:
a lazy import is still a dependency), not from what a run happens to load.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parent.parent
PACKAGES = {"autograder": KIT / "autograder", "kitdata": KIT / "datasets" / "kitdata"}

# Phases, lowest first: a module may import its own phase and those below it. The hidden
# suites are content graded by the engine (they import the judge's checks and kitdata).
PHASES = [
    ("kitdata",),
    ("autograder", "autograder.config", "autograder.escape"),
    ("autograder.sandbox",),
    ("autograder.grading",),
    ("autograder.authoring",),
    ("autograder.classroom",),
    ("autograder.cli",),
]


def module_name(path: Path, package: str, root: Path) -> str:
    parts = [package, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def kit_modules() -> dict[str, Path]:
    modules = {}
    for package, root in PACKAGES.items():
        for path in root.rglob("*.py"):
            if "suites" not in path.relative_to(root).parts:
                modules[module_name(path, package, root)] = path
    return modules


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The kit modules ``path`` imports (``from a import b`` counts as a.b where that is a module)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # a name inside a module: the module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    modules = kit_modules()
    known = set(modules)
    return {name: imports(path, name, known) for name, path in modules.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def phase(module: str) -> int:
    """The phase of ``module``: the longest prefix listed in PHASES."""
    best, rank = -1, None
    for i, prefixes in enumerate(PHASES):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    return rank


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Imports of a module in a higher phase than the importer's, as 'a -> b'."""
    return sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                  if a != "autograder" and phase(b) > phase(a))


def test_no_import_circle():
    assert circles(graph()) == []


def test_no_module_imports_a_phase_above_its_own():
    assert upward(graph()) == []


def test_every_module_has_a_phase():
    assert [m for m in graph() if phase(m) is None] == []


def test_the_checks_catch_what_they_are_for():
    """The negative cases: a circle through three modules, and the sandbox importing the runner."""
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    assert upward({"autograder.sandbox.worker": {"autograder.grading.runner"}}) == [
        "autograder.sandbox.worker -> autograder.grading.runner"]
    assert upward({"autograder.classroom.batch": {"autograder.grading.runner"}}) == []


def test_imports_are_read_inside_functions_too(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from autograder.cli import main\n")
    assert imports(source, "autograder.sandbox.m", {"autograder.cli", "autograder.sandbox.m"}) == {"autograder.cli"}


# --------------------------------------------------------------------------- issue numbers

ISSUE = re.compile(r"\bissues? #?\d+\b|\(#\d+\)", re.IGNORECASE)
READ_BY_USERS = ["autograder", "datasets", "benchmarks", "solutions", "tests", "docs", "README.md", "grading.yml"]


def issue_references(paths) -> list[str]:
    found = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        shown = path.relative_to(KIT) if path.is_relative_to(KIT) else path
        found += [f"{shown}:{text.count(chr(10), 0, m.start()) + 1}: {m.group()}"
                  for m in ISSUE.finditer(text)]
    return found


def test_no_issue_numbers_where_users_read():
    """A tracker's number means nothing to a reader of the repository: the reason stays, the number goes."""
    paths = [p for top in READ_BY_USERS for p in ([KIT / top] if (KIT / top).is_file() else (KIT / top).rglob("*"))
             if p.is_file() and p.suffix in (".py", ".md", ".yml", ".txt") and p != Path(__file__)]
    assert issue_references(paths) == []


@pytest.mark.parametrize("text, found", [("see issue 19 for why", True), ("(#12)", True),
                                         ("the tissue 3 layers", False), ("issues", False)])
def test_issue_references_are_found(tmp_path, text, found):
    path = tmp_path / "x.py"
    path.write_text(text)
    assert bool(issue_references([path])) == found


# --------------------------------------------------------------------------- the front door

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def broken_links(page: Path) -> list[str]:
    """Relative links of a markdown page whose target does not exist."""
    return [target for target in LINK.findall(page.read_text(encoding="utf-8"))
            if "://" not in target and not target.startswith("mailto:") and not (page.parent / target).exists()]


def test_the_readme_is_a_front_door():
    """At most 250 lines, linking the guides; no link of the README or a guide leads nowhere."""
    readme = KIT / "README.md"
    assert len(readme.read_text(encoding="utf-8").splitlines()) <= 250
    for guide in ("docs/INSTRUCTORS.md", "docs/STUDENTS.md", "docs/WRITING_AN_ASSIGNMENT.md",
                  "docs/TROUBLESHOOTING.md", "CHANGELOG.md"):
        assert f"({guide})" in readme.read_text(encoding="utf-8"), guide
    for page in [readme, KIT / "CHANGELOG.md", *(KIT / "docs").glob("*.md")]:
        assert broken_links(page) == [], page


def test_broken_links_are_found(tmp_path):
    (tmp_path / "there.md").write_text("x")
    page = tmp_path / "page.md"
    page.write_text("[a](there.md) [b](missing.md#part) [c](https://example.org/x)")
    assert broken_links(page) == ["missing.md"]
