"""An nbgrader course directory, used as it is: its source/, submitted/, gradebook and feedback/.

The instructor's path (docs/INSTRUCTORS.md, "An nbgrader course"):

    autograder release --nbgrader-source COURSE        source/<id>/<name>.ipynb, the reference notebooks
    nbgrader generate_assignment <id>                  nbgrader's own student version (release/<id>/)
    nbgrader release_assignment / collect <id>         the exchange: submitted/<student>/<id>/
    autograder grade-batch --nbgrader COURSE --assignment <id>

Grading reuses the batch (one sandboxed grading per student, grades.csv, the gradebook
export of autograder.classroom.gradebook): each student's ``submitted/<student>/<id>/`` is copied
(autograder.sandbox.submission.copy: no links, size caps) into a staging folder of one folder per
student, the batch runs on it with the course's ``gradebook.db`` (the scores, each
submission's timestamp from nbgrader's ``timestamp.txt``, the late penalty), and each graded
student gets ``autograded/<student>/<id>/`` as nbgrader's own autograder would leave it, for
nbgrader's feedback commands:

    nbgrader generate_feedback <id>      feedback/<student>/<id>/<id>.html from autograded/
    nbgrader release_feedback <id>       into the exchange; students: nbgrader fetch_feedback <id>

``autograded/<student>/<id>/`` holds ``<id>.ipynb``: the kit's feedback as its first cell
(feedback.md, with the pictures embedded as cell attachments, so the HTML carries them), then
the code cells the student handed in (outputs cleared, nbgrader's cell metadata dropped: the
gradebook's cells are the kit's tests); and the submission's ``timestamp.txt`` and
``submission_secret.txt`` (release_feedback and fetch_feedback find the feedback by them),
``feedback.md`` and the pictures. A student's old ``feedback/<student>/<id>/`` is removed, so
that generate_feedback makes it again from the new grading. A notebook submission is graded
from its graded cells (autograder.grading.notebook), a ``.py`` submission as it is.
"""

from __future__ import annotations

import base64
import re
import shutil
import sys
import tempfile
from pathlib import Path

from autograder import escape
from autograder.classroom.batch import NOT_STUDENTS, RECORDS, read_record, report_folder, result_from_dict
from autograder.grading.reports import STUDENT_VISIBLE
from autograder.sandbox.submission import SubmissionError, copy, read_regular

FEEDBACK_FILES = ("feedback.md",)
PICTURES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}
NBGRADER_FILES = ("timestamp.txt", "submission_secret.txt")   # what release/fetch_feedback match on
MAX_PICTURE_BYTES = 8 << 20
MAX_CODE_BYTES = 4 << 20
_PICTURE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


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


def _submitted_code(folder: Path, assignment) -> list:
    """The code the student handed in, as notebook cells: the code cells of their notebook
    (outputs cleared, no nbgrader metadata) or their ``.py`` module. Markdown is left out: it
    would be rendered as HTML."""
    import nbformat

    cells = []
    for module in assignment.files:
        notebook = read_regular(folder / Path(module).with_suffix(".ipynb"), MAX_CODE_BYTES)
        source = read_regular(folder / module, MAX_CODE_BYTES)
        if source is not None:
            cells.append(nbformat.v4.new_markdown_cell(f"### `{escape.markdown(module)}`"))
            cells.append(nbformat.v4.new_code_cell(source.decode("utf-8", "replace")))
        elif notebook is not None:
            try:
                read = nbformat.reads(notebook.decode("utf-8", "replace"), as_version=4)
                codes = [c.get("source", "") for c in read.get("cells", []) if isinstance(c, dict)
                         and c.get("cell_type") == "code"]
            except Exception:  # a notebook the grading refused never gets here; any other oddity: no code shown
                continue
            cells.append(nbformat.v4.new_markdown_cell(f"### `{escape.markdown(Path(module).stem)}.ipynb`"))
            cells += [nbformat.v4.new_code_cell("".join(code) if isinstance(code, list) else str(code))
                      for code in codes if isinstance(code, (str, list))]
    return cells


def feedback_notebook(feedback: str, pictures: dict[str, bytes], code_cells: list):
    """The notebook generate_feedback turns into HTML: the kit's feedback (markdown; each
    ``![name](name)`` shown from the cell's attachments), then the student's code."""
    import nbformat

    attachments = {}
    lines = []
    for line in feedback.splitlines():
        match = re.fullmatch(r"!\[([^\]]*)\]\(([^)]*)\)", line.strip())
        if match and match.group(2) in pictures:
            name = match.group(2)
            attachments[name] = {PICTURES[Path(name).suffix.lower()]: base64.b64encode(pictures[name]).decode("ascii")}
            line = f"![{name}](attachment:{name})"
        elif match:
            continue  # a picture that is not there: no broken image
        lines.append(line)
    first = nbformat.v4.new_markdown_cell("\n".join(lines))
    if attachments:
        first["attachments"] = attachments
    cells = [first]
    if code_cells:
        cells.append(nbformat.v4.new_markdown_cell("## The code you handed in\n\nAs the grader read it "
                                                    "(not run again for this page)."))
        cells += code_cells
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _write_autograded(out: Path, course: Path, assignment, staging: Path,
                      students: list[str]) -> tuple[int, dict[str, str]]:
    """Write each graded student's ``autograded/<student>/<id>/`` (see the module's text) from
    their staged copy and reports, and remove their stale ``feedback/<student>/<id>/``; (how
    many written, {student: why not})."""
    import nbformat

    written, failed = 0, {}
    for student in students:
        record = read_record(Path(out) / RECORDS, student)
        report = report_folder(out, student)
        feedback = read_regular(report / "feedback.md", MAX_CODE_BYTES)
        if record is None or not record.get("result") or feedback is None:
            continue  # refused, or a grader error: nothing for nbgrader to show
        try:
            result = result_from_dict(record["result"])
            names = [a for t in result.tests if t.visibility in STUDENT_VISIBLE for a in t.artifacts
                     if _PICTURE_NAME.match(a) and Path(a).suffix.lower() in PICTURES]
            pictures = {name: data for name in dict.fromkeys(names)
                        if (data := read_regular(report / name, MAX_PICTURE_BYTES)) is not None}
            submitted = staging / student  # the copy that was graded: regular files only
            notebook = feedback_notebook(feedback.decode("utf-8", "replace"), pictures,
                                         _submitted_code(submitted, assignment))
            target = course / "autograded" / student / assignment.id
            _remove(target)
            target.mkdir(parents=True)
            (target / f"{assignment.id}.ipynb").write_text(nbformat.writes(notebook) + "\n", encoding="utf-8")
            (target / "feedback.md").write_bytes(feedback)
            for name, data in pictures.items():
                (target / name).write_bytes(data)
            for name in NBGRADER_FILES:
                data = read_regular(submitted / name, 1 << 16)
                if data is not None:
                    (target / name).write_bytes(data)
            _remove(course / "feedback" / student / assignment.id)
            written += 1
        except (OSError, ValueError) as error:  # one student's folder (a file in its place, a full disk) is theirs alone
            failed[student] = f"{type(error).__name__}: {getattr(error, 'strerror', None) or error}"
    return written, failed


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
        written, failed = _write_autograded(args.out, course, assignment, staging, students)
        print(f"nbgrader: {written} student(s) in {course / 'autograded'}/<student>/{assignment.id}/; "
              f"their feedback pages: nbgrader generate_feedback {assignment.id} && "
              f"nbgrader release_feedback {assignment.id}")
        for student, why in failed.items():
            print(f"nbgrader feedback not written for {escape.student_name(student)}: {why}", file=sys.stderr)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return code, failed
