"""What an instructor sees after grading a class, on the example course.

One class of eight, graded once by ``grade-batch`` as an instructor would: the reference, a
partial submission, the untouched skeleton, a syntax error, an endless loop, a memory hog,
a disguised copy of the partial one (names changed, comments added) and a folder that is a
link. Each test reads one output against what the instructor should see: the terminal table,
``grades.csv``, ``similar.csv``, nbgrader's gradebook (created by nbgrader itself and read
back through its API, with a partial re-grade), ``results.json``, ``junit.xml`` and
``feedback.md``.
"""

from __future__ import annotations

import ast
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import junitparser
import pytest

from autograder import config as config_module
from autograder.authoring import release
from tests.example_course import EXAMPLE, GOOD, cli, replace_function

KIT = Path(__file__).resolve().parent.parent

PARTIAL = replace_function("normalise", "return (x / x.sum(dim=-1, keepdim=True)).squeeze()")  # wrong at batch 1
DISGUISED = (PARTIAL.replace("def normalise(x", "def normalise(batch").replace("(x / x.sum(", "(batch / batch.sum(")
             .replace('"""2 x, same shape and dtype."""', '"""Twice the input."""\n    # multiply by two')
             .replace("import torch", "import torch  # tensors\n\n\n# my own work"))
HOG = replace_function("double", """
    hoard = []
    for _ in range(80):  # 8 GB, 100 MB at a time
        hoard.append(torch.ones(100 * 2**20, dtype=torch.uint8))
    return 2 * x
""")
CLASS = {
    "alice": GOOD,
    "bob": PARTIAL,
    "carol": None,                                   # the released skeleton
    "dave": "def double(x:::\n" + GOOD,              # syntax error
    "erin": replace_function("double", "while True:\n    pass"),
    "frank": HOG,
    "grace": DISGUISED,
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The course (the example's, with test_normalise visible), the class, its outputs."""
    tmp = tmp_path_factory.mktemp("instructor")
    course = tmp / "course"
    shutil.copytree(EXAMPLE, course)
    yml = course / "grading.yml"
    yml.write_text(yml.read_text().replace("test_normalise: {points: 40, visibility: hidden}",
                                           "test_normalise: {points: 40, visibility: visible}"))
    skeleton = release.render_assignment(course / "solutions" / "01_mini")["mini.py"].decode()
    (course / "assignments" / "01_mini").mkdir(parents=True)
    (course / "assignments" / "01_mini" / "mini.py").write_text(skeleton)
    root = tmp / "class"
    for name, source in CLASS.items():
        (root / name).mkdir(parents=True)
        (root / name / "mini.py").write_text(skeleton if source is None else source)
    (root / "heidi").symlink_to(root / "alice")

    # a gradebook as nbgrader itself makes one: `nbgrader db student add` in a course folder
    nbgrader_course = tmp / "nbgrader"
    nbgrader_course.mkdir()
    (nbgrader_course / "nbgrader_config.py").write_text(f"c = get_config()\nc.CourseDirectory.root = {str(nbgrader_course)!r}\n")
    made = subprocess.run([sys.executable, "-m", "nbgrader", "db", "student", "add", "alice", "--first-name", "Alice"],
                          cwd=nbgrader_course, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    database = nbgrader_course / "gradebook.db"
    assert database.is_file()

    out = tmp / "grades"
    run = cli("--config", str(yml), "grade-batch", str(root), "--assignment", "mini", "--jobs", "2",
              "--out", str(out), "--gradebook", str(database), timeout=600)
    assert run.returncode == 4, run.stderr   # heidi, a link, is refused: a row of her own, not an error
    return {"course": course, "config": yml, "root": root, "out": out, "run": run, "database": database,
            "nbgrader": nbgrader_course}


def _rows(graded) -> dict[str, dict]:
    return {r["student"]: r for r in csv.DictReader((graded["out"] / "grades.csv").open())}


def _results(graded, student: str) -> dict:
    return json.loads((graded["out"] / "students" / student / "results.json").read_text())


# 1. partial credit is neither passed nor failed ------------------------------------------

def test_partial_credit_shows_as_partial_everywhere(graded):
    bob = {t["name"]: t for t in _results(graded, "bob")["tests"]}["test_normalise"]
    assert bob["score"] == 20 and bob["max_score"] == 40
    assert bob["status"] == "failed"  # Gradescope: anything short of full marks fails...
    assert bob["output"].startswith("20 of 40 points")  # ...with the points in the message
    assert {t["name"]: t for t in _results(graded, "bob")["tests"]}["test_double"]["status"] == "passed"

    junit = junitparser.JUnitXml.fromfile(str(graded["out"] / "students" / "bob" / "junit.xml"))
    cases = {case.name: case for suite in junit for case in suite}
    assert not cases["test_normalise"].is_passed
    assert "20 of 40 points" in cases["test_normalise"].result[0].message
    assert cases["test_double"].is_passed

    feedback = (graded["out"] / "students" / "bob" / "feedback.md").read_text()
    line = next(line for line in feedback.splitlines() if "`test_normalise`" in line)
    assert "partial" in line and "20 / 40" in line
    assert "passed" in next(line for line in feedback.splitlines() if "`test_double`" in line)

    run = cli("--config", str(graded["config"]), "grade", str(graded["root"] / "bob"), "--assignment", "mini")
    assert re.search(r"PART\s+test_normalise\s+20 / 40", run.stdout), run.stdout
    assert re.search(r"ok\s+test_double", run.stdout), run.stdout


# 2. a status an instructor can filter on ---------------------------------------------------

def test_grades_csv_has_one_word_statuses_and_a_reason(graded):
    rows = _rows(graded)
    assert list(next(csv.reader((graded["out"] / "grades.csv").open())))[:5] == \
        ["student", "score", "max_score", "status", "reason"]
    statuses = {name: row["status"] for name, row in rows.items()}
    assert statuses == {"alice": "graded", "bob": "graded", "carol": "not-started", "dave": "import-error",
                        "erin": "timeout", "frank": "memory", "grace": "graded", "heidi": "refused"}
    assert rows["alice"]["score"] == "100" and rows["alice"]["reason"] == ""
    assert rows["bob"]["score"] == "80" and rows["carol"]["score"] == "0"
    assert rows["carol"]["reason"].startswith("not started")   # the released skeleton, untouched
    assert "SyntaxError" in rows["dave"]["reason"]
    assert "did not finish within" in rows["erin"]["reason"]
    assert "memory" in rows["frank"]["reason"]
    assert "symbolic link" in rows["heidi"]["reason"]
    assert all("\n" not in row["reason"] for row in rows.values())
    # the timeout and the memory hog cost their test only
    assert rows["erin"]["test_double"] == "0" and rows["erin"]["test_normalise"] == "40"
    assert rows["frank"]["test_double"] == "0" and rows["frank"]["test_normalise"] == "40"

    table = graded["run"].stdout
    for name, status in statuses.items():
        assert re.search(rf"^{name}\s.*\b{re.escape(status)}\b", table, re.M), table


# 3. the gradebook: grades final, and a partial re-grade touches only its tests --------------

def _gradebook(graded) -> dict[str, dict[str, tuple]]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['database']}") as gradebook:
        return {student: {name: (g.auto_score, g.needs_manual_grade)
                          for name in ("test_double", "test_normalise", "test_device")
                          for g in [gradebook.find_grade(name, "mini", "mini", student)]}
                for student in ("alice", "bob", "erin")}


def test_gradebook_holds_final_grades_and_survives_a_partial_regrade(graded):
    before = _gradebook(graded)
    assert before["alice"] == {"test_double": (40, False), "test_normalise": (40, False), "test_device": (20, False)}
    assert before["bob"]["test_normalise"] == (20, False)
    assert "SAWarning" not in graded["run"].stderr and "Warning" not in graded["run"].stdout

    # erin fixes her loop; the instructor re-grades test_double only
    (graded["root"] / "erin" / "mini.py").write_text(GOOD)
    run = cli("--config", str(graded["config"]), "grade-batch", str(graded["root"]), "--assignment", "mini",
              "--tests", "test_double", "--jobs", "2", "--out", str(graded["out"].parent / "regrade"),
              "--gradebook", str(graded["database"]), timeout=600)
    assert run.returncode == 4, run.stderr
    after = _gradebook(graded)
    assert after["erin"]["test_double"] == (40, False)
    assert after["erin"]["test_normalise"] == before["erin"]["test_normalise"] == (40, False)
    assert after["alice"] == before["alice"] and after["bob"] == before["bob"]

    export = subprocess.run([sys.executable, "-m", "nbgrader", "export", "--to", "grades.csv"], cwd=graded["nbgrader"],
                            capture_output=True, text=True)
    assert export.returncode == 0, export.stderr
    exported = {r["student_id"]: r for r in csv.DictReader((graded["nbgrader"] / "grades.csv").open())}
    assert float(exported["alice"]["score"]) == 100 and float(exported["erin"]["score"]) == 100
    assert float(exported["bob"]["score"]) == 80


# 4. similar submissions are pointed out --------------------------------------------------

def test_similar_csv_points_at_the_disguised_copy(graded):
    pairs = list(csv.DictReader((graded["out"] / "similar.csv").open()))
    flagged = {frozenset((p["student_a"], p["student_b"])): p for p in pairs}
    assert frozenset(("bob", "grace")) in flagged, pairs
    copy = flagged[frozenset(("bob", "grace"))]
    assert float(copy["similarity"]) == 1.0 and "stripped" in copy["grounds"] and "mini.py" in copy["lines_a"]
    # the untouched skeleton and the correct submission are no one's copy here
    assert all("carol" not in pair for pair in flagged), pairs
    assert "not a verdict" in graded["run"].stdout


def test_winnowing_scores(tmp_path):
    from autograder.classroom.similarity import fingerprint, similar_pairs

    base = fingerprint("skeleton", {"m.py": GOOD})
    same = fingerprint("a", {"m.py": PARTIAL}, raw=PARTIAL.encode())
    copy = fingerprint("b", {"m.py": PARTIAL}, raw=PARTIAL.encode())
    other = fingerprint("c", {"m.py": GOOD + "\n\ndef extra(values):\n    total = 0\n    for v in values:\n"
                                          "        total = total + v * v\n    return total / len(values)\n"})
    pairs = similar_pairs([same, copy, other], base)
    assert [(p.a, p.b, p.grounds) for p in pairs] == [("a", "b", "identical files")]


# 5. messages name the student's functions, never the suite's --------------------------------

def test_fault_messages_name_no_probe(graded):
    erin = {t["name"]: t for t in _results(graded, "erin")["tests"]}["test_double"]["output"]
    assert erin.startswith("0 of 40 points: your code did not finish within"), erin
    frank = {t["name"]: t for t in _results(graded, "frank")["tests"]}["test_double"]["output"]
    assert "your code used more than" in frank, frank


MESSAGE_CALLS = {"fails", "credit", "note", "expect_tensor", "expect_close", "expect_same", "expect_meta",
                 "expect_structure", "score_checks", "output_problems", "expect_finite"}


def _message_words(suite: Path) -> list[tuple[str, int, str]]:
    """Every word of the string literals a suite passes to the helpers that fail a test or
    write feedback, with the file and line (probe names given to worker.call are skipped)."""
    found = []
    for path in sorted(suite.glob("test_*.py")):
        for call in ast.walk(ast.parse(path.read_text())):
            if not isinstance(call, ast.Call):
                continue
            func = call.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in MESSAGE_CALLS:
                continue
            probe_names = {id(c.args[0]) for c in ast.walk(call) if isinstance(c, ast.Call) and c.args
                           and getattr(c.func, "attr", "") == "call"}
            for node in ast.walk(call):
                if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in probe_names:
                    found += [(path.name, call.lineno, word) for word in re.findall(r"\w+", node.value)]
    return found


COURSE = config_module.load(KIT / "grading.yml")


@pytest.mark.parametrize("assignment", COURSE.assignments, ids=[a.id for a in COURSE.assignments])
def test_suite_messages_name_no_internal_helper(assignment):
    suite = COURSE.suite_dir(assignment)
    probes = {node.name for node in ast.parse((suite / "probes.py").read_text()).body
              if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")}
    solution = COURSE.solution_dir(assignment)
    student_terms = set(re.findall(r"\w+", (solution / "handout.md").read_text()))
    for module in solution.glob("*.py"):
        student_terms |= set(re.findall(r"\w+", module.read_text()))
    internal = probes - student_terms
    named = [(file, line, word) for file, line, word in _message_words(suite)
             if word in internal or word.startswith("ref_") or word == "probes"]
    assert named == [], "student-visible messages that name the suite's own helpers"
