"""`autograder export`: the kit packaged for the platforms where courses already grade.

One module per platform:

- ``gradescope``: the autograder zip Gradescope builds its image from (setup.sh,
  run_autograder, the kit with ONE assignment's hidden suite), and the code that runs
  inside that image for every submission;
- ``github``: the GitHub Actions workflow for students' repositories (GitHub Classroom),
  and the step that turns a grading into the job summary and Classroom's points.

What each writes holds one assignment's hidden suite at most, never a solution; the
students' side (the workflow, the artifacts) holds no hidden file at all.
"""


class ExportError(Exception):
    """The package cannot be built (a suite that imports a solution, a bad --out...); one line."""
