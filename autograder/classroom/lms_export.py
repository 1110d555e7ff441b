"""A graded batch's scores as a file a learning management system imports.

    autograder export grades --format canvas|moodle|csv --out FILE BATCH_OUT [--roster ROSTER.csv]

The scores are read from the batch's records (``BATCH_OUT/.records``, what ``--resume`` trusts),
after any late penalty (autograder.classroom.late). A student the grading could not score
(refused, grader error) gets no score: a blank cell changes nothing in either LMS.

Formats, as each LMS documents its import:

- ``canvas``: Canvas's gradebook CSV: ``Student`` (the display name), ``ID`` (Canvas user
  id), ``SIS User ID``, ``SIS Login ID``, ``Section``, then one column per assignment named
  ``Name (assignment id)``, which Canvas matches to an existing assignment (a name alone makes
  a new one), and a second row ``Points Possible``. Canvas finds each student by ``ID``, ``SIS
  User ID`` or ``SIS Login ID``: the roster must give one of them.
- ``moodle``: Moodle's "Import grades from CSV file": a header row and one row per student;
  on import, "Map from" a column that identifies users (``Email address``, ``Username`` or
  ``ID number``) "Map to" the matching user field (useremail, username, useridnumber), and the
  grade column to the grade item.
- ``csv``: the kit's own: folder name, the roster's columns, score, max_score, raw_score,
  late_penalty, status.

The roster (``--roster``) is a CSV with a header; ``folder`` (the student's folder name in the
batch: their nbgrader id, their repository's name) is required, and any of ``name``, ``id``,
``sis_user_id``, ``sis_login_id``, ``section``, ``email``, ``username``, ``idnumber`` fill the
LMS's columns. Without a roster the folder name stands for ``SIS Login ID`` (Canvas) and
``Username`` (Moodle). Students on one side only (in the roster but not graded; graded but not
in the roster) are listed; a graded student missing from the roster is left out of a Canvas
or Moodle file, since the LMS could not tell who they are.

Every text cell (a folder name, a roster field) goes through ``escape.spreadsheet_cell``; a
folder name that is not UTF-8 is written as ``escape.student_name`` shows it, and a roster
``folder`` may name it either way.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from autograder.classroom.batch import RECORDS, result_from_dict
from autograder.escape import one_line, spreadsheet_cell, student_name

FORMATS = ("canvas", "moodle", "csv")
ROSTER_FIELDS = ("folder", "name", "id", "sis_user_id", "sis_login_id", "section", "email", "username", "idnumber")
CANVAS_HEADER = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_HEADER = ["Full name", "Username", "ID number", "Email address"]
MAX_RECORD_BYTES = 64 << 20


class ExportError(Exception):
    """A batch folder or roster that cannot be exported; the message is one line."""


@dataclass
class Graded:
    """One student of the batch: the folder name, and their score (None: no score to give)."""
    folder: str
    score: float | None
    max_score: float | None
    raw_score: float | None
    late_penalty: float
    status: str


@dataclass
class Export:
    lines: list[str] = field(default_factory=list)      # what to print
    not_in_roster: list[str] = field(default_factory=list)
    not_graded: list[str] = field(default_factory=list)
    unscored: list[str] = field(default_factory=list)


def read_batch(batch_out: Path) -> tuple[str, list[Graded]]:
    """The assignment id and every student's score from a grade-batch ``--out`` folder."""
    records = Path(batch_out) / RECORDS
    if not records.is_dir():
        raise ExportError(f"{batch_out}: not a grade-batch output folder (no {RECORDS}/ in it)")
    students, assignments = {}, set()
    for path in sorted(records.glob("*.json")):
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_RECORD_BYTES:
                continue
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a half-written or foreign file is no record (the batch reads them the same way)
        if not isinstance(record, dict) or not isinstance(record.get("student"), str):
            continue
        name, result = record["student"], None
        try:
            result = result_from_dict(record["result"]) if record.get("result") else None
        except (KeyError, TypeError):
            result = None
        late = record.get("late") if isinstance(record.get("late"), dict) else {}
        if result is None:
            students[name] = Graded(name, None, None, None, 0.0, str(record.get("status", "")))
            continue
        assignments.add(result.assignment)
        score = late.get("score")
        score = float(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else result.score
        students[name] = Graded(name, score, result.max_score, result.score, round(result.score - score, 6),
                                str(record.get("status", "")))
    if not students:
        raise ExportError(f"{records}: no student's record in it")
    if len(assignments) > 1:
        raise ExportError(f"{batch_out}: records of several assignments ({', '.join(sorted(assignments))})")
    return (assignments.pop() if assignments else ""), [students[n] for n in sorted(students)]


def read_roster(path: Path) -> dict[str, dict[str, str]]:
    """The roster's rows by ``folder``; raises ExportError naming the line of a bad one."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ExportError(f"{path}: cannot be read as UTF-8 text ({type(error).__name__})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "folder" not in header:
        raise ExportError(f"{path}: the roster needs a 'folder' column (the student's folder name in the batch); "
                          f"its columns may be {', '.join(ROSTER_FIELDS)}")
    unknown = [h for h in header if h not in ROSTER_FIELDS]
    if unknown:
        raise ExportError(f"{path}: unknown roster column(s) {', '.join(unknown)} (known: {', '.join(ROSTER_FIELDS)})")
    roster: dict[str, dict[str, str]] = {}
    for number, row in enumerate(reader, start=2):
        values = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key is not None}
        folder = values.get("folder", "")
        if not folder:
            raise ExportError(f"{path} line {number}: no folder name")
        if folder in roster:
            raise ExportError(f"{path} line {number}: the folder {one_line(folder, 80)!r} is in the roster twice")
        roster[folder] = values
    return roster


def _text(value: str) -> str:
    return spreadsheet_cell(one_line(value, 200)) if value else ""


def _points(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _match(graded: list[Graded], roster: dict[str, dict[str, str]] | None, result: Export) -> list[tuple[Graded, dict]]:
    """Each graded student with their roster row (a row named by the folder or by how it is shown)."""
    if roster is None:
        return [(g, {}) for g in graded]
    pairs, used = [], set()
    for g in graded:
        key = g.folder if g.folder in roster else student_name(g.folder) if student_name(g.folder) in roster else None
        if key is None:
            result.not_in_roster.append(g.folder)
            continue
        used.add(key)
        pairs.append((g, roster[key]))
    result.not_graded = [folder for folder in roster if folder not in used]
    return pairs


def export(batch_out: Path, out: Path, fmt: str, roster_path: Path | None = None, column: str | None = None) -> Export:
    """Write ``out`` in ``fmt`` from the batch at ``batch_out``; what to print and who is missing where."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})")
    assignment, graded = read_batch(batch_out)
    roster = read_roster(roster_path) if roster_path is not None else None
    result = Export()
    pairs = _match(graded, roster, result)
    result.unscored = [g.folder for g, _ in pairs if g.score is None]
    column = column or assignment or "score"
    most = max((g.max_score for g in graded if g.max_score is not None), default=None)
    rows: list[list[str]] = []
    if fmt == "canvas":
        rows.append(CANVAS_HEADER + [_text(column)])
        rows.append(["Points Possible", "", "", "", "", _points(most)])
        for g, who in pairs:
            login = who.get("sis_login_id") or ("" if roster is not None else student_name(g.folder))
            if roster is not None and not (who.get("id") or who.get("sis_user_id") or who.get("sis_login_id")):
                result.lines.append(f"note: {student_name(g.folder, 80)} has no id, sis_user_id or sis_login_id in the "
                                    "roster: Canvas cannot match the row")
            rows.append([_text(who.get("name") or student_name(g.folder)), _text(who.get("id", "")),
                         _text(who.get("sis_user_id", "")), _text(login), _text(who.get("section", "")),
                         _points(g.score)])
    elif fmt == "moodle":
        rows.append(MOODLE_HEADER + [_text(column)])
        for g, who in pairs:
            username = who.get("username") or ("" if roster is not None else student_name(g.folder))
            rows.append([_text(who.get("name") or student_name(g.folder)), _text(username),
                         _text(who.get("idnumber", "")), _text(who.get("email", "")), _points(g.score)])
    else:
        extra = [f for f in ROSTER_FIELDS[1:] if roster is not None]
        rows.append(["student", *extra, "assignment", "score", "max_score", "raw_score", "late_penalty", "status"])
        everyone = pairs + [(g, {}) for g in graded if g.folder in result.not_in_roster]
        for g, who in sorted(everyone, key=lambda pair: pair[0].folder):
            rows.append([_text(student_name(g.folder)), *[_text(who.get(f, "")) for f in extra], _text(assignment),
                         _points(g.score), _points(g.max_score), _points(g.raw_score),
                         _points(g.late_penalty) if g.score is not None else "", g.status])
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    written = sum(1 for g, _ in pairs if g.score is not None)
    result.lines.insert(0, f"wrote {out} ({fmt}): {written} score(s) of {assignment or 'the batch'}"
                           + (f", out of {most:g} points" if most is not None else ""))
    shown = lambda names: ", ".join(student_name(n, 60) for n in names)  # noqa: E731
    if result.not_in_roster:
        left = "left out: the LMS could not tell who they are" if fmt != "csv" else "written without roster fields"
        result.lines.append(f"graded but not in the roster ({len(result.not_in_roster)}, {left}): "
                            f"{shown(result.not_in_roster)}")
    if result.not_graded:
        result.lines.append(f"in the roster but not graded ({len(result.not_graded)}, no row): {shown(result.not_graded)}")
    if result.unscored:
        result.lines.append(f"no score to export ({len(result.unscored)}: refused or a grader error, left blank): "
                            f"{shown(result.unscored)}")
    return result
