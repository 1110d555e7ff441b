"""`autograder check` as a student uses it, on the engine's example course: a folder
of any name (a zip download's ``01_mini-main``, or one told by its files, or ``--assignment``),
feedback pictures written into the folder and announced, one torch thread; and the student
course file `autograder release --student-bundle` writes (visible tests only, no thresholds)."""
from __future__ import annotations

import shutil

import yaml

from autograder import config as config_module
from autograder.authoring.release import render_assignment, student_course
from tests.example_course import EXAMPLE, GOOD, cli

PICTURE_CHECK = '''

def test_draws_a_picture(worker, artifacts):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3])
    artifacts.figure("curve.png", fig)
'''


def folder_with_checks(root, name, *, picture=False):
    folder = root / name
    folder.mkdir()
    (folder / "mini.py").write_text(GOOD)
    shutil.copytree(EXAMPLE / "checks", folder / "checks")
    if picture:
        with open(folder / "checks" / "test_public.py", "a") as handle:
            handle.write(PICTURE_CHECK)
    return folder


def check(*args, cwd=None):
    return cli("--config", str(EXAMPLE / "grading.yml"), "check", *args, cwd=cwd)


def test_check_a_download_named_folder_and_its_pictures(tmp_path):
    folder = folder_with_checks(tmp_path, "01_mini-main", picture=True)
    run = check(folder.name, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed, 0 failed" in run.stdout
    assert "public checks of mini" in run.stderr and "1 torch thread" in run.stderr
    assert (folder / "feedback" / "curve.png").is_file()
    assert f"feedback pictures in {folder.name}/feedback: curve.png" in run.stdout


def test_check_a_folder_told_by_its_files_leaves_no_empty_feedback(tmp_path):
    folder = folder_with_checks(tmp_path, "my work")
    run = check(str(folder))
    assert run.returncode == 0 and "1 passed, 0 failed" in run.stdout, run.stdout + run.stderr
    assert not (folder / "feedback").exists()


def test_check_a_folder_that_tells_nothing(tmp_path):
    """Refused in one line before any worker starts; --assignment names the assignment."""
    folder = folder_with_checks(tmp_path, "anything")
    (folder / "mini.py").rename(folder / "other.py")
    run = check(str(folder))
    assert run.returncode == 2 and "not an assignment folder" in run.stderr and "--assignment" in run.stderr
    assert run.stderr.strip().count("\n") == 0, run.stderr
    run = check(str(folder), "--assignment", "nope")
    assert run.returncode == 2 and "no assignment with id 'nope'" in run.stderr


def test_student_course_file_shows_visible_tests_only(tmp_path):
    course_dir = tmp_path / "course"
    shutil.copytree(EXAMPLE, course_dir)
    shutil.copytree(EXAMPLE / "checks", course_dir / "solutions" / "01_mini" / "checks")
    cfg = config_module.load(course_dir / "grading.yml")
    released = {a.folder: render_assignment(cfg.solution_dir(a)) for a in cfg.assignments}
    text = student_course(cfg, released)
    assert "thresholds:" not in text and "test_normalise" not in text and "test_device" not in text
    raw = yaml.safe_load(text)
    (entry,) = raw["assignments"]
    assert entry["tests"] == {"test_double": {"points": 40, "visibility": "visible"}}
    assert entry["tests_after_due_date"] == 2 and entry["checks"] == ["test_double_of_ones"]
    path = tmp_path / "course.yml"
    path.write_text(text)
    course = config_module.load(path)
    assert course.get("mini").max_points == 40
    run = cli("--config", str(path), "list")
    assert run.returncode == 0 and "(and 2 test(s) shown only after the due date)" in run.stdout
