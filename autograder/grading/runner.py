"""Grade one submission against one assignment: run the judge, collect a result.

    CLI -> runner.grade() -> pytest judge (subprocess, hidden suite + plugin)
                                  -> worker (subprocess of the judge, student code, fenced)

The runner never imports student code either; it reads the judge's JSON-lines file.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import autograder
from autograder.grading import notebook
from autograder.config import Assignment, Config
from autograder.escape import one_line, path_text
from autograder.grading.job import CaseOutcome, Job, Outcomes
from autograder.sandbox.submission import SubmissionError, hash_field, inventory
from autograder.sandbox.containment import LAYERS, IsolationError, Policy, available_layers


# Every grading's private folder (job, results, the worker's scratch copy) lives in here.
RUNS = Path(tempfile.gettempdir()) / f"autograder-runs-{os.getuid()}"


@dataclass
class TestResult:
    name: str
    score: float
    max_score: float
    status: str          # passed (full points) | partial | failed (no point) | error (the grader's)
    message: str = ""
    visibility: str = "visible"
    cases: int = 1
    duration: float = 0.0
    artifacts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    detail: str = ""     # for the instructor only (grader errors)
    fault: str = ""      # what the student's code did wrong, if it raised, hung, crashed... (sandbox.FAULTS)


@dataclass
class Result:
    assignment: str
    submission: str
    tests: list[TestResult]
    execution_time: float
    seed: int
    grader_errors: list[str] = field(default_factory=list)
    isolation: dict[str, str] = field(default_factory=dict)   # layer -> "active: ...", "off", "missing: why"
    notices: list[str] = field(default_factory=list)  # about the submission as a whole (autograder.grading.notebook)

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 4)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 4)

    @property
    def status(self) -> str:
        """One word an instructor can filter a class on: grader-error, import-error, timeout,
        memory, not-started (the first that applies), else graded."""
        return _status(self)[0]

    @property
    def reason(self) -> str:
        """The first line of what decided ``status`` ("" when graded)."""
        return _status(self)[1]

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(score=self.score, max_score=self.max_score, status=self.status, reason=self.reason)
        return data


# A fault of the student's code that marks the whole submission, by precedence; the others
# (a raised exception, a crash, a bad value) are ordinary failures of one test.
SUBMISSION_FAULTS = {"import": "import-error", "timeout": "timeout", "memory": "memory"}


def _status(result: Result) -> tuple[str, str]:
    if result.grader_errors:
        return "grader-error", one_line(result.grader_errors[0].strip().splitlines()[0])
    for fault, status in SUBMISSION_FAULTS.items():
        for test in result.tests:
            if test.fault == fault:
                return status, test.message
    if not_started(result):
        return "not-started", NOT_STARTED
    return "graded", ""


NOT_STARTED = "not started: every test stopped at a NotImplementedError of the released skeleton"


def not_started(result: Result) -> bool:
    """The untouched skeleton (or one whose every test still reaches an unwritten stub):
    no point, and every test failed at the skeleton's NotImplementedError (or after a test
    whose function is "not written yet", as the judge names it first)."""
    return (bool(result.tests) and result.score == 0
            and all(t.status == "failed" and (notebook.STUB in t.message or " is not written yet: see " in t.message)
                    for t in result.tests))


def _policy(config: Config, suite: Path, layers, strict: bool) -> Policy:
    """Never readable by the worker: the kit itself, the suite, and every grading's private
    folder (Policy.for_grading adds the held-out splits' sources)."""
    return Policy.for_grading(hidden=(config.root, suite, RUNS), layers=layers, strict=strict)


def seal(*paths: Path) -> None:
    """Close the grading's private things to every other user (the worker's uid included):
    folders 0700, files 0600. Only as root, where the worker runs as a uid of its own."""
    if os.geteuid() != 0:
        return
    for path in paths:
        try:
            os.chmod(path, 0o700 if Path(path).is_dir() else 0o600)
        except FileNotFoundError:
            pass


def check_isolation(config: Config, isolation: str | None, layers=None) -> bool:
    """Whether isolation is strict; if it is, raise IsolationError now when a layer cannot
    hold on this machine (the worker checks again as it applies them)."""
    strict = (isolation or config.isolation) == "strict"
    if strict:
        available = available_layers()
        missing = [layer for layer in (LAYERS if layers is None else layers) if layer not in available]
        if missing:
            raise IsolationError(f"isolation is strict and this machine lacks the {', '.join(missing)} layer(s): "
                                 "run 'autograder doctor' to see why")
    return strict


def doctor(config: Config) -> dict[str, str]:
    """Start one worker under the grading policy, on an empty submission; its containment report."""
    from autograder.sandbox.supervisor import Limits, Sandbox

    RUNS.mkdir(mode=0o700, exist_ok=True)
    private = Path(tempfile.mkdtemp(prefix="doctor-", dir=RUNS))
    try:
        (private / "empty").mkdir()
        (private / "work").mkdir()
        engine = Path(autograder.__file__).parent
        with Sandbox(private / "empty", private / "work", "", [], Limits(),
                     policy=_policy(config, engine / "suites", None, False)) as sandbox:
            sandbox.start()
            return dict(sandbox.layers)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _judge_environment() -> dict[str, str]:
    """One BLAS / OpenMP thread in the judge too: its measurements (FID-lite, references)
    then come out the same to the last bit on any machine, and batch jobs do not fight."""
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    env.pop("PYTHONOPTIMIZE", None)  # -O would strip the suites' assert statements
    env.pop(SECRET_VARIABLE, None)   # the judge gets the grading's secret in its job, hashed, and no more
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _judge_args(suite: Path, job: Path, ini: Path) -> list[str]:
    """pytest's arguments for the judge, less ``--kit-results-fd``."""
    return [str(suite), "-p", "autograder.grading.judge.plugin", "--kit-job", str(job), "-c", str(ini), "--rootdir", str(suite),
            "--assert=plain", "--import-mode=importlib", "-p", "no:cacheprovider",
            "-p", "no:unraisableexception",  # its clean-up runs gc.collect() five times over torch: 1 s
            "-q", "--no-header", "-rN", "-W", "ignore::DeprecationWarning"]


def _start_judge(server, args: list[str], private: Path, output, report: int):
    """The judge, forked warm by ``server`` (an autograder.sandbox.forkserver.ForkServer) or, with
    None, a fresh ``python -m pytest``: a handle with ``pid`` and ``wait()``."""
    if server is not None:
        return server.launch(args, str(private), _judge_environment(), output.fileno(), report)
    return subprocess.Popen([sys.executable, "-m", "pytest", *args, "--kit-results-fd", str(report)],
                            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=private,
                            start_new_session=True, env=_judge_environment(), pass_fds=(report,))


SECRET_VARIABLE = "AUTOGRADER_SECRET"


def grading_secret(assignment: Assignment, suite: Path) -> str:
    """The key from which a judge draws the hidden variants of its data (the ``secret_rng``
    fixture): the rotated ring, the drawn language, the permuted digits.

    It must be something no student can read, yet the same wherever the course is graded
    (here, on Dask, in a Gradescope zip), so that a grade is reproducible:
    ``$AUTOGRADER_SECRET`` where the instructor sets one, otherwise a hash of what students
    never get: the assignment's thresholds and its hidden suite. A course whose grading.yml
    and suites are public should set the variable."""
    digest = hashlib.sha256()
    chosen = os.environ.get(SECRET_VARIABLE, "")
    if chosen:
        digest.update(b"variable\0" + chosen.encode())
    else:
        hidden = json.dumps({"id": assignment.id, "thresholds": assignment.thresholds}, sort_keys=True, default=str)
        digest.update(b"files\0" + hidden.encode())
        for path in sorted(p for p in suite.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            hash_field(digest, path.relative_to(suite).as_posix().encode())
            hash_field(digest, path.read_bytes())
    return digest.hexdigest()


def grade(config: Config, assignment: Assignment, submission: Path, *, seed: int = 0,
          only: list[str] | None = None, artifacts_dir: Path | None = None,
          suite: Path | None = None, public: bool = False, progress=None,
          layers: list[str] | None = None, isolation: str | None = None, warm: bool = False) -> Result:
    """Grade ``submission`` (a folder, or a ``<name>.ipynb`` file) on ``assignment``.

    ``public=True`` runs the public checks in ``suite`` instead of the hidden suite: every
    test found counts one point. ``only`` restricts grading to these test functions.
    ``progress``, if given, is called with each test case's outcome as it arrives.
    ``layers`` chooses the containment layers (default: all; the kit's tests switch some off)
    and ``isolation`` ("strict" or "best", default from grading.yml) whether a missing one
    stops the grading. ``warm=True`` starts the judge and its first worker from this thread's
    fork server (``autograder.sandbox.forkserver``), already holding torch and pytest: for batches.
    """
    submission = Path(submission)
    is_notebook = notebook.is_notebook(submission)
    if not submission.is_dir() and not is_notebook:
        raise SubmissionError(f"{submission}: not a folder (a submission is a folder holding {', '.join(assignment.files)})")
    if not is_notebook:  # a named notebook is copied alone, checked as it is (autograder.grading.notebook)
        inventory(submission, assignment.limits.scratch_mb * 2**20, assignment.limits.scratch_files)
    suite = Path(suite or config.suite_dir(assignment)).resolve()
    if not (suite / "probes.py").is_file():
        raise FileNotFoundError(f"{suite}: a suite needs probes.py")

    strict = check_isolation(config, isolation, layers)
    started = time.monotonic()
    RUNS.mkdir(mode=0o700, exist_ok=True)
    seal(RUNS, config.path, suite, config.root / "solutions", Path(autograder.__file__).parent / "suites")
    if artifacts_dir is not None:
        Path(artifacts_dir).mkdir(parents=True, exist_ok=True)
        seal(artifacts_dir)
    private = Path(tempfile.mkdtemp(prefix="grade-", dir=RUNS))
    try:
        workdir = private / "work"
        workdir.mkdir()
        # a notebook: the module is built from its graded cells here, on the judge's side, unexecuted
        graded, notices = notebook.prepare(submission, assignment.files, private / "submission",
                                           skeletons=(config.root / "assignments" / assignment.folder,))
        # absolute: the judge runs in the private folder, and a relative --out must not land there
        artifacts = Path(artifacts_dir).resolve() if artifacts_dir else private / "artifacts"
        ini = private / "pytest.ini"
        ini.write_text("[pytest]\n")
        job = private / "job.json"
        spec = Job(submission=str(graded.resolve()), workdir=str(workdir), probes=str(suite / "probes.py"),
                   modules=assignment.modules, limits=assignment.limits, seed=seed,
                   thresholds={} if public else assignment.thresholds, artifacts=str(artifacts), only=only or [],
                   policy=_policy(config, suite, layers, strict).to_dict(), runner=os.getpid(),
                   secret="" if public else grading_secret(assignment, suite))
        args = _judge_args(suite, job, ini)
        log = private / "judge.log"
        report_read, report_write = os.pipe()  # the judge's report: a pipe the worker never holds
        try:
            with open(log, "wb") as out:
                judge = None
                if warm:
                    from autograder.sandbox import forkserver

                    try:
                        server = forkserver.for_this_thread()
                        spec.model_copy(update={"runner": server.process.pid}).write(job)  # ends with its parent
                        judge = _start_judge(server, args, private, out, report_write)
                    except (forkserver.ForkServerError, OSError) as error:  # costs time, never a grade
                        print(f"autograder: warm start failed, grading {submission} cold: {error}", file=sys.stderr)
                if judge is None:
                    spec.write(job)
                    judge = _start_judge(None, args, private, out, report_write)
                os.close(report_write)
                report_write = -1
                outcomes = Outcomes()
                # the judge keeps the budget (less time lost to hangs, see judge.plugin); this is the backstop
                code, timed_out = _wait(judge, 2 * assignment.limits.suite_seconds, report_read, outcomes, progress)
                _kill_leftovers(private)
        finally:
            os.close(report_read)
            if report_write >= 0:
                os.close(report_write)
        judge_log = log.read_text(errors="replace")
    finally:
        shutil.rmtree(private, ignore_errors=True)

    grader_errors = []
    if not timed_out and (code not in (0, 1) or (code == 1 and not outcomes.cases)):
        # 1 is failed tests, unless none was reported: then the judge failed before any ran
        # (a plugin that did not import), which must never read as "0 passed, 0 failed"
        tail = "\n".join(judge_log.strip().splitlines()[-15:])
        grader_errors.append(f"the judge (pytest) exited with code {code}:\n{tail}")
    grader_errors += [f"grading of {path_text(submission)}: {problem}" for problem in outcomes.problems]
    tests = _collect(assignment, outcomes.cases, only, public, timed_out, grader_errors)
    return Result(assignment.id, path_text(submission), tests, round(time.monotonic() - started, 2), seed, grader_errors,
                  outcomes.isolation, notices)


def _wait(judge: subprocess.Popen, seconds: float, report: int, outcomes: Outcomes,
          progress) -> tuple[int | None, bool]:
    """Read the judge's report until it exits (or its time is up); call ``progress(case)``
    as each test's outcome arrives."""
    deadline = time.monotonic() + seconds
    while True:
        ready = select.select([report], [], [], 0.5)[0]
        chunk = os.read(report, 1 << 16) if ready else b""
        for case in outcomes.feed(chunk):
            if progress is not None:
                progress(case)
        if ready and not chunk:  # the judge closed its end: it is exiting
            return judge.wait(), False
        if time.monotonic() > deadline:
            _kill_judge(judge.pid)
            judge.wait()
            return None, True


def _kill_judge(pid: int) -> None:
    for kill in (os.killpg, os.kill):  # a warm judge may not be in a group of its own yet
        try:
            kill(pid, signal.SIGKILL)
            return
        except ProcessLookupError:
            continue


def _kill_leftovers(private: Path) -> None:
    """The judge kills its worker on exit; if it was killed itself, find the orphan."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if cwd.startswith(str(private)):
            try:
                os.killpg(int(entry), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _collect(assignment: Assignment, entries: list[CaseOutcome], only, public: bool, timed_out: bool,
             grader_errors: list[str]) -> list[TestResult]:
    by_test: dict[str, dict[str, CaseOutcome]] = {}
    for entry in entries:
        cases = by_test.setdefault(entry.test, {})
        previous = cases.get(entry.nodeid)
        if previous is None or previous.outcome == "passed":  # a teardown failure overrides a pass
            cases[entry.nodeid] = entry
    if public:
        plan = {name: (1.0, "visible") for name in by_test}
    else:
        plan = {name: (t.points, t.visibility) for name, t in assignment.tests.items() if not only or name in only}
        for name in by_test:
            if name not in plan:
                grader_errors.append(f"{name} ran but has no points in grading.yml")
    tests = []
    for name, (points, visibility) in plan.items():
        cases = list(by_test.get(name, {}).values())
        if not cases:
            if timed_out:
                message = f"not reached: the suite's time limit of {assignment.limits.suite_seconds:g} s was used up"
                tests.append(TestResult(name, 0.0, points, "failed", message, visibility, 0, fault="timeout"))
            else:
                grader_errors.append(f"{name} is in grading.yml but did not run")
                tests.append(TestResult(name, 0.0, points, "error", "this test did not run; your instructor has been told",
                                        visibility, 0))
            continue
        fraction = min(1.0, max(0.0, sum(c.fraction for c in cases) / len(cases)))
        failing = [c for c in cases if c.outcome != "passed"]
        status = ("error" if any(c.outcome == "error" for c in cases) else
                  "passed" if fraction >= 1.0 else "failed" if fraction <= 0.0 else "partial")
        message = _case_message(failing[0], len(cases)) if failing else next((c.message for c in cases if c.message), "")
        details = [c.detail for c in cases if c.detail]
        grader_errors += [f"{name}: {d}" for d in details[:1]]
        tests.append(TestResult(
            name, round(points * fraction, 4), points, status, one_line(message), visibility, len(cases),
            round(sum(c.duration for c in cases), 3),
            sorted({a for c in cases for a in c.artifacts}), [one_line(n) for c in cases for n in c.notes],
            "\n".join(details), next((c.fault for c in failing if c.fault), "")))
    return tests


def _case_message(case: CaseOutcome, n_cases: int) -> str:
    # the judge names a parametrised case in words, "(case batch=1, z_dim=2)"; pytest's
    # bracketed node id never reaches a student
    return case.message
