"""`autograder release`: regenerate assignments/ from solutions/, the single source.

Every file a student receives goes through nbgrader's own preprocessors, the ones
`nbgrader generate_assignment` runs: `ClearSolutions` turns each region between
``### BEGIN SOLUTION`` and ``### END SOLUTION`` into a code stub (indentation kept),
`ClearHiddenTests` drops ``BEGIN HIDDEN TESTS`` regions, `ClearOutput` empties notebook
outputs. A ``.py`` module is wrapped as one code cell and a ``.md`` handout as one markdown
cell, so modules, handouts and notebooks share a single pipeline. One preprocessor of our
own, `ClearInstructorNotes`, removes the handout's "Instructor notes" sections (the
calibration numbers behind the thresholds).

What is never released: hidden suites (they live in autograder/suites/, outside
solutions/), anything named ``hidden*``, dotfiles and caches. Output is deterministic:
sorted paths, LF line endings, the same bytes on every run, so ``release --check`` can
compare byte for byte.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path, PurePosixPath

import nbformat
from nbconvert.preprocessors import Preprocessor
from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

import autograder
from autograder.grading.notebook import STUB

# nbgrader's python stub is "# YOUR CODE HERE\nraise NotImplementedError()"; we keep its
# shape and add a message, because the student meets it in a traceback.
STUB_RAISE = f'raise NotImplementedError("{STUB} (see the handout)")'
CODE_STUB = "# YOUR CODE HERE\n" + STUB_RAISE
REGIONS = (("BEGIN SOLUTION", "END SOLUTION"), ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS"))
# Made by running things, never by an author: ignored on both sides of the comparison
# (feedback/: the pictures `autograder check` draws into the folder it checks).
JUNK = frozenset({"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".DS_Store", "feedback"})


class ReleaseError(Exception):
    """A solution folder cannot be released (unbalanced markers, skeleton not valid Python...)."""


# --- the transformations ------------------------------------------------------------------

class ClearInstructorNotes(Preprocessor):
    """Remove every section headed "Instructor notes" (ATX heading of any level) up to the
    next heading of the same or a higher level; in a notebook the section may run over
    several cells. Lines inside fenced code blocks are never taken for headings (a
    ``# comment`` in a code block must not end the section early)."""

    title = "instructor notes"
    heading = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
    fence = re.compile(r"^ {0,3}(```|~~~)")

    def preprocess(self, nb, resources):
        cells, level = [], None  # level: heading level of the section being removed, or None
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                if level is None:
                    cells.append(cell)
                continue
            lines = cell.source.split("\n")
            kept, level = self._strip(lines, level)
            if kept:  # a cell that was all instructor notes goes
                cell.source = "\n".join(kept)
                cells.append(cell)
        nb.cells = cells
        return nb, resources

    def _strip(self, lines, level):
        kept, in_fence = [], False
        for line in lines:
            if self.fence.match(line):
                in_fence = not in_fence
            found = None if in_fence else self.heading.match(line)
            if found:
                depth, title = len(found.group(1)), (found.group(2) or "").strip("*_ ").lower()
                if level is not None and depth <= level:
                    level = None
                if level is None and title.startswith(self.title):
                    level = depth
            if level is None:
                kept.append(line)
        return kept, level


def _pipeline(kind: str) -> list:
    clear_solutions = ClearSolutions(code_stub={"python": CODE_STUB}, enforce_metadata=False)
    steps = [clear_solutions, ClearHiddenTests(enforce_metadata=False)]
    if kind == "notebook":
        steps.append(ClearOutput())
    if kind in ("notebook", "markdown"):
        steps.append(ClearInstructorNotes())
    return steps


def _run(nb, kind: str, where) -> nbformat.NotebookNode:
    for step in _pipeline(kind):
        try:
            nb, _ = step.preprocess(nb, {})
        except (RuntimeError, ValueError) as error:  # markers are checked before; e.g. kernel language
            raise ReleaseError(f"{where}: {error}") from error
    return nb


def _check_regions(text: str, where: str, cell: int | None = None) -> None:
    """Balanced, unnested markers, found the way nbgrader finds them (substring of a line)."""
    def at(line: int) -> str:
        return f"{where}:{line}" if cell is None else f"{where}, cell {cell}, line {line}"

    for begin, end in REGIONS:
        opened = None
        for number, line in enumerate(text.split("\n"), 1):
            if begin in line:
                if opened:
                    raise ReleaseError(f"{at(number)}: '{begin}' inside the region opened on "
                                       f"line {opened} (regions cannot nest)")
                opened = number
            elif end in line:
                if not opened:
                    raise ReleaseError(f"{at(number)}: '{end}' without a '{begin}' before it")
                opened = None
        if opened:
            raise ReleaseError(f"{at(opened)}: '{begin}' is never closed by '{end}'")


def _runs_on_import(tree: ast.Module):
    """Nodes executed when the module is imported: all but function bodies and the main guard."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def _check_skeleton(text: str, where: str) -> None:
    """The skeleton must be valid Python and import cleanly (no stub outside a function)."""
    try:
        compile(text, where, "exec")
    except SyntaxError as error:
        raise ReleaseError(f"{where}: the generated skeleton is not valid Python (skeleton line "
                           f"{error.lineno}: {error.msg}); check where the solution region starts "
                           "and ends") from error
    lines = text.split("\n")
    for node in _runs_on_import(ast.parse(text)):
        if isinstance(node, ast.Raise) and lines[node.lineno - 1].strip() == STUB_RAISE:
            raise ReleaseError(f"{where}: a solution region outside any function (skeleton line "
                               f"{node.lineno}) would make the skeleton fail on import")


# --- one function per kind of file --------------------------------------------------------

def _release_python(text: str, where: str) -> str:
    _check_regions(text, where)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text)])
    skeleton = _run(nb, "python", where).cells[0].source
    _check_skeleton(skeleton, where)
    return skeleton


def _release_markdown(text: str, where: str) -> str:
    _check_regions(text, where)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    released = "\n".join(cell.source for cell in _run(nb, "markdown", where).cells)
    return released.rstrip("\n") + "\n" if released.strip() else ""


def _release_notebook(text: str, where: str) -> str:
    nb = nbformat.reads(text, as_version=4)
    for index, cell in enumerate(nb.cells):
        _check_regions(cell.source, where, cell=index)
    nb = _run(nb, "notebook", where)
    return nbformat.writes(nb) + "\n"


def _release_other(text: str, where: str) -> str:
    if any(marker in text for pair in REGIONS for marker in pair):
        raise ReleaseError(f"{where}: release clears solution and hidden-test regions only in "
                           ".py, .md and .ipynb files")
    return text


RELEASERS = {".py": _release_python, ".md": _release_markdown, ".ipynb": _release_notebook}


def _release_file(path: Path) -> bytes:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw  # binary (pictures, weights): copied as is
    if "\0" in text:
        return raw
    text = text.replace("\r\n", "\n")
    return RELEASERS.get(path.suffix.lower(), _release_other)(text, str(path)).encode("utf-8")


# --- the folder level ---------------------------------------------------------------------

def _is_junk(rel: str) -> bool:
    path = PurePosixPath(rel)
    return any(part in JUNK for part in path.parts) or path.suffix in (".pyc", ".pyo")


def _is_private(rel: str) -> bool:
    """Never released: junk, dotfiles, and anything named hidden*."""
    parts = PurePosixPath(rel).parts
    return _is_junk(rel) or any(p.startswith(".") or p.lower().startswith("hidden") for p in parts)


def _files(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        return {}
    found = {path.relative_to(root).as_posix(): path for path in root.rglob("*") if path.is_file()}
    return dict(sorted(found.items()))


def render_assignment(solution_dir: Path) -> dict[str, bytes]:
    """What assignments/<folder>/ must contain: relative posix path -> file content. Besides
    the folder's own files, a notebook ``<name>.ipynb`` for every module with solution regions
    (autograder.authoring.notebook_build), cleared by the same pipeline as a hand-written notebook. The
    folder's ``explore.py`` is in that notebook only (its cells need the graded cells above them)."""
    from autograder.authoring import notebook_build

    solution_dir = Path(solution_dir)
    rendered = {rel: _release_file(path) for rel, path in _files(solution_dir).items()
                if not _is_private(rel) and rel != notebook_build.EXPLORE}
    for module in notebook_build.modules(solution_dir):
        where = f"{solution_dir / module} (as a notebook)"
        reference = nbformat.writes(notebook_build.reference(solution_dir, module))
        rendered[str(PurePosixPath(module).with_suffix(".ipynb"))] = _release_notebook(reference, where).encode("utf-8")
    return dict(sorted(rendered.items()))


def release(kit_root: Path, folders: list[str], *, check: bool = False) -> list[str]:
    """Write (or, with check=True, only compare) assignments/<folder> for each folder from
    solutions/<folder>.

    Returns human-readable lines: with check, one line per drifted/missing/extra file (empty
    list = in sync); without check, one line per file written/removed. Files in
    assignments/<folder> that release would not write are removed (write) / reported (check);
    caches made by running the checks (``__pycache__``, ``.pytest_cache``...) are left alone.
    """
    kit_root = Path(kit_root)
    report = []
    for folder in folders:
        if not folder or folder in (".", "..") or PurePosixPath(folder).name != folder:
            raise ReleaseError(f"{folder!r}: expected the name of a folder under solutions/")
        source = kit_root / "solutions" / folder
        if not source.is_dir():
            raise ReleaseError(f"{source}: no such solution folder")
        wanted = render_assignment(source)
        target = kit_root / "assignments" / folder
        present = {rel: path for rel, path in _files(target).items() if not _is_junk(rel)}
        for rel in sorted(wanted.keys() | present.keys()):
            shown = f"assignments/{folder}/{rel}"
            if rel not in wanted:
                verdict = "extra"
            elif rel not in present:
                verdict = "missing"
            elif present[rel].read_bytes() != wanted[rel]:
                verdict = "drifted"
            else:
                continue
            if check:
                report.append(f"{verdict}: {shown}")
            elif verdict == "extra":
                present[rel].unlink()
                report.append(f"removed: {shown}")
            else:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                (target / rel).write_bytes(wanted[rel])
                report.append(f"wrote: {shown}")
        if not check:
            for path in sorted(target.rglob("*"), reverse=True):  # children before parents
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
    return report


# --- the student bundle ---------------------------------------------------------------------
#
# What a course publishes to students: the released assignments, a wheel of the student-side
# package, the student course file and an install line. The wheel is a second distribution
# built from this tree by pip (setuptools), from a build folder this function generates: a
# pyproject.toml and the files of an allow-list below, nothing else. It holds no hidden suite,
# no solution, no held-out split, no threshold; tests/test_student_bundle.py checks every byte.

STUDENT_DIST = "genai-course-student"
STUDENT_VERSION = "0.1.0"
COURSE_FILE = "course.yml"            # inside the student package: autograder/course.yml
STUDENT_MARKER = "STUDENT_BUILD"      # inside the student package's kitdata: no held-out split
# The engine pieces `autograder check` needs (paths relative to autograder/): the sandbox
# without its fork server, the grading of one submission. Not here: suites/ (hidden),
# authoring/ (needs the solutions), classroom/ (the instructor's class).
STUDENT_ENGINE = ("__init__.py", "cli.py", "config.py", "escape.py",
                  "sandbox/__init__.py", "sandbox/supervisor.py", "sandbox/submission.py", "sandbox/wire.py", "sandbox/process.py",
                  "sandbox/worker.py", "sandbox/lean_torch.py", "sandbox/containment/*.py",
                  "grading/__init__.py", "grading/job.py", "grading/notebook.py", "grading/reports.py",
                  "grading/runner.py", "grading/judge/*.py")
# kitdata for students: the training splits, the generators and the metrics. Not here:
# calibrate.py and build_features.py (they read the held-out split), mnist*.py (local files).
STUDENT_KITDATA = ("__init__.py", "_util.py", "digits.py", "toy2d.py", "labelled2d.py", "planted.py", "text.py",
                   "features.py", "metrics.py", "digits_train.npz", "digit_features.npz")
STUDENT_DEPENDENCIES = ("torch>=2.2", "numpy>=1.24", "pytest>=7.4", "pyyaml>=6.0", "pydantic>=2.5",
                        "matplotlib>=3.7")


def _test_functions(folder: Path) -> list[str]:
    """Names of the public checks: top-level ``test_*`` functions of checks/test_*.py."""
    names = []
    for path in sorted(folder.glob("test_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                names.append(node.name)
    return names


def _plain(value):
    """30.0 -> 30: the course file as an author writes it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def student_course(cfg, released: dict[str, dict[str, bytes]]) -> str:
    """The student course file (YAML, loadable by autograder.config): per assignment its id,
    folder, files, limits, the tests students may see now (points, visibility) and the public
    checks. No thresholds; tests not yet visible are left out, names and points alike."""
    import yaml

    assignments = []
    for a in cfg.assignments:
        if a.folder not in released:
            continue
        visible = {name: {"points": _plain(t.points), "visibility": t.visibility}
                   for name, t in a.tests.items() if t.visibility == "visible"}
        later = len(a.tests) - len(visible)
        if not visible:
            raise ReleaseError(f"{a.id}: no test is visible before the due date; the student course file "
                               "needs at least one")
        checks_dir = cfg.solution_dir(a) / "checks"
        entry = {"id": a.id, "folder": a.folder, "files": list(a.files),
                 "limits": {k: _plain(v) for k, v in a.limits.model_dump().items()}, "tests": visible,
                 "checks": _test_functions(checks_dir) if checks_dir.is_dir() else []}
        if later:
            entry["tests_after_due_date"] = later
        assignments.append(entry)
    head = ("# The course as students see it, written by `autograder release --student-bundle`.\n"
            "# Tests shown only after the due date are counted, not named; no thresholds.\n")
    return head + yaml.safe_dump({"course": cfg.course.course, "assignments": assignments},
                                 sort_keys=False, allow_unicode=True)


def _allowed(root: Path, patterns) -> dict[str, Path]:
    found = {}
    for pattern in patterns:
        matches = sorted(root.glob(pattern))
        if not matches:
            raise ReleaseError(f"{root / pattern}: missing (listed for the student package)")
        found.update({m.relative_to(root).as_posix(): m for m in matches if m.is_file()})
    return found


def pyproject(name: str, version: str, description: str, dependencies, setuptools: str, scripts: bool = True) -> str:
    """A distribution's pyproject.toml (the student package's; the Gradescope zip's kit):
    ``setuptools`` is its [tool.setuptools...] tables, which say what the distribution holds."""
    deps = "".join(f'    "{d}",\n' for d in dependencies)
    script = '\n[project.scripts]\nautograder = "autograder.cli:main"\n' if scripts else ""
    return f'''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
description = "{description}"
requires-python = ">=3.10"
dependencies = [
{deps}]
{script}
{setuptools}'''


def _student_pyproject() -> str:
    return pyproject(STUDENT_DIST, STUDENT_VERSION,
                     "The checker and the data of the generative-AI course, for students (no hidden tests).",
                     STUDENT_DEPENDENCIES, f'''[tool.setuptools]
packages = ["autograder", "autograder.sandbox", "autograder.sandbox.containment", "autograder.grading",
            "autograder.grading.judge", "kitdata"]

[tool.setuptools.package-data]
autograder = ["{COURSE_FILE}"]
kitdata = ["*.npz", "{STUDENT_MARKER}"]
''')


def _stage_package(cfg, build: Path, course: str) -> None:
    """The build folder of the student distribution: pyproject.toml and the allow-listed files."""
    engine = Path(autograder.__file__).resolve().parent
    import kitdata

    data = Path(kitdata.__file__).resolve().parent
    (build / "pyproject.toml").write_text(_student_pyproject(), encoding="utf-8")
    for package, root, patterns in (("autograder", engine, STUDENT_ENGINE), ("kitdata", data, STUDENT_KITDATA)):
        for rel, path in _allowed(root, patterns).items():
            target = build / package / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    (build / "autograder" / COURSE_FILE).write_text(course, encoding="utf-8")
    (build / "kitdata" / STUDENT_MARKER).write_text(
        "This kitdata is the students' copy: training splits only; the held-out split is the grader's.\n",
        encoding="utf-8")


def student_bundle(cfg, out: Path) -> list[str]:
    """Write the student bundle into ``out`` (created; must be empty or absent):

        out/assignments/<folder>/    the released assignments (as `autograder release` writes them)
        out/course.yml               the student course file (also inside the wheel)
        out/<dist>-<version>-py3-none-any.whl   the student package, built by pip from a generated
                                     build folder (removed afterwards)
        out/INSTALL.md               the install line and the check command

    Returns one line per file written."""
    import subprocess
    import sys
    import tempfile

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ReleaseError(f"{out}: not empty (the bundle is written into an empty or new folder)")
    out.mkdir(parents=True, exist_ok=True)
    released = {a.folder: render_assignment(cfg.solution_dir(a))
                for a in cfg.assignments if cfg.solution_dir(a).is_dir()}
    lines = []
    for folder, content in released.items():
        for rel, data in content.items():
            target = out / "assignments" / folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        lines.append(f"wrote: assignments/{folder}/ ({len(content)} files)")
    course = student_course(cfg, released)
    (out / COURSE_FILE).write_text(course, encoding="utf-8")
    lines.append(f"wrote: {COURSE_FILE}")
    with tempfile.TemporaryDirectory(prefix="student-build-") as tmp:
        build = Path(tmp) / "src"
        build.mkdir()
        _stage_package(cfg, build, course)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                   "--quiet", "--wheel-dir", str(Path(tmp) / "dist"), str(build)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise ReleaseError("building the student package failed: "
                               + " | ".join((done.stderr or done.stdout).strip().splitlines()[-5:]))
        wheels = sorted((Path(tmp) / "dist").glob("*.whl"))
        if len(wheels) != 1:
            raise ReleaseError(f"building the student package made {len(wheels)} wheels, expected 1")
        wheel = out / wheels[0].name
        wheel.write_bytes(wheels[0].read_bytes())
    lines.append(f"wrote: {wheel.name}")
    first = next(iter(released), "NN_name")
    (out / "INSTALL.md").write_text(
        f"# {cfg.course.course}: what you install\n\n"
        "Install the checker and the course data (Python 3.10+, PyTorch is pulled from the package index):\n\n"
        f"    pip install {wheel.name}\n\n"
        "Without an NVIDIA GPU (Linux or Windows), install PyTorch's CPU build first: it leaves out\n"
        "the CUDA libraries, several GB (macOS wheels are CPU/MPS builds already):\n\n"
        "    pip install torch --index-url https://download.pytorch.org/whl/cpu\n"
        f"    pip install {wheel.name}\n\n"
        "Then, from this folder (the one holding `assignments/`):\n\n"
        f"    autograder check assignments/{first}\n\n"
        "or, inside an assignment's folder (any name: a zip download's `NN_name-main` works too),\n"
        "`autograder check .`\n\n"
        "It runs the public checks on your work in a sandbox, with one torch thread, and writes the\n"
        "feedback pictures into the folder's `feedback/`. `autograder list` shows the tests and points.\n",
        encoding="utf-8")
    lines.append("wrote: INSTALL.md")
    return lines
