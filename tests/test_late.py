"""Due dates, extensions and the late policy: grading.yml's fields, where a submission's time is
read from (nbgrader's timestamp.txt, Gradescope's metadata, a git commit, file times), the
penalty, and how grade-batch carries it (records, --resume, grades.csv, nbgrader's gradebook).
No grading runs here: the batch is driven by a stand-in executor."""

from __future__ import annotations

import copy
import csv
import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from autograder import config
from autograder.classroom import batch, late, outputs
from autograder.grading.runner import Result
from autograder.grading.runner import TestResult as Case
from tests.example_course import EXAMPLE, GOOD

DUE = "2026-12-01T23:59:00+01:00"
DUE_AT = datetime(2026, 12, 1, 22, 59, tzinfo=timezone.utc)
POLICY = {"per_day": 10, "grace_minutes": 15, "cutoff_days": 5}


def course(**fields) -> config.Config:
    """The example course (its suite stays where it is) with the mini assignment's late fields."""
    data = yaml.safe_load((EXAMPLE / "grading.yml").read_text())
    top = {k: fields.pop(k) for k in ("course_late", "course_extensions") if k in fields}
    data["assignments"][0].update(fields)
    if "course_late" in top:
        data["late"] = top["course_late"]
    if "course_extensions" in top:
        data["extensions"] = top["course_extensions"]
    return config.Config(EXAMPLE / "grading.yml", config.Course.model_validate(data))


def at(minutes_late: float) -> late.Submitted:
    return late.Submitted(DUE_AT + timedelta(minutes=minutes_late), "nbgrader")


def assess(cfg, when: late.Submitted, student="alice", raw=80.0) -> dict:
    return late.assess(cfg, cfg.assignments[0], student, Path("/nonexistent"), raw, 100.0, when)


# --------------------------------------------------------------------------- the policy

@pytest.mark.parametrize("minutes, percent, days", [
    (-600, 0, 0),               # early
    (0, 0, 0),                  # on the minute
    (14, 0, 1),                 # within the grace: a started day, no penalty
    (16, 10, 1),                # past the grace: one started day
    (24 * 60, 10, 1),           # exactly one day
    (24 * 60 + 1, 20, 2),       # a minute into the second day
    (5 * 24 * 60, 50, 5),       # the cutoff itself still counts per day
    (5 * 24 * 60 + 1, 100, 6),  # beyond the cutoff: nothing
])
def test_penalty_per_started_day_grace_and_cutoff(minutes, percent, days):
    entry = assess(course(due=DUE, late=POLICY), at(minutes))
    assert entry["penalty_percent"] == percent and entry["days_late"] == days
    assert entry["raw_score"] == 80 and entry["score"] == pytest.approx(80 * (1 - percent / 100))
    assert entry["penalty_points"] == pytest.approx(80 * percent / 100)
    assert entry["late_by_seconds"] == max(0, round(minutes * 60))


def test_the_record_entry_has_the_documented_keys():
    entry = assess(course(due=DUE, late=POLICY), at(90))
    assert {"submitted", "source", "due", "late_by_seconds", "penalty_percent", "raw_score", "score"} <= entry.keys()
    assert entry["due"] == DUE and entry["source"] == "nbgrader"
    assert entry["submitted"] == "2026-12-02T01:29:00+01:00"   # in the due date's zone
    json.dumps(entry)  # a record is JSON


def test_extensions_in_days_as_a_date_and_for_the_whole_course():
    cfg = course(due=DUE, late=POLICY, extensions={"alice": 2, "bob": "2026-12-04T12:00:00Z"},
                 course_extensions={"carol": 1, "alice": 10})
    two_days = at(2 * 24 * 60 - 5)
    assert assess(cfg, two_days, "alice")["penalty_percent"] == 0           # the assignment's entry wins
    assert assess(cfg, two_days, "alice")["extended"] is True
    assert assess(cfg, two_days, "bob")["penalty_percent"] == 0             # before 2026-12-04 12:00 UTC
    assert assess(cfg, two_days, "carol")["penalty_percent"] == 10          # one day later: 1 day late
    assert assess(cfg, two_days, "dave")["penalty_percent"] == 20
    assert assess(cfg, two_days, "bob")["due"] == "2026-12-04T12:00:00+00:00"


def test_the_course_policy_is_the_default_and_no_policy_means_no_penalty():
    assert assess(course(due=DUE, course_late={"per_day": 25}), at(60))["penalty_percent"] == 25
    entry = assess(course(due=DUE), at(60))
    assert entry["penalty_percent"] == 0 and entry["late_by_seconds"] == 3600   # late, but not marked down
    entry = assess(course(), at(60))
    assert entry["due"] is None and entry["late_by_seconds"] == 0 and entry["submitted"]


def test_no_time_found_is_not_late():
    entry = assess(course(due=DUE, late=POLICY), late.Submitted(None, "none"))
    assert entry["submitted"] is None and entry["penalty_percent"] == 0 and entry["source"] == "none"


# --------------------------------------------------------------------------- grading.yml

@pytest.mark.parametrize("fields, words", [
    ({"due": "2026-12-01T23:59:00"}, ["assignments[0].due", "needs a time zone"]),
    ({"due": "2026-12-01"}, ["assignments[0].due", "not a date alone"]),
    ({"due": 1700000000}, ["assignments[0].due", "time zone"]),
    ({"due": "next friday"}, ["assignments[0].due", "next friday"]),
    ({"late": {"per_day": 10}}, ["assignments[0]", "late needs the assignment's due date"]),
    ({"extensions": {"alice": 2}}, ["assignments[0]", "extensions needs the assignment's due date"]),
    ({"due": DUE, "late": {"per_day": 120}}, ["assignments[0].late.per_day", "120"]),
    ({"due": DUE, "late": {"per_day": 10, "cutoff_days": 0}}, ["assignments[0].late.cutoff_days"]),
    ({"due": DUE, "late": {"per_day": 10, "every": "day"}}, ["assignments[0].late.every", "not permitted"]),
    ({"due": DUE, "extensions": {"alice": -1}}, ["assignments[0].extensions", "'alice'", "positive number of days"]),
    ({"due": DUE, "extensions": {"alice": "2026-12-03T10:00:00"}}, ["'alice'", "needs a time zone"]),
    ({"due": DUE, "extensions": {"alice": "2026-11-30T10:00:00Z"}}, ["'alice'", "not after the due date"]),
])
def test_bad_late_fields_are_named(tmp_path, fields, words):
    data = yaml.safe_load((EXAMPLE / "grading.yml").read_text())
    data["assignments"][0].update(fields)
    path = tmp_path / "grading.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(config.ConfigError) as error:
        config.load(path)
    message = str(error.value)
    assert "\n" not in message and all(w in message for w in words), message


def test_a_naive_due_date_written_as_yaml_is_refused_with_its_text(tmp_path):
    """YAML reads an unquoted 2026-12-01T23:59:00 as a datetime of its own: the error shows it as written."""
    text = (EXAMPLE / "grading.yml").read_text().replace("  - id: mini\n", "  - id: mini\n    due: 2026-12-01T23:59:00\n")
    (tmp_path / "grading.yml").write_text(text)
    with pytest.raises(config.ConfigError, match=r"assignments\[0\]\.due: a due date needs a time zone.*got '2026-12-01T23:59:00'"):
        config.load(tmp_path / "grading.yml")


def test_course_wide_extensions_are_days(tmp_path):
    data = yaml.safe_load((EXAMPLE / "grading.yml").read_text())
    data["extensions"] = {"alice": "2026-12-03T10:00:00Z"}
    (tmp_path / "grading.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(config.ConfigError, match=r"extensions: .*'alice'.*number of days"):
        config.load(tmp_path / "grading.yml")


def test_unquoted_yaml_dates_load(tmp_path):
    text = (EXAMPLE / "grading.yml").read_text().replace(
        "  - id: mini\n", "  - id: mini\n    due: 2026-12-01T23:59:00+01:00\n    late: {per_day: 10}\n"
                          "    extensions: {alice: 2026-12-03T23:59:00+01:00, bob: 1.5}\n")
    (tmp_path / "grading.yml").write_text(text)
    mini = config.load(tmp_path / "grading.yml").assignments[0]
    assert mini.due == DUE_AT and mini.extensions["bob"] == 1.5 and mini.late.per_day == 10


# --------------------------------------------------------------------------- where the time comes from

def test_nbgraders_timestamp_file(tmp_path):
    (tmp_path / "timestamp.txt").write_text("2026-12-02 09:30:00.123456 UTC")
    found = late.submission_time(tmp_path)
    assert found.source == "nbgrader" and found.when == datetime(2026, 12, 2, 9, 30, 0, 123456, tzinfo=timezone.utc)
    (tmp_path / "timestamp.txt").write_text("2026-12-02 09:30:00 Europe/Paris\n")
    assert late.submission_time(tmp_path).when == datetime(2026, 12, 2, 8, 30, tzinfo=timezone.utc)
    from nbgrader.utils import parse_utc  # read as nbgrader reads it

    # (a number as the zone is seconds east of UTC to nbgrader, as here)
    for text in ("2026-12-02 09:30:00.123456 UTC", "2026-12-02 09:30:00 -0700", "2026-12-02T09:30:00",
                 "2026-12-02 09:30:00 Europe/Paris"):
        assert late.parse_utc(text).replace(tzinfo=None) == parse_utc(text), text


def test_gradescope_metadata(tmp_path):
    (tmp_path / "submission_metadata.json").write_text(json.dumps(
        {"id": 1, "created_at": "2026-12-01T15:00:00.5-08:00", "users": [{"name": "Alice"}]}))
    found = late.submission_time(tmp_path)
    assert found.source == "gradescope" and found.when == datetime(2026, 12, 1, 23, 0, 0, 500000, tzinfo=timezone.utc)


def _git(folder: Path, *args: str, date: str | None = None) -> None:
    env = dict(os.environ, GIT_AUTHOR_NAME="s", GIT_AUTHOR_EMAIL="s@x", GIT_COMMITTER_NAME="s",
               GIT_COMMITTER_EMAIL="s@x", GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    subprocess.run(["git", "-C", str(folder), *args], env=env, check=True, capture_output=True)


needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@needs_git
def test_a_git_repositorys_last_commit(tmp_path):
    (tmp_path / "mini.py").write_text(GOOD)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "mini.py")
    _git(tmp_path, "commit", "-q", "-m", "done", date="2026-12-02T08:00:00+01:00")
    found = late.submission_time(tmp_path)
    assert found.source == "git" and found.when == datetime(2026, 12, 2, 7, 0, tzinfo=timezone.utc)


@needs_git
def test_git_runs_no_program_the_repository_names(tmp_path):
    """A repository whose config asks git log to check signatures with a program of its own,
    and to page through another: neither runs."""
    (tmp_path / "mini.py").write_text(GOOD)
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "mini.py")
    _git(tmp_path, "commit", "-q", "-m", "done", date="2026-12-02T08:00:00+01:00")
    ran = tmp_path / "ran"
    program = tmp_path / "evil.sh"
    program.write_text(f"#!/bin/sh\ntouch {ran}\nexit 1\n")
    program.chmod(0o755)
    with open(tmp_path / ".git" / "config", "a") as f:
        f.write(f"[log]\n\tshowSignature = true\n[gpg]\n\tprogram = {program}\n[core]\n\tpager = {program}\n"
                f"\tfsmonitor = {program}\n\thooksPath = {tmp_path}\n")
    found = late.submission_time(tmp_path)
    assert found.source == "git" and not ran.exists()


@needs_git
def test_the_repository_around_a_folder_is_not_the_students(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "x").write_text("x")
    _git(tmp_path, "add", "x")
    _git(tmp_path, "commit", "-q", "-m", "class", date="2020-01-01T00:00:00Z")
    student = tmp_path / "alice"
    student.mkdir()
    (student / "mini.py").write_text(GOOD)
    assert late.submission_time(student).source == "file times"
    (student / ".git").symlink_to(tmp_path / ".git")   # a link to another repository is not followed
    assert late.submission_time(student).source == "file times"


def test_file_times_are_the_last_resort_and_an_empty_folder_has_none(tmp_path):
    (tmp_path / "mini.py").write_text(GOOD)
    moment = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc).timestamp()
    os.utime(tmp_path / "mini.py", (moment, moment))
    found = late.submission_time(tmp_path)
    assert found.source == "file times" and found.when.timestamp() == moment
    empty = tmp_path / "empty"
    empty.mkdir()
    assert late.submission_time(empty) == late.Submitted(None, "none", ())


def test_an_unreadable_source_is_a_note_and_the_next_one_counts(tmp_path):
    (tmp_path / "timestamp.txt").write_text("=cmd|' /C calc'!A0")
    (tmp_path / "submission_metadata.json").write_text("{not json")
    (tmp_path / "mini.py").write_text(GOOD)
    found = late.submission_time(tmp_path)
    assert found.source == "file times"
    assert any("timestamp.txt" in n for n in found.notes) and any("submission_metadata" in n for n in found.notes)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "timestamp.txt").unlink()
    os.mkfifo(tmp_path / "timestamp.txt")   # never waited on
    assert late.submission_time(tmp_path).source == "file times"


# --------------------------------------------------------------------------- grade-batch

def _result(score: float) -> dict:
    tests = [Case("test_double", score, 40.0, "passed" if score == 40 else "failed"),
             Case("test_normalise", 40.0, 40.0, "passed", visibility="hidden")]
    return Result("mini", "x", tests, 0.1, 0).to_dict()


class Fake:
    """Stands in for an executor: every student gets the same grade, nobody is graded for real."""

    def __init__(self):
        self.handed = []

    def run(self, tasks):
        self.handed.append([t.student for t in tasks])
        for t in tasks:
            report = batch.report_folder(Path(t.out), t.student)
            report.mkdir(parents=True, exist_ok=True)
            (report / "feedback.md").write_text("# Feedback: mini\n")
            yield t, {"status": "graded", "reason": "", "result": _result(40.0)}

    def close(self):
        pass


def _class(tmp_path: Path) -> list[tuple[str, Path]]:
    folders = []
    for name, stamp in (("alice", "2026-12-01 22:00:00 UTC"), ("bob", "2026-12-03 10:00:00 UTC")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mini.py").write_text(GOOD)
        (tmp_path / name / "timestamp.txt").write_text(stamp)
        folders.append((name, tmp_path / name))
    return folders


def test_the_batch_records_the_penalty_and_resume_updates_it_without_grading(tmp_path):
    folders, out, fake = _class(tmp_path), tmp_path / "out", Fake()
    cfg = course(due=DUE, late=POLICY)
    done = batch.grade_students(cfg, cfg.assignments[0], folders, out, executor=fake)
    assert done.late["alice"]["penalty_percent"] == 0 and done.late["bob"]["penalty_percent"] == 20
    record = batch.read_record(out / batch.RECORDS, "bob")
    assert record["late"]["score"] == 64 and record["late"]["source"] == "nbgrader"
    assert "late penalty 20 %" in (batch.report_folder(out, "bob") / "feedback.md").read_text()
    # bob gets an extension: --resume keeps the grade, works the penalty out again
    later = course(due=DUE, late=POLICY, extensions={"bob": 2})
    again = batch.grade_students(later, later.assignments[0], folders, out, executor=fake, resume=True)
    assert fake.handed[-1] == [] and again.kept == ["alice", "bob"]
    assert again.late["bob"]["penalty_percent"] == 0 and again.late["bob"]["extended"]
    assert batch.read_record(out / batch.RECORDS, "bob")["late"]["penalty_percent"] == 0
    feedback = (batch.report_folder(out, "bob") / "feedback.md").read_text()
    assert "on time" in feedback and feedback.count("## Submission time") == 1
    # grades.csv: score after the penalty, the raw score and where the time came from
    outputs.write_grades_csv(done.rows, out / "grades.csv", ["test_double", "test_normalise"], late=done.late)
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert rows["bob"]["score"] == "64" and rows["bob"]["raw_score"] == "80" and rows["bob"]["late_penalty"] == "16"
    assert rows["bob"]["late_percent"] == "20" and rows["bob"]["days_late"] == "2"
    assert rows["bob"]["timestamp_source"] == "nbgrader" and rows["bob"]["submitted"].startswith("2026-12-03T11:00:00")
    assert rows["alice"]["score"] == "80" and rows["alice"]["late_penalty"] == "0"
    assert "late: -20%" in outputs.batch_table(done.rows, done.late)


def test_the_gradebook_gets_timestamps_due_date_extension_and_penalty(tmp_path):
    from nbgrader.api import Gradebook

    from autograder.classroom import gradebook

    cfg = course(due=DUE, late=POLICY, extensions={"alice": 1})
    mini = cfg.assignments[0]
    results = {"alice": batch.result_from_dict(_result(40.0)), "bob": batch.result_from_dict(_result(40.0))}
    entries = {"alice": assess(cfg, at(60), "alice"), "bob": assess(cfg, at(60), "bob")}
    database = tmp_path / "gradebook.db"
    assert gradebook.export(database, mini, results, entries) == {}
    with Gradebook(f"sqlite:///{database}") as book:
        assert book.find_assignment("mini").duedate == datetime(2026, 12, 1, 22, 59)
        alice, bob = book.find_submission("mini", "alice"), book.find_submission("mini", "bob")
        assert bob.timestamp == datetime(2026, 12, 1, 23, 59) and alice.extension == timedelta(days=1)
        assert bob.score == 80 and bob.late_submission_penalty == 8 and alice.late_submission_penalty == 0
    done = subprocess.run(["nbgrader", "export", "--to", str(tmp_path / "export.csv"),
                           f"--CourseDirectory.db_url=sqlite:///{database}"], cwd=tmp_path, capture_output=True, text=True)
    if done.returncode == 0:  # nbgrader's own export subtracts the penalty
        rows = {r["student_id"]: r for r in csv.DictReader((tmp_path / "export.csv").open())}
        assert float(rows["bob"]["score"]) == 72 and float(rows["bob"]["late_submission_penalty"]) == 8
