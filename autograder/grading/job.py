"""The contract between the runner, the judge and the worker, as types.

* ``Job``: what the runner asks the judge to do (written as ``job.json`` in the grading's
  private folder, read by the judge's plugin and its sandbox). Frozen and validated: a
  field the plugin does not know, or a missing one, is an error, not a silent default.
* The judge's report travels back on a pipe the runner made and the worker never holds
  (``--kit-results-fd``), one JSON object a line: ``{"collected": [nodeid, ...]}`` first,
  then one ``{"case": CaseOutcome}`` per test phase that decided something, and
  ``{"isolation": {layer: state}}``. :class:`Outcomes` reads it and believes only what can
  be true: cases of collected tests, each once, credit within [0, 1].
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from autograder.config import Limits


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Job(_Frozen):
    submission: str                 # the student's folder (never written)
    workdir: str                    # private to this grading: the worker's scratch copy, its log
    probes: str                     # the suite's probes.py
    modules: list[str]              # the submission's modules, imported first
    limits: Limits
    seed: int
    thresholds: dict[str, Any]
    artifacts: str                  # an absolute folder: feedback pictures land here
    only: list[str] = []
    policy: dict[str, Any]          # autograder.sandbox.containment.Policy.to_dict()
    runner: int = 0                 # the pid that started the judge: the judge ends with it
    secret: str = ""                # keys the grading's hidden data variants (autograder.grading.runner.grading_secret)

    @field_validator("artifacts", "submission", "workdir", "probes")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not Path(value).is_absolute():
            raise ValueError(f"{value!r} should be an absolute path (the judge runs in another folder)")
        return value

    def write(self, path: Path) -> None:
        # json.dumps, not model_dump_json: a folder name that is not UTF-8 (os.fsdecode gives it
        # lone surrogates) is still a legal path, and ASCII escapes carry it through unchanged
        path.write_text(json.dumps(self.model_dump(mode="json")))

    @classmethod
    def read(cls, path: str | Path) -> "Job":
        return cls.model_validate(json.loads(Path(path).read_text()))


class CaseOutcome(_Frozen):
    nodeid: str
    when: Literal["setup", "call", "teardown"]
    outcome: Literal["passed", "failed", "error", "skipped"]
    fraction: float = Field(ge=0.0, le=1.0)
    message: str = ""
    detail: str = ""
    duration: float = Field(0.0, ge=0.0)
    artifacts: list[str] = []
    notes: list[str] = []
    # what went wrong in the student's code, when a StudentError decided the case
    fault: Literal["", "import", "raised", "value", "timeout", "memory", "crash", "channel", "output"] = ""

    @property
    def test(self) -> str:
        """The test function's name, from the node id pytest gave it (never from the sender)."""
        return self.nodeid.split("::")[-1].split("[", 1)[0]


class Outcomes:
    """What the judge reported, believed only where it can be true; ``problems`` lists the rest."""

    def __init__(self):
        self.collected: set[str] | None = None
        self.cases: list[CaseOutcome] = []
        self.isolation: dict[str, str] = {}
        self.problems: list[str] = []
        self._seen: set[tuple[str, str]] = set()
        self._partial = b""

    def feed(self, data: bytes) -> list[CaseOutcome]:
        """Take a chunk read from the pipe; return the cases completed by it (for progress)."""
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        new = []
        for line in lines:
            case = self._line(line)
            if case is not None:
                new.append(case)
        return new

    def _line(self, line: bytes) -> CaseOutcome | None:
        try:
            message = json.loads(line)
        except ValueError:
            self.problems.append(f"the judge's report has a line that is not JSON: {line[:80]!r}")
            return None
        if not isinstance(message, dict) or len(message) != 1:
            self.problems.append(f"the judge's report has an unknown line: {str(message)[:80]}")
            return None
        (kind, body), = message.items()
        if kind == "collected" and self.collected is None and isinstance(body, list):
            self.collected = {str(n) for n in body}
        elif kind == "isolation" and isinstance(body, dict):
            self.isolation = {str(k): str(v) for k, v in body.items()}
        elif kind == "case":
            return self._case(body)
        else:
            self.problems.append(f"the judge's report has an unexpected {kind!r} line")
        return None

    def _case(self, body) -> CaseOutcome | None:
        if isinstance(body, dict) and isinstance(body.get("fraction"), (int, float)):
            fraction = float(body["fraction"])
            if not 0.0 <= fraction <= 1.0:
                self.problems.append(f"{body.get('nodeid')}: credit {fraction!r} is outside [0, 1]; clamped")
                body = {**body, "fraction": min(1.0, max(0.0, fraction)) if math.isfinite(fraction) else 0.0}
        try:
            case = CaseOutcome.model_validate(body)
        except ValidationError as error:
            self.problems.append(f"the judge's report has a malformed case: {error.errors()[0]['msg']}")
            return None
        if self.collected is None or case.nodeid not in self.collected:
            self.problems.append(f"{case.nodeid}: reported but never collected; ignored")
            return None
        if (case.nodeid, case.when) in self._seen:
            self.problems.append(f"{case.nodeid}: reported twice for its {case.when}; the second ignored")
            return None
        self._seen.add((case.nodeid, case.when))
        self.cases.append(case)
        return case
