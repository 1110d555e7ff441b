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
import signal
import sys
import time
from pathlib import Path

import pytest

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


def pytest_configure(config):
    if sys.flags.optimize:
        raise pytest.UsageError("the judge must not run with -O / PYTHONOPTIMIZE: it would strip the suite's checks")
    job = config.getoption("--kit-job")
    config._kit_job = Job(job, config.getoption("--kit-results-fd")) if job else None
    if config._kit_job is not None:
        _end_with_the_runner(config._kit_job)
        _limit_own_memory(config._kit_job.spec.limits.memory_mb)
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
    if job and job.only:
        keep = [item for item in items if item.originalname in job.only]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


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
        job.send("case", {
            "nodeid": item.nodeid, "when": call.when, "outcome": status,
            "fraction": (credit.fraction if credit else 1.0) if status == "passed" else 0.0,
            "message": message or (credit.reason if credit else ""), "detail": detail,
            "duration": round(call.duration, 3),
            "artifacts": artifacts.files if artifacts else [],
            "notes": artifacts.notes if artifacts else [],
            "fault": fault,
        })
