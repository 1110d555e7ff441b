"""Notebook handouts and notebook submissions.

* every released notebook is valid nbformat 4, its cells carry nbgrader's metadata, and the
  module built from it is the released skeleton, statement for statement (so it scores what
  the skeleton scores: 0); the reference notebook's module is the reference ``.py``, for every
  assignment (so it scores exactly what the ``.py`` scores; one real grading below shows it);
* extraction takes graded cells only, never exploration cells, runs nothing, and refuses a
  bad notebook with one line; magics in a graded cell make that cell's functions raise;
* explore.py's cells (training in the kernel) sit after the graded cells, tagged, never extracted;
* every reference notebook runs top to bottom under nbclient: every public check passes and the
  exploration cells draw a picture (slow: ~15 s each).

Gradings are few on purpose (CI time): two short ones (three tests each) compare a notebook
with the ``.py``; benchmarks/notebook_grading.py grades every assignment in full and times it.
"""
from __future__ import annotations

import ast
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import config as config_module
from autograder.grading import notebook, runner
from autograder.authoring import notebook_build
from autograder.authoring.release import render_assignment
from autograder.sandbox.submission import SubmissionError

KIT = Path(__file__).resolve().parents[1]
CFG = config_module.load(KIT / "grading.yml")
ASSIGNMENTS = [a for a in CFG.assignments if CFG.solution_dir(a).is_dir()]
ids = pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=[a.id for a in ASSIGNMENTS])
VAE = CFG.get("vae")


def stem(assignment) -> str:
    return Path(assignment.files[0]).stem


def reference_bytes(assignment) -> bytes:
    nb = notebook_build.reference(CFG.solution_dir(assignment), assignment.files[0])
    return nbformat.writes(nb).encode()


def same_code(a: str, b: str) -> bool:
    return ast.dump(ast.parse(a)) == ast.dump(ast.parse(b))


def code_cell(source: str, **nbgrader) -> dict:
    meta = {"nbgrader": {"grade": False, "grade_id": "c" + hashlib.sha1(source.encode()).hexdigest()[:12], "locked": False,
                         "schema_version": 3, "solution": False, "task": False, **nbgrader}} if nbgrader else {}
    return {"cell_type": "code", "execution_count": None, "metadata": meta, "outputs": [], "source": source}


def notebook_bytes(*cells, version: int = 4) -> bytes:
    return json.dumps({"cells": list(cells), "metadata": {}, "nbformat": version, "nbformat_minor": 5}).encode()


# --- the released notebooks ------------------------------------------------------------------

@ids
def test_released_notebook_is_valid_and_its_module_is_the_skeleton(assignment):
    released = render_assignment(CFG.solution_dir(assignment))
    name = stem(assignment)
    nb = nbformat.reads(released[f"{name}.ipynb"].decode(), as_version=4)
    nbformat.validate(nb)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert graded and all(c.metadata.nbgrader.schema_version == 3 and not c.metadata.nbgrader.grade for c in graded)
    assert len({c.metadata.nbgrader.grade_id for c in nb.cells if "nbgrader" in c.metadata}) == \
        sum("nbgrader" in c.metadata for c in nb.cells)  # nbgrader needs unique grade ids
    assert all(notebook_build.EXPLORATION in c.metadata.get("tags", []) for c in nb.cells
               if c.cell_type == "code" and "nbgrader" not in c.metadata)
    built = notebook.extract(released[f"{name}.ipynb"], f"{name}.ipynb")
    assert same_code(built.source, released[f"{name}.py"].decode())
    assert not built.notices
    # the committed file is this one (release --check compares bytes; this names the notebook)
    assert (KIT / "assignments" / assignment.folder / f"{name}.ipynb").read_bytes() == released[f"{name}.ipynb"]


@ids
def test_reference_notebook_module_is_the_reference_module(assignment):
    built = notebook.extract(reference_bytes(assignment), "x.ipynb")
    reference = (CFG.solution_dir(assignment) / assignment.files[0]).read_text()
    assert same_code(built.source, reference)
    # negative: dropping one graded cell is no longer the reference
    nb = json.loads(reference_bytes(assignment))
    graded = [c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("solution")]
    nb["cells"].remove(graded[-1])
    assert not same_code(notebook.extract(json.dumps(nb).encode(), "x.ipynb").source, reference)


@ids
def test_exploration_cells_train_in_the_kernel_and_are_never_graded(assignment):
    """explore.py's cells come after the graded cells, tagged and marked, before the checks
    cell; they use the module's names without importing it, read training data only, and the
    module built from the notebook holds none of them. explore.py is not released as a file."""
    folder = CFG.solution_dir(assignment)
    name = stem(assignment)
    training = notebook_build.explore_cells(folder / notebook_build.EXPLORE)
    assert training, f"{folder}/explore.py has no cells"
    nb = nbformat.reads(reference_bytes(assignment).decode(), as_version=4)
    tagged = [c.source for c in nb.cells if notebook_build.EXPLORATION in c.metadata.get("tags", [])]
    assert tagged[:len(training)] == training and "autograder.cli" in tagged[len(training)]
    last_graded = max(i for i, c in enumerate(nb.cells) if "nbgrader" in c.metadata)
    assert nb.cells.index(next(c for c in nb.cells if c.source == training[0])) > last_graded
    for source in tagged:
        assert source.startswith(notebook_build.EXPLORATION_LINE + "\n")
        imported = {a.name.split(".")[0] for node in ast.walk(ast.parse(source))
                    if isinstance(node, (ast.Import, ast.ImportFrom))
                    for a in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])}
        assert name not in imported and "heldout" not in source
    built = notebook.extract(reference_bytes(assignment), f"{name}.ipynb")
    assert same_code(built.source, (folder / assignment.files[0]).read_text())   # none of explore.py
    assert notebook_build.EXPLORE not in render_assignment(folder)


def test_explore_cells_are_split_at_percent_lines_and_marked(tmp_path):
    path = tmp_path / "explore.py"
    path.write_text("# header, not a cell\n# %%\nx = 1\n\n# %% second\n"
                    f"{notebook_build.EXPLORATION_LINE}\ny = 2\n# %%\n\n")
    assert notebook_build.explore_cells(path) == [f"{notebook_build.EXPLORATION_LINE}\nx = 1",
                                                  f"{notebook_build.EXPLORATION_LINE}\ny = 2"]
    # negative: no separator is no cell, and no file is no cell (the notebook then has the checks only)
    path.write_text("x = 1\n")
    assert notebook_build.explore_cells(path) == [] == notebook_build.explore_cells(tmp_path / "none.py")


def test_release_is_byte_stable():
    folder = CFG.solution_dir(VAE)
    assert render_assignment(folder)["vae.ipynb"] == render_assignment(folder)["vae.ipynb"]


# --- extraction ------------------------------------------------------------------------------

GIVEN = code_cell("import math\n", locked=True)
GRADED = code_cell("def area(r):\n    return math.pi * r * r\n", solution=True)
SCRATCH = code_cell("open('ran.txt', 'w').write('x')\nimport time\ntime.sleep(3600)\n")


def test_graded_cells_only_in_order_and_nothing_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    built = notebook.extract(notebook_bytes(GIVEN, SCRATCH, GRADED), "geo.ipynb")
    assert built.cells == [1, 3] and "sleep" not in built.source and not (tmp_path / "ran.txt").exists()
    scope = {}
    exec(compile(built.source, "geo.py", "exec"), scope)
    assert scope["area"](1.0) == pytest.approx(3.14159, abs=1e-4)
    # negative: the same scratch cell marked as graded is taken (so the rule above is what drops it)
    marked = code_cell(SCRATCH["source"], solution=True)
    assert "sleep" in notebook.extract(notebook_bytes(GIVEN, marked, GRADED), "geo.ipynb").source


def test_nbgraders_test_cells_are_not_taken():
    tests = code_cell("assert area(1) == 3\n", grade=True, locked=True, points=1)
    assert "assert" not in notebook.extract(notebook_bytes(GIVEN, GRADED, tests), "geo.ipynb").source


@pytest.mark.parametrize("line", ["!pip install torch", "%time area(2)", "x = !ls", "area?"])
def test_a_magic_in_a_graded_cell_makes_its_functions_raise_one_line(line):
    cell = code_cell(f"def area(r):\n    return math.pi * r * r\n{line}\n", solution=True)
    other = code_cell("def double(x):\n    return 2 * x\n", solution=True)
    built = notebook.extract(notebook_bytes(GIVEN, cell, other), "geo.ipynb")
    scope = {}
    exec(compile(built.source, "geo.py", "exec"), scope)
    with pytest.raises(RuntimeError, match=r"geo.ipynb cell 2 holds an IPython magic") as raised:
        scope["area"](1.0)
    assert "\n" not in str(raised.value)
    assert scope["double"](2) == 4 and len(built.notices) == 1
    # negative: a plain syntax error is no magic: left in, the import fails as the .py would
    broken = code_cell("def area(r):\n    return (r\n", solution=True)
    assert notebook.extract(notebook_bytes(GIVEN, broken), "geo.ipynb").notices == []


def test_stripped_metadata_falls_back_on_the_skeletons_names_and_says_so():
    plain = [dict(c, metadata={}) for c in (GIVEN, SCRATCH, GRADED)]
    built = notebook.extract(notebook_bytes(*plain), "geo.ipynb", names={"area"})
    assert built.cells == [1, 3] and "sleep" not in built.source
    assert len(built.notices) == 1 and "metadata is missing" in built.notices[0]
    with pytest.raises(SubmissionError, match=r"^geo.ipynb: no graded cells .*defines volume"):
        notebook.extract(notebook_bytes(*plain), "geo.ipynb", names={"volume"})


@pytest.mark.parametrize("data, message", [
    (b"def f(): pass\n", r"^vae.ipynb: not a Jupyter notebook \(not JSON"),
    (b"[" * 200_000, r"^vae.ipynb: not a Jupyter notebook \(not JSON"),
    (b'{"nbformat": 4, "cells": {"a": 1}}', r"^vae.ipynb: not a Jupyter notebook \(its 'cells'"),
    (notebook_bytes(GIVEN, GRADED, version=3), r"^vae.ipynb: a version 3 notebook; the grader reads version 4"),
    (b'{"cells": []}', r"^vae.ipynb: not a Jupyter notebook \(no 'nbformat' field\)"),
    (notebook_bytes(GIVEN, SCRATCH), r"^vae.ipynb: no graded cells"),
], ids=["python", "deep-nesting", "cells-not-a-list", "nbformat-3", "no-nbformat", "graded-cells-deleted"])
def test_bad_notebooks_are_one_line_refusals(data, message):
    with pytest.raises(SubmissionError, match=message) as raised:
        notebook.extract(data, "vae.ipynb", names={"VAE"})
    assert "\n" not in str(raised.value)


HOSTILE_CELLS = {
    # the parser's own limits: 100,000 unary minus signs (MemoryError), 200,000 attributes (RecursionError)
    "unary-minus": ("x = " + "-" * 100_000 + "1\n", r"^vae.ipynb cell 2: nested too deeply for the grader to read"),
    "attribute-chain": ("x = a" + ".b" * 200_000 + "\n", r"^vae.ipynb cell 2: nested too deeply for the grader to read"),
    "huge": ("x = 1\n" * 400_000, r"^vae.ipynb cell 2: \d+ characters, more than the grader reads in one cell"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CELLS))
def test_cells_that_break_the_parser_are_that_students_refusal(case):
    """A graded cell the parser cannot take is one line naming the cell, never a crash of the
    grading (or, through the similarity step, of the class's batch)."""
    text, message = HOSTILE_CELLS[case]
    data = notebook_bytes(GIVEN, code_cell(text, solution=True, grade_id="vae-hostile"))
    with pytest.raises(SubmissionError, match=message) as raised:
        notebook.extract(data, "vae.ipynb", names={"VAE"})
    assert "\n" not in str(raised.value)
    unmarked = notebook_bytes(code_cell(text))  # the fallback reads every cell that defines a function
    with pytest.raises(SubmissionError, match=message.replace("cell 2", "cell 1")):
        notebook.extract(unmarked, "vae.ipynb", names={"VAE"})


def test_too_many_cells_is_a_refusal():
    data = notebook_bytes(GIVEN, GRADED, *[code_cell("pass\n")] * 20_000)
    with pytest.raises(SubmissionError, match=r"^vae.ipynb: 20002 cells, more than the grader reads"):
        notebook.extract(data, "vae.ipynb", names={"VAE"})


@pytest.mark.parametrize("cell", [
    {"cell_type": "code", "source": ["def area(r):\n", 7, None], "metadata": {"nbgrader": {"solution": True}}},
    {"cell_type": "code", "source": 12, "metadata": {"nbgrader": "yes"}},
    {"cell_type": "code", "metadata": []},
    {"cell_type": ["code"], "source": "x", "metadata": {"nbgrader": {"solution": "true"}}},
])
def test_odd_cells_never_crash_the_extraction(cell):
    try:
        built = notebook.extract(notebook_bytes(cell), "vae.ipynb", names={"area"})
    except SubmissionError as refused:
        assert "\n" not in str(refused)
    else:
        assert isinstance(built.source, str)


def test_bad_notebooks_are_exit_2_not_3(tmp_path):
    """Through the command (no grading starts: the notebook is read first)."""
    (tmp_path / "vae.ipynb").write_bytes(b"{not json")
    done = subprocess.run([sys.executable, "-m", "autograder.cli", "grade", str(tmp_path / "vae.ipynb"),
                           "--assignment", "vae"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("autograder: error: vae.ipynb: not a Jupyter notebook")
    (tmp_path / "gan.ipynb").write_text("{}")
    wrong = subprocess.run([sys.executable, "-m", "autograder.cli", "grade", str(tmp_path / "gan.ipynb"),
                            "--assignment", "vae"], capture_output=True, text=True, cwd=tmp_path)
    assert wrong.returncode == 2 and "a notebook stands for one of them (vae.ipynb)" in wrong.stderr


def test_prepare_uses_the_notebook_only_in_place_of_the_module(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "vae.ipynb").write_bytes(reference_bytes(VAE))
    graded, notices = notebook.prepare(folder, ["vae.py"], tmp_path / "private")
    assert graded == tmp_path / "private" and (graded / "vae.py").is_file() and not notices
    (folder / "vae.py").write_text("# mine\n")
    graded, notices = notebook.prepare(folder, ["vae.py"], tmp_path / "private2")
    assert graded == folder and "graded vae.py; vae.ipynb beside it was not used" in notices[0]
    # named explicitly, the notebook wins over the .py beside it
    graded, _ = notebook.prepare(folder / "vae.ipynb", ["vae.py"], tmp_path / "private3")
    assert "# mine" not in (graded / "vae.py").read_text()
    # the released folder handed in whole, the work done in the notebook: the notebook counts
    skeleton = CFG.root / "assignments" / VAE.folder / "vae.py"
    shutil.copy(skeleton, folder / "vae.py")
    graded, notices = notebook.prepare(folder, ["vae.py"], tmp_path / "private4")
    assert graded == tmp_path / "private4" and "graded vae.ipynb, where more of the work is done" in notices[0]
    assert notebook.STUB not in (graded / "vae.py").read_text()
    # ... and the work done in the .py, the released notebook beside it: the .py counts
    (folder / "vae.py").write_bytes((CFG.solution_dir(VAE) / "vae.py").read_bytes())
    (folder / "vae.ipynb").write_bytes((CFG.root / "assignments" / VAE.folder / "vae.ipynb").read_bytes())
    graded, notices = notebook.prepare(folder, ["vae.py"], tmp_path / "private5")
    assert graded == folder and notices == []  # the untouched notebook: nothing to say on every check


# --- gradings (few: each is seconds of CI) ---------------------------------------------------

QUICK = ["test_shapes", "test_kl_divergence", "test_elbo_terms"]


def test_notebook_grades_as_the_module_and_exploration_never_runs(tmp_path):
    """The reference notebook, with exploration cells that would hang, exit or write a file,
    scores what the reference .py scores on the same tests; the released notebook scores 0."""
    nb = json.loads(reference_bytes(VAE))
    nb["cells"] += [code_cell("import time\ntime.sleep(3600)\n"), code_cell("!pip install torch\n"),
                    code_cell("raise SystemExit(1)\n")]
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "vae.ipynb").write_text(json.dumps(nb))
    from_notebook = runner.grade(CFG, VAE, tmp_path / "ref" / "vae.ipynb", only=QUICK)
    from_module = runner.grade(CFG, VAE, CFG.solution_dir(VAE), only=QUICK)
    assert not from_notebook.grader_errors and from_notebook.status == "graded"
    assert [(t.name, t.score) for t in from_notebook.tests] == [(t.name, t.score) for t in from_module.tests]
    assert from_notebook.score == sum(VAE.tests[n].points for n in QUICK)
    (tmp_path / "skel").mkdir()
    shutil.copy(KIT / "assignments" / VAE.folder / "vae.ipynb", tmp_path / "skel")
    skeleton = runner.grade(CFG, VAE, tmp_path / "skel", only=QUICK)
    assert skeleton.score == 0 and not skeleton.grader_errors


# --- every reference notebook runs under nbclient ------------------------------------------

# The budget is 60 s per notebook on 2 shared CPU cores; measured 12-17 s each, of which the
# cells of explore.py take 2-5 s and the checks cell 6-8 s (benchmarks/bench_notebooks.py
# --nbclient-only). nbclient's limit is per cell and generous, so that a loaded CI machine fails
# only a notebook that hangs.
CELL_SECONDS = 180


@ids
def test_reference_notebook_runs_top_to_bottom(assignment, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    # the kernel trains tiny models (explore.py): one thread, as the grader's worker runs, is
    # 3x faster for them on a loaded 2-core machine than torch's default of one per core
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    folder = tmp_path / assignment.folder
    for rel, data in render_assignment(CFG.solution_dir(assignment)).items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    name = stem(assignment)
    (folder / f"{name}.py").unlink()   # the notebook is the work
    (folder / f"{name}.ipynb").write_bytes(reference_bytes(assignment))
    nb = nbformat.reads(reference_bytes(assignment).decode(), as_version=4)
    NotebookClient(nb, timeout=CELL_SECONDS, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert re.search(r"\b[1-9]\d* passed, 0 failed", printed), printed[-800:]
    assert "internal error" not in printed and "grader error" not in printed.lower()
    # the exploration cells from explore.py trained the model in the kernel and drew it
    training = notebook_build.explore_cells(CFG.solution_dir(assignment) / notebook_build.EXPLORE)
    drawn = [c for c in nb.cells if c.source in training
             and any(o.output_type == "display_data" and "image/png" in o.get("data", {}) for o in c.outputs)]
    assert drawn, "no exploration cell of explore.py displayed a picture"


def test_notices_reach_the_students_feedback():
    from autograder.grading import reports
    from autograder.grading.runner import Result, TestResult

    notice = "vae.ipynb: its nbgrader cell metadata is missing (another editor removed it?)"
    result = Result("vae", "sub", [TestResult("test_shapes", 9.0, 9.0, "passed")], 1.0, 0, notices=[notice])
    assert notice.split(":")[1].strip()[:20] in reports.feedback_markdown(result)
    assert "metadata is missing" in reports.gradescope(result)["output"]
    quiet = Result("vae", "sub", [TestResult("test_shapes", 9.0, 9.0, "passed")], 1.0, 0)
    assert "metadata is missing" not in reports.feedback_markdown(quiet) + reports.gradescope(quiet)["output"]


def test_similarity_compares_notebooks_by_their_graded_code(tmp_path):
    """A notebook submission is fingerprinted from the module built from it, as its .py would
    be (before, every notebook counted as an empty file: all of them 'identical files')."""
    from autograder.classroom import similarity

    for name, data in (("ref", reference_bytes(VAE)),
                       ("released", (KIT / "assignments" / VAE.folder / "vae.ipynb").read_bytes())):
        (tmp_path / name).mkdir()
        (tmp_path / name / "vae.ipynb").write_bytes(data)
    ref, released = (similarity.read_submission(tmp_path / n, ["vae.py"]) for n in ("ref", "released"))
    module = similarity.read_submission(CFG.solution_dir(VAE), ["vae.py"])
    skeleton = similarity.read_submission(KIT / "assignments" / VAE.folder, ["vae.py"])
    assert ref.tokens == module.tokens and released.tokens == skeleton.tokens and ref.tokens != released.tokens
    assert similarity.similar_pairs([ref, released], base=skeleton) == []


def test_a_named_notebook_is_copied_alone(tmp_path):
    """``grade ~/Downloads/vae.ipynb``: the notebook is the submission, not its folder (which may
    hold links, large files, anything): only it is copied, never through a link."""
    folder = tmp_path / "downloads"
    folder.mkdir()
    named = folder / "vae.ipynb"
    named.write_bytes(notebook_bytes(GIVEN, GRADED))
    (folder / "elsewhere").symlink_to("/etc")
    with open(folder / "huge.bin", "wb") as huge:
        huge.truncate(200 * 2**20)  # sparse: its apparent size counts
    graded, _ = notebook.prepare(named, ["vae.py"], tmp_path / "private")
    assert sorted(p.name for p in graded.iterdir()) == ["vae.ipynb", "vae.py"]
    assert "def area(r)" in (graded / "vae.py").read_text()

    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "vae.ipynb").symlink_to(named)
    with pytest.raises(SubmissionError, match=r"vae.ipynb: is a symbolic link"):
        notebook.prepare(tmp_path / "links" / "vae.ipynb", ["vae.py"], tmp_path / "private2")
