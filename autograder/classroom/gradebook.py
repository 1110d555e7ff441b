"""Record a batch's grades in nbgrader's gradebook (its SQLite database).

Each assignment becomes an nbgrader assignment with one notebook named after it, and each
test a grade cell worth its points. A student's test scores are written the way nbgrader's
own autograder writes a grade cell's (``nbgrader.preprocessors.SaveAutoGrades``): the
``auto_score``, and ``needs_manual_grade`` only where a grader has already put a manual
score or there is no automatic one. formgrader and ``nbgrader export`` then show them as
final. Only the tests a grading ran are written: re-grading one test (``--tests``) leaves
every other grade as it was.
"""

from __future__ import annotations

from pathlib import Path

from autograder.config import Assignment
from autograder.grading.runner import Result


def export(database: Path, assignment: Assignment, results: dict[str, Result]) -> dict[str, str]:
    """Write ``results`` (student id -> Result) into the gradebook at ``database``. Returns the
    students it could not write, with why (one line each): one student's row never costs the
    others theirs."""
    from nbgrader.api import Gradebook

    database.parent.mkdir(parents=True, exist_ok=True)
    failed = {}
    with Gradebook(f"sqlite:///{database.resolve()}") as gradebook:
        session = gradebook.db
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
                _write_student(gradebook, assignment, student, result)
                session.commit()
            except Exception as error:  # e.g. a name SQLite cannot store (not UTF-8)
                session.rollback()
                failed[student] = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return failed


def _write_student(gradebook, assignment: Assignment, student: str, result: Result) -> None:
    # nbgrader builds a submission's notebooks and grades from relationships; letting
    # SQLAlchemy flush half-built objects on the way is what printed SAWarnings
    with gradebook.db.no_autoflush:
        gradebook.update_or_create_student(student)
        gradebook.update_or_create_submission(assignment.id, student)
    for test in result.tests:
        if test.name not in assignment.tests:
            continue
        grade = gradebook.find_grade(test.name, assignment.id, assignment.id, student)
        grade.auto_score = test.score
        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
