"""grading.yml: the course file, validated on load.

A bad file is reported as one line naming the file, the field and what is wrong:

    grading.yml: assignments[0].tests.test_kl.points: should be >= 0 (got -5)
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ConfigError(Exception):
    """grading.yml is missing, unreadable or invalid; the message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    probe_seconds: float = Field(30.0, gt=0, description="time limit of one probe call")
    memory_mb: int = Field(3000, gt=0, description="resident memory of the worker")
    file_mb: int = Field(64, gt=0, description="largest file (and printed output) a submission may write")
    threads: int = Field(1, ge=1, le=64, description="torch threads in the worker (fixed: same score everywhere)")
    suite_seconds: float = Field(600.0, gt=0, description=(
        "time limit of the whole suite, not counting calls that timed out (excused up to as much again)"))
    startup_seconds: float = Field(120.0, gt=0, description="time limit of a worker's start (imports torch)")
    scratch_mb: int = Field(256, gt=0, description="everything the submission writes in its folder")
    scratch_files: int = Field(4096, gt=0, description="files and folders the submission may create")


def _aware(value, what: str = "a due date"):
    """A moment with its time zone: YAML's ``2026-12-01T23:59:00+01:00`` (or ``...Z``), or
    the same as a quoted string. A date alone or a time without a zone is refused: a due date
    read in the grader's zone would move with the machine that grades."""
    if isinstance(value, str):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):  # YAML gives 2026-12-01 a date, quoted a string
            raise ValueError(f"{what} needs a time and a time zone, not a date alone: write it like "
                             "2026-12-01T23:59:00+01:00")
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"{what} should be a date and time with its time zone, "
                             "like 2026-12-01T23:59:00+01:00") from None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{what} needs a time zone: write it like 2026-12-01T23:59:00+01:00 "
                             "(or ...Z for UTC)")
        return value
    if isinstance(value, date):
        raise ValueError(f"{what} needs a time and a time zone, not a date alone: write it like "
                         "2026-12-01T23:59:00+01:00")
    raise ValueError(f"{what} should be a date and time with its time zone, like 2026-12-01T23:59:00+01:00")


class LatePolicy(_Strict):
    """How a late submission is marked down: ``per_day`` percent of its score for every day or
    part of a day after the due date (the student's extension included), none within
    ``grace_minutes``, and zero for a submission more than ``cutoff_days`` late."""
    per_day: float = Field(0.0, ge=0, le=100, description="percent of the score taken per started day late")
    grace_minutes: float = Field(0.0, ge=0, description="this late still counts as on time")
    cutoff_days: float | None = Field(None, gt=0, description="later than this many days: the score is 0")


# An extension: a new due date for that student, or a number of days added to the assignment's.
Extension = Union[datetime, float]


def _extension(value, what: str):
    if isinstance(value, bool):
        raise ValueError(f"{what} should be a date and time with its time zone, or a number of days")
    if isinstance(value, (int, float)):
        if not value > 0:
            raise ValueError(f"{what} should be a positive number of days")
        return float(value)
    return _aware(value, what)


class TestEntry(_Strict):
    points: float = Field(ge=0)
    visibility: Literal["visible", "hidden", "after_due_date", "after_published"] = "visible"


class Assignment(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    folder: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    files: list[str] = Field(min_length=1)
    suite: str | None = None
    limits: Limits = Limits()
    tests: dict[str, TestEntry] = Field(min_length=1)
    thresholds: dict[str, Any] = {}
    # only in a student course file (autograder release --student-bundle): the public checks'
    # names, and how many tests are shown after the due date (counted, not named)
    checks: list[str] = []
    tests_after_due_date: int = Field(0, ge=0)
    # late submissions (autograder.classroom.late): the due date, the penalty (else the
    # course's), and per student a later due date or days added
    due: datetime | None = None
    late: LatePolicy | None = None
    extensions: dict[str, Extension] = {}

    @field_validator("due", mode="before")
    @classmethod
    def _due(cls, value):
        return None if value is None else _aware(value)

    @field_validator("extensions", mode="before")
    @classmethod
    def _extensions(cls, value):
        if not isinstance(value, dict):
            return value
        return {str(name): _extension(v, f"the extension of {str(name)!r}") for name, v in value.items()}

    @model_validator(mode="after")
    def _late_needs_due(self):
        if self.due is None and (self.late is not None or self.extensions):
            raise ValueError(f"{'late' if self.late is not None else 'extensions'} needs the assignment's "
                             "due date (due: 2026-12-01T23:59:00+01:00)")
        for name, extension in self.extensions.items():
            if isinstance(extension, datetime) and extension <= self.due:
                raise ValueError(f"the extension of {name!r} ({extension.isoformat()}) is not after the due date "
                                 f"({self.due.isoformat()})")
        return self

    @field_validator("tests")
    @classmethod
    def _test_names(cls, tests):
        for name in tests:
            if not name.startswith("test_"):
                raise ValueError(f"test name {name!r} should start with 'test_'")
        return tests

    @property
    def modules(self) -> list[str]:
        return [f[:-3] for f in self.files if f.endswith(".py")]

    @property
    def max_points(self) -> float:
        return sum(t.points for t in self.tests.values())


class Course(_Strict):
    course: str = "course"
    # strict: refuse to grade when a containment layer is missing (autograder doctor says which)
    isolation: Literal["best", "strict"] = "best"
    # the late policy of every assignment with a due date and no policy of its own
    late: LatePolicy = LatePolicy()
    # days added to every due date for these students (an assignment's own entry wins)
    extensions: dict[str, float] = {}
    assignments: list[Assignment] = Field(min_length=1)

    @field_validator("extensions", mode="before")
    @classmethod
    def _extensions(cls, value):
        if not isinstance(value, dict):
            return value
        for name, days in value.items():
            if isinstance(days, bool) or not isinstance(days, (int, float)) or not days > 0:
                raise ValueError(f"the extension of {str(name)!r} should be a positive number of days "
                                 "(a new due date goes in that assignment's extensions)")
        return {str(name): float(days) for name, days in value.items()}

    @model_validator(mode="after")
    def _unique(self):
        for key in ("id", "folder"):
            seen = set()
            for a in self.assignments:
                if getattr(a, key) in seen:
                    raise ValueError(f"two assignments share the {key} {getattr(a, key)!r}")
                seen.add(getattr(a, key))
        return self


class Config:
    """A loaded grading.yml; paths in it are relative to the file's folder."""

    def __init__(self, path: Path, course: Course):
        self.path = path.resolve()
        self.root = self.path.parent
        self.course = course

    @property
    def isolation(self) -> str:
        return self.course.isolation

    @property
    def assignments(self) -> list[Assignment]:
        return list(self.course.assignments)

    def get(self, assignment_id: str) -> Assignment:
        for a in self.course.assignments:
            if a.id == assignment_id:
                return a
        known = ", ".join(a.id for a in self.course.assignments)
        raise ConfigError(f"{self.path.name}: no assignment with id {assignment_id!r} (known: {known})")

    def by_folder(self, folder: str) -> Assignment | None:
        return next((a for a in self.course.assignments if a.folder == folder), None)

    def suite_dir(self, assignment: Assignment) -> Path:
        return self.root / (assignment.suite or f"autograder/suites/{assignment.id}")

    def solution_dir(self, assignment: Assignment) -> Path:
        return self.root / "solutions" / assignment.folder


def _where(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def load(path: str | Path) -> Config:
    path = Path(path)
    name = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{name}: file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{name}: cannot be read ({error})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{name}{where}: not valid YAML ({problem})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: should be a mapping with 'course' and 'assignments'")
    try:
        course = Course.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        got = first.get("input")
        if isinstance(got, date):  # YAML's dates and times: shown as written, not as Python's repr
            got = got.isoformat()
        got_text = "" if isinstance(got, (dict, list)) or first["type"] == "missing" else f" (got {got!r})"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{name}: {_where(first['loc'])}: {message}{got_text}") from None
    return Config(path, course)
