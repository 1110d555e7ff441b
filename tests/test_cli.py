"""The CLI end to end on the example course: reports, exit codes, batches, public checks."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import junitparser
import pytest

from tests.example_course import EXAMPLE, GOOD, cli
from tests.example_course import SUITE as SUITE_SOURCE

# Gradescope's results.json, field by field (Gradescope autograder specifications).
TEST_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["name", "score", "max_score"],
    "properties": {
        "score": {"type": "number"}, "max_score": {"type": "number"},
        "status": {"enum": ["passed", "failed"]}, "name": {"type": "string"},
        "name_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "number": {"type": "string"}, "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "extra_data": {"type": "object"},
    },
}
RESULTS_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["tests"],
    "properties": {
        "score": {"type": "number"}, "execution_time": {"type": "number"}, "output": {"type": "string"},
        "output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "test_output_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "test_name_format": {"enum": ["text", "html", "simple_format", "md", "ansi"]},
        "visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "stdout_visibility": {"enum": ["hidden", "after_due_date", "after_published", "visible"]},
        "extra_data": {"type": "object"}, "tests": {"type": "array", "items": TEST_SCHEMA},
        "leaderboard": {"type": "array"},
    },
}


def autograder(*args: str) -> subprocess.CompletedProcess:
    return cli("--config", str(EXAMPLE / "grading.yml"), *args, timeout=600)


def student(root: Path, name: str, source: str | None) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    if source is not None:
        (folder / "mini.py").write_text(source)
    return folder


def test_reports_of_a_graded_submission(tmp_path):
    submission = student(tmp_path, "alice", GOOD.replace("return 2 * x", "return 3 * x"))
    out = tmp_path / "out"
    run = autograder("grade", str(submission), "--assignment", "mini", "--out", str(out), "--fail-under", "100")
    assert run.returncode == 1, run.stderr  # graded, below --fail-under
    results = json.loads((out / "results.json").read_text())
    jsonschema.validate(results, RESULTS_SCHEMA)
    assert results["score"] == 60 == sum(t["score"] for t in results["tests"])
    assert [t["name"] for t in results["tests"]] == ["test_double", "test_normalise", "test_device"]
    assert [t["visibility"] for t in results["tests"]] == ["visible", "hidden", "after_due_date"]
    double = results["tests"][0]
    assert double["status"] == "failed" and double["max_score"] == 40 and double["output_format"] == "md"
    assert "double(x) is off by" in double["output"]

    xml = junitparser.JUnitXml.fromfile(str(out / "junit.xml"))
    cases = {case.name: case for suite in xml for case in suite}
    assert set(cases) == {"test_double"}  # junit.xml is what a student's CI shows: visible tests only
    assert not cases["test_double"].is_passed

    feedback = (out / "feedback.md").read_text()
    assert "test_double" in feedback and "double(x) is off by" in feedback
    assert "test_normalise" not in feedback  # hidden test: not shown to the student
    for line in SUITE_SOURCE.splitlines():  # no hidden test code
        if len(line.strip()) > 25:
            assert line.strip() not in feedback and line.strip() not in json.dumps(results)


def test_grading_is_deterministic(tmp_path):
    submission = student(tmp_path, "bob", GOOD)
    runs = []
    for out in (tmp_path / "first", tmp_path / "second"):
        assert autograder("grade", str(submission), "--assignment", "mini", "--seed", "7", "--out", str(out)).returncode == 0
        results = json.loads((out / "results.json").read_text())
        results.pop("execution_time")
        runs.append(results)
    assert runs[0] == runs[1] and runs[0]["score"] == 100


def test_batch_survives_broken_and_hanging_students(tmp_path):
    root = tmp_path / "class"
    student(root, "alice", GOOD)
    student(root, "bob", "def double(:\n")                      # syntax error
    student(root, "carol", "while True:\n    pass\n" + GOOD)    # hangs at import
    student(root, "dave", None)                                 # no mini.py
    (root / "notes.txt").write_text("not a student")
    out = tmp_path / "grades"
    run = autograder("grade-batch", str(root), "--assignment", "mini", "--jobs", "2", "--out", str(out),
                     "--gradebook", str(tmp_path / "gradebook.db"))
    assert run.returncode == 0, run.stderr
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert set(rows) == {"alice", "bob", "carol", "dave"}
    assert rows["alice"]["score"] == "100" and rows["alice"]["test_double"] == "40"
    assert rows["bob"]["score"] == rows["carol"]["score"] == rows["dave"]["score"] == "0"
    carol = json.loads((out / "students" / "carol" / "results.json").read_text())
    assert "did not finish within" in carol["tests"][0]["output"]
    assert "grading mini" in run.stderr  # the progress bar
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        assert gradebook.find_submission("mini", "alice").score == 100
        assert gradebook.find_submission("mini", "bob").score == 0
        assert gradebook.find_grade("test_double", "mini", "mini", "alice").max_score == 40


def test_grader_errors_exit_3(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(EXAMPLE, course)
    test_file = course / "suite" / "test_mini.py"
    test_file.write_text(test_file.read_text().replace('def test_device(worker):', 'def test_device(worker):\n    {}["oops"]'))
    run = subprocess.run([sys.executable, "-m", "autograder.cli", "--config", str(course / "grading.yml"), "grade",
                          str(course / "solutions" / "01_mini"), "--assignment", "mini"], capture_output=True, text=True)
    assert run.returncode == 3
    assert "KeyError" in run.stderr and "test_device" in run.stderr


@pytest.mark.parametrize("source, code, words", [
    (GOOD, 0, "1 passed, 0 failed"),
    (GOOD.replace("return 2 * x", "raise NotImplementedError"), 1, "NotImplementedError"),
], ids=["correct", "unimplemented"])
def test_public_checks(tmp_path, source, code, words):
    folder = student(tmp_path, "01_mini", source)
    shutil.copytree(EXAMPLE / "checks", folder / "checks")
    run = autograder("check", str(folder))
    assert run.returncode == code, run.stdout + run.stderr
    assert words in run.stdout


def test_a_reader_that_leaves_early_is_not_a_grader_error():
    """``autograder list | head -1``: the pipe closes under the writer; exit 0, nothing on stderr."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first line
    try:
        done = subprocess.run([sys.executable, "-m", "autograder.cli", "list"], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (0, "")


def test_the_student_packages_help_lists_the_students_commands_only(capsys):
    """The student package has no grade, grade-batch, release or export: its --help does not
    offer them (asked for anyway, main() says they are the instructor's)."""
    from autograder import cli as cli_module

    for student_package, listed in ((True, {"list", "check", "doctor"}),
                                    (False, {"list", "check", "doctor", "grade", "grade-batch", "release", "export"})):
        cli_module._parser(student_package=student_package).print_help()
        text = capsys.readouterr().out
        shown = set(re.findall(r"^ {4}([a-z-]+) ", text, re.M))
        assert shown == listed, text
    assert cli_module._parser(student_package=True).parse_args(["grade", ".", "--assignment", "vae"]).command == "grade"
