"""grading.yml: the course file, validated on load.

A bad file is reported as one line naming the file, the field and what is wrong:

    grading.yml: assignments[0].tests.test_kl.points: should be >= 0 (got -5)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

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
    assignments: list[Assignment] = Field(min_length=1)

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
        got_text = "" if isinstance(got, (dict, list)) or first["type"] == "missing" else f" (got {got!r})"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{name}: {_where(first['loc'])}: {message}{got_text}") from None
    return Config(path, course)
