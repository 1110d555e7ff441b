"""Durable, resumable batches: every grade is kept as it arrives, and ``--resume``
grades only the students whose grade is missing or out of date.

The end-to-end test kills the CLI with SIGKILL in the middle of a class, resumes it, then
changes one submission and resumes again; the unit tests pin what the resume key holds.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.classroom import batch, outputs
from autograder.grading import runner
from tests.example_course import CONFIG, EXAMPLE, GOOD, MINI, cmdline, descendants, replace_function, still_running_after

CLASS = {
    "alice": GOOD,
    "bob": GOOD.replace("return 2 * x", "return 3 * x"),   # 60 points
    "carol": "def double(:\n",                             # import error
    "dave": GOOD,
}
EXPECTED = {"alice": "100", "bob": "60", "carol": "0", "dave": "100"}


def make_class(root: Path) -> Path:
    for name, source in CLASS.items():
        (root / name).mkdir(parents=True)
        (root / name / "mini.py").write_text(source)
    return root


def batch_command(root: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "autograder.cli", "--config", str(EXAMPLE / "grading.yml"), "grade-batch",
            str(root), "--assignment", "mini", "--jobs", "1", "--out", str(out), *extra]


def records(out: Path) -> dict[str, dict]:
    found = [json.loads(p.read_text()) for p in (out / batch.RECORDS).glob("*.json")]
    return {r["student"]: r for r in found}


def scores(out: Path) -> dict[str, str]:
    return {r["student"]: r["score"] for r in csv.DictReader((out / "grades.csv").open())}


def test_kill_9_mid_batch_then_resume_regrades_nobody_already_done(tmp_path):
    root, out = make_class(tmp_path / "class"), tmp_path / "grades"
    cli = subprocess.Popen(batch_command(root, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while len(records(out) if (out / batch.RECORDS).is_dir() else {}) < 2 and cli.poll() is None:
            time.sleep(0.2)
    finally:
        cli.send_signal(signal.SIGKILL)
        cli.wait()
    before = records(out)
    assert 2 <= len(before) < len(CLASS), "the batch was to be killed half way"
    assert not (out / "grades.csv").exists()  # it never reached its end
    assert not list((out / batch.RECORDS).glob(".*.tmp"))  # no half-written record left in place

    resumed = subprocess.run(batch_command(root, out, "--resume"), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"kept {len(before)} grade(s)" in resumed.stderr
    after = records(out)
    assert set(after) == set(CLASS)
    for name, record in before.items():  # not graded again: the very record of the killed run
        assert after[name] == record
    assert scores(out) == EXPECTED

    # a changed submission is graded again on resume; the others are kept
    (root / "bob" / "mini.py").write_text(GOOD)
    again = subprocess.run(batch_command(root, out, "--resume"), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    final = records(out)
    assert final["bob"]["run"] != after["bob"]["run"] and final["bob"]["status"] == "graded"
    assert all(final[n] == after[n] for n in CLASS if n != "bob")
    assert scores(out) == {**EXPECTED, "bob": "100"}


# --------------------------------------------------------------------------- the resume key


def test_submission_hash_sees_content_and_names(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "mini.py").write_text(GOOD)
    first = batch.submission_hash(folder, MINI)
    assert batch.submission_hash(folder, MINI) == first
    (folder / "mini.py").write_text(GOOD + "\n")
    assert batch.submission_hash(folder, MINI) != first
    (folder / "mini.py").write_text(GOOD)
    (folder / "notes.txt").write_text("")
    assert batch.submission_hash(folder, MINI) != first


def test_submission_hash_tells_apart_what_separators_would_merge(tmp_path):
    """A file's bytes may hold a separator and the next file's name: with lengths in the key,
    {vae.py: X, vae.pz: Y} and {vae.py: X + NUL + "vae.pz" + NUL + Y} are two submissions."""
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir(), one.mkdir()
    (two / "mini.py").write_bytes(b"X")
    (two / "mini.pz").write_bytes(b"Y")
    (one / "mini.py").write_bytes(b"X\0mini.pz\0Y")
    assert batch.submission_hash(one, MINI) != batch.submission_hash(two, MINI)
    empty_folder, empty_file = tmp_path / "f", tmp_path / "g"
    (empty_folder / "a").mkdir(parents=True)
    empty_file.mkdir()
    (empty_file / "a").write_bytes(b"")
    assert batch.submission_hash(empty_folder, MINI) != batch.submission_hash(empty_file, MINI)


def test_grading_hash_sees_the_engine_and_kitdata_code(tmp_path, monkeypatch):
    """A fixed metric or judge check regrades: the key hashes the code a grade depends on."""
    import shutil

    import kitdata

    code = tmp_path / "kitdata"
    shutil.copytree(Path(kitdata.__file__).parent, code, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(batch, "CODE", (code,))
    base = batch.grading_hash(CONFIG, MINI, 0, None)
    metrics = code / "metrics.py"
    metrics.write_text(metrics.read_text() + "\n# a fix\n")
    assert batch.grading_hash(CONFIG, MINI, 0, None) != base


def test_grading_hash_sees_the_grading_secret(monkeypatch):
    monkeypatch.delenv(runner.SECRET_VARIABLE, raising=False)
    base = batch.grading_hash(CONFIG, MINI, 0, None)
    monkeypatch.setenv(runner.SECRET_VARIABLE, "another course's")
    assert batch.grading_hash(CONFIG, MINI, 0, None) != base


def test_grading_hash_sees_seed_tests_and_suite(tmp_path):
    base = batch.grading_hash(CONFIG, MINI, 0, None)
    assert batch.grading_hash(CONFIG, MINI, 0, None) == base
    assert batch.grading_hash(CONFIG, MINI, 1, None) != base
    assert batch.grading_hash(CONFIG, MINI, 0, ["test_double"]) != base
    changed = MINI.model_copy(update={"thresholds": {"tolerance": 1.0}})
    assert batch.grading_hash(CONFIG, changed, 0, None) != base

    import shutil

    from autograder import config as config_module

    course = tmp_path / "course"
    shutil.copytree(EXAMPLE, course)
    copy = config_module.load(course / "grading.yml")
    assert batch.grading_hash(copy, copy.get("mini"), 0, None) == base
    suite_file = course / "suite" / "test_mini.py"
    suite_file.write_text(suite_file.read_text() + "\n# changed\n")
    assert batch.grading_hash(copy, copy.get("mini"), 0, None) != base


def test_records_are_whole_or_absent(tmp_path):
    records_dir = tmp_path / batch.RECORDS
    batch.write_record(records_dir, "alice", {"status": "graded", "reason": "", "result": None, "key": {"a": 1}})
    assert batch.read_record(records_dir, "alice")["key"] == {"a": 1}
    assert [p for p in records_dir.iterdir()] == [batch.record_path(records_dir, "alice")]
    batch.record_path(records_dir, "bob").write_text('{"status": "gra')  # torn by hand: read as no record
    assert batch.read_record(records_dir, "bob") is None
    assert batch.read_record(records_dir, "carol") is None


def test_any_legal_name_has_a_record_of_its_own(tmp_path):
    """A 251-byte name once made the record's temporary name too long (every --resume failed at
    that student); names that differ only by an invisible character are two records."""
    records_dir = tmp_path / batch.RECORDS
    names = ["a" * 251, "alice", "alice\u200b", "alice ", "-rf", "..x", "grades.csv"]
    for n, name in enumerate(names):
        batch.write_record(records_dir, name, {"status": "graded", "reason": str(n), "result": None, "key": {}})
    assert [batch.read_record(records_dir, name)["reason"] for name in names] == [str(n) for n in range(len(names))]
    assert len(list(records_dir.iterdir())) == len(names)


def test_resume_keeps_only_matching_records(tmp_path, monkeypatch):
    """grade_students with a fake executor: which students it hands out, with and without --resume."""
    folders = []
    for name in ("alice", "bob"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mini.py").write_text(GOOD)
        folders.append((name, tmp_path / name))
    handed: list[list[str]] = []

    class Fake:
        def run(self, tasks):
            handed.append([t.student for t in tasks])
            for t in tasks:
                yield t, {"status": "refused", "reason": f"fake {t.student}", "result": None}

        def close(self):
            pass

    out = tmp_path / "out"
    first = batch.grade_students(CONFIG, MINI, folders, out, executor=Fake())
    assert [r[0] for r in first.rows] == ["alice", "bob"] and first.graded and not first.kept
    batch.grade_students(CONFIG, MINI, folders, out, executor=Fake(), resume=True)
    assert handed[-1] == []
    batch.grade_students(CONFIG, MINI, folders, out, executor=Fake(), resume=True, seed=3)
    assert handed[-1] == ["alice", "bob"]  # another seed: another grading
    (tmp_path / "alice" / "mini.py").write_text(GOOD + "# edited\n")
    again = batch.grade_students(CONFIG, MINI, folders, out, executor=Fake(), resume=True, seed=3)
    assert handed[-1] == ["alice"] and again.kept == ["bob"]
    batch.grade_students(CONFIG, MINI, folders, out, executor=Fake(), seed=3)
    assert handed[-1] == ["alice", "bob"]  # without --resume every student is graded


def test_result_round_trips_through_its_dict():
    from autograder.grading.runner import Result, TestResult

    result = Result("mini", "/x", [TestResult("test_a", 1.5, 2.0, "partial", "half", fault="timeout")], 3.0, 7,
                    ["oops"], {"seccomp": "active"})
    assert batch.result_from_dict(json.loads(json.dumps(result.to_dict()))) == result


@pytest.mark.parametrize("args, words", [
    (["--scheduler", "local:0"], "local:N needs a whole number"),
    (["--scheduler", "nowhere"], "expected tcp://HOST:PORT or local:N"),
    (["--scheduler", "local:1", "--jobs", "2"], "--jobs and --scheduler do not go together"),
])
def test_bad_scheduler_is_a_usage_error(tmp_path, args, words):
    root = make_class(tmp_path / "class")
    run = subprocess.run([sys.executable, "-m", "autograder.cli", "--config", str(EXAMPLE / "grading.yml"),
                          "grade-batch", str(root), "--assignment", "mini", "--out", str(tmp_path / "out"), *args],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert words in run.stderr and "Traceback" not in run.stderr


# --------------------------------------------------------------------------- the picture and the summary


def _rows():
    from autograder.grading.runner import Result, TestResult

    def result(name, a, b, seconds, fault=""):
        return Result("mini", name, [TestResult("test_a", a, 40, "passed" if a == 40 else "failed", fault=fault),
                                     TestResult("test_b", b, 60, "passed" if b == 60 else "failed")], seconds, 0)
    rows = [("ann", result("ann", 40, 60, 3.0), "graded", ""),
            ("ben", result("ben", 0, 0, 30.0, "timeout"), "timeout", "hung"),
            ("cat", result("cat", 40, 0, 9.0), "graded", ""),
            ("dan", None, "grader-error", "boom"),
            ("eve", None, "refused", "a link")]
    return rows


def test_summary_names_the_slowest_and_the_failures_by_kind():
    text = outputs.batch_summary(_rows(), slowest=2)
    assert "slowest: ben 30.0 s, cat 9.0 s" in text and "ann" not in text.splitlines()[0]
    assert "timeout 1 (ben)" in text and "grader error 1 (dan)" in text and "refused" in text
    assert "memory" not in text and "import error" not in text
    clean = outputs.batch_summary([r for r in _rows() if r[2] == "graded"])
    assert clean.splitlines()[1] == "failures: none"


def test_score_histograms_is_a_png_per_test(tmp_path):
    path = tmp_path / "scores.png"
    outputs.score_histograms(_rows(), ["test_a", "test_b"], path)
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 2.5 * image.height  # three panels side by side
    one = tmp_path / "one.png"
    outputs.score_histograms(_rows(), ["test_a"], one)
    with Image.open(one) as image:
        assert image.width < 2.5 * image.height


# --------------------------------------------------------------------------- a killed batch leaves nothing


def _is_worker(pid: int) -> bool:
    """A cold worker by its command line, a warm one (forked) by its folder."""
    if "autograder.sandbox.worker" in cmdline(str(pid)):
        return True
    try:
        return os.readlink(f"/proc/{pid}/cwd").endswith("/work/submission")
    except OSError:
        return False


@pytest.mark.parametrize("start", ["--cold", "warm"])
def test_a_killed_batch_leaves_no_judge_or_worker_behind(tmp_path, start):
    """kill -9 of the CLI while a student's code hangs: the judge, told by the kernel, stops the
    worker and exits, rather than grading on for nobody (and into that student's reports) until
    the probe's limit, here 300 s, runs out. Warm, the fork server goes too."""
    course = tmp_path / "course"
    shutil.copytree(EXAMPLE, course)
    yml = course / "grading.yml"
    yml.write_text(yml.read_text().replace("probe_seconds: 8", "probe_seconds: 300").replace(
        "suite_seconds: 240", "suite_seconds: 900"))
    root = tmp_path / "class"
    (root / "hangs").mkdir(parents=True)
    (root / "hangs" / "mini.py").write_text(replace_function("double", "while True:\n    pass"))
    command = [sys.executable, "-m", "autograder.cli", "--config", str(yml), "grade-batch", str(root),
               "--assignment", "mini", "--out", str(tmp_path / "grades")] + (["--cold"] if start == "--cold" else [])
    cli = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and cli.poll() is None:
            graders = descendants(cli.pid)
            if any(_is_worker(pid) for pid in graders):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the student's worker never started")
        time.sleep(2)  # well into the hanging probe
        graders = {pid: cmdline(str(pid)) for pid in descendants(cli.pid)}
    finally:
        cli.kill()
        cli.wait()
    if start == "--cold":
        assert any("--kit-job" in command for command in graders.values()), "no judge found under the CLI"
    else:  # the zygote, the judge it forked and the worker the judge forked
        assert sum("autograder.sandbox.forkserver" in command for command in graders.values()) >= 3, graders
    # 60 s: far below the 300 s the hanging probe would be given
    left = {pid: cmdline(str(pid))[:80] for pid in still_running_after(graders, 60)}
    for pid in left:  # never leave them to the rest of the run
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert left == {}


def test_a_notebook_that_breaks_the_parser_is_one_students_row(tmp_path):
    """A graded cell of 100,000 unary minus signs ends that student's grading with one line; the
    similarity step, which reads the same notebook, and the rest of the class go on."""
    root, out = tmp_path / "class", tmp_path / "grades"
    (root / "alice").mkdir(parents=True)
    (root / "alice" / "mini.py").write_text(GOOD)
    (root / "mallory").mkdir()
    cell = {"cell_type": "code", "metadata": {"nbgrader": {"solution": True, "grade_id": "mini-double"}},
            "source": "x = " + "-" * 100_000 + "1\n", "outputs": [], "execution_count": None}
    (root / "mallory" / "mini.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4,
                                                             "nbformat_minor": 5}))
    done = subprocess.run(batch_command(root, out), capture_output=True, text=True, timeout=600)
    assert "Traceback" not in done.stderr and done.returncode != 3, done.stderr
    assert (out / "similar.csv").is_file() and (out / "grades.csv").is_file()
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert rows["alice"]["score"] == "100"
    assert rows["mallory"]["status"] == "refused" and "cell 1: nested too deeply" in rows["mallory"]["reason"]


def test_look_alike_names_stay_apart_in_every_output(tmp_path):
    """'alice', 'alice' + a zero-width space and 'alice ' once all read 'alice' in grades.csv,
    with three different grades. Now each is written visibly, and the batch flags the group."""
    root, out = tmp_path / "class", tmp_path / "grades"
    names = {"alice": GOOD, "alice\u200b": CLASS["carol"], "alice ": CLASS["carol"]}
    for name, source in names.items():
        (root / name).mkdir(parents=True)
        (root / name / "mini.py").write_text(source)
    done = subprocess.run(batch_command(root, out), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    shown = [r["student"] for r in csv.DictReader((out / "grades.csv").open())]
    assert sorted(shown) == ["alice", "alice\\u0020", "alice\\u200b"]
    assert "look-alike names" in done.stdout and "alice\\u200b" in done.stdout


def test_student_folders_named_like_class_files_are_graded_like_anyone(tmp_path):
    """A student folder named grades.csv, scores.png or similar.csv once made the batch exit 3
    (IsADirectoryError), losing that class file and every one after it; and one of 251 bytes
    (a legal name) lost grades.csv."""
    root, out = tmp_path / "class", tmp_path / "grades"
    names = ["grades.csv", "scores.png", "similar.csv", "students", "-x", "b" * 251]
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "mini.py").write_text(GOOD)
    done = subprocess.run(batch_command(root, out), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert all((out / f).is_file() for f in ("grades.csv", "scores.png", "similar.csv"))
    rows = {r["student"]: r["score"] for r in csv.DictReader((out / "grades.csv").open())}
    assert rows == {("'" + name if name.startswith("-") else name): "100" for name in names}  # not a formula
    assert (out / "students" / ("b" * 251) / "results.json").is_file()


def _notebook(source: str) -> str:
    cell = {"cell_type": "code", "metadata": {"nbgrader": {"solution": True, "grade_id": "mini-double"}},
            "source": source, "outputs": [], "execution_count": None}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


# A hostile class: every hostile name and notebook at once, beside one honest student. Each
# entry: (file name, content); None for an empty folder.
HOSTILE = {
    "alice": ("mini.py", GOOD),
    "alice\u200b": ("mini.py", CLASS["carol"]), "alice ": ("mini.py", CLASS["carol"]),
    "\u0430lice": ("mini.py", CLASS["carol"]),                        # a Cyrillic a
    "grades.csv": ("mini.py", GOOD), "scores.png": ("mini.py", GOOD), "similar.csv": ("mini.py", GOOD),
    "students": ("mini.py", GOOD), "-x": ("mini.py", GOOD), "--help": ("mini.py", GOOD),
    ".hidden": ("mini.py", GOOD), "b" * 251: ("mini.py", GOOD),
    "\u00fc-nfc": ("mini.py", GOOD), "u\u0308-nfd": ("mini.py", GOOD),
    "bob\ncarol": ("mini.py", GOOD), '=cmd|"x",y': ("mini.py", GOOD), "\u202egnp.exe": ("mini.py", GOOD),
    os.fsdecode(b"latin\xe9"): ("mini.py", GOOD),                     # a name that is not UTF-8
    "deep-minus": ("mini.ipynb", _notebook("x = " + "-" * 100_000 + "1\n")),
    "deep-attr": ("mini.ipynb", _notebook("a" + ".b" * 200_000 + "\n")),
    "deep-parens": ("mini.ipynb", _notebook("x = " + "(" * 100_000 + ")" * 100_000 + "\n")),
    "empty": None,
}


def _make_hostile_class(root: Path) -> None:
    for name, entry in HOSTILE.items():
        (root / name).mkdir(parents=True)
        if entry is not None:
            (root / name / entry[0]).write_text(entry[1])


def _grades(out: Path) -> dict[str, tuple[str, str]]:
    return {r["student"]: (r["score"], r["status"]) for r in csv.DictReader((out / "grades.csv").open(encoding="utf-8"))}


def test_one_hostile_class_is_graded_whole_and_resumes_to_a_clean_runs_grades(tmp_path):
    """Hostile names, deep notebooks, look-alikes and an honest student in one grade-batch --jobs 2:
    no grader error, a row for every student, alice at full marks, every class file written; the
    refused students make the exit code 4, not 3. Then one submission changes: --resume gives
    what a clean run gives."""
    root, out = tmp_path / "class", tmp_path / "grades"
    _make_hostile_class(root)
    command = batch_command(root, out, "--gradebook", str(tmp_path / "gradebook.db"))
    command[command.index("--jobs") + 1] = "2"
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 4, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "error:" not in done.stderr, done.stderr[-3000:]
    assert all((out / f).is_file() for f in ("grades.csv", "scores.png", "similar.csv", "runtime_code.csv"))
    rows = _grades(out)
    assert len(rows) == len(HOSTILE)
    assert rows["alice"] == ("100", "graded") and rows["latin\\xe9"] == ("100", "graded")
    assert {name for name, (_, status) in rows.items() if status == "refused"} == {"deep-minus", "deep-attr"}
    assert "grader-error" not in {status for _, status in rows.values()}

    (root / "grades.csv" / "mini.py").write_text(CLASS["bob"])     # 60 points now
    shutil.rmtree(root / "empty")
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 4, resumed.stderr[-3000:]
    clean_out = tmp_path / "clean"
    clean = subprocess.run(batch_command(root, clean_out), capture_output=True, text=True, timeout=900)
    assert clean.returncode == 4, clean.stderr[-3000:]
    assert _grades(out) == _grades(clean_out)
    assert _grades(out)["grades.csv"] == ("60", "graded") and "empty" not in _grades(out)
