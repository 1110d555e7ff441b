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


# Where torch comes from in the images the exports build: PyTorch's CPU-only wheels, since neither
# Gradescope's nor GitHub's default machines have a GPU (a few hundred MB instead of CUDA's
# several GB); `autograder export ... --cuda-torch` keeps the package index's default build.
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
