"""The reference notebook of an assignment, built from its solution folder (the single source).

``reference(folder, "vae.py")`` lays out ``vae.ipynb`` from ``handout.md`` and ``vae.py``:

1. the handout, one markdown cell per ``##`` section, and a cell saying how to work in a
   notebook (which cells are graded, that the exploration cells never run at grading);
2. the module, split at its top-level statements: every function or class holding a
   ``### BEGIN SOLUTION`` region is a graded cell of its own (nbgrader ``solution: true``,
   ``grade: false``), the given code between them a locked, read-only cell; the cells,
   read in order, are the module again (``autograder.grading.notebook`` reads them back that way);
3. exploration cells, ungraded and marked so: first the cells of ``explore.py`` beside the
   module (percent format), which train the student's model in the notebook's own kernel with
   the functions the graded cells define, and plot its loss and samples; then a cell that runs
   the public checks on the saved notebook (they train the model in the grader's sandbox and
   draw its curves and samples), and one that shows the pictures they drew.

Every cell carries nbgrader's metadata (schema version 3), so ``nbgrader generate_assignment``
recognises it; cell ids are derived from the module's name, so the bytes are the same on every
run. `autograder release` passes this notebook through nbgrader's ClearSolutions, as it does
the module, to make the student's notebook; ``autograder release --nbgrader-source`` writes
the reference itself into an nbgrader course's ``source/``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat

SOLUTION = "BEGIN SOLUTION"
FENCE = re.compile(r"^ {0,3}(```|~~~)")
EXPLORATION = "exploration"   # the tag of the ungraded cells (also said in their first line)
EXPLORATION_LINE = "# EXPLORATION: not graded, never run by the grader."
EXPLORE = "explore.py"          # a solution folder's exploration cells; notebook-only, never released as a file
CELL = re.compile(r"^# %%.*$", re.M)   # the percent format's cell separator (Jupytext, VS Code, Spyder)
KERNEL = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
          "language_info": {"name": "python"}}


def _sections(handout: str) -> list[str]:
    """The handout cut before every level-2 heading (never inside a fenced code block)."""
    parts, current, fenced = [], [], False
    for line in handout.rstrip("\n").split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        if not fenced and line.startswith("## ") and current:
            parts.append("\n".join(current).strip("\n"))
            current = []
        current.append(line)
    parts.append("\n".join(current).strip("\n"))
    return [p for p in parts if p.strip()]


def module_cells(source: str) -> list[tuple[str, str]]:
    """(kind, text) for the module: kind "graded" (a function or class with a solution region)
    or "given" (everything between them). Comments and blank lines before a statement go
    with it; joined in order, the texts are the module's statements, unchanged."""
    lines = source.split("\n")
    cells: list[tuple[str, str]] = []
    start = 0
    for node in ast.parse(source).body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        end = node.end_lineno
        # an indented comment after the last statement (``### END SOLUTION``) is the body's too
        following = end
        while following < len(lines) and (not lines[following].strip() or (
                lines[following][:1] in (" ", "\t") and lines[following].lstrip().startswith("#"))):
            following += 1
            if lines[following - 1].strip():
                end = following
        text = "\n".join(lines[start:end]).strip("\n")
        kind = "graded" if SOLUTION in "\n".join(lines[first - 1:end]) else "given"
        if kind == "given" and cells and cells[-1][0] == "given":
            cells[-1] = ("given", cells[-1][1] + "\n" + "\n".join(lines[start:end]).rstrip("\n"))
        else:
            cells.append((kind, text))
        start = end
    tail = "\n".join(lines[start:]).strip("\n")
    if tail:
        cells.append(("given", tail))
    return cells


def _name(text: str) -> str:
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return node.name
    return "code"


def _nbgrader(grade_id: str, *, solution: bool, locked: bool) -> dict:
    return {"nbgrader": {"grade": False, "grade_id": grade_id, "locked": locked, "schema_version": 3,
                         "solution": solution, "task": False}}


def _how_to(stem: str) -> str:
    return (f"## Working in this notebook\n\n"
            f"This notebook is the assignment: it holds the handout and all of `{stem}.py`.\n\n"
            f"* Write your code in the **graded cells**, where it says `# YOUR CODE HERE`. Keep the names "
            "and signatures given there. The other code cells are given and locked.\n"
            f"* The grader builds `{stem}.py` from the graded and locked cells only, in this order, and runs "
            "nothing else: no `%magic` or `!shell` line in a graded cell (it would make that cell's functions "
            "fail), and helpers you need go into a graded cell.\n"
            "* The **Exploration** cells at the end are not graded and never run by the grader: they train "
            "your model in this notebook and plot its loss and samples, then run the public checks on this "
            "notebook (save it first) and show the curves and samples they draw. "
            f"From a terminal, the same is `autograder check {stem}.ipynb`.\n"
            f"* Hand in `{stem}.ipynb` (or `{stem}.py`, if you prefer the module).")


def _exploration(stem: str) -> list[str]:
    return [
        f"{EXPLORATION_LINE}\n"
        f"# The public checks on this notebook as saved on disk (save it first): they build {stem}.py\n"
        "# from its graded cells, run them in the grader's sandbox (training your model briefly)\n"
        "# and draw your curves and samples into feedback/. Under a minute (25-40 s measured).\n"
        "import subprocess\n"
        "import sys\n\n"
        f"checks = subprocess.run([sys.executable, \"-m\", \"autograder.cli\", \"check\", \"{stem}.ipynb\"],\n"
        "                        capture_output=True, text=True)\n"
        "print(checks.stdout + checks.stderr)",
        f"{EXPLORATION_LINE}\n"
        "# The pictures the checks drew: your training curve and your model's samples.\n"
        "from pathlib import Path\n\n"
        "from IPython.display import Image, display\n\n"
        "for picture in sorted(Path(\"feedback\").glob(\"*.png\")):\n"
        "    print(picture.name)\n"
        "    display(Image(filename=str(picture)))",
    ]


def explore_cells(path: Path) -> list[str]:
    """The cells of an ``explore.py`` (percent format), each starting with the exploration line;
    text before the first ``# %%`` is the file's own header and is left out. [] if no file.
    The cells are code the student runs in the notebook after the graded cells, so they call
    the module's functions by name and never import the module."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8").replace("\r\n", "\n")
    cells = [cell.strip("\n") for cell in CELL.split(text)[1:]]
    return [cell if cell.startswith(EXPLORATION_LINE) else f"{EXPLORATION_LINE}\n{cell}" for cell in cells if cell.strip()]


def reference(folder: Path, module: str) -> nbformat.NotebookNode:
    """The reference notebook (solutions in place) for ``folder/module``."""
    folder = Path(folder)
    stem = Path(module).stem
    source = (folder / module).read_text(encoding="utf-8").replace("\r\n", "\n")
    handout = folder / "handout.md"
    markdown = _sections(handout.read_text(encoding="utf-8").replace("\r\n", "\n")) if handout.is_file() else []
    cells = []
    if markdown:
        cells.append(nbformat.v4.new_markdown_cell(markdown[0]))
    cells.append(nbformat.v4.new_markdown_cell(_how_to(stem)))
    cells += [nbformat.v4.new_markdown_cell(text) for text in markdown[1:]]
    cells.append(nbformat.v4.new_markdown_cell(f"## Your code: `{stem}.py`\n\nGraded cells and given code, "
                                               "in the module's order."))
    given = 0
    for kind, text in module_cells(source):
        cell = nbformat.v4.new_code_cell(text)
        if kind == "graded":
            cell.metadata.update(_nbgrader(f"{stem}-{_name(text)}", solution=True, locked=False))
        else:
            given += 1
            cell.metadata.update(_nbgrader(f"{stem}-given-{given}", solution=False, locked=True))
            cell.metadata.update(editable=False, deletable=False)
        cells.append(cell)
    training = explore_cells(folder / EXPLORE)
    cells.append(nbformat.v4.new_markdown_cell(
        "## Exploration (not graded)\n\nThe grader never runs the cells below. " + (
            "Run the cells above first (they define your functions); the next cells train your model here, "
            "for a few seconds, and plot its loss and samples. Then save the notebook and run the public checks."
            if training else "Save the notebook, then run them to check your work and to watch your model learn.")))
    for text in training + _exploration(stem):
        cell = nbformat.v4.new_code_cell(text)
        cell.metadata["tags"] = [EXPLORATION]
        cells.append(cell)
    for number, cell in enumerate(cells, 1):
        cell["id"] = f"{stem}-{number:02d}"  # nbformat draws random ids; these keep release byte-stable
    nb = nbformat.v4.new_notebook(cells=cells, metadata=dict(KERNEL))
    nbformat.validate(nb)
    return nb


def modules(folder: Path) -> list[str]:
    """The modules of a solution folder that get a notebook: top-level ``*.py`` files with a
    solution region, not ``hidden*``, and not already beside a hand-written ``<name>.ipynb``."""
    found = []
    for path in sorted(Path(folder).glob("*.py")):
        if path.name.lower().startswith("hidden") or path.name == EXPLORE or path.with_suffix(".ipynb").exists():
            continue
        if SOLUTION in path.read_text(encoding="utf-8", errors="replace"):
            found.append(path.name)
    return found
