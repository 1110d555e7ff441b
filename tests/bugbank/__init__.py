"""The bug banks: realistic buggy submissions, one module per assignment (``<id>.py``).

Each bug is a text replacement on the reference solution; ``tests/test_assignments.py``
applies it, grades only the named test, and requires that the test loses points.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Bug:
    name: str
    test: str    # the test named for the concept: it must lose points
    file: str    # the solution file to change
    old: str     # occurs exactly once in that file
    new: str
    why: str = ""


def bugs_of(assignment_id: str) -> list[Bug]:
    """The bug bank of one assignment ([] if it has none)."""
    if not (Path(__file__).parent / f"{assignment_id}.py").is_file():
        return []
    return list(importlib.import_module(f"tests.bugbank.{assignment_id}").BUGS)


def apply(bug: Bug, solution: Path, into: Path) -> Path:
    """Copy the reference solution to ``into`` with the bug planted; return ``into``."""
    import shutil

    shutil.copytree(solution, into, ignore=shutil.ignore_patterns("__pycache__", "checks"))
    target = into / bug.file
    text = target.read_text()
    count = text.count(bug.old)
    if count != 1:
        raise ValueError(f"bug {bug.name}: the text to replace occurs {count} times in {bug.file}, not once")
    target.write_text(text.replace(bug.old, bug.new))
    return into
