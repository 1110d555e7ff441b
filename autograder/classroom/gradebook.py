"""Record a batch's grades in nbgrader's gradebook (its SQLite database).

Each assignment becomes an nbgrader assignment with one notebook named after it, and each
test a grade cell worth its points. A student's test scores are written the way nbgrader's
own autograder writes a grade cell's (``nbgrader.preprocessors.SaveAutoGrades``): the
``auto_score``, and ``needs_manual_grade`` only where a grader has already put a manual
score or there is no automatic one. formgrader and ``nbgrader export`` then show them as
final. Only the tests a grading ran are written: re-grading one test (``--tests``) leaves
every other grade as it was.

Lateness (``autograder.classroom.late``) goes where nbgrader keeps it: the assignment's due
date (when grading.yml sets one), each submission's timestamp and extension, and the late
penalty in points on the submitted notebook (``late_submission_penalty``), which nbgrader's
export, formgrader and feedback subtract from the raw score as they do for their own.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from autograder.config import Assignment
from autograder.grading.runner import Result


def _utc(text: str | None) -> datetime | None:
    """An ISO 8601 time as nbgrader stores one: naive, in UTC."""
    if not text:
        return None
    return datetime.fromisoformat(text).astimezone(timezone.utc).replace(tzinfo=None)


def export(database: Path, assignment: Assignment, results: dict[str, Result],
           late: dict[str, dict] | None = None) -> dict[str, str]:
    """Write ``results`` (student id -> Result) into the gradebook at ``database``, with each
    student's ``late`` entry (autograder.classroom.late.assess) where given. Returns the
    students it could not write, with why (one line each): one student's row never costs the
    others theirs."""
    from nbgrader.api import Gradebook

    database.parent.mkdir(parents=True, exist_ok=True)
    failed = {}
    with Gradebook(f"sqlite:///{database.resolve()}") as gradebook:
        session = gradebook.db
        if assignment.due is not None:
            gradebook.update_or_create_assignment(assignment.id, duedate=_utc(assignment.due.isoformat()))
        else:  # a due date set in nbgrader itself stays
            gradebook.update_or_create_assignment(assignment.id)
        gradebook.update_or_create_notebook(assignment.id, assignment.id)
        for name, test in assignment.tests.items():
            gradebook.update_or_create_grade_cell(name, assignment.id, assignment.id,
                                                  max_score=test.points, cell_type="code")
        for student, result in results.items():
            if not student.isprintable():  # a byte that is not UTF-8 reads as a lone surrogate: not printable
                failed[student] = "the name is not printable UTF-8 text, which a gradebook id must be"
                continue
            try:
                _write_student(gradebook, assignment, student, result, (late or {}).get(student))
                session.commit()
            except Exception as error:  # e.g. a name SQLite cannot store (not UTF-8)
                session.rollback()
                failed[student] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return failed


def _write_student(gradebook, assignment: Assignment, student: str, result: Result, late: dict | None) -> None:
    # nbgrader builds a submission's notebooks and grades from relationships; letting
    # SQLAlchemy flush half-built objects on the way is what printed SAWarnings
    fields = {}
    if late:
        fields["timestamp"] = _utc(late.get("submitted"))
        due = _utc(late.get("due"))
        if late.get("extended") and due is not None and assignment.due is not None:
            fields["extension"] = due - _utc(assignment.due.isoformat())  # one granted in nbgrader alone stays
    with gradebook.db.no_autoflush:
        gradebook.update_or_create_student(student)
        gradebook.update_or_create_submission(assignment.id, student, **fields)
    if late:
        notebook = gradebook.find_submission_notebook(assignment.id, assignment.id, student)
        notebook.late_submission_penalty = float(late.get("penalty_points") or 0.0)
    for test in result.tests:
        if test.name not in assignment.tests:
            continue
        grade = gradebook.find_grade(test.name, assignment.id, assignment.id, student)
        grade.auto_score = test.score
        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
