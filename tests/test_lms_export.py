"""`autograder export grades`: a batch's scores as Canvas's and Moodle's gradebook imports and
the kit's own CSV, read back by readers written from each format's documentation; roster
mismatches listed; hostile names (formula-like, not UTF-8) harmless. The batch is made of
records, as grade-batch leaves them: nothing is graded here."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from autograder.classroom import batch
from autograder.classroom.lms_export import ExportError, export
from autograder.cli import main
from autograder.grading.runner import Result
from autograder.grading.runner import TestResult as Case
from tests.example_course import EXAMPLE

HOSTILE = "=cmd|' /C calc'!A0"
NOT_UTF8 = os.fsdecode(b"b\xe9atrice")   # a Latin-1 folder name: a lone surrogate in Python


def _record(out: Path, name: str, score: float | None, late: dict | None = None, status: str = "graded") -> None:
    result = None if score is None else Result("mini", name, [Case("test_double", score, 40.0, "passed"),
                                                              Case("test_device", 60.0, 60.0, "passed")], 0.1, 0).to_dict()
    batch.write_record(out / batch.RECORDS, name, {"status": status if score is not None else "refused",
                                                   "reason": "", "result": result, "late": late})


@pytest.fixture
def graded(tmp_path) -> Path:
    out = tmp_path / "batch"
    _record(out, "alice", 40.0)
    _record(out, "bob", 40.0, late={"score": 80.0, "raw_score": 100.0, "penalty_percent": 20, "penalty_points": 20.0})
    _record(out, "carol", None)                          # refused: no score to give
    _record(out, HOSTILE, 20.0)
    _record(out, NOT_UTF8, 10.0)
    _record(out, "zed", 30.0)                            # not in the roster
    return out


@pytest.fixture
def roster(tmp_path) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text("folder,name,id,sis_user_id,sis_login_id,section,email,username,idnumber\n"
                    "alice,\"Liddell, Alice\",101,S1,alice@uni,Sec A,alice@uni.edu,alice,A1\n"
                    "bob,\"Builder, Bob\",102,S2,bob@uni,Sec A,bob@uni.edu,bob,B2\n"
                    "carol,\"Carol, C\",103,S3,carol@uni,Sec B,carol@uni.edu,carol,C3\n"
                    f"\"{HOSTILE.replace(chr(34), chr(34) * 2)}\",\"=HYPERLINK(1)\",104,S4,x@uni,Sec B,x@uni.edu,x,X4\n"
                    "b\\xe9atrice,\"Beatrice, B\",105,S5,bea@uni,Sec B,bea@uni.edu,bea,E5\n"
                    "dave,\"Dave, D\",106,S6,dave@uni,Sec B,dave@uni.edu,dave,D6\n", encoding="utf-8")
    return path


# Readers written from each LMS's documentation, not from the writer.

def read_canvas(path: Path) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
    """Canvas gradebook import: a header Student, ID, SIS User ID, SIS Login ID, Section, then
    assignment columns; an optional 'Points Possible' row; students matched by ID, SIS User ID
    or SIS Login ID."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert header[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    points, students = {}, {}
    for row in rows[1:]:
        assert len(row) == len(header)
        cells = dict(zip(header, row))
        if row[0] == "Points Possible":
            points = {h: float(cells[h]) for h in header[5:]}
            continue
        key = cells["ID"] or cells["SIS User ID"] or cells["SIS Login ID"]
        assert key, row
        students[key] = cells
    return points, students


def read_moodle(path: Path, map_from: str) -> dict[str, dict[str, str]]:
    """Moodle's CSV grade import: a header row, one row per user; one column identifies the
    user (the "Map from" column), grade columns map to grade items."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return {row[map_from]: row for row in rows}


def test_canvas_import(graded, roster, tmp_path, capsys):
    out = tmp_path / "canvas.csv"
    done = export(graded, out, "canvas", roster, column="VAE (4242)")
    points, students = read_canvas(out)
    assert points == {"VAE (4242)": 100.0}
    assert students["101"]["VAE (4242)"] == "100" and students["101"]["Student"] == "Liddell, Alice"
    assert students["102"]["VAE (4242)"] == "80"                    # after the late penalty
    assert students["103"]["VAE (4242)"] == ""                      # refused: blank changes nothing
    assert students["104"]["Student"] == "'=HYPERLINK(1)" and students["104"]["VAE (4242)"] == "80"
    assert students["105"]["VAE (4242)"] == "70"                    # the roster names the folder as it is shown
    assert done.not_in_roster == ["zed"] and done.not_graded == ["dave"] and done.unscored == ["carol"]
    assert "106" not in students and "zed" not in out.read_text()


def test_moodle_import(graded, roster, tmp_path):
    out = tmp_path / "moodle.csv"
    export(graded, out, "moodle", roster)
    by_email = read_moodle(out, "Email address")
    assert by_email["alice@uni.edu"]["mini"] == "100" and by_email["bob@uni.edu"]["mini"] == "80"
    assert by_email["alice@uni.edu"]["Username"] == "alice" and by_email["alice@uni.edu"]["ID number"] == "A1"
    assert set(read_moodle(out, "Username")) == {"alice", "bob", "carol", "x", "bea"}


def test_without_a_roster_the_folder_name_identifies(graded, tmp_path):
    out = tmp_path / "canvas.csv"
    export(graded, out, "canvas")
    _, students = read_canvas(out)
    assert students["alice"]["mini"] == "100"
    assert students["'" + HOSTILE]["Student"] == "'" + HOSTILE      # a formula is text to a spreadsheet
    assert "b\\xe9atrice" in students                                  # not UTF-8: shown escaped, never a crash
    out.read_bytes().decode("utf-8")


def test_the_kits_csv_keeps_everyone(graded, roster, tmp_path):
    out = tmp_path / "grades.csv"
    export(graded, out, "csv", roster)
    rows = {r["student"]: r for r in csv.DictReader(out.open(encoding="utf-8"))}
    assert rows["bob"]["score"] == "80" and rows["bob"]["raw_score"] == "100" and rows["bob"]["late_penalty"] == "20"
    assert rows["zed"]["score"] == "90" and rows["zed"]["email"] == ""   # graded, not in the roster: still here
    assert rows["carol"]["score"] == "" and rows["carol"]["status"] == "refused"
    assert all(not v.startswith(("=", "+", "@")) for r in rows.values() for v in r.values())


def test_the_command_lists_who_is_missing_where(graded, roster, tmp_path, capsys):
    code = main(["--config", str(EXAMPLE / "grading.yml"), "export", "grades", "--format", "canvas",
                 "--out", str(tmp_path / "c.csv"), str(graded), "--roster", str(roster)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "graded but not in the roster (1" in printed and "zed" in printed
    assert "in the roster but not graded (1" in printed and "dave" in printed
    assert "no score to export (1" in printed and "carol" in printed


@pytest.mark.parametrize("roster_text, words", [
    ("name,id\nAlice,1\n", ["needs a 'folder' column"]),
    ("folder,colour\nalice,blue\n", ["unknown roster column", "colour"]),
    ("folder,id\nalice,1\nalice,2\n", ["line 3", "twice"]),
    ("folder,id\n,1\n", ["line 2", "no folder name"]),
])
def test_bad_rosters_are_one_line(graded, tmp_path, capsys, roster_text, words):
    (tmp_path / "r.csv").write_text(roster_text)
    code = main(["--config", str(EXAMPLE / "grading.yml"), "export", "grades", "--format", "moodle",
                 "--out", str(tmp_path / "m.csv"), str(graded), "--roster", str(tmp_path / "r.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0 and all(w in err for w in words), err


def test_not_a_batch_folder_and_a_missing_option(tmp_path, capsys):
    with pytest.raises(ExportError, match="not a grade-batch output folder"):
        export(tmp_path, tmp_path / "x.csv", "csv")
    assert main(["--config", str(EXAMPLE / "grading.yml"), "export", "grades", "--out", str(tmp_path / "x.csv"),
                 str(tmp_path)]) == 2
    assert "--format" in capsys.readouterr().err
    assert main(["--config", str(EXAMPLE / "grading.yml"), "export", "github", "--out", str(tmp_path / "w")]) == 2
    assert "--assignment" in capsys.readouterr().err
