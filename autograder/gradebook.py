"""Export a batch's grades into nbgrader's gradebook (its SQLite database).

Each assignment becomes an nbgrader assignment with one notebook named after it, and each
test a grade cell worth its points; each student's test scores become the cells'
``auto_score``. An instructor can then use nbgrader's own tools (formgrader, `nbgrader
export`) on grades the kit produced.
"""

from __future__ import annotations

from pathlib import Path

from autograder.config import Assignment
from autograder.runner import Result


def export(database: Path, assignment: Assignment, results: dict[str, Result]) -> None:
    """Write ``results`` (student id -> Result) into the gradebook at ``database``."""
    from nbgrader.api import Gradebook

    database.parent.mkdir(parents=True, exist_ok=True)
    with Gradebook(f"sqlite:///{database.resolve()}") as gradebook:
        gradebook.update_or_create_assignment(assignment.id)
        gradebook.update_or_create_notebook(assignment.id, assignment.id)
        for name, test in assignment.tests.items():
            gradebook.update_or_create_grade_cell(name, assignment.id, assignment.id,
                                                  max_score=test.points, cell_type="code")
        for student, result in results.items():
            gradebook.update_or_create_student(student)
            gradebook.update_or_create_submission(assignment.id, student)
            scores = {t.name: t.score for t in result.tests}
            for name in assignment.tests:
                grade = gradebook.find_grade(name, assignment.id, assignment.id, student)
                grade.auto_score = scores.get(name, 0.0)
            gradebook.db.commit()
