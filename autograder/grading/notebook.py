"""A notebook submission becomes the module the worker imports, without running anything.

The student hands in ``vae.ipynb`` instead of ``vae.py`` (a folder holding it, or the file
itself). On the judge's side, before the worker starts, ``prepare`` copies the submission
into the grading's private folder and writes ``vae.py`` there, built **only from the graded
cells**: the code cells nbgrader marks as solution cells or as locked given code, in notebook
order. Exploration cells (training loops, plots, ``!pip install``, the checks cell) are never
part of it, so they never run at grading.

Nothing is executed here: the notebook is read as JSON, cells are parsed with ``ast`` only.

* A graded cell holding an IPython magic or shell escape (``%time``, ``!ls``) cannot be plain
  Python: the module gets, for each function or class that cell defines, a stand-in that
  raises one line naming the cell when called; the other cells are graded as usual.
* A notebook whose nbgrader metadata was stripped by another editor: the cells that define
  the skeleton's functions and classes (and cells of imports only) are taken instead, and a
  notice says so in the feedback.
* Not JSON, not nbformat 4, or no graded cell left: ``SubmissionError``, one line.

This module is on the student package's allow-list (``autograder check vae.ipynb``), so it
imports nothing beyond the standard library and the kit's submission module.
"""

from __future__ import annotations

import ast
import json
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox.submission import MAX_BYTES, SubmissionError, copy

NOTEBOOK = ".ipynb"
# A line that starts a magic (%, %%) or a shell escape (!), or ends in IPython's help (?).
MAGIC_LINE = re.compile(r"^\s*(%|!)|^[^#'\"]*[\w)\]]\?\??\s*$|=\s*[%!]")


@dataclass
class Extracted:
    """The module built from a notebook, and what the student should be told about it."""

    source: str
    """the text of ``<name>.py``"""
    cells: list[int] = field(default_factory=list)
    """the notebook's cell numbers (1-based, as Jupyter counts) the module was built from"""
    notices: list[str] = field(default_factory=list)
    """one line each: a fallback taken, a cell replaced by stand-ins"""


def is_notebook(path: Path) -> bool:
    """A notebook file named as the submission stands for its module."""
    return Path(path).suffix == NOTEBOOK and Path(path).is_file()


def _text(source) -> str:
    """A cell's source (nbformat allows a string or a list of lines); anything else is no code."""
    if isinstance(source, list):
        return "".join(line for line in source if isinstance(line, str))
    return source if isinstance(source, str) else ""


def _nbgrader(cell: dict) -> dict:
    meta = cell.get("metadata")
    found = meta.get("nbgrader") if isinstance(meta, dict) else None
    return found if isinstance(found, dict) else {}


def _is_graded(cell: dict) -> bool:
    """A solution cell, or locked given code; not nbgrader's own test cells (grade without
    solution), which hold an instructor's asserts that would run on import."""
    info = _nbgrader(cell)
    if info.get("solution") is True:
        return True
    return info.get("locked") is True and info.get("grade") is not True


def read(data: bytes, where: str) -> list[dict]:
    """The notebook's cells; ``SubmissionError`` when it is not an nbformat-4 notebook."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:  # deep nesting: RecursionError
        raise SubmissionError(f"{where}: not a Jupyter notebook (not JSON: {str(error)[:80]})") from None
    if not isinstance(nb, dict) or "nbformat" not in nb:
        raise SubmissionError(f"{where}: not a Jupyter notebook (no 'nbformat' field)")
    if nb["nbformat"] != 4:
        raise SubmissionError(f"{where}: a version {nb['nbformat']!r} notebook; the grader reads version 4 "
                              "(open it in a current Jupyter and save it)")
    cells = nb.get("cells")
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise SubmissionError(f"{where}: not a Jupyter notebook (its 'cells' is not a list of cells)")
    return cells


def _defined(tree: ast.Module) -> set[str]:
    return {node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def skeleton_names(source: str) -> set[str]:
    """The functions and classes a skeleton module defines at top level."""
    try:
        return _defined(ast.parse(source))
    except (SyntaxError, MemoryError, RecursionError):
        return set()


# Bounds on what the grader parses, checked before the parser runs: a notebook is the
# student's data, and the parser's own limits (a MemoryError for 100,000 unary minus signs, a
# RecursionError for 200,000 attribute accesses) must end that student's grading with one
# line, never the grader. A real graded cell is a few hundred lines.
MAX_CELLS = 10_000
MAX_CELL_CHARS = 1_000_000


def _parse(text: str, where: str = "", number: int = 0) -> ast.Module | None:
    """The cell's syntax tree; None for a syntax error (graded as the same .py would be)."""
    if len(text) > MAX_CELL_CHARS:
        raise SubmissionError(f"{where} cell {number}: {len(text)} characters, more than the grader reads in "
                              f"one cell ({MAX_CELL_CHARS}); split it, or move data into a file")
    try:
        return ast.parse(text)
    except SyntaxError:
        return None
    except (MemoryError, RecursionError) as error:
        raise SubmissionError(f"{where} cell {number}: nested too deeply for the grader to read "
                              f"({type(error).__name__}); write the expression in several statements") from None


def _only_imports(tree: ast.Module | None) -> bool:
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))] if tree else []
    return bool(body) and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in body)


def _names_in_unparsable(text: str) -> list[str]:
    """Top-level ``def``/``class`` names of a cell that does not parse (it has magics)."""
    return re.findall(r"^(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", text, flags=re.M)


def _stand_ins(text: str, number: int, where: str) -> tuple[str, str] | None:
    """For a graded cell with a magic or shell escape: stand-ins for its functions and the notice.
    None when the cell is plain Python, or merely broken Python (graded as a .py would be)."""
    if _parse(text, where, number) is not None:
        return None
    magic = next((line.strip() for line in text.split("\n") if MAGIC_LINE.search(line)), None)
    if magic is None:
        return None  # a syntax error: left in, so the import fails as the same .py would
    shown = magic[:40].replace("\\", "/").replace('"', "'")
    message = (f"{where} cell {number} holds an IPython magic or shell escape ({shown}); graded cells "
               "are run as plain Python: move it to a scratch cell")
    names = _names_in_unparsable(text)
    code = "".join(f"\n\ndef {name}(*args, **kwargs):\n    raise RuntimeError({message!r})\n" for name in names)
    return code, message


def _fallback(code: list[tuple[int, str]], names: set[str], where: str) -> tuple[list[tuple[int, str]], str]:
    """No cell is marked as a solution: take the cells that define the skeleton's functions or
    classes, and the cells of imports only (the given imports); never any other cell."""
    graded, found = [], set()
    for number, text in code:
        tree = _parse(text, where, number)  # once: a cell near the bounds is slow to parse
        defined = (_defined(tree) if tree else set(_names_in_unparsable(text))) & names
        if defined or _only_imports(tree):
            graded.append((number, text))
            found |= defined
    if not found:
        listed = ", ".join(sorted(names)) or "the assignment's functions"
        raise SubmissionError(f"{where}: no graded cells (no cell is marked as a solution cell, and none "
                              f"defines {listed}); copy your code into the released notebook's cells")
    return graded, (f"{where}: its nbgrader cell metadata is missing (another editor removed it?), so the "
                    f"grader took the cells that define the assignment's functions, and cells of imports "
                    f"(cells {', '.join(str(n) for n, _ in graded)}); check that nothing is missing")


def extract(data: bytes, where: str, names: set[str] | None = None) -> Extracted:
    """Build the module from the notebook ``data`` (``where`` names it in messages).

    ``names`` are the skeleton's functions and classes, used only when no cell carries
    nbgrader's solution metadata."""
    cells = read(data, where)
    if len(cells) > MAX_CELLS:
        raise SubmissionError(f"{where}: {len(cells)} cells, more than the grader reads ({MAX_CELLS}); "
                              "copy your code into the released notebook")
    code = [(number, cell) for number, cell in enumerate(cells, 1) if cell.get("cell_type") == "code"]
    notices = []
    if any(_nbgrader(cell).get("solution") is True for _, cell in code):
        graded = [(number, _text(cell.get("source"))) for number, cell in code if _is_graded(cell)]
    else:
        graded, notice = _fallback([(n, _text(c.get("source"))) for n, c in code], set(names or ()), where)
        notices.append(notice)
    parts = [f"# Built by the grader from {where}: its graded cells only, in notebook order.\n"]
    for number, text in graded:
        replaced = _stand_ins(text, number, where)
        if replaced:
            body, notice = replaced
            notices.append(notice)
            parts.append(f"# --- cell {number}: replaced (magic or shell escape) ---{body}")
        else:
            parts.append(f"# --- cell {number} ---\n{text.rstrip()}\n")
    return Extracted("\n\n".join(parts), [n for n, _ in graded], notices)


def _skeleton(folder: Path | None, module: str) -> set[str] | None:
    path = folder / module if folder else None
    if path is None or path.is_symlink() or not path.is_file():
        return None
    return skeleton_names(path.read_text(encoding="utf-8", errors="replace"))


STUB = "your code goes here"  # in every stub of a released skeleton (autograder.authoring.release.STUB_RAISE)


def _unwritten(path: Path) -> int:
    """How many of the skeleton's stubs are still unanswered in a module or a notebook's graded
    cells (a notebook that cannot be read counts as untouched)."""
    try:
        data = path.read_bytes()
        text = extract(data, path.name).source if path.suffix == NOTEBOOK else data.decode("utf-8", "replace")
    except (OSError, SubmissionError):
        return 1 << 30
    return text.count(STUB)


def _worked_in(book: Path, unanswered: int, submission: Path, skeletons: tuple[Path | None, ...]) -> bool:
    """Whether the student answered any of a notebook's stubs: fewer are left than in the released
    module (in a released folder other than the submission), or, with none to compare, none is left.
    An untouched notebook beside the graded module needs no notice."""
    for folder in skeletons:
        if folder is None or not folder.is_dir():
            continue
        try:
            if folder.resolve() == submission.resolve():
                continue
        except OSError:
            continue
        released = folder / (book.stem + ".py")
        if released.is_file() and not released.is_symlink():
            return unanswered < _unwritten(released)
    return unanswered == 0


def _copy_notebook(source: Path, target: Path) -> None:
    """Copy one notebook named on the command line: a regular file, never through a link, capped."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(source, flags)
    except OSError as error:
        why = "is a symbolic link" if os.path.islink(source) else f"cannot be read ({error.strerror})"
        raise SubmissionError(f"{source}: {why}; hand in the notebook itself") from None
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            raise SubmissionError(f"{source}: not a regular file")
        data = src.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise SubmissionError(f"{source}: more than {MAX_BYTES >> 20} MB")
    target.write_bytes(data)


def prepare(submission: Path, files: list[str], private: Path,
            skeletons: tuple[Path | None, ...] = ()) -> tuple[Path, list[str]]:
    """The folder to grade, and the notices for the feedback.

    ``submission`` is a folder or a ``<name>.ipynb`` file (its folder is then the submission,
    and this notebook stands for ``<name>.py`` even where that file exists, e.g. the released
    skeleton beside it). In a folder, ``<name>.ipynb`` is used where ``<name>.py`` is absent,
    or where fewer of the skeleton's stubs are left in it than in ``<name>.py`` (a released
    folder handed in whole by a student who worked in the notebook); a notice says which
    counted. Without any notebook to use, ``submission`` is returned as it is (nothing
    copied). Otherwise the folder (``autograder.sandbox.submission.copy``: no links, size caps), or the
    named notebook alone, is copied into ``private`` and each module written there.
    ``skeletons``: folders where the released ``<name>.py`` may be found, for the fallback on
    stripped metadata.
    """
    submission = Path(submission)
    if submission.is_file() or submission.suffix == NOTEBOOK:
        if submission.suffix != NOTEBOOK or not submission.is_file():
            raise SubmissionError(f"{submission}: not a folder or a notebook (.ipynb)")
        module = submission.stem + ".py"
        if module not in files:
            raise SubmissionError(f"{submission}: this assignment's files are {', '.join(files)}; "
                                  f"a notebook stands for one of them ({', '.join(Path(f).stem + NOTEBOOK for f in files)})")
        folder, chosen, notices = submission.parent, {module: submission}, []
    else:
        folder, chosen, notices = submission, {}, []
        for f in files:
            book = submission / (Path(f).stem + NOTEBOOK)
            if not f.endswith(".py") or not book.is_file():
                continue
            if not (submission / f).exists():
                chosen[f] = book
                continue
            # Both, as in a released folder handed in whole: grade the one the student worked in,
            # and say so unless the other is plainly the untouched one.
            in_notebook, in_module = _unwritten(book), _unwritten(submission / f)
            if in_notebook < in_module:
                chosen[f] = book
                notices.append(f"graded {book.name}, where more of the work is done than in {f} beside it "
                               f"(hand in one of them, or name it: autograder check {book.name})")
            elif in_notebook == in_module and _worked_in(book, in_notebook, submission, skeletons):
                notices.append(f"graded {f}; {book.name} beside it was not used (hand in the notebook "
                               f"alone, or name it: autograder check {book.name})")
    if not chosen:
        return submission, notices
    if submission.is_file():  # the notebook named: it alone is the submission, not what lies beside it
        private.mkdir(parents=True)
        _copy_notebook(submission, private / submission.name)
    else:
        copy(folder, private)
    for module, notebook in chosen.items():
        names = next((n for n in (_skeleton(s, module) for s in (*skeletons, folder)) if n), None)
        built = extract((private / notebook.name).read_bytes(), notebook.name, names)
        (private / module).write_text(built.source, encoding="utf-8")
        notices += built.notices
    return private, notices
