"""The judge trusts nothing from the worker: what comes back is bounded and typed,
results cannot be forged, submissions are data, reports escape student text and keep
hidden tests hidden, and the suite's checks survive ``python -O``.

Most cases grade the example course (tests/fixtures/example); those that need a suite of
their own grade a copy of it with one test rewritten.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from autograder import config as config_module
from autograder.grading import runner
from autograder.grading.job import Outcomes
from autograder.sandbox.submission import SubmissionError
from tests.example_course import CONFIG, EXAMPLE, GOOD, MINI, SUITE, cli, replace_function


def _submission(tmp_path: Path, source: str = GOOD, name: str = "student") -> Path:
    folder = tmp_path / "class" / name
    folder.mkdir(parents=True)
    (folder / "mini.py").write_text(source)
    return folder


def _test(result, name: str = "test_double"):
    return next(t for t in result.tests if t.name == name)


def _course(tmp_path: Path, suite_source: str) -> Path:
    """A copy of the example course whose suite's test file is ``suite_source``."""
    course = tmp_path / "course"
    shutil.copytree(EXAMPLE, course)
    (course / "suite" / "test_mini.py").write_text(suite_source)
    return course / "grading.yml"


# --------------------------------------------------------------------------- results channel


def test_forged_result_lines_are_not_believed():
    outcomes = Outcomes()
    case = {"nodeid": "suite/test_mini.py::test_double", "when": "call", "outcome": "passed", "fraction": 1.0,
            "message": "", "detail": "", "duration": 0.1, "artifacts": [], "notes": []}
    lines = [{"collected": ["suite/test_mini.py::test_double"]}, {"case": case},
             {"case": {**case, "nodeid": "suite/test_mini.py::test_bonus"}},       # never collected
             {"case": case},                                                        # twice
             {"case": {**case, "when": "teardown", "fraction": 5.0}},               # credit above 1
             {"collected": ["suite/test_mini.py::test_bonus"]}]                      # a second collection
    data = b"".join(json.dumps(line).encode() + b"\n" for line in lines) + b"not json\n"
    outcomes.feed(data[:37])
    outcomes.feed(data[37:])
    assert [(c.nodeid, c.when, c.fraction) for c in outcomes.cases] == [
        ("suite/test_mini.py::test_double", "call", 1.0), ("suite/test_mini.py::test_double", "teardown", 1.0)]
    problems = " / ".join(outcomes.problems)
    for words in ("never collected", "reported twice", "outside [0, 1]", "unexpected 'collected'", "not JSON"):
        assert words in problems, problems


@pytest.mark.usefixtures("start")  # warm: nor on the fork server's socket to the runner
def test_the_worker_holds_no_handle_on_the_judges_report(tmp_path):
    # Every descriptor the worker has, written with a line that would give full marks.
    forge = """
    import json, os
    line = json.dumps({"case": {"nodeid": "test_mini.py::test_normalise[1]", "when": "call", "outcome": "passed",
                                "fraction": 1.0}}) + "\\n"
    for fd in range(3, 256):
        try:
            os.write(fd, line.encode())
        except OSError:
            pass
    return 3 * x
    """
    result = runner.grade(CONFIG, MINI, _submission(tmp_path, replace_function("double", forge)), only=["test_double"])
    assert result.score == 0 and result.max_score == 40, result
    assert not result.grader_errors, result.grader_errors


# --------------------------------------------------------------------------- bounded, typed replies


def _forged_reply(value: str) -> str:
    """A body that writes its own reply frame, with the right id, on the worker's channel
    (bypassing the worker's own encoding), then hangs: the judge reads that frame."""
    return f"""
    import functools, io, os, struct, sys, time, torch
    frame = sys._getframe()
    while "request" not in frame.f_locals:
        frame = frame.f_back
    buffer = io.BytesIO()
    torch.save({{"id": frame.f_locals["request"]["id"], "ok": True, "value": {value}}}, buffer)
    os.write(int(sys.argv[2]), struct.pack(">Q", len(buffer.getvalue())) + buffer.getvalue())
    time.sleep(60)
    """


@pytest.mark.parametrize("value, words", [
    ("torch.complex(x, x)", "complex"),
    ("(2 * x).to_sparse()", "sparse"),
    ('{"__kit_meta_tensor__": True, "shape": [5, 3], "dtype": "torch.evil"}', "unknown dtype"),
    ("torch.zeros(1).expand(2**31)", "MB in all"),
    ("2 ** 100", "too large"),
    # a list that references itself in pairs, 25 levels deep (within the depth bound): a few
    # KB on the wire, 2**25 leaves once copied; refused while it is counted, before the copy
    ("functools.reduce(lambda v, _: [v, v], range(25), [1.0])", "items"),
    ("functools.reduce(lambda v, _: [v, v], range(40), [1.0])", "levels deep"),
])
@pytest.mark.usefixtures("start")
def test_replies_the_judge_refuses(tmp_path, value, words):
    started = time.monotonic()
    result = runner.grade(CONFIG, MINI, _submission(tmp_path, replace_function("double", _forged_reply(value))),
                          only=["test_double"])
    assert time.monotonic() - started < 60  # refused at once, not after the probe's time limit
    assert not result.grader_errors, result.grader_errors
    test = _test(result)
    assert test.score == 0 and "cannot accept" in test.message and words in test.message, test.message


def test_a_mistyped_probe_is_a_grader_error_not_the_students(tmp_path):
    config = config_module.load(_course(tmp_path, SUITE.replace('worker.call("double"', 'worker.call("dubble"')))
    result = runner.grade(config, config.get("mini"), _submission(tmp_path), only=["test_double"])
    test = _test(result)
    assert test.status == "error" and "instructor" in test.message
    assert any("dubble" in error for error in result.grader_errors), result.grader_errors


def test_checks_hold_under_python_optimize(tmp_path):
    bare = SUITE.replace('    expect_close(worker.call("double", x), 2 * x, name="double(x)")',
                         '    assert bool((worker.call("double", x) - 2 * x).abs().max() < 1e-6), "double is wrong"')
    assert bare != SUITE
    config = _course(tmp_path, bare)
    wrong = _submission(tmp_path, GOOD.replace("return 2 * x", "return 3 * x"))
    out = tmp_path / "out"
    run = cli("--config", str(config), "grade", str(wrong), "--assignment", "mini", "--tests", "test_double",
               "--out", str(out), cwd=tmp_path, env={"PYTHONOPTIMIZE": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads((out / "results.json").read_text())["tests"][0]["score"] == 0


# --------------------------------------------------------------------------- submissions as data


def _laid_out(tmp_path: Path, how: str) -> Path:
    folder = tmp_path / "class" / "student"
    folder.mkdir(parents=True)
    solution = EXAMPLE / "solutions" / "01_mini" / "mini.py"
    if how == "symlinked file":
        (folder / "mini.py").symlink_to(solution)
    elif how == "symlink to /dev/zero":
        (folder / "mini.py").write_text(GOOD)
        (folder / "data.bin").symlink_to("/dev/zero")
    elif how == "symlink loop":
        (folder / "mini.py").write_text(GOOD)
        (folder / "loop").symlink_to(folder / "loop")
    elif how == "symlinked folder":
        (folder / "mini.py").write_text(GOOD)
        (folder / "kit").symlink_to(EXAMPLE)
    elif how == "FIFO":
        (folder / "mini.py").write_text(GOOD)
        os.mkfifo(folder / "pipe")
    elif how == "sparse 2 GB":
        (folder / "mini.py").write_text(GOOD)
        with open(folder / "big.bin", "wb") as big:
            big.truncate(2 << 30)
    return folder


@pytest.mark.parametrize("how, words", [
    ("symlinked file", "symbolic link"), ("symlink to /dev/zero", "symbolic link"), ("symlink loop", "symbolic link"),
    ("symlinked folder", "symbolic link"), ("FIFO", "FIFO"), ("sparse 2 GB", "MB of files"),
])
def test_submissions_are_regular_files_only(tmp_path, how, words):
    folder = _laid_out(tmp_path, how)
    with pytest.raises(SubmissionError, match=words) as refused:
        runner.grade(CONFIG, MINI, folder)
    assert "\n" not in str(refused.value)
    run = cli("--config", str(EXAMPLE / "grading.yml"), "grade", str(folder), "--assignment", "mini", cwd=tmp_path)
    (error,) = [line for line in run.stderr.splitlines() if line.startswith("autograder: error:")]
    assert run.returncode == 2 and words in error


def test_batch_refuses_a_student_folder_that_is_a_link(tmp_path):
    root = tmp_path / "class"
    _submission(tmp_path, GOOD, "alice")
    (root / "mallory").symlink_to(EXAMPLE / "solutions" / "01_mini")
    out = tmp_path / "grades"
    run = cli("--config", str(EXAMPLE / "grading.yml"), "grade-batch", str(root), "--assignment", "mini",
               "--out", str(out), cwd=tmp_path)
    assert run.returncode == 4, run.stderr[-2000:]   # a refused student: 4, not a grader error
    rows = {line.split(",")[0]: line for line in (out / "grades.csv").read_text().splitlines()[1:]}
    assert rows["alice"].startswith("alice,100,")
    assert rows["mallory"].startswith("mallory,0,") and "refused" in rows["mallory"]
    assert not (out / "mallory").exists()


# --------------------------------------------------------------------------- reports


def test_student_text_is_escaped_everywhere(tmp_path):
    evil = ("bad ![x](http://example.invalid/x.png) <b>|</b> \\x1b[31mred\\x1b[0m \\x00 ``` " + "y" * 500
            + "\\n# Heading")
    source = replace_function("double", f'raise ValueError("{evil}")')
    out = tmp_path / "out"
    run = cli("--config", str(EXAMPLE / "grading.yml"), "grade", str(_submission(tmp_path, source)),
               "--assignment", "mini", "--out", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "\x1b" not in run.stdout + run.stderr and "\x00" not in run.stdout + run.stderr
    for name in ("feedback.md", "report.md"):
        text = (out / name).read_text()
        assert "\n# Heading" not in text and "![x](" not in text and "<b>" not in text and "\x1b" not in text
        line = next(line for line in text.splitlines() if "test_double" in line)
        assert "example.invalid" in line and len(line) < 500  # one line, capped
    ET.parse(out / "junit.xml")  # parses: no control characters
    output = json.loads((out / "results.json").read_text())["tests"][0]["output"]
    assert "\n" not in output and "<b>" not in output and "![x](" not in output


def test_tests_not_yet_visible_are_absent_from_what_students_see(tmp_path):
    out = tmp_path / "out"
    wrong = _submission(tmp_path, GOOD.replace("return 2 * x", "return 3 * x"))
    run = cli("--config", str(EXAMPLE / "grading.yml"), "grade", str(wrong), "--assignment", "mini",
               "--out", str(out), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    feedback, junit = (out / "feedback.md").read_text(), (out / "junit.xml").read_text()
    for hidden in ("test_normalise", "test_device"):  # visibility hidden and after_due_date
        assert hidden not in feedback and hidden not in junit
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == "1"
    assert {p.get("name"): p.get("value") for p in suite.find("properties")}["max_score"] == "40"
    results = json.loads((out / "results.json").read_text())
    assert results["output"].startswith("mini: 0 / 40 points on the tests shown")
    assert "test_device" in (out / "report.md").read_text()  # the instructor's file keeps everything


def test_pictures_land_in_a_relative_out(tmp_path):
    picture = SUITE.replace('def test_double(worker, seed):\n',
                            'def test_double(worker, seed, artifacts):\n'
                            '    import matplotlib.pyplot as plt\n'
                            '    fig, ax = plt.subplots()\n'
                            '    ax.plot([0.0, 1e308, float("nan")])\n'
                            '    artifacts.figure("curve.png", fig)\n')
    config = _course(tmp_path, picture)
    run = cli("--config", str(config), "grade", str(_submission(tmp_path)), "--assignment", "mini",
               "--tests", "test_double", "--out", "relative-out", cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    report = (tmp_path / "relative-out" / "report.md").read_text()
    landed = (tmp_path / "relative-out" / "curve.png").exists()
    assert landed == ("![curve.png](curve.png)" in report)
    assert landed or "could not be drawn" in report  # a value too large to plot costs the picture only


# --------------------------------------------------------------------------- the judge's helpers


def test_every_helper_turns_a_bad_value_into_a_failed_check():
    import torch

    from autograder.grading import judge

    bad = [float("nan"), None, "text", [1, 2], {"a": 1}, judge.Unsupported("Foo"), judge.Raised("ValueError: x"),
           judge.MetaTensor((2, 3), torch.float32), torch.tensor([float("nan"), 1.0]),
           torch.tensor([float("inf")]), torch.full((2, 3), 1e308, dtype=torch.float64),
           torch.complex(torch.ones(2, 3), torch.ones(2, 3)), torch.eye(3).to_sparse(),
           torch.ones(2, 3, dtype=torch.int64), torch.ones(2, 3, dtype=torch.bool)]
    expected = torch.ones(2, 3)
    calls = {
        "expect_tensor": lambda v: judge.expect_tensor(v, name="f", shape=(2, 3), dtype=torch.float32),
        "expect_close": lambda v: judge.expect_close(v, expected, name="f"),
        "expect_meta": lambda v: judge.expect_meta(v, name="f", shape=(2, 3), dtype=torch.float32),
        "expect_finite": lambda v: judge.expect_finite(v, name="f"),
        "describe_value": judge.describe_value,
        "tier": lambda v: judge.tier(v, [[1.0, 1.0]], higher_is_better=False),
        "digit_grid": lambda v: judge.digit_grid(v, 1, 1),
        "plottable": judge.plottable,
    }
    for helper, call in calls.items():
        for value in bad:
            try:
                call(value)
            except AssertionError as error:
                assert str(error) and "\n" not in str(error), (helper, value)
            except Exception as error:  # noqa: BLE001 - what this test is about
                pytest.fail(f"{helper}({value!r:.60}) raised {type(error).__name__}: {error}")
    assert judge.tier(float("nan"), [[1.0, 1.0]], higher_is_better=False) == 0.0


# --------------------------------------------------------------------------- measured in the judge

KIT = Path(__file__).resolve().parent.parent
COURSE = config_module.load(KIT / "grading.yml")
VAE_SOURCE = (KIT / "solutions" / "03_vae" / "vae.py").read_text()


def _vae(tmp_path: Path, extra: str) -> Path:
    folder = tmp_path / "vae-student"
    folder.mkdir()
    (folder / "vae.py").write_text(VAE_SOURCE + "\n\n" + textwrap.dedent(extra))
    return folder


def test_a_patched_probe_cannot_report_a_made_up_elbo(tmp_path):
    # Replaces the probe that returns the model's held-out outputs, wherever it is referenced,
    # with one that "reconstructs" each digit from the input itself.
    patch = """
    import gc, sys, torch

    def _perfect(x_held, y_held, eps):
        p = x_held.double().clamp(1e-6, 1 - 1e-6)
        logits = (torch.log(p) - torch.log1p(-p)).float()
        n = x_held.shape[0]
        shown = x_held[:10]
        return {"mu": torch.zeros(n, 2), "logvar": torch.zeros(n, 2),
                "logits": logits.unsqueeze(0).expand(eps.shape[0], n, 64).clone(),
                "inputs": shown, "reconstructions": shown, "walk": x_held[:24]}

    _probes = sys.modules.get("probes")
    if _probes is not None:
        _real = _probes.heldout_report
        for _holder in gc.get_referrers(_real):
            if isinstance(_holder, dict):
                for _key, _value in list(_holder.items()):
                    if _value is _real:
                        _holder[_key] = _perfect
    """
    vae = COURSE.get("vae")
    result = runner.grade(COURSE, vae, _vae(tmp_path, patch), only=["test_training_loop"])
    test = _test(result, "test_training_loop")
    assert test.score == 0 and "below what any VAE" in test.message, test.message


def test_held_out_digits_returned_as_samples_earn_nothing(tmp_path):
    # With no sandbox at all (so the held-out file is readable), the decoder returns held-out
    # digits, however it was trained and whatever z it is given, and so does sample(). The digits
    # the judge scores come from decode(z) of its own z, are put back from the grading's secret
    # pixel permutation before FID-lite, and must not survive shuffling the trained weights.
    cheat = """
    def _held_out_logits(self, z):
        import kitdata.digits
        held = torch.from_numpy(kitdata.digits.load_digits("heldout")[0]).double().clamp(1e-4, 1 - 1e-4)
        rows = held[torch.arange(z.shape[0]) % len(held)]
        return (torch.log(rows) - torch.log1p(-rows)).to(z.dtype) + 0 * z.sum(1, keepdim=True)

    VAE.decode = _held_out_logits
    """
    vae = COURSE.get("vae")
    result = runner.grade(COURSE, vae, _vae(tmp_path, cheat), only=["test_sample_quality"], layers=[])
    test = _test(result, "test_sample_quality")
    assert test.score == 0 and test.message, test.message


def test_a_judge_that_fails_before_any_test_is_a_grader_error(tmp_path, monkeypatch):
    """Some pytest releases exit with 1 (as for failed tests) when a plugin does not import,
    others with 4: with no test reported, either is the grader's failure, never "0 passed,
    0 failed" (a student package missing an engine module once read so, under a pytest that
    answered 1)."""
    folder = tmp_path / "alice"
    folder.mkdir()
    (folder / "mini.py").write_text(GOOD)
    args = runner._judge_args
    monkeypatch.setattr(runner, "_judge_args", lambda *a: args(*a) + ["-p", "a_plugin_that_is_not_installed"])
    for public in (False, True):
        result = runner.grade(CONFIG, MINI, folder, public=public, suite=EXAMPLE / "suite")
        assert result.status == "grader-error" and "the judge (pytest) exited with code" in result.grader_errors[0], \
            result.grader_errors
