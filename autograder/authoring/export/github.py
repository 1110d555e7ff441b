"""GitHub Classroom: the workflow for students' repositories (`autograder export github`), and
the step inside it that turns a grading into the job summary and Classroom's points.

The workflow (``DIR/.github/workflows/classroom.yml``, for the assignment's template repository)
has two jobs on every push:

- ``public-checks``: ``autograder check`` from the student package (a wheel the template
  repository carries in ``.autograder/``); no secret, nothing hidden: its log is the student's.
- ``grade`` (named "Autograding Tests", the check run Classroom's reporter looks for): checks
  out the student's repository into ``submission/`` and, beside it (never inside it), the kit
  with its hidden suites from the instructor's private repository into ``kit/``, with a token
  held in a repository or organisation secret; grades with ``autograder grade`` (its output
  into a file, not the log); then ``python -m autograder.authoring.export.github`` writes the score table
  of the tests a student may see into ``$GITHUB_STEP_SUMMARY``, copies the student-visible
  reports (feedback.md, junit.xml, their pictures) for the artifact, and hands the points to
  ``classroom-resources/autograding-grading-reporter`` in the form it reads: an environment
  variable ``<RUNNER>_RESULTS`` holding base64 JSON ``{"version": 1, "status", "max_score",
  "tests": [{"name", "status": "pass"|"fail"|"error", "score", "message", ...}]}``, of which
  Classroom records the sum of ``score`` out of ``max_score``.

Tests not yet visible are left out of the summary, the artifact and the points, as from every
report a student sees; the instructor's full grades come from ``autograder grade-batch`` on the
students' repositories. What this cannot prevent: a student can edit the workflow in their own
repository, and such a workflow can read whatever the token can (docs/INSTRUCTORS.md,
"GitHub Classroom").
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import sys
from pathlib import Path

from autograder.escape import markdown, one_line
from autograder.authoring.export import CPU_TORCH_INDEX, ExportError

WORKFLOW = ".github/workflows/classroom.yml"
WHEELS = ".autograder"       # the student package's wheel, in the template repository
RUNNER = "grade"             # the reporter's runner id: it reads GRADE_RESULTS
VISIBLE = ("visible",)       # as reports.STUDENT_VISIBLE

TEMPLATE = """\
# Written by `autograder export github --assignment {assignment}`: GitHub Classroom autograding
# for the template repository of {assignment}. The hidden suite is fetched from {kit_repo}
# with the secret {secret} (a read-only token; set it as a repository or organisation secret,
# never commit it). Students see the public checks, the score table of the visible tests
# and their feedback; tests not yet visible are left out of all three.
name: Autograding Tests
on:
  push:
  workflow_dispatch:
permissions:
  contents: read
  checks: write
  actions: read
env:
  ASSIGNMENT: {assignment}
  KIT_REPOSITORY: {kit_repo}
  KIT_REF: {kit_ref}
  # where torch comes from: PyTorch's CPU-only index (GitHub's runners have no GPU; a few hundred
  # MB instead of several GB); empty for the package index's CUDA builds (export --cuda-torch)
  TORCH_INDEX_URL: "{torch_index}"
  PIP_PROGRESS_BAR: "off"
jobs:
  public-checks:
    name: Public checks
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - name: Check out the submission
        uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip                                # torch's wheels kept between pushes
          cache-dependency-path: {wheels}/*.whl
      - name: Install the student package
        run: |
          if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" torch; fi
          pip install {wheels}/*.whl
      - name: Public checks
        run: autograder check . --assignment "$ASSIGNMENT" --feedback feedback
  grade:
    name: Autograding Tests
    if: github.actor != 'github-classroom[bot]'
    runs-on: ubuntu-latest
    timeout-minutes: 30
    env:
      KIT: kit
      SUBMISSION: submission
      REPORTS: reports
      STUDENT_REPORTS: feedback
    steps:
      - name: Check out the submission
        uses: actions/checkout@v4
        with:
          path: submission
      - name: Fetch the kit and its hidden suite from the instructor's private repository
        uses: actions/checkout@v4
        with:
          repository: ${{{{ env.KIT_REPOSITORY }}}}
          ref: ${{{{ env.KIT_REF }}}}
          token: ${{{{ secrets.{secret} }}}}
          path: kit
          persist-credentials: false
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
          cache: pip                                # torch's wheels kept between pushes
          cache-dependency-path: kit/pyproject.toml
      - name: Install the kit
        id: install
        run: |
          if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" torch torchvision; fi
          pip install -e "$KIT"
      - name: Grade
        id: grade
        run: |
          mkdir -p "$REPORTS"
          # into a file, not the log: the log is the student's, and its total counts hidden tests
          code=0
          python -m autograder.cli --config "$KIT/grading.yml" grade "$SUBMISSION" --assignment "$ASSIGNMENT" \\
            --out "$REPORTS" --quiet > "$REPORTS/grade.log" 2>&1 || code=$?
          echo "exit-code=$code" >> "$GITHUB_OUTPUT"
      - name: Score table and points
        id: points
        run: |
          python -m autograder.authoring.export.github --reports "$REPORTS" --assignment "$ASSIGNMENT" \\
            --student-reports "$STUDENT_REPORTS" --summary "$GITHUB_STEP_SUMMARY" --output "$GITHUB_OUTPUT"
      - name: Upload the reports a student may see
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: feedback
          path: feedback/
          if-no-files-found: ignore
      - name: Autograding Reporter
        uses: classroom-resources/autograding-grading-reporter@v1
        env:
          GRADE_RESULTS: ${{{{ steps.points.outputs.result }}}}
        with:
          runners: grade
"""


# --------------------------------------------------------------------------- writing the workflow


def workflow(assignment_id: str, kit_repo: str, kit_ref: str = "main", secret: str = "KIT_TOKEN",
             torch_index: str = CPU_TORCH_INDEX) -> str:
    """The workflow's text for one assignment."""
    for name, value, pattern in (("--kit-repo", kit_repo, r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+"),
                                 ("--kit-ref", kit_ref, r"[A-Za-z0-9_./-]+"), ("--secret", secret, r"[A-Za-z_][A-Za-z0-9_]*"),
                                 ("--torch-index", torch_index, r"[^\s\"'$`\\]*")):
        if not re.fullmatch(pattern, value):  # each goes into YAML and shell: refuse anything odd
            raise ExportError(f"{name}: {value!r} is not a valid value")
    return TEMPLATE.format(assignment=assignment_id, kit_repo=kit_repo, kit_ref=kit_ref, secret=secret,
                           torch_index=torch_index, wheels=WHEELS)


def export(cfg, assignment, out: Path, kit_repo: str = "OWNER/KIT", kit_ref: str = "main",
           secret: str = "KIT_TOKEN", torch_index: str = CPU_TORCH_INDEX, student_wheel: Path | None = None) -> list[str]:
    """Write the template repository: the released assignment (skeleton, notebook, handout and
    its figures, public checks: what a student starts from, as ``autograder release`` writes it),
    ``out/.github/workflows/classroom.yml`` and the student wheel into ``out/.autograder/`` if
    given; return what was written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: not a folder")
    if student_wheel is not None and not (Path(student_wheel).is_file() and str(student_wheel).endswith(".whl")):
        raise ExportError(f"--student-wheel: {student_wheel} is not a wheel (autograder release --student-bundle "
                          "writes one)")
    solution = cfg.solution_dir(assignment)
    if solution.is_dir():
        from autograder.authoring.release import render_assignment

        released = render_assignment(solution)
        for rel, data in released.items():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(data)
        lines = [f"wrote: {out}/ the released assignment ({len(released)} files: the starter code and its checks)"]
    else:
        lines = [f"no solutions/{assignment.folder} here: the template holds no starter code"]
    target = out / WORKFLOW
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(workflow(assignment.id, kit_repo, kit_ref, secret, torch_index), encoding="utf-8")
    lines.append(f"wrote: {target}")
    if student_wheel is not None:
        (out / WHEELS).mkdir(exist_ok=True)
        shutil.copyfile(student_wheel, out / WHEELS / Path(student_wheel).name)
        lines.append(f"wrote: {out / WHEELS / Path(student_wheel).name}")
    lines.append(f"the template repository also needs {WHEELS}/ holding the student wheel "
                 "(autograder release --student-bundle), and the secret " + secret)
    return lines


# --------------------------------------------------------------------------- inside the workflow


def _refused(reports: Path) -> str:
    """Why ``autograder grade`` wrote no results (a refused submission): its one-line error."""
    log = reports / "grade.log"
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    errors = [line for line in text.splitlines() if line.startswith("autograder: error: ")]
    return errors[-1].removeprefix("autograder: error: ") if errors else "the grader wrote no results"


def classroom(results: dict | None, reason: str = "") -> dict:
    """The reporter's payload from the kit's results.json: the tests a student may see now."""
    if results is None:
        return {"version": 1, "status": "error", "max_score": 0,
                "tests": [{"name": "grading", "status": "error", "score": 0, "message": one_line(reason),
                           "test_code": "", "filename": "", "line_no": 0, "execution_time": "0s"}]}
    shown = [t for t in results["tests"] if t.get("visibility", "visible") in VISIBLE]
    tests = [{"name": t["name"], "status": "pass" if t.get("status") == "passed" else "fail",
              "score": t["score"], "message": one_line(t.get("output", "")), "test_code": "", "filename": "",
              "line_no": 0, "execution_time": "0s"} for t in shown]
    status = "pass" if all(t["status"] == "pass" for t in tests) else "fail"
    return {"version": 1, "status": status, "max_score": sum(t["max_score"] for t in shown), "tests": tests}


def summary(assignment_id: str, payload: dict) -> str:
    """The score table for $GITHUB_STEP_SUMMARY (markdown)."""
    score = sum(t["score"] for t in payload["tests"])
    lines = [f"## {markdown(assignment_id)}: {score:g} / {payload['max_score']:g} points", ""]
    if payload["status"] == "error":
        return "\n".join(lines + [f"Not graded: {markdown(payload['tests'][0]['message'])}", ""])
    lines += ["| | test | points | what the grader saw |", "|---|---|---|---|"]
    for t in payload["tests"]:
        mark = "✅" if t["status"] == "pass" else "❌"
        lines.append(f"| {mark} | `{t['name']}` | {t['score']:g} | {markdown(t['message'])} |")
    lines += ["", "Tests shown after the due date are not counted here. Your feedback (and its pictures) "
              "is the `feedback` artifact of this run.", ""]
    return "\n".join(lines)


def student_reports(reports: Path, into: Path) -> list[str]:
    """Copy what a student may see (feedback.md, junit.xml and the pictures feedback.md shows)."""
    into.mkdir(parents=True, exist_ok=True)
    copied = []
    feedback = reports / "feedback.md"
    pictures = re.findall(r"^!\[[^\]]*\]\(([^)/]+)\)$", feedback.read_text(encoding="utf-8"), re.M) \
        if feedback.is_file() else []
    for name in ["feedback.md", "junit.xml", *pictures]:
        source = reports / name
        if source.is_file() and not source.is_symlink():
            shutil.copyfile(source, into / name)
            copied.append(name)
    return copied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.authoring.export.github",
                                     description="the job summary, the student's reports and Classroom's points")
    parser.add_argument("--reports", type=Path, required=True, help="autograder grade's --out")
    parser.add_argument("--assignment", required=True)
    parser.add_argument("--student-reports", type=Path, required=True, help="where the artifact's files go")
    parser.add_argument("--summary", type=Path, default=None, help="$GITHUB_STEP_SUMMARY")
    parser.add_argument("--output", type=Path, default=None, help="$GITHUB_OUTPUT (result=base64 payload)")
    args = parser.parse_args(argv)
    found = args.reports / "results.json"
    results = json.loads(found.read_text(encoding="utf-8")) if found.is_file() else None
    payload = classroom(results, "" if results else _refused(args.reports))
    student_reports(args.reports, args.student_reports)
    table = summary(args.assignment, payload)
    print(table)
    if args.summary:
        with open(args.summary, "a", encoding="utf-8") as out:
            out.write(table + "\n")
    encoded = base64.b64encode(json.dumps(payload).encode("utf-8")).decode("ascii")
    if args.output:
        with open(args.output, "a", encoding="utf-8") as out:
            out.write(f"result={encoded}\n")
    print(f"Points {sum(t['score'] for t in payload['tests']):g}/{payload['max_score']:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
