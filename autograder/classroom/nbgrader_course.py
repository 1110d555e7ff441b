"""An nbgrader course directory, used as it is: its source/, submitted/, gradebook and feedback/.

The instructor's path (docs/INSTRUCTORS.md, "An nbgrader course"):

    autograder release --nbgrader-source COURSE        source/<id>/<name>.ipynb, the reference notebooks
    nbgrader generate_assignment <id>                  nbgrader's own student version (release/<id>/)
    nbgrader release_assignment / collect <id>         the exchange: submitted/<student>/<id>/
    autograder grade-batch --nbgrader COURSE --assignment <id>

Grading reuses the batch (one sandboxed grading per student, grades.csv, the gradebook
export of autograder.classroom.gradebook): each student's ``submitted/<student>/<id>/`` is copied
(autograder.sandbox.submission.copy: no links, size caps) into a staging folder of one folder per
student, the batch runs on it with the course's ``gradebook.db``, and each student's
``feedback.md`` and pictures are then put where nbgrader's ``feedback/<student>/<id>/``
expects them. A notebook submission is graded from its graded cells (autograder.grading.notebook),
a ``.py`` submission as it is.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from autograder import escape
from autograder.classroom.batch import NOT_STUDENTS, report_folder
from autograder.sandbox.submission import SubmissionError, copy

FEEDBACK_FILES = ("feedback.md",)
PICTURES = (".png", ".jpg", ".svg")


def write_source(cfg, course: Path) -> list[str]:
    """Write ``course/source/<id>/``: the reference notebook of each module, and the released
    assignment's other files (public checks, figures), not the ``.py`` skeletons (in a folder
    holding both, the ``.py`` would be graded). Returns one line per folder."""
    from autograder.authoring import notebook_build, release

    import nbformat

    lines = []
    for assignment in cfg.assignments:
        solution = cfg.solution_dir(assignment)
        if not solution.is_dir():
            continue
        target = Path(course) / "source" / assignment.id
        modules = [m for m in assignment.files if m in notebook_build.modules(solution)]
        released = release.render_assignment(solution)
        skip = set(assignment.files) | {str(Path(m).with_suffix(".ipynb")) for m in modules}
        for rel, data in released.items():
            if rel not in skip:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                (target / rel).write_bytes(data)
        for module in modules:
            target.mkdir(parents=True, exist_ok=True)
            text = nbformat.writes(notebook_build.reference(solution, module)) + "\n"
            (target / Path(module).with_suffix(".ipynb")).write_text(text, encoding="utf-8")
        lines.append(f"wrote: {target} ({', '.join(Path(m).stem + '.ipynb' for m in modules)} and "
                     f"{len(released) - len(skip & released.keys())} released file(s))")
    return lines


def _stage(submitted: Path, assignment_id: str, staging: Path) -> dict[str, str]:
    """Copy each student's submission into ``staging/<student>``; the refused, with why."""
    refused = {}
    for student in sorted(p for p in submitted.iterdir() if p.name not in NOT_STUDENTS):
        folder = student / assignment_id
        if student.is_symlink() or not student.is_dir() or not folder.is_dir():
            continue  # nothing submitted for this assignment (nbgrader keeps a folder per student)
        try:
            copy(folder, staging / student.name)
        except SubmissionError as error:
            shutil.rmtree(staging / student.name, ignore_errors=True)
            refused[student.name] = str(error)
    return refused


def _place_feedback(out: Path, course: Path, assignment_id: str, students: list[str]) -> tuple[int, dict[str, str]]:
    """Copy each student's feedback into nbgrader's place; (how many placed, {student: why not})."""
    placed, failed = 0, {}
    for student in students:
        report = report_folder(out, student)
        if not (report / "feedback.md").is_file():
            continue
        try:
            target = course / "feedback" / student / assignment_id
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted(report.iterdir()):
                if path.is_file() and (path.name in FEEDBACK_FILES or path.suffix.lower() in PICTURES):
                    shutil.copyfile(path, target / path.name)
            placed += 1
        except OSError as error:  # one student's folder (a file in its place, a full disk) is theirs alone
            failed[student] = f"{type(error).__name__}: {error.strerror or error}"
    return placed, failed


def grade_batch(cfg, args, batch) -> tuple[int, dict[str, str]]:
    """``autograder grade-batch --nbgrader COURSE --assignment ID``: ``batch`` is the ordinary
    batch command, run on a staging copy of ``COURSE/submitted/*/ID/``. Returns its exit code
    and the students whose feedback could not be placed, with why."""
    course = Path(args.nbgrader).resolve()
    assignment = cfg.get(args.assignment)
    submitted = course / "submitted"
    if not submitted.is_dir():
        raise SubmissionError(f"{submitted}: no such folder (is {course} an nbgrader course? "
                              f"'nbgrader collect {assignment.id}' fills it)")
    staging = Path(tempfile.mkdtemp(prefix=f"nbgrader-{assignment.id}-"))
    try:
        refused = _stage(submitted, assignment.id, staging)
        students = sorted(p.name for p in staging.iterdir())
        if not students and not refused:
            raise SubmissionError(f"{submitted}: no student has a folder {assignment.id}/ to grade")
        args.nbgrader, args.root = None, staging
        args.refused = refused  # rows of their own in grades.csv
        args.gradebook = args.gradebook or course / "gradebook.db"  # nbgrader's default database
        args.out = args.out or course / "autograder" / assignment.id
        code = batch(cfg, args)
        placed, failed = _place_feedback(args.out, course, assignment.id, students)
        print(f"nbgrader feedback: {placed} student(s) in {course / 'feedback'}/<student>/{assignment.id}/")
        for student, why in failed.items():
            print(f"nbgrader feedback not placed for {escape.student_name(student)}: {why}", file=sys.stderr)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return code, failed
