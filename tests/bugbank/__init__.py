"""The bug banks: realistic buggy submissions, one module per assignment (``<id>.py``).

Each bug is a text replacement on the reference solution; ``tests/test_assignments.py``
applies it, grades only the named test, and requires that the test loses points (at one
of SEEDS, a different one from bug to bug); ``benchmarks/mutation_score.py`` grades every
bug at every seed and prints the survivors.

A bug's ``kind`` names the weakness of a suite it probes (docs/WRITING_AN_ASSIGNMENT.md,
"Rules of test design"): one of KINDS, or "" for the plain wrong formula.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path


SEEDS = (0, 1, 2, 3, 4)   # every bug must lose points at each of these grader seeds

KINDS = {
    "extreme": "right for moderate values, wrong or not finite far from them",
    "edge_shape": "breaks on a batch of one, a sequence of one, one latent dimension",
    "unused_argument": "ignores or miscounts an argument the handout defines",
    "mechanics": "a training loop of the wrong mechanics that may still learn",
    "repaired": "returns what the handout does not define, hoping the judge fixes it",
    "seed": "wrong only on inputs a fixed seed never draws",
    "one_run": "a difference in quality that one run cannot tell from noise",
    "device": "only wrong on another device or dtype",
    "dimension": "a wrong dimension, a changed input, a hidden state, a dropped mode",
    "state": "keeps state between calls: a result cached by shape, size or length and reused",
    "structure": "a missing part of the model (a bias, a term) that learned quality hardly shows",
    "statistics": "an effect too small for a statistical check (N vs N-1, a slightly wrong variance)",
    "global_seed": "generator=None not drawing from torch's global generator (a fixed or private one)",
    "mode": "forward depends on train() / eval() mode where the handout says it must not",
    "prior": "samples from a modified prior or noise (truncated, shrunk) instead of the model's own",
    "sequence": "text and sequence edges: a tokenizer that changes the text, positions from the wrong end, "
                "top_k beyond the vocabulary, counts on the wrong device",
}


@dataclass(frozen=True)
class Bug:
    name: str
    test: str    # the test named for the concept: it must lose points
    file: str    # the solution file to change
    old: str     # occurs exactly once in that file
    new: str
    why: str = ""
    kind: str = ""   # one of KINDS ("" for a plain wrong formula)

    def __post_init__(self):
        if self.kind and self.kind not in KINDS:
            raise ValueError(f"bug {self.name}: kind {self.kind!r} is not one of {sorted(KINDS)}")


def bugs_of(assignment_id: str) -> list[Bug]:
    """The bug bank of one assignment ([] if it has none)."""
    if not (Path(__file__).parent / f"{assignment_id}.py").is_file():
        return []
    return list(importlib.import_module(f"tests.bugbank.{assignment_id}").BUGS)


def apply(bug: Bug, solution: Path, into: Path) -> Path:
    """Copy the reference solution to ``into`` with the bug planted; return ``into``."""
    return copy_with_edits(solution, into, bug.file, ((bug.old, bug.new),), f"bug {bug.name}")


def copy_with_edits(solution: Path, into: Path, file: str, edits, what: str) -> Path:
    """Copy ``solution`` to ``into`` and make each (old, new) text edit in ``file``; every old
    text must occur exactly once (``what`` names the bug or oracle in the error)."""
    import shutil

    shutil.copytree(solution, into, ignore=shutil.ignore_patterns("__pycache__", "checks"))
    target = into / file
    text = target.read_text()
    for old, new in edits:
        count = text.count(old)
        if count != 1:
            raise ValueError(f"{what}: the text to replace occurs {count} times in {file}, not once")
        text = text.replace(old, new)
    target.write_text(text)
    return into
