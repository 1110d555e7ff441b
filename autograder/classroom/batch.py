"""Grade a class: one task per student, run by an executor, each grade kept as it arrives.

    grade_students(cfg, assignment, [(name, folder), ...], out, executor=...) -> rows

Each student is one :class:`Task` (small and picklable: paths and plain values), graded by
:func:`grade_task` wherever the executor runs it: a thread of this process
(:class:`LocalExecutor`, ``--jobs N``) or a Dask worker (:class:`autograder.classroom.dask_executor.
DaskExecutor`, ``--scheduler``). The task writes the student's reports under ``out/NAME``
and returns the ``Result`` as a plain dict; this process then writes the student's
*record* (``out/.records/<hash of NAME>.json``, the name inside: written to a temporary name, fsynced, renamed into
place), so a batch killed at any moment keeps every grade that had arrived.

``--resume`` skips a student only when the record's *key* matches: the content hash of their
submission (every name and file, each with its length), the kit's version and the grading's
hash (suite files, the assignment's entry in grading.yml, seed, --tests, the grading's secret,
the engine's and kitdata's code). Anything else is graded again. ``grades.csv`` is rebuilt from the
records at the end, so a resumed batch ends with the grades a clean run gives.

Records live in ``out/.records``, never in ``out/NAME``: the student's worker may write
pictures into ``out/NAME``, and must not be able to forge a grade the resume would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Iterator, Protocol

import autograder
import kitdata
from autograder.classroom import late
from autograder.grading import reports, runner
from autograder.config import Assignment, Config
from autograder.grading.runner import Result, TestResult
from autograder.sandbox.submission import SubmissionError, hash_field, inventory

# One row per student: (name, Result or None, status, reason) -- what classroom.outputs writes.
Row = tuple[str, "Result | None", str, str]
RECORDS = ".records"
STUDENTS = "students"   # out/students/NAME: student-named paths apart from the class's own files
# Folders in a class's ROOT that tools make, not students (git, Jupyter, macOS archives);
# every other name is a student's, ".alice" and "-x" included.
NOT_STUDENTS = frozenset({".git", ".ipynb_checkpoints", ".DS_Store", "__MACOSX"})


def report_folder(out: Path, student: str) -> Path:
    """Where a student's reports go: a folder named ``grades.csv`` or ``scores.png`` can never
    take the place of a class file."""
    return Path(out) / STUDENTS / student


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to grade one student (no Config object: it is reloaded there)."""
    config: str          # grading.yml's path, the same on every worker (a shared file system)
    assignment: str
    student: str
    folder: str
    out: str             # the reports go to out/student
    seed: int = 0
    only: tuple[str, ...] | None = None
    isolation: str | None = None
    warm: bool = True    # start from this worker thread's fork server (autograder.sandbox.forkserver)


def grade_task(task: Task) -> dict:
    """Grade one student; never raises for a grading that went wrong. Returns
    ``{"status", "reason", "result"}`` with ``result`` a ``Result.to_dict()`` or None."""
    from autograder import config as config_module

    try:
        cfg = config_module.load(task.config)
        assignment = cfg.get(task.assignment)
        out = report_folder(Path(task.out), task.student)
        result = runner.grade(cfg, assignment, Path(task.folder), seed=task.seed,
                              only=list(task.only) if task.only else None, artifacts_dir=out,
                              isolation=task.isolation, warm=task.warm)
        reports.write(result, out)
        return {"status": result.status, "reason": result.reason, "result": result.to_dict()}
    except SubmissionError as error:
        return {"status": "refused", "reason": str(error), "result": None}
    except Exception as error:  # one broken grading never stops the batch
        return {"status": "grader-error", "reason": f"{type(error).__name__}: {error}", "result": None}


def result_from_dict(data: dict) -> Result:
    """The inverse of ``Result.to_dict`` (the derived score, status... are dropped)."""
    names = {f.name for f in fields(Result)}
    values = {k: v for k, v in data.items() if k in names}
    values["tests"] = [TestResult(**t) for t in data["tests"]]
    return Result(**values)


# --------------------------------------------------------------------------- executors


class Executor(Protocol):
    """Runs ``grade_task`` on many tasks; yields (task, outcome) in the order they finish.
    An executor that loses a task for good (a worker that died twice) yields a grader-error
    outcome for that task alone."""

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, dict]]: ...

    def close(self) -> None: ...


class LocalExecutor:
    """``--jobs N``: N gradings at once in threads of this process (each grading is its own
    judge and worker processes, so threads are enough)."""

    def __init__(self, jobs: int = 1):
        self.jobs = jobs

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, dict]]:
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = {pool.submit(grade_task, t): t for t in tasks}
            for future in as_completed(futures):
                yield futures[future], future.result()

    def close(self) -> None:
        pass


# --------------------------------------------------------------------------- records


def kit_version() -> str:
    try:
        return metadata.version("genai-autograder-kit")
    except metadata.PackageNotFoundError:
        return "unknown"


def _hash_folder(folder: Path, hasher, max_bytes: int, max_entries: int) -> None:
    """Every entry's relative path, kind and (for a file) bytes, in a fixed order (links are
    refused by inventory)."""
    for path, is_folder in sorted(inventory(folder, max_bytes, max_entries)):
        hash_field(hasher, path.encode("utf-8", "surrogateescape"))
        hash_field(hasher, b"folder" if is_folder else b"file")
        if not is_folder:  # streamed: the file's own digest is a field of fixed length
            fd = os.open(folder / path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as source:
                hash_field(hasher, hashlib.file_digest(source, "sha256").digest())


def submission_hash(folder: Path, assignment: Assignment) -> str:
    hasher = hashlib.sha256()
    _hash_folder(folder, hasher, assignment.limits.scratch_mb * 2**20, assignment.limits.scratch_files)
    return hasher.hexdigest()


# The code a grade depends on besides the suite: the engine (the judge's checks, the wire, the
# worker's probes' helpers) and kitdata (the metrics, the feature extractor's weights, the data).
# A fixed metric must regrade, not leave old grades in place.
CODE = (Path(autograder.__file__).parent, Path(kitdata.__file__).parent)


def _hash_code(hasher) -> None:
    for root in CODE:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".npz")
                           and "__pycache__" not in p.parts and "suites" not in p.relative_to(root).parts):
            hash_field(hasher, path.relative_to(root.parent).as_posix().encode())
            hash_field(hasher, path.read_bytes())


def grading_hash(cfg: Config, assignment: Assignment, seed: int, only) -> str:
    """What else decides a grade: the suite's files, the assignment's entry in grading.yml
    (points, limits, thresholds), the seed, the tests chosen, the grading's secret (the hidden
    data variants are drawn from it) and the engine's and kitdata's code."""
    hasher = hashlib.sha256()
    suite = Path(cfg.suite_dir(assignment))
    _hash_folder(suite, hasher, 1 << 34, 100_000)
    # the due date, late policy and extensions change the late penalty, not the grade: a record
    # kept by --resume gets its penalty worked out again (grade_students)
    hash_field(hasher, assignment.model_dump_json(exclude={"due", "late", "extensions"}).encode())
    hash_field(hasher, json.dumps([seed, sorted(only or [])]).encode())
    hash_field(hasher, hashlib.sha256(runner.grading_secret(assignment, suite).encode()).digest())
    _hash_code(hasher)
    return hasher.hexdigest()


def record_path(records: Path, name: str) -> Path:
    """Where a student's record lives: a name of fixed length derived from theirs, so that
    no legal folder name (251 bytes, dots, look-alikes) makes a file name too long or two
    students share a record. The name itself is kept inside the record."""
    return records / (hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:40] + ".json")


def write_record(records: Path, name: str, record: dict) -> None:
    """Write to a temporary name, fsync, rename into place, fsync the folder: either the
    whole record is there after a crash, or none of it."""
    records.mkdir(parents=True, exist_ok=True)
    target = record_path(records, name)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=records)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({**record, "student": name}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(records, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def read_record(records: Path, name: str) -> dict | None:
    try:
        record = json.loads(record_path(records, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # none, or unreadable: grade again
    return record if isinstance(record, dict) and record.get("student") == name else None


def row_of(name: str, record: dict) -> Row:
    result = result_from_dict(record["result"]) if record.get("result") else None
    return (name, result, record["status"], record["reason"])


# --------------------------------------------------------------------------- the batch


@dataclass
class Batch:
    """What a batch did: the rows (in the students' order), and who was graded now vs kept."""
    rows: list[Row]
    graded: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    late: dict[str, dict] = field(default_factory=dict)  # the records' "late" entries (autograder.classroom.late)


def late_entry(cfg: Config, assignment: Assignment, name: str, folder: Path, result: dict | None) -> dict | None:
    """A graded student's "late" entry (autograder.classroom.late.assess); None without a
    result. A folder whose time cannot be read is not marked late, with a note: never the batch's end."""
    if not result:
        return None
    raw = result_from_dict(result)
    try:
        return late.assess(cfg, assignment, name, Path(folder), raw.score, raw.max_score)
    except Exception as error:
        return late.assess(cfg, assignment, name, Path(folder), raw.score, raw.max_score,
                           late.Submitted(None, "none", (f"the submission time could not be read ({type(error).__name__})",)))


def grade_students(cfg: Config, assignment: Assignment, students: list[tuple[str, Path]], out: Path, *,
                   executor: Executor | None = None, seed: int = 0, only: list[str] | None = None,
                   isolation: str | None = None, resume: bool = False, warm: bool = True,
                   progress: Callable[[int], Iterable] | None = None) -> Batch:
    """Grade ``students`` ((name, folder) pairs) into ``out``; return their rows in that order.

    ``resume=True`` keeps the record of every student whose key still matches. ``warm=False``
    starts a fresh judge and worker for every student instead of forking them warm. ``progress``,
    if given, is called with the number of students to grade and returns an object with
    ``update(1)`` (a tqdm bar)."""
    executor = executor or LocalExecutor(1)
    records = out / RECORDS
    records.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex
    common = {"kit": kit_version(), "grading": grading_hash(cfg, assignment, seed, only)}
    rows: dict[str, Row] = {}
    keys: dict[str, dict] = {}
    tasks: list[Task] = []
    batch = Batch([])
    folders = dict(students)
    for name, folder in students:
        try:
            keys[name] = {**common, "submission": submission_hash(folder, assignment)}
        except (SubmissionError, OSError) as error:  # the grading refuses it the same way
            keys[name] = {**common, "submission": f"unreadable: {error}"}
        record = read_record(records, name) if resume else None
        if record is not None and record.get("key") == keys[name]:
            entry = late_entry(cfg, assignment, name, folder, record.get("result"))
            if record.get("late") != entry:  # the due date, policy or an extension changed since
                record = {**record, "late": entry}
                write_record(records, name, record)
                late.annotate_feedback(report_folder(out, name) / "feedback.md", entry)
            rows[name] = row_of(name, record)
            batch.late[name] = record.get("late")
            batch.kept.append(name)
            continue
        tasks.append(Task(str(cfg.path), assignment.id, name, str(Path(folder).resolve()), str(out.resolve()),
                          seed, tuple(only) if only else None, isolation, warm))
    bar = progress(len(tasks)) if progress else None
    try:
        for task, outcome in executor.run(tasks):
            entry = late_entry(cfg, assignment, task.student, folders[task.student], outcome.get("result"))
            write_record(records, task.student, {**outcome, "key": keys[task.student], "run": run_id,
                                                 "graded_at": time.time(), "late": entry})
            if entry is not None:
                late.annotate_feedback(report_folder(out, task.student) / "feedback.md", entry)
            batch.graded.append(task.student)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None and hasattr(bar, "close"):
            bar.close()
    # the rows are read back from the records: what a later --resume would trust is what this run reports
    for name in batch.graded:
        record = read_record(records, name)
        if record is None:
            raise OSError(f"{records / name}.json: written, but it does not read back")
        rows[name] = row_of(name, record)
        batch.late[name] = record.get("late")
    batch.rows = [rows[name] for name, _ in students]
    return batch
