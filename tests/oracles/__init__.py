"""Oracle submissions: ones that never learn, yet could look as if they had.

Each oracle is a text replacement on the reference solution, as a bug is (``tests.bugbank.Bug``,
``edits`` for more than one), named for one learned-quality test: it samples the public
distribution, computes the public language's conditionals, copies or blends shipped data, or
returns outputs that ignore the trained weights. ``tests/test_oracles.py`` grades each on its
test and requires 0 points there: learned quality is earned by learning, or not at all.

One module per assignment (``<id>.py``) with ``ORACLES = [Oracle(...), ...]``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from tests.bugbank import copy_with_edits


@dataclass(frozen=True)
class Oracle:
    name: str
    test: str                         # the learned-quality test that must give it 0 points
    file: str                         # the solution file to change
    edits: tuple = field(default=())  # ((old, new), ...): each old text occurs exactly once
    why: str = ""


def oracles_of(assignment_id: str) -> list[Oracle]:
    if not (Path(__file__).parent / f"{assignment_id}.py").is_file():
        return []
    return list(importlib.import_module(f"tests.oracles.{assignment_id}").ORACLES)


def apply(oracle: Oracle, solution: Path, into: Path) -> Path:
    """Copy the reference solution to ``into`` with the oracle's edits made; return ``into``."""
    return copy_with_edits(solution, into, oracle.file, oracle.edits, f"oracle {oracle.name}")
