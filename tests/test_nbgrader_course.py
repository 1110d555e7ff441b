"""An nbgrader course, made and run by nbgrader's own CLI, graded by the kit.

The instructor writes the reference notebooks into source/ (`autograder release
--nbgrader-source`), nbgrader adds the students, generates and releases the assignment
through a local exchange; three students fetch it and submit: alice the notebook with her
code in its graded cells, bob a ``.py`` instead, carol a notebook that is not JSON any more;
nbgrader collects; `autograder grade-batch --nbgrader` grades them into the course's
gradebook.db and autograded/<student>/vae/; nbgrader's generate_feedback and release_feedback
turn that into feedback pages, and alice's fetch_feedback brings hers home, the kit's
feedback text and its picture inside. Three short tests per grading (one of them draws the
training curve) keep it ~60 s.
"""
from __future__ import annotations

import base64
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import config as config_module

KIT = Path(__file__).resolve().parents[1]
CFG = config_module.load(KIT / "grading.yml")
VAE = CFG.get("vae")
QUICK = ["test_shapes", "test_kl_divergence", "test_training_loop"]   # the last draws vae_loss.png
NBGRADER = shutil.which("nbgrader")
pytestmark = pytest.mark.skipif(NBGRADER is None, reason="nbgrader's command is not installed")


def run(command: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    return done


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbgrader")
    course, exchange = root / "course", root / "exchange"
    course.mkdir()
    exchange.mkdir()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "jupyter"), HOME=str(root))  # no user config
    (course / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'genai'\n"
        f"c.CourseDirectory.root = {str(course)!r}\n"
        f"c.Exchange.root = {str(exchange)!r}\n")
    nbgrader = [NBGRADER]
    autograder = [sys.executable, "-m", "autograder.cli", "--config", str(KIT / "grading.yml")]
    (root / "students.csv").write_text("id\nalice\nbob\ncarol\n")
    run(nbgrader + ["db", "student", "import", str(root / "students.csv")], course, env)
    run(autograder + ["release", "--nbgrader-source", str(course)], course, env)
    run(nbgrader + ["generate_assignment", "vae"], course, env)
    run(nbgrader + ["release_assignment", "vae"], course, env)
    exchange_args = ["--course", "genai", f"--Exchange.root={exchange}"]
    for student in ("alice", "bob", "carol"):
        home = root / student
        home.mkdir()
        run(nbgrader + ["fetch_assignment", "vae"] + exchange_args, home, env)
        work = home / "vae"
        released = json.loads((work / "vae.ipynb").read_text())
        if student == "alice":  # her code in the graded cells of nbgrader's student version
            reference = json.loads((course / "source" / "vae" / "vae.ipynb").read_text())
            answers = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in reference["cells"]
                       if c["metadata"].get("nbgrader", {}).get("solution")}
            for cell in released["cells"]:
                grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
                if grade_id in answers:
                    cell["source"] = answers[grade_id]
            (work / "vae.ipynb").write_text(json.dumps(released))
        elif student == "bob":  # prefers the module
            (work / "vae.ipynb").unlink()
            shutil.copy(CFG.solution_dir(VAE) / "vae.py", work / "vae.py")
        else:
            (work / "vae.ipynb").write_text("{ not a notebook any more")
        run(nbgrader + ["submit", "vae", f"--student={student}"] + exchange_args, home, env)
    run(nbgrader + ["collect", "vae"], course, env)
    graded = subprocess.run(autograder + ["grade-batch", "--nbgrader", str(course), "--assignment", "vae",
                                          "--tests", ",".join(QUICK)], cwd=course, env=env,
                            capture_output=True, text=True)
    # the feedback's way back, by nbgrader's own commands, as docs/INSTRUCTORS.md and docs/STUDENTS.md say
    run(nbgrader + ["generate_feedback", "vae"], course, env)
    run(nbgrader + ["release_feedback", "vae"], course, env)
    run(nbgrader + ["fetch_feedback", "vae"] + exchange_args, root / "alice", env)
    return course, graded


def test_nbgraders_layout_is_what_nbgrader_made(course):
    course, _ = course
    assert sorted(p.name for p in (course / "submitted").iterdir()) == ["alice", "bob", "carol"]
    assert (course / "submitted" / "alice" / "vae" / "vae.ipynb").is_file()
    assert (course / "submitted" / "bob" / "vae" / "vae.py").is_file()
    assert (course / "release" / "vae" / "vae.ipynb").is_file()


def test_grades_go_into_the_courses_gradebook(course):
    course, graded = course
    assert graded.returncode == 4, graded.stdout + graded.stderr   # a refused student (4) is not a grader error (3)
    from nbgrader.api import Gradebook

    full = sum(VAE.tests[name].points for name in QUICK)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s: gradebook.find_submission("vae", s).score for s in ("alice", "bob")}
        assert scores == {"alice": full, "bob": full}
        assert {s.id for s in gradebook.students} == {"alice", "bob", "carol"}
        with pytest.raises(Exception):  # carol's notebook was refused: no grade recorded for her
            gradebook.find_submission("vae", "carol")


def test_a_broken_notebook_is_a_refused_row_with_one_line(course):
    course, graded = course
    with open(course / "autograder" / "vae" / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert rows["carol"]["status"] == "refused"
    assert "vae.ipynb: not a Jupyter notebook" in rows["carol"]["reason"]
    assert rows["alice"]["status"] == rows["bob"]["status"] == "graded"


def test_feedback_where_nbgrader_expects_it(course):
    course, _ = course
    for student in ("alice", "bob"):
        autograded = course / "autograded" / student / "vae"
        assert (autograded / "vae.ipynb").is_file() and (autograded / "timestamp.txt").is_file()
        feedback = (course / "feedback" / student / "vae" / "feedback.md").read_text()   # generate_feedback's copy
        assert "# Feedback: vae" in feedback and "test_kl_divergence" in feedback
        assert (course / "feedback" / student / "vae" / "vae.html").is_file()
    assert not (course / "feedback" / "carol").exists() and not (course / "autograded" / "carol").exists()


def test_the_student_fetches_the_kits_feedback_with_its_picture(course):
    """nbgrader's round trip ends at alice: the page fetch_feedback brought her holds the kit's
    feedback (its table, the note of the training test) and the training curve, embedded."""
    course, _ = course
    pages = list((course.parent / "alice" / "vae" / "feedback").glob("*/vae.html"))
    assert len(pages) == 1, pages
    page = pages[0].read_text()
    assert "Feedback: vae" in page and "test_kl_divergence" in page and "held-out -ELBO" in page
    picture = (course / "autograder" / "vae" / "students" / "alice" / "vae_loss.png").read_bytes()
    assert "data:image/png;base64," + base64.b64encode(picture).decode() in page
    full = sum(VAE.tests[name].points for name in QUICK)
    assert f"vae (Score: {float(full)} / {float(VAE.max_points)})" in page   # nbgrader's heading, from the gradebook


def test_submission_times_reach_the_gradebook(course):
    course, _ = course
    from nbgrader.api import Gradebook
    from nbgrader.utils import parse_utc

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for student in ("alice", "bob"):
            written = (course / "submitted" / student / "vae" / "timestamp.txt").read_text()
            assert gradebook.find_submission("vae", student).timestamp == parse_utc(written)
    with open(course / "autograder" / "vae" / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert rows["alice"]["timestamp_source"] == "nbgrader" and rows["alice"]["submitted"]
