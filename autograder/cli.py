"""The ``autograder`` command.

    autograder list                                   the assignments, their tests and points
    autograder check ASSIGNMENT_DIR | NAME.ipynb      a student's public checks
    autograder grade SUBMISSION --assignment ID       grade one submission (or --all); a folder or NAME.ipynb
    autograder grade-batch ROOT --assignment ID       grade a class, one folder per student
    autograder grade-batch --nbgrader COURSE_DIR --assignment ID    an nbgrader course's submissions
    autograder release [--check]                      regenerate assignments/ from solutions/
    autograder release --student-bundle DIR           what students install: assignments, checker, no answers
    autograder release --nbgrader-source COURSE_DIR   reference notebooks into an nbgrader course's source/
    autograder doctor                                 which containment layers hold on this machine
    autograder export gradescope|github --assignment ID --out PATH   a Gradescope zip, or a student repo's workflow
    autograder export grades --format canvas|moodle|csv --out FILE BATCH_OUT [--roster ROSTER.csv]   an LMS's gradebook import

Exit codes: 0 graded (or checks passed); 1 graded but below --fail-under (or a check
failed); 2 bad usage, bad grading.yml or unreadable submission; 3 the grader itself failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import traceback
from pathlib import Path

from autograder import config as config_module
from autograder import escape
from autograder.grading import reports, runner
from autograder.config import ConfigError
from autograder.sandbox.containment import IsolationError
from autograder.escape import block
from autograder.grading.notebook import is_notebook
from autograder.grading.runner import Result, TestResult
from autograder.sandbox.submission import SubmissionError

OK, BELOW, USAGE, INTERNAL, REFUSED = 0, 1, 2, 3, 4


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


class _Intermixed(_Parser):
    """A command whose positionals may come after its options (``export grades --out F BATCH_OUT``)."""

    def parse_known_args(self, args=None, namespace=None):
        if getattr(self, "_mixing", False):  # parse_known_intermixed_args calls back here
            return super().parse_known_args(args, namespace)
        self._mixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._mixing = False


# The student package (autograder release --student-bundle) carries its course file here; the
# kit's own tree never does, so its presence is what makes this installation the student's.
STUDENT_COURSE = Path(__file__).resolve().parent / "course.yml"
STUDENT_COMMANDS = ("list", "check", "doctor")


def _default_config() -> Path:
    here = Path("grading.yml")
    if here.is_file():
        return here
    kit = Path(__file__).resolve().parent.parent / "grading.yml"
    if kit.is_file() or not STUDENT_COURSE.is_file():
        return kit
    return STUDENT_COURSE


def _parser(student_package: bool = False) -> argparse.ArgumentParser:
    """The command line; in the student package, --help lists the student's commands only."""
    parser = _Parser(prog="autograder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=None,
                        help="the course file (default: ./grading.yml, else the kit's own)")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                     metavar="{" + ",".join(STUDENT_COMMANDS) + "}" if student_package else None)

    def instructor(text: str) -> dict:  # still parsed there (unlisted), so that main() can say whose they are
        return {} if student_package else {"help": text}

    commands.add_parser("list", help="the assignments, their tests and points")

    check = commands.add_parser("check", help="run an assignment's public checks on your work")
    check.add_argument("assignment_dir", type=Path)
    check.add_argument("--assignment", default=None, metavar="ID",
                       help="the assignment's id, when the folder's name and files do not tell")
    check.add_argument("--feedback", type=Path, default=None, metavar="DIR",
                       help="where the feedback pictures go (default: ASSIGNMENT_DIR/feedback)")

    grade = commands.add_parser("grade", **instructor("grade one submission"))
    grade.add_argument("submission", type=Path)
    which = grade.add_mutually_exclusive_group(required=True)
    which.add_argument("--assignment", help="the assignment id (see 'autograder list')")
    which.add_argument("--all", action="store_true", help="SUBMISSION holds one folder per assignment, like solutions/")
    _grading_options(grade)
    grade.add_argument("--fail-under", type=float, default=None, metavar="PERCENT",
                       help="exit with 1 if the score is below this percentage of the maximum")

    batch = commands.add_parser("grade-batch", **instructor("grade a class: one folder per student under ROOT"))
    batch.add_argument("root", type=Path, nargs="?", default=None)
    batch.add_argument("--nbgrader", type=Path, default=None, metavar="COURSE_DIR",
                       help="grade an nbgrader course's submitted/<student>/<assignment>/ into its gradebook.db "
                            "and feedback/<student>/<assignment>/ (instead of ROOT)")
    batch.add_argument("--assignment", required=True)
    batch.add_argument("--jobs", type=int, default=1, help="gradings run at once on this machine (default 1)")
    batch.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="grade on Dask instead: tcp://HOST:8786 (a running scheduler) or local:N "
                            "(N worker processes here); needs the cluster extra")
    batch.add_argument("--resume", action="store_true",
                       help="keep the grades already recorded under --out whose submission, kit and suite "
                            "are unchanged; grade the rest")
    batch.add_argument("--gradebook", type=Path, default=None, metavar="DB",
                       help="also record the grades in nbgrader's gradebook (an SQLite file)")
    _grading_options(batch)

    commands.add_parser("doctor", help="which layers confine student code on this machine, and why one is missing")

    release = commands.add_parser("release", **instructor("regenerate assignments/ from solutions/"))
    release.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    release.add_argument("--student-bundle", type=Path, default=None, metavar="DIR",
                         help="write what students install into DIR (new or empty): the released assignments, "
                              "the student package's wheel, the student course file and INSTALL.md")
    release.add_argument("--nbgrader-source", type=Path, default=None, metavar="COURSE_DIR",
                         help="write each assignment's reference notebook (solutions in) into an nbgrader "
                              "course: COURSE_DIR/source/<id>/<name>.ipynb, for 'nbgrader generate_assignment'")

    export = commands.add_parser("export", **instructor("package one assignment for Gradescope or GitHub Classroom"))
    export.__class__ = _Intermixed  # BATCH_OUT may follow the options
    export.add_argument("platform", choices=("gradescope", "github", "grades"))
    export.add_argument("batch_out", type=Path, nargs="?", default=None, metavar="BATCH_OUT",
                        help="grades: a grade-batch --out folder, whose scores (after late penalties) are exported")
    export.add_argument("--assignment", default=None, metavar="ID", help="gradescope, github: the assignment")
    export.add_argument("--format", default=None, choices=("canvas", "moodle", "csv"),
                        help="grades: Canvas's gradebook CSV, Moodle's grade import CSV, or the kit's own CSV")
    export.add_argument("--roster", type=Path, default=None, metavar="ROSTER.csv",
                        help="grades: folder names to LMS identities (columns: folder, name, id, sis_user_id, "
                             "sis_login_id, section, email, username, idnumber)")
    export.add_argument("--column", default=None, metavar="NAME",
                        help="grades: the grade column's name (Canvas: 'Name (assignment id)' of an existing "
                             "assignment; default: the assignment id)")
    export.add_argument("--out", type=Path, required=True,
                        help="gradescope: the zip to write (ID-autograder.zip); github: a folder for the workflow")
    export.add_argument("--torch-index", default=None, metavar="URL",
                        help="the --index-url torch and torchvision are installed from "
                             "(default: PyTorch's CPU-only index, since neither platform's machines have a GPU)")
    export.add_argument("--cuda-torch", action="store_true",
                        help="install the package index's torch (CUDA builds, several GB) instead of the CPU ones")
    export.add_argument("--kit-repo", default="OWNER/KIT", metavar="OWNER/NAME",
                        help="github: the instructor's private repository holding the kit and its hidden suites")
    export.add_argument("--kit-ref", default="main", help="github: the branch or tag of --kit-repo (default main)")
    export.add_argument("--secret", default="KIT_TOKEN",
                        help="github: the name of the secret holding a token that can read --kit-repo")
    export.add_argument("--student-wheel", type=Path, default=None, metavar="WHEEL",
                        help="github: the student package (autograder release --student-bundle) for the public checks")
    return parser


def _grading_options(command) -> None:
    command.add_argument("--out", type=Path, default=None, help="write results.json, junit.xml, feedback.md here")
    command.add_argument("--seed", type=int, default=0, help="the grader's seed (default 0)")
    command.add_argument("--tests", default=None, help="grade only these tests (comma-separated names)")
    command.add_argument("--quiet", action="store_true", help="print the total only")
    command.add_argument("--cold", action="store_true",
                         help="start the judge and the worker as fresh interpreters (each importing torch) instead "
                              "of forking both from one process that has imported it: twice the memory")
    command.add_argument("--isolation", choices=("best", "strict"), default=None,
                         help="strict: refuse to grade unless every containment layer holds "
                              "(default: grading.yml's isolation, else best)")


def _only(args, assignment) -> list[str] | None:
    if not args.tests:
        return None
    names = [n.strip() for n in args.tests.split(",") if n.strip()]
    unknown = [n for n in names if n not in assignment.tests]
    if unknown:
        raise UsageError(f"--tests: {', '.join(unknown)} is not a test of {assignment.id} (see 'autograder list')")
    return names


# --------------------------------------------------------------------------- commands


def cmd_list(cfg, args) -> int:
    for a in cfg.assignments:
        print(f"{a.id}  ({a.folder}, files: {', '.join(a.files)})  {a.max_points:g} points")
        for name, test in a.tests.items():
            print(f"    {name:<44} {test.points:>5g}  {test.visibility}")
        if a.tests_after_due_date:
            print(f"    (and {a.tests_after_due_date} test(s) shown only after the due date)")
    return OK


def _assignment_of(cfg, folder: Path, wanted: str | None):
    """The assignment a folder holds: --assignment, else its name (``03_vae``, or a download's
    ``03_vae-main``), else the files in it (``vae.py``)."""
    if wanted:
        return cfg.get(wanted)
    name = folder.resolve().name
    exact = cfg.by_folder(name) or next((a for a in cfg.assignments if a.id == name), None)  # nbgrader: <id>/
    if exact is not None:
        return exact
    prefixed = sorted((a for a in cfg.assignments if name.startswith(a.folder)), key=lambda a: -len(a.folder))
    if prefixed:
        return prefixed[0]
    holding = [a for a in cfg.assignments
               if all((folder / f).is_file() or (folder / f).with_suffix(".ipynb").is_file() for f in a.files)]
    if len(holding) == 1:
        return holding[0]
    known = ", ".join(f"{a.id} ({', '.join(a.files)})" for a in cfg.assignments)
    raise UsageError(f"{folder}: not an assignment folder of this course (neither its name nor its files tell "
                     f"which); add --assignment ID, one of: {known}")


def cmd_check(cfg, args) -> int:
    folder = submission = args.assignment_dir
    if is_notebook(submission):  # `autograder check vae.ipynb`: that notebook, in its folder
        folder = submission.parent
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: not a folder")
    assignment = _assignment_of(cfg, folder, args.assignment)
    checks = folder / "checks"
    if not (checks / "probes.py").is_file():
        raise SubmissionError(f"{checks}: no public checks here (checks/probes.py is missing)")
    feedback = args.feedback or folder / "feedback"
    print(f"Running the public checks of {assignment.id} on {folder} "
          f"({assignment.limits.threads} torch thread(s), as the grader) ...", file=sys.stderr)
    result = runner.grade(cfg, assignment, submission, suite=checks, public=True, artifacts_dir=feedback)
    passed = sum(t.status == "passed" for t in result.tests)
    for notice in result.notices:  # e.g. which file counted, a notebook's stripped metadata
        print(f"note: {notice}")
    for t in result.tests:
        print(f"  {'PASS' if t.status == 'passed' else 'FAIL'}  {t.name}" + (f"\n        {t.message}" if t.message and t.status != "passed" else ""))
        for note in t.notes:
            print(f"        {note}")
    print(f"{passed} passed, {len(result.tests) - passed} failed")
    pictures = sorted({f for t in result.tests for f in t.artifacts})
    if pictures:
        print(f"feedback pictures in {feedback}: {', '.join(pictures)}")
    elif feedback.is_dir() and not any(feedback.iterdir()):
        feedback.rmdir()
    if result.grader_errors:
        print("\n".join(map(block, result.grader_errors)), file=sys.stderr)
        return INTERNAL
    return OK if passed == len(result.tests) else BELOW


def _show_progress(case) -> None:
    mark = {"passed": "ok", "failed": "FAIL", "error": "ERROR"}.get(case.outcome, case.outcome)
    print(f"  {mark:<5} {case.nodeid.split('::', 1)[-1]} ({case.duration:.1f} s)", file=sys.stderr, flush=True)


def _missing_folder(assignment, folder: Path) -> Result:
    message = f"your submission has no folder {folder.name}"
    tests = [TestResult(n, 0.0, t.points, "failed", message, t.visibility, 0) for n, t in assignment.tests.items()]
    return Result(assignment.id, str(folder), tests, 0.0, 0)


def cmd_grade(cfg, args) -> int:
    if is_notebook(args.submission) and args.all:
        raise UsageError(f"{args.submission}: a notebook is one assignment's; give --assignment ID, not --all")
    if not args.submission.is_dir() and not is_notebook(args.submission):
        raise SubmissionError(f"{args.submission}: not a folder (or a notebook, .ipynb)")
    if args.all:
        if args.tests:
            raise UsageError("--tests goes with --assignment, not --all")
        plan = [(a, args.submission / a.folder) for a in cfg.assignments]
    else:
        assignment = cfg.get(args.assignment)
        plan = [(assignment, args.submission)]
    only = {a.id: _only(args, a) for a, _ in plan}  # a bad --tests is a usage error before any grading
    results = []
    for assignment, folder in plan:
        print(f"grading {assignment.id} ({folder}) ...", file=sys.stderr, flush=True)
        out = (args.out / assignment.id if args.all else args.out) if args.out else None
        if not folder.is_dir() and not is_notebook(folder):
            result = _missing_folder(assignment, folder)
        else:
            result = runner.grade(cfg, assignment, folder, seed=args.seed, only=only[assignment.id],
                                  artifacts_dir=out, progress=None if args.quiet else _show_progress,
                                  isolation=args.isolation, warm=not args.cold)
        for notice in result.notices:
            print(f"note: {notice}", file=sys.stderr)
        if out:
            reports.write(result, out)
        results.append(result)
    print(reports.table(results, with_tests=not args.quiet))
    for r in results:
        for error in r.grader_errors:
            print(f"grader error in {r.assignment}: {block(error)}", file=sys.stderr)
    if any(r.grader_errors for r in results):
        return INTERNAL
    score, most = sum(r.score for r in results), sum(r.max_score for r in results)
    if args.fail_under is not None and most and 100 * score / most < args.fail_under:
        return BELOW
    return OK


def _executor(args):
    """--jobs N (threads here) or --scheduler ADDRESS (Dask): one protocol, autograder.classroom.batch.Executor."""
    from autograder.classroom import batch as batch_module  # instructor-only: not in the student package
    if args.scheduler is None:
        return batch_module.LocalExecutor(args.jobs)
    if args.jobs != 1:
        raise UsageError("--jobs and --scheduler do not go together (a Dask worker grades one student at a time)")
    from autograder.classroom.dask_executor import DaskExecutor, SchedulerError

    try:
        return DaskExecutor(args.scheduler, warm=not args.cold)
    except SchedulerError as error:
        raise UsageError(str(error)) from None


def cmd_grade_batch(cfg, args) -> int:
    from tqdm import tqdm

    from autograder.classroom import batch as batch_module, outputs  # instructor-only: not in the student package

    if args.nbgrader is not None:  # nbgrader's layout: submitted/<student>/<assignment>/
        from autograder.classroom import nbgrader_course

        if args.root is not None:
            raise UsageError("give ROOT or --nbgrader COURSE_DIR, not both")
        code, unplaced = nbgrader_course.grade_batch(cfg, args, cmd_grade_batch)
        return REFUSED if unplaced and code == OK else code
    if args.root is None:
        raise UsageError("grade-batch needs ROOT (one folder per student) or --nbgrader COURSE_DIR")
    assignment = cfg.get(args.assignment)
    only = _only(args, assignment)
    if not args.root.is_dir():
        raise SubmissionError(f"{args.root}: not a folder")
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    runner.check_isolation(cfg, args.isolation)  # before any student, not once per student
    root = args.root.resolve()
    out = (args.out or Path("grades")).resolve()
    # Every entry of ROOT is a student, whatever it is called (".alice", "-x", "grades.csv"),
    # except the tools' own folders and the batch's output folder
    entries = sorted(p for p in args.root.iterdir() if p.name not in batch_module.NOT_STUDENTS and p.resolve() != out)
    # a student folder is a folder of ROOT's own: not a link (to the solutions, to another student)
    refused = {p.name: f"{escape.path_text(p.name)} is a symbolic link, not a student's folder"
               for p in entries if p.is_symlink() or not p.resolve().is_relative_to(root)}
    refused.update(getattr(args, "refused", {}))  # refused before the batch (nbgrader's staging)
    students = [p for p in entries if p.name not in refused and p.is_dir()]
    if not students and not refused:
        raise SubmissionError(f"{args.root}: no student folders inside")
    out.mkdir(parents=True, exist_ok=True)
    runner.seal(args.root, out)  # the class's submissions and reports: closed to every worker
    executor = _executor(args)
    closing = None
    try:
        done = batch_module.grade_students(
            cfg, assignment, [(s.name, s) for s in students], out, executor=executor, seed=args.seed, only=only,
            isolation=args.isolation, resume=args.resume, warm=not args.cold,
            progress=lambda n: tqdm(total=n, desc=f"grading {assignment.id}", unit="student", file=sys.stderr))
        # the reports need the grades, not the executor: a Dask cluster stops while they are written
        closing = threading.Thread(target=executor.close, name="closing the executor")
        closing.start()
        if done.kept:
            print(f"--resume: kept {len(done.kept)} grade(s) already recorded, graded {len(done.graded)}", file=sys.stderr)
        graded = {row[0]: row for row in done.rows}
        names = sorted({p.name for p in entries} | refused.keys())
        ordered = [graded.get(name) or (name, None, "refused", refused[name]) for name in names
                   if name in graded or name in refused]
        tests = [n for n in assignment.tests if not only or n in only]
        outputs.write_grades_csv(ordered, out / "grades.csv", tests, late=done.late)
        outputs.score_histograms(ordered, tests, out / "scores.png")
        # The class-level steps after the grades: each student's failure in one becomes a line
        # of that student's row; a step that fails as a whole is the grader's own error.
        notes: dict[str, list[str]] = {}
        failures: list[str] = []
        pairs, flagged = _class_step("similarity", failures, _similar, cfg, assignment, students,
                                     out / "similar.csv", notes) or ([], 0)
        if args.gradebook:
            from autograder.classroom import gradebook

            unwritten = _class_step("gradebook", failures, gradebook.export, args.gradebook, assignment,
                                    {name: r for name, r, _, _ in ordered if r is not None}, done.late) or {}
            for name, why in unwritten.items():
                notes.setdefault(name, []).append(f"not written to the gradebook ({why})")
            print(f"nbgrader gradebook: {args.gradebook}")
        if notes:
            ordered = [_noted(row, notes.get(row[0], [])) for row in ordered]
            outputs.write_grades_csv(ordered, out / "grades.csv", tests, late=done.late)
        # the class report (index.html) last, from the rows read back from the records: grades.csv is already safe
        from autograder.classroom import class_report

        unpaged = _class_step("class report", failures, class_report.write, out, ordered, assignment, tests,
                              {s.name: s for s in students}) or {}
        if unpaged:
            for name, why in unpaged.items():
                notes.setdefault(name, []).append(why)
            ordered = [_noted(row, [unpaged[row[0]]] if row[0] in unpaged else []) for row in ordered]
            outputs.write_grades_csv(ordered, out / "grades.csv", tests, late=done.late)
        print(outputs.batch_table(ordered, done.late))
        print(outputs.batch_summary(ordered))
        print(f"grades: {out / 'grades.csv'}, scores per test: {out / 'scores.png'}")
        if (out / "index.html").is_file():
            print(f"class report (open it in a browser): {out / 'index.html'}")
        if pairs:
            from autograder.classroom.similarity import NOTICE

            print(f"{len(pairs)} pair(s) of similar submissions in {out / 'similar.csv'}. {NOTICE}")
        if flagged:
            from autograder.classroom.similarity import RUNTIME_NOTICE

            print(f"{flagged} submission(s) run code built at run time or from a string: "
                  f"{out / 'runtime_code.csv'}. {RUNTIME_NOTICE}")
        for failure in failures:
            print(f"autograder: error: {failure}", file=sys.stderr)
        if failures or any(status == "grader-error" for _, _, status, _ in ordered):
            return INTERNAL
        return REFUSED if notes or any(status == "refused" for _, _, status, _ in ordered) else OK
    finally:
        if closing is None:
            executor.close()
        else:
            closing.join()


def _class_step(what: str, failures: list[str], step, *args):
    """Run one class-level step; a failure of the step as a whole is recorded, not raised, so
    the steps after it still write their files."""
    try:
        return step(*args)
    except Exception as error:  # a grader bug: the instructor reads it, the class's files stay
        failures.append(f"the {what} step failed: {type(error).__name__}: {error}")
        traceback.print_exc()
        return None


def _noted(row, notes: list[str]):
    name, result, status, reason = row
    return (name, result, status, "; ".join(([reason] if reason else []) + notes))


def _similar(cfg, assignment, students: list[Path], path: Path, notes: dict[str, list[str]]) -> tuple[list, int]:
    """Fingerprint every student's files against the released skeleton; write similar.csv and
    runtime_code.csv; return the pairs and how many submissions were flagged. A student whose
    files cannot be read is left out of the comparison, with a note."""
    from autograder.classroom import similarity

    skeleton = cfg.root / "assignments" / assignment.folder
    base = similarity.read_submission(skeleton, assignment.files) if skeleton.is_dir() else None
    submissions = []
    for student in students:
        try:
            submissions.append(similarity.read_submission(student, assignment.files))
        except Exception as error:  # one student's files never end the class's comparison
            notes.setdefault(student.name, []).append(f"not compared for similarity ({type(error).__name__})")
    pairs = similarity.similar_pairs(submissions, base)
    similarity.write_csv(pairs, path)
    flagged = similarity.write_runtime_csv(submissions, path.with_name("runtime_code.csv"))
    return pairs, flagged


def cmd_release(cfg, args) -> int:
    from autograder.authoring import release

    if args.nbgrader_source is not None:  # the instructor's notebooks, for an nbgrader course
        from autograder.classroom import nbgrader_course

        print("\n".join(nbgrader_course.write_source(cfg, args.nbgrader_source)))
        return OK
    if args.student_bundle is not None:
        if args.check:
            raise UsageError("--check and --student-bundle do not go together")
        try:
            lines = release.student_bundle(cfg, args.student_bundle)
        except release.ReleaseError as error:
            raise UsageError(str(error)) from None
        print("\n".join(lines))
        print(f"student bundle in {args.student_bundle}; install line in {args.student_bundle / 'INSTALL.md'}")
        return OK
    folders = [a.folder for a in cfg.assignments if cfg.solution_dir(a).is_dir()]
    try:
        lines = release.release(cfg.root, folders, check=args.check)
    except release.ReleaseError as error:
        raise UsageError(str(error)) from None
    for line in lines:
        print(line)
    if args.check:
        if lines:
            print(f"assignments/ has drifted from solutions/ ({len(lines)} file(s)); run 'autograder release'")
            return BELOW
        print(f"assignments/ is in sync with solutions/ ({len(folders)} assignment(s))")
    return OK


def cmd_doctor(cfg, args) -> int:
    """Start one real worker under the full policy and print what each layer did."""
    layers = runner.doctor(cfg)
    width = max(len(name) for name in layers)
    for name, state in layers.items():
        print(f"{name:<{width}}  {state}")
    missing = [name for name, state in layers.items() if not state.startswith("active")]
    if missing:
        print(f"\n{len(missing)} layer(s) missing: {', '.join(missing)}. Grading still runs with the others "
              "(isolation: best); 'isolation: strict' in grading.yml or --isolation strict refuses to grade here.")
        return BELOW
    print("\nevery layer holds: --isolation strict will grade on this machine.")
    return OK


def cmd_export(cfg, args) -> int:
    """Write the Gradescope zip or the GitHub workflow of one assignment (autograder/authoring/export/)."""
    if args.platform == "grades":  # an LMS's gradebook import, from a graded batch
        from autograder.classroom import lms_export

        if args.batch_out is None or args.format is None:
            raise UsageError("export grades needs --format canvas|moodle|csv, --out FILE and BATCH_OUT "
                             "(a grade-batch --out folder)")
        try:
            done = lms_export.export(args.batch_out, args.out, args.format, args.roster, args.column)
        except lms_export.ExportError as error:
            raise UsageError(str(error)) from None
        print("\n".join(done.lines))
        return OK
    if args.assignment is None or args.batch_out is not None:
        raise UsageError(f"export {args.platform} needs --assignment ID and no BATCH_OUT")
    from autograder.authoring.export import CPU_TORCH_INDEX, ExportError, github, gradescope

    assignment = cfg.get(args.assignment)
    if args.cuda_torch and args.torch_index is not None:
        raise UsageError("--cuda-torch and --torch-index do not go together")
    args.torch_index = "" if args.cuda_torch else CPU_TORCH_INDEX if args.torch_index is None else args.torch_index
    try:
        if args.platform == "gradescope":
            lines = gradescope.export(cfg, assignment, args.out, torch_index=args.torch_index)
        else:
            lines = github.export(cfg, assignment, args.out, kit_repo=args.kit_repo, kit_ref=args.kit_ref,
                                  secret=args.secret, torch_index=args.torch_index,
                                  student_wheel=args.student_wheel)
    except ExportError as error:
        raise UsageError(str(error)) from None
    print("\n".join(lines))
    return OK


COMMANDS = {"doctor": cmd_doctor, "export": cmd_export, "list": cmd_list, "check": cmd_check, "grade": cmd_grade, "grade-batch": cmd_grade_batch,
            "release": cmd_release}


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser(student_package=STUDENT_COURSE.is_file()).parse_args(argv)
        cfg = config_module.load(args.config or _default_config())
        if args.command not in STUDENT_COMMANDS and cfg.path == STUDENT_COURSE:
            raise UsageError(f"'{args.command}' is the instructor's; this installation is the student package "
                             "(its commands: " + ", ".join(STUDENT_COMMANDS) + ")")
        return COMMANDS[args.command](cfg, args)
    except (UsageError, ConfigError, SubmissionError, IsolationError) as error:
        print(f"autograder: error: {error}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print("autograder: interrupted", file=sys.stderr)
        return INTERNAL
    except BrokenPipeError:  # `autograder list | head`: the reader left; not the grader's fault
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit flush is quiet too
        return OK
    except Exception as error:  # a bug of the grader's own
        traceback.print_exc()
        print(f"autograder: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return INTERNAL


if __name__ == "__main__":
    sys.exit(main())
