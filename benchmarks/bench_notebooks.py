"""Notebook submissions against their modules: scores and times, for every assignment.

    python benchmarks/bench_notebooks.py [--assignment vae] [--nbclient]

Per assignment it grades, with the full hidden suite: the reference ``.py``; the reference
notebook (autograder.authoring.notebook_build); the same notebook with an exploration cell that
trains for an hour (``time.sleep(3600)`` after a loop); and the released notebook. It prints
the four scores (the first three must be equal, the last 0) and the wall times (the
notebook with the training cell must take what the one without takes: the cell never runs).
With ``--nbclient`` it also times each reference notebook run top to bottom under nbclient,
as tests/test_notebooks.py does; ``--nbclient-only`` does that alone (no gradings) and splits
the time: the exploration cells of explore.py (training in the kernel), the checks cell, the
rest (kernel start, graded cells). Asserts nothing.

    python benchmarks/bench_notebooks.py --nbclient-only [--assignment vae]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import nbformat

from autograder import config
from autograder.authoring import notebook_build
from autograder.grading import runner
from autograder.authoring.release import render_assignment

KIT = Path(__file__).resolve().parent.parent
TRAINING_CELL = ("# exploration: train for a long time\nimport time\nfor step in range(10**9):\n"
                 "    time.sleep(3600)\n")


def _timed(cfg, assignment, submission):
    started = time.monotonic()
    result = runner.grade(cfg, assignment, submission)
    return result, time.monotonic() - started


def _folder(root: Path, name: str, files: dict[str, bytes]) -> Path:
    folder = root / name
    folder.mkdir()
    for rel, data in files.items():
        (folder / rel).write_bytes(data)
    return folder


def _seconds(cell) -> float:
    """How long a cell ran, from the timestamps nbclient records in its metadata."""
    from datetime import datetime

    timing = cell.metadata.get("execution", {})
    if "iopub.execute_input" not in timing or "shell.execute_reply" not in timing:
        return 0.0
    start, end = (datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                  for k in ("iopub.execute_input", "shell.execute_reply"))
    return (end - start).total_seconds()


def _split(cfg, assignment, nb) -> tuple[float, float]:
    """(seconds in explore.py's cells, seconds in the checks cell) of an executed notebook."""
    training = notebook_build.explore_cells(cfg.solution_dir(assignment) / notebook_build.EXPLORE)
    explore = sum(_seconds(c) for c in nb.cells if c.cell_type == "code" and c.source in training)
    checks = sum(_seconds(c) for c in nb.cells if c.cell_type == "code" and '"autograder.cli", "check"' in c.source)
    return explore, checks


def _nbclient(cfg, assignment, root: Path, split: bool = False):
    import os

    from nbclient import NotebookClient

    os.environ["OMP_NUM_THREADS"] = "1"   # the kernel's torch: one thread, as tests/test_notebooks.py runs it

    folder = root / f"run-{assignment.id}"
    for rel, data in render_assignment(cfg.solution_dir(assignment)).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    module = assignment.files[0]
    (folder / module).unlink()
    nb = notebook_build.reference(cfg.solution_dir(assignment), module)
    (folder / Path(module).with_suffix(".ipynb")).write_text(nbformat.writes(nb))
    started = time.monotonic()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    seconds = time.monotonic() - started
    return (seconds, *_split(cfg, assignment, nb)) if split else seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", action="append", help="only these (default: all)")
    parser.add_argument("--nbclient", action="store_true", help="also time the reference notebooks under nbclient")
    parser.add_argument("--nbclient-only", action="store_true",
                        help="only the nbclient runs, with the time of the exploration and checks cells")
    args = parser.parse_args()
    cfg = config.load(KIT / "grading.yml")
    if args.nbclient_only:
        print(f"{'assignment':<12} {'nbclient':>9} {'explore.py':>11} {'checks':>8} {'rest':>7}")
        for assignment in cfg.assignments:
            if args.assignment and assignment.id not in args.assignment:
                continue
            with tempfile.TemporaryDirectory() as tmp:
                total, explore, checks = _nbclient(cfg, assignment, Path(tmp), split=True)
            print(f"{assignment.id:<12} {total:8.1f}s {explore:10.1f}s {checks:7.1f}s {total - explore - checks:6.1f}s",
                  flush=True)
        return
    print(f"{'assignment':<12} {'.py':>12} {'notebook':>12} {'+training':>12} {'released':>12} {'nbclient':>9}")
    for assignment in cfg.assignments:
        if args.assignment and assignment.id not in args.assignment:
            continue
        module = assignment.files[0]
        name = Path(module).with_suffix(".ipynb").name
        reference = json.loads(nbformat.writes(notebook_build.reference(cfg.solution_dir(assignment), module)))
        training = dict(reference, cells=reference["cells"] + [nbformat.v4.new_code_cell(TRAINING_CELL)])
        released = render_assignment(cfg.solution_dir(assignment))[name]
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            plans = [cfg.solution_dir(assignment),
                     _folder(root, "notebook", {name: json.dumps(reference).encode()}),
                     _folder(root, "training", {name: json.dumps(training).encode()}),
                     _folder(root, "released", {name: released})]
            cells = []
            for submission in plans:
                result, seconds = _timed(cfg, assignment, submission)
                errors = "!" if result.grader_errors else ""
                cells.append(f"{result.score:g}{errors} {seconds:5.1f}s")
            ran = f"{_nbclient(cfg, assignment, root):7.1f}s" if args.nbclient else "-"
        print(f"{assignment.id:<12} " + " ".join(f"{c:>12}" for c in cells) + f" {ran:>9}", flush=True)


if __name__ == "__main__":
    main()
