"""The pytest plugin that turns a suite into a judge.

Loaded with ``-p autograder.grading.judge.plugin --kit-job JOB.json`` by ``autograder.grading.runner``.
It never imports student code: the ``worker`` fixture talks to the sandboxed worker.
Each test's outcome goes to a JSON-lines file that the runner turns into reports.

Outcomes: ``passed`` (with a credit fraction), ``failed`` (an AssertionError or a
StudentError: the message is for the student) or ``error`` (anything else raised by the
suite itself: a grader bug, reported to the instructor, exit code 3).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from autograder.grading.notebook import STUB
from autograder.sandbox import lean_torch
from autograder.sandbox.containment import Policy
from autograder.sandbox.containment._syscalls import die_with_parent
from autograder.grading.job import Job as JobSpec
from autograder.sandbox.supervisor import Sandbox, StudentError


def pytest_addoption(parser):
    parser.addoption("--kit-job", help="the grading job (job.json) written by autograder.grading.runner")
    parser.addoption("--kit-results-fd", type=int, default=None,
                     help="the pipe to report outcomes on (the runner's; the worker never holds it)")


class Job:
    """The judge's side of one grading: the job, the sandbox, and the report pipe."""

    def __init__(self, path: str, report_fd: int | None):
        self.spec = JobSpec.read(path)
        self.artifacts_dir = Path(self.spec.artifacts)
        self.only = set(self.spec.only)
        if report_fd is None:
            raise pytest.UsageError("--kit-job needs --kit-results-fd")
        os.set_inheritable(report_fd, False)  # no process the judge starts may write to it
        self._report = os.fdopen(report_fd, "w", encoding="utf-8", buffering=1)
        self._sandbox: Sandbox | None = None
        self.blame: Blame | None = None   # the suite's upstream declarations, read at collection
        self.started = time.monotonic()

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            spec = self.spec
            self._sandbox = Sandbox(
                submission=Path(spec.submission), workdir=Path(spec.workdir),
                probes_source=Path(spec.probes).read_text(encoding="utf-8"),
                modules=spec.modules, limits=spec.limits, policy=Policy.from_dict(spec.policy))
        return self._sandbox

    def charged_seconds(self) -> float:
        """Time spent on the suite, less what calls that timed out cost (excused up to the
        suite's budget again): a function that never returns costs the tests that call it,
        not every test after them."""
        stalled = self._sandbox.stalled_seconds if self._sandbox is not None else 0.0
        return time.monotonic() - self.started - min(stalled, self.spec.limits.suite_seconds)

    def send(self, kind: str, body) -> None:
        self._report.write(json.dumps({kind: body}) + "\n")

    def close(self) -> None:
        if self._sandbox is not None:
            if self._sandbox.layers:  # the containment the student's code ran under, for report.md
                self.send("isolation", self._sandbox.layers)
            self._sandbox.stop()
        self._report.close()


MARKERS = (
    "upstream(*tests): the tests of this suite whose functions this test relies on; when one of "
    "them failed in the same grading, a failure here names that function first",
    "judges(*functions): the student's functions this test judges (named when a downstream test "
    "fails because of this one)",
)


def pytest_configure(config):
    for line in MARKERS:
        config.addinivalue_line("markers", line)
    if sys.flags.optimize:
        raise pytest.UsageError("the judge must not run with -O / PYTHONOPTIMIZE: it would strip the suite's checks")
    job = config.getoption("--kit-job")
    config._kit_job = Job(job, config.getoption("--kit-results-fd")) if job else None
    if config._kit_job is not None:
        _end_with_the_runner(config._kit_job)
        _limit_own_memory(config._kit_job.spec.limits.memory_mb)
        import torch  # noqa: F401 - every suite's; loaded here to keep its compiler out (lean_torch)

        lean_torch.install()
        lean_torch.lean_allocator()
        lean_torch.drop_loaded_pages()
        # A suite keeps its reference maths in modules beside its tests (ref_<id>.py);
        # --import-mode=importlib does not put the suite's folder on the path by itself.
        sys.path.insert(0, str(config.rootpath))


def _end_with_the_runner(job: Job) -> None:
    """When the process that started this judge dies (a batch killed with kill -9, a lost Dask
    worker), stop the student's worker and exit: nobody reads what comes next, a resumed batch
    grades the student again, and a judge left running would write into that student's reports.
    The kernel sends SIGTERM on the runner's death (PR_SET_PDEATHSIG); the check after it
    catches a runner that died before the request was made."""
    def stop(signum, frame):
        # Kill, never wait: the handler may interrupt the judge inside Popen.wait() or poll(),
        # whose lock it would then wait for forever (seen under load). init reaps the worker.
        try:
            sandbox = job._sandbox
            if sandbox is not None:
                sandbox.kill()
        finally:
            os._exit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    if job.spec.runner:
        die_with_parent(signal.SIGTERM, job.spec.runner)


def _limit_own_memory(worker_mb: int) -> None:
    """The judge's own address space: room for torch (a CUDA build maps over 2 GB just to
    import), the suite's references and the largest reply the channel decodes, no more."""
    import resource

    limit = (12288 + 2 * worker_mb) * 2**20
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard == resource.RLIM_INFINITY or hard > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def pytest_unconfigure(config):
    if getattr(config, "_kit_job", None):
        config._kit_job.close()


def pytest_collection_finish(session):
    job = session.config._kit_job
    if job is not None:  # the runner believes outcomes only for these
        job.send("collected", [item.nodeid for item in session.items])
        job.started = time.monotonic()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """The suite's budget, kept here rather than by the runner's clock, so that it can leave
    out time lost to hangs; the runner only stops a judge that overruns twice the budget."""
    job = item.config._kit_job
    if job is not None and job.charged_seconds() > job.spec.limits.suite_seconds:
        raise StudentError(f"not reached: the suite's time limit of {job.spec.limits.suite_seconds:g} s "
                           "was used up", "timeout")


def pytest_collection_modifyitems(config, items):
    job = config._kit_job
    if job is None:
        return
    job.blame = Blame.read(items)
    if job.only:
        keep = [item for item in items if item.originalname in job.only]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep
    items[:] = job.blame.upstream_first(items)


# --------------------------------------------------------------------------- upstream blame


def _marker_args(item, name: str) -> tuple[str, ...]:
    return tuple(str(arg) for mark in item.iter_markers(name) for arg in mark.args)


MAX_CAUSES = 2   # functions named at the head of a message: the first wrong ones, not a list


class Blame:
    """Which function a failure is really about.

    A suite declares, on a test that calls several of the student's functions, the tests that
    judge the ones it relies on (``@pytest.mark.upstream("test_kl_divergence")``), and on those
    the functions they judge (``@pytest.mark.judges("kl_divergence")``). When a test fails after
    an upstream test failed (or lost points) in the same grading, its message starts with
    "kl_divergence is wrong: see test_kl_divergence." The test keeps its outcome and its score;
    only the message changes. An upstream test that failed because of its own upstream passes
    the blame on: the function named is the first one that is wrong."""

    def __init__(self, upstream: dict[str, tuple[str, ...]], judges: dict[str, tuple[str, ...]]):
        self.upstream, self.judges = upstream, judges
        self.bad: dict[str, str] = {}      # test -> its first message, for tests that lost points

    @classmethod
    def read(cls, items) -> "Blame":
        upstream, judges = {}, {}
        for item in items:
            name = item.originalname
            upstream.setdefault(name, _marker_args(item, "upstream"))
            judges.setdefault(name, _marker_args(item, "judges"))
        unknown = sorted({u for ups in upstream.values() for u in ups} - set(upstream))
        if unknown:  # a misspelt declaration is the suite's bug, found before any student is graded
            raise pytest.UsageError(f"upstream marker names no test of this suite: {', '.join(unknown)}")
        return cls(upstream, judges)

    def upstream_first(self, items) -> list:
        """The items in their order, except that a test's upstream tests run before it."""
        by_name: dict[str, list] = {}
        for item in items:
            by_name.setdefault(item.originalname, []).append(item)
        ordered, placed = [], set()

        def place(name, visiting):
            if name in placed or name in visiting or name not in by_name:
                return
            visiting.add(name)
            for up in self.upstream.get(name, ()):
                place(up, visiting)
            placed.add(name)
            ordered.extend(by_name[name])

        for name in by_name:
            place(name, set())
        return ordered

    def record(self, name: str, message: str) -> None:
        self.bad.setdefault(name, message)

    def _roots(self, name: str, seen: set[str]) -> list[str]:
        """The failed tests at the top of ``name``'s failed upstream tests (``name`` itself when
        none of its own upstream tests failed)."""
        failed = [u for u in self.upstream.get(name, ()) if u in self.bad]
        if not failed:
            return [name]
        roots = []
        for u in failed:
            if u not in seen:  # each upstream test once (a declaration may loop)
                seen.add(u)
                roots += self._roots(u, seen)
        return roots

    def functions(self, test: str) -> str:
        """The student's function(s) ``test`` judges: those its message names, else all declared."""
        declared = self.judges.get(test) or (test.removeprefix("test_"),)
        message = self.bad.get(test, "")
        named = [f for f in declared if re.search(rf"(?<![\w.]){re.escape(f)}(?!\w)", message)
                 or "." in f and f in message]
        return " or ".join(named or declared)

    def prefix(self, name: str) -> str:
        """"kl_divergence is wrong: see test_kl_divergence. " when an upstream test of ``name``
        failed in this grading, else ""."""
        if not any(u in self.bad for u in self.upstream.get(name, ())):
            return ""
        causes: dict[tuple[str, str], list[str]] = {}   # (functions, state) -> their tests
        for test in dict.fromkeys(r for r in self._roots(name, {name}) if r != name):
            causes.setdefault((self.functions(test), self.state(test)), []).append(test)
        if not causes:
            return ""
        named = [f"{functions} {state}: see {' and '.join(tests)}"
                 for (functions, state), tests in list(causes.items())[:MAX_CAUSES]]
        more = len(causes) - MAX_CAUSES
        return "; ".join(named) + (f" (and {more} more function(s) before it)" if more > 0 else "") + ". "

    def state(self, test: str) -> str:
        return "is not written yet" if STUB in self.bad.get(test, "") else "is wrong"


def case_words(item) -> str:
    """A parametrised case in words: "batch=1, z_dim=2, k=5", "saturating", never "[1-2-5]"."""
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return ""
    params = callspec.params
    simple = all(isinstance(v, (bool, int, float, str)) for v in params.values())
    auto = simple and callspec.id == "-".join(str(v) for v in params.values())
    if not auto:  # ids the suite chose are words already
        return callspec.id.replace("-", ", ")
    return ", ".join(v if isinstance(v, str) else f"{k}={v}" for k, v in params.items())


def _test_seed(grader_seed: int, nodeid: str) -> int:
    name = nodeid.split("::", 1)[-1]  # independent of where the suite lives on disk
    digest = hashlib.sha256(f"{grader_seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


# --------------------------------------------------------------------------- fixtures


class Worker:
    """The ``worker`` fixture: ``worker.call(probe, *args, **kwargs)`` with this test's seed."""

    def __init__(self, sandbox: Sandbox, seed: int):
        self._sandbox, self._seed = sandbox, seed

    def call(self, probe: str, *args, seed: int | None = None, timeout: float | None = None, **kwargs):
        return self._sandbox.call(probe, *args, seed=self._seed if seed is None else seed,
                                  timeout=timeout, **kwargs)

    @property
    def devices(self) -> list[str]:
        return self._sandbox.accelerators()


class Credit:
    def __init__(self):
        self.fraction, self.reason = 1.0, ""

    def __call__(self, fraction: float, reason: str = "") -> None:
        self.fraction, self.reason = max(0.0, min(1.0, float(fraction))), reason


class Artifacts:
    def __init__(self, folder: Path, test: str):
        self.folder, self.test = folder, test
        self.files: list[str] = []
        self.notes: list[str] = []

    def figure(self, filename: str, fig) -> None:
        """Save a feedback picture. A student's values that cannot be drawn cost the picture
        (a note says so), never the test."""
        import matplotlib.pyplot as plt

        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            fig.savefig(self.folder / filename, dpi=110, bbox_inches="tight")
            self.files.append(filename)
        except (ValueError, OverflowError, RuntimeError, MemoryError) as error:
            self.notes.append(f"the picture {filename} could not be drawn from these values "
                              f"({type(error).__name__})")
        finally:
            plt.close(fig)

    def note(self, text: str) -> None:
        self.notes.append(str(text))


@pytest.fixture
def seed(request) -> int:
    return _test_seed(request.config._kit_job.spec.seed, request.node.nodeid)


@pytest.fixture
def secret_rng(request, seed):
    """A numpy Generator the worker cannot predict: seeded from the grading's secret (never
    in the worker's reach) and this test's seed. The hidden variants of a test's data (a
    rotated ring, a drawn language, permuted digits) come from it, so that sampling the
    public distribution or replaying shipped data earns nothing. Same grading, same draws."""
    import numpy as np

    digest = hashlib.sha256(f"{request.config._kit_job.spec.secret}:{seed}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "big"))


@pytest.fixture
def worker(request, seed) -> Worker:
    return Worker(request.config._kit_job.sandbox, seed)


@pytest.fixture
def thresholds(request) -> dict:
    return request.config._kit_job.spec.thresholds


@pytest.fixture
def credit(request) -> Credit:
    request.node._kit_credit = Credit()
    return request.node._kit_credit


@pytest.fixture
def artifacts(request) -> Artifacts:
    request.node._kit_artifacts = Artifacts(request.config._kit_job.artifacts_dir, request.node.originalname)
    return request.node._kit_artifacts


# --------------------------------------------------------------------------- outcomes


def _message(excinfo) -> tuple[str, str, str, str]:
    """(outcome, one-line message for the student, detail for the instructor, the student's fault)."""
    error = excinfo.value
    if isinstance(error, StudentError):
        return "failed", str(error), "", error.fault
    if isinstance(error, AssertionError):
        text = str(error).strip() or "a check failed"
        return "failed", text.splitlines()[0], "", ""
    if isinstance(error, pytest.skip.Exception):
        return "skipped", str(error), "", ""
    # A bug in the suite: the student is told only that it happened (the exception's text
    # could hold expected values); the instructor gets the traceback.
    return ("error", "the grader itself failed on this test; your instructor has been told",
            str(excinfo.getrepr(style="short")), "")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    job = item.config._kit_job
    if job is None or call.when == "teardown" and report.passed:
        return
    if call.when == "setup" and report.passed:
        item._kit_started = time.monotonic()
        return
    if call.when == "call" or report.failed or report.skipped:
        if report.passed:
            status, message, detail, fault = "passed", "", "", ""
        else:
            status, message, detail, fault = _message(call.excinfo)
        credit = getattr(item, "_kit_credit", None)
        artifacts = getattr(item, "_kit_artifacts", None)
        fraction = (credit.fraction if credit else 1.0) if status == "passed" else 0.0
        message = message or (credit.reason if credit else "")
        words = case_words(item)
        if message and words:  # which case, in words: the node's bracketed id is for pytest only
            message = f"(case {words}) {message}"
        blame = getattr(job, "blame", None)
        if fraction < 1.0 and status in ("failed", "passed") and blame is not None:
            blame.record(item.originalname, message)
            if call.when == "call":  # a test cut short before it ran (the time limit) blames nothing
                message = blame.prefix(item.originalname) + message
        job.send("case", {
            "nodeid": item.nodeid, "when": call.when, "outcome": status,
            "fraction": fraction,
            "message": message, "detail": detail,
            "duration": round(call.duration, 3),
            "artifacts": artifacts.files if artifacts else [],
            "notes": artifacts.notes if artifacts else [],
            "fault": fault,
        })
