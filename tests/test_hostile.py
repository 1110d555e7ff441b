"""Hostile and broken submissions against the example assignment in tests/fixtures/example.

Each case must gain no point it did not earn, finish within the suite's limits, leave
every other test of the same submission graded, and tell the student in one line what
went wrong.
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from autograder import config
from autograder.grading import reports, runner
from tests.example_course import CONFIG, EXAMPLE, GOOD, MINI, cmdline, replace_function

ROOT = Path(__file__).resolve().parents[1]
FULL = {"test_double": 40, "test_normalise": 40, "test_device": 20}

# each case graded cold and warm (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("start")


def _submission(tmp_path: Path, source: str | None, extra: dict[str, str] | None = None) -> Path:
    folder = tmp_path / "class" / "student"
    folder.mkdir(parents=True)
    if source is not None:
        (folder / "mini.py").write_text(source)
    for name, text in (extra or {}).items():
        (folder / name).write_text(text)
    return folder


def _grade(folder: Path, **kwargs) -> runner.Result:
    result = runner.grade(CONFIG, MINI, folder, **kwargs)
    assert result.execution_time < MINI.limits.suite_seconds
    assert not result.grader_errors, result.grader_errors
    return result


def _scores(result) -> dict[str, float]:
    return {t.name: t.score for t in result.tests}


def _message(result, test: str) -> str:
    message = next(t.message for t in result.tests if t.name == test)
    assert message and "\n" not in message
    return message


def _only_loses(result, lost: str, *words: str) -> None:
    """The named test scores 0 with a message holding ``words``; every other test keeps full marks."""
    scores = _scores(result)
    assert scores[lost] == 0
    assert {k: v for k, v in scores.items() if k != lost} == {k: v for k, v in FULL.items() if k != lost}
    message = _message(result, lost).lower()
    assert all(w.lower() in message for w in words), message


def test_reference_gets_full_marks(tmp_path):
    assert _scores(_grade(_submission(tmp_path, GOOD))) == FULL


@pytest.mark.parametrize("statement, words", [
    ("import sys\nsys.exit(0)", ["sys.exit(0)"]),
    ("import os\nos._exit(0)", ["exited with code 0", "os._exit"]),
])
def test_exit_at_import(tmp_path, statement, words):
    result = _grade(_submission(tmp_path, statement + "\n" + GOOD))
    assert result.score == 0
    for test in FULL:
        message = _message(result, test)
        assert all(w in message for w in words), message


def test_endless_loop_costs_one_test(tmp_path):
    result = _grade(_submission(tmp_path, replace_function("double", "while True:\n    pass")))
    _only_loses(result, "test_double", "did not finish within")


def test_a_hang_costs_only_the_tests_that_call_it(tmp_path):
    """normalise() never returns: both test_normalise cases lose their points, naming the
    line it was stopped at; test_device, after them, still runs and scores, though the two
    cases would have spent the whole budget of 10 s waiting (8 s each) had the second waited
    again and had the first been charged to the suite."""
    hang = replace_function("normalise", "total = 0\nwhile True:\n    total += 1")
    tight = MINI.model_copy(update={"limits": MINI.limits.model_copy(update={"suite_seconds": 10})})
    result = runner.grade(CONFIG, tight, _submission(tmp_path, hang))
    assert not result.grader_errors, result.grader_errors
    assert _scores(result) == {"test_double": 40, "test_normalise": 0, "test_device": 20}
    line = hang.splitlines().index("    while True:") + 1
    message = _message(result, "test_normalise")
    assert f"mini.py line {line} in normalise" in message or f"mini.py line {line + 1} in normalise" in message, \
        message
    assert result.execution_time < 10 + 8 + 5  # one wait of 8 s, not two


def test_memory_blowup_costs_one_test(tmp_path):
    hog = """
    hoard = []
    for _ in range(80):  # 8 GB, 100 MB at a time
        hoard.append(torch.ones(100 * 2**20, dtype=torch.uint8))
    return x / x.sum(dim=-1, keepdim=True)
    """
    result = _grade(_submission(tmp_path, replace_function("normalise", hog)))
    _only_loses(result, "test_normalise", "memory")


def test_child_processes_are_refused_and_reaped(tmp_path):
    marker = f"kit-stray-{os.getpid()}"
    spawn = f"""
    import subprocess, os
    try:
        subprocess.Popen(["sh", "-c", "sleep 30; : {marker}"])
    finally:
        if os.fork() == 0:
            os.execvp("sh", ["sh", "-c", "sleep 30; : {marker}"])
    return 2 * x
    """
    result = _grade(_submission(tmp_path, replace_function("double", spawn)))
    _only_loses(result, "test_double", "does not allow")
    strays = [pid for pid in os.listdir("/proc") if pid.isdigit() and cmdline(pid).find(marker) >= 0]
    assert strays == []


def test_output_flood_costs_one_test(tmp_path):
    flood = """
    chunk = "x" * 2**20
    for _ in range(100):  # 100 MB
        print(chunk)
    return 2 * x
    """
    result = _grade(_submission(tmp_path, replace_function("double", flood)))
    _only_loses(result, "test_double", "output")


def test_syntax_error(tmp_path):
    result = _grade(_submission(tmp_path, GOOD.replace("def double(x", "def double(x:::", 1)))
    assert result.score == 0
    assert "mini.py line" in _message(result, "test_double") and "SyntaxError" in _message(result, "test_double")


def test_missing_file(tmp_path):
    result = _grade(_submission(tmp_path, None, {"other.py": "x = 1\n"}))
    assert result.score == 0
    assert "has no mini.py" in _message(result, "test_normalise")


def test_wrong_signature(tmp_path):
    source = GOOD.replace("def double(x: torch.Tensor)", "def double(x: torch.Tensor, factor)")
    result = _grade(_submission(tmp_path, source))
    _only_loses(result, "test_double", "TypeError")


@pytest.mark.parametrize("test, function, body, words", [
    ("test_double", "double", "return x * float('nan')", ["nan"]),
    ("test_normalise", "normalise", "return x[:, :3]", ["shape"]),
    ("test_device", "ones_like", "return torch.ones(x.shape, dtype=torch.float32, device=x.device)", ["dtype"]),
    ("test_normalise", "normalise", "return (x / x.sum(dim=-1, keepdim=True)).tolist()", ["got a list"]),
    ("test_device", "ones_like", "return torch.ones(x.shape, dtype=x.dtype)", ["device"]),
])
def test_wrong_values_shapes_dtypes_types(tmp_path, test, function, body, words):
    _only_loses(_grade(_submission(tmp_path, replace_function(function, body))), test, *words)


def test_monkeypatching_the_comparisons(tmp_path):
    cheat = """
    import builtins, pytest, torch
    torch.allclose = lambda *a, **k: True
    torch.isclose = lambda a, b, *r, **k: torch.ones_like(a, dtype=torch.bool)
    torch.Tensor.__eq__ = lambda self, other: True
    torch.Tensor.__le__ = lambda self, other: torch.ones_like(self, dtype=torch.bool)
    builtins.abs = lambda v: 0
    builtins.all = lambda v: True
    pytest.approx = lambda *a, **k: object()

    class Liar(torch.Tensor):
        def __eq__(self, other):
            return True

    """
    source = GOOD + textwrap.dedent(cheat)
    source = source.replace("return 2 * x", "return (3 * x).as_subclass(Liar)")
    _only_loses(_grade(_submission(tmp_path, source)), "test_double")


def test_forged_reports_are_ignored(tmp_path):
    out = tmp_path / "out"
    forged = json.dumps({"score": 100, "tests": []})
    forge = f"""
    from pathlib import Path
    for target in [Path("results.json"), Path("junit.xml"), Path({str(out)!r}) / "results.json"]:
        try:
            target.write_text({forged!r})
        except OSError:
            pass
    return 3 * x
    """
    result = _grade(_submission(tmp_path, replace_function("double", forge)), artifacts_dir=out)
    reports.write(result, out)
    written = json.loads((out / "results.json").read_text())
    assert written["score"] == 60 and written["tests"][0]["score"] == 0


def test_reading_hidden_files_is_refused(tmp_path):
    targets = [EXAMPLE / "suite" / "test_mini.py", EXAMPLE / "solutions" / "01_mini" / "mini.py",
               EXAMPLE / "grading.yml", Path(runner.__file__).parent / "suites"]
    peek = f"""
    import os
    for target in {[str(t) for t in targets]!r}:
        if os.path.isdir(target):
            os.listdir(target)
        else:
            open(target).read()
    return 2 * x
    """
    _only_loses(_grade(_submission(tmp_path, replace_function("double", peek))), "test_double", "off limits")


def test_copying_the_solution_is_refused(tmp_path):
    solution = EXAMPLE / "solutions" / "01_mini" / "mini.py"
    copy = f"""
    namespace = {{}}
    exec(open({str(solution)!r}).read(), namespace)
    return namespace["double"](x)
    """
    _only_loses(_grade(_submission(tmp_path, replace_function("double", copy))), "test_double", "off limits")


def test_reading_other_students_is_refused(tmp_path):
    folder = _submission(tmp_path, None)
    neighbour = folder.parent / "neighbour"
    neighbour.mkdir()
    (neighbour / "mini.py").write_text(GOOD)
    steal = f"""
    import os
    try:  # the scratch copies of the gradings running beside this one
        os.listdir({str(runner.RUNS)!r})
    except PermissionError:
        pass
    else:
        return 2 * x
    namespace = {{}}
    exec(open({str(neighbour / 'mini.py')!r}).read(), namespace)
    return namespace["double"](x)
    """
    (folder / "mini.py").write_text(replace_function("double", steal))
    _only_loses(_grade(folder), "test_double", "off limits")


def test_forged_replies_on_the_channel(tmp_path):
    forge = """
    import io, os, struct, torch
    buffer = io.BytesIO()
    torch.save({"id": 1, "ok": True, "value": 2 * x}, buffer)
    frame = struct.pack(">Q", len(buffer.getvalue())) + buffer.getvalue()
    for fd in map(int, os.listdir("/proc/self/fd")):
        try:
            os.write(fd, frame + b"garbage")
        except OSError:
            pass
    return 3 * x
    """
    _only_loses(_grade(_submission(tmp_path, replace_function("double", forge))), "test_double")


def test_unreadable_submission_is_a_usage_error(tmp_path):
    with pytest.raises(runner.SubmissionError, match="not a folder"):
        runner.grade(CONFIG, MINI, tmp_path / "nowhere")


# The vae suite's tests whose probes call the student's train() (autograder/suites/vae/probes.py:
# train_on, train_mechanics, train_and_sample).
CALLS_TRAIN = {"test_device_parity", "test_training_loop", "test_train_mechanics", "test_sample_quality"}


def test_a_train_that_never_returns_costs_only_the_tests_that_train(tmp_path):
    """The review's case: vae's train() loops forever. Every test that does not call train()
    (the IWAE tests after the training tests among them) keeps its points; the four that do
    name the line train() was stopped at, and only the first waits out its time limit."""
    course = config.load(ROOT / "grading.yml")
    vae = course.get("vae")
    quick = vae.model_copy(update={"limits": vae.limits.model_copy(update={"probe_seconds": 15})})
    source = (ROOT / "solutions" / "03_vae" / "vae.py").read_text()
    start = source.index('"""', source.index("def train(")) + 3
    start = source.index('"""', start) + 3
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "vae.py").write_text(source[:start] + "\n    while True:\n        pass\n" + source[start:])
    line = (source[:start] + "\n    while True:\n").count("\n")

    result = runner.grade(course, quick, folder)
    assert not result.grader_errors, result.grader_errors
    scores = {t.name: t for t in result.tests}
    assert {name for name, t in scores.items() if t.score < t.max_score} == CALLS_TRAIN
    assert all(scores[name].score == 0 for name in CALLS_TRAIN)
    messages = [_message(result, name) for name in sorted(CALLS_TRAIN)]
    assert all(f"vae.py line {line} in train" in m or f"vae.py line {line + 1} in train" in m
               for m in messages), messages
    assert sum("never returned earlier" in m for m in messages) == len(CALLS_TRAIN) - 1, messages
