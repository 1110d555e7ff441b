"""Warm gradings (autograder.sandbox.forkserver): the same grades as cold ones, a worker that holds
nothing a cold worker would not, and a batch that never depends on the fork server being
there. The hostile banks (test_hostile, test_containment) also run warm: tests/conftest.py."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from autograder.sandbox import forkserver
from autograder.grading import runner
from tests.example_course import CONFIG, EXAMPLE, GOOD, MINI, children, descendants, replace_function, still_running_after


def _submission(tmp_path, name: str, source: str, extra: dict[str, str] | None = None):
    folder = tmp_path / "class" / name
    folder.mkdir(parents=True)
    (folder / "mini.py").write_text(source)
    for file, text in (extra or {}).items():
        (folder / file).write_text(text)
    return folder


def _graded(result: runner.Result) -> list[tuple]:
    return [(t.name, t.score, t.status, t.message, t.fault) for t in result.tests]


def test_warm_and_cold_gradings_agree(tmp_path):
    """A reference, a wrong answer, a crash in native-looking code and an exit at import:
    the same scores, statuses, messages and faults, to the character."""
    class_ = {
        "reference": GOOD,
        "wrong": replace_function("normalise", "return x / x.max()"),
        "crash": replace_function("double", "import os\nos.kill(os.getpid(), 11)"),
        "exits": "import os\nos._exit(3)\n" + GOOD,
    }
    for name, source in class_.items():
        folder = _submission(tmp_path, name, source)
        cold = runner.grade(CONFIG, MINI, folder)
        warm = runner.grade(CONFIG, MINI, folder, warm=True)
        assert not cold.grader_errors and not warm.grader_errors, (cold.grader_errors, warm.grader_errors)
        assert _graded(warm) == _graded(cold), name
        assert {k: v.split(":")[0] for k, v in warm.isolation.items()} == \
               {k: v.split(":")[0] for k, v in cold.isolation.items()}  # active, off or missing
    assert _graded(runner.grade(CONFIG, MINI, tmp_path / "class" / "reference", warm=True))[0][1] == 40


# The worker scans its own memory for a needle planted in what only the judge may hold, and
# for a control needle planted nowhere; both are made by the same code, so they leave the
# same number of copies of their own. double(x) is right only when the two counts agree.
# Every anonymous writable region (where Python's objects live) is copied through a pipe:
# a page gone since /proc/self/maps was read is an EFAULT, never a crash. (/proc/self/mem
# is closed to a worker whose identity changed: it is no longer dumpable.)
SCAN = '''
import ctypes, hashlib, os
def needle(word):
    return hashlib.sha256(word.encode()).hexdigest()[:24].encode()
counts = {needle("planted"): 0, needle("control"): 0}
with open("/proc/self/maps") as maps:
    regions = [line.split() for line in maps]
read, write = os.pipe()
for fields in regions:
    start, end = (int(v, 16) for v in fields[0].split("-"))
    if not fields[1].startswith("rw") or (len(fields) > 5 and fields[5].startswith("/")) or end - start > 2**30:
        continue
    tail = b""
    for address in range(start, end, 2**16):
        try:
            os.write(write, (ctypes.c_char * min(2**16, end - address)).from_address(address))
        except OSError:
            break
        chunk = tail + os.read(read, 2**16)
        for key in counts:
            counts[key] += chunk.count(key)
        tail = chunk[-23:]
planted, control = counts.values()
return 2 * x if planted == control and control > 0 else x + 1000 * planted
'''
PLANTED = hashlib.sha256(b"planted").hexdigest()[:24]


def test_a_warm_worker_holds_nothing_hidden(tmp_path, monkeypatch):
    """The needle is in the runner's environment (which the judge receives) and in the hidden
    suite: a worker forked after the judge, or the zygote, had read either would hold it.
    Two warm gradings on one fork server: the second would see what the first left in it."""
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in ("probes.py", "test_mini.py"):
        (suite / name).write_text((EXAMPLE / "suite" / name).read_text())
    with open(suite / "test_mini.py", "a") as tests:
        tests.write(f"\nSECRET = {PLANTED!r}\n")
    monkeypatch.setenv("KIT_INSTRUCTOR_TOKEN", PLANTED)
    folder = _submission(tmp_path, "scanner", replace_function("double", SCAN))
    for warm in (True, True, False):
        result = runner.grade(CONFIG, MINI, folder, only=["test_double"], suite=suite, warm=warm)
        assert not result.grader_errors, result.grader_errors
        assert result.tests[0].score == 40, (warm, result.tests[0].message)


def test_a_worker_restarted_after_a_crash_holds_nothing_hidden_either(tmp_path, monkeypatch):
    """After a crash the judge has loaded the suite: the next worker comes from its nursery,
    forked before the judge read anything. A first test crashes the worker (double of a 7 x 7
    tensor kills itself); the scan then runs in the worker started after it. The crash is still
    reported as one (the judge adopts the nursery's workers and reads how they died)."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "probes.py").write_text((EXAMPLE / "suite" / "probes.py").read_text())
    tests = (EXAMPLE / "suite" / "test_mini.py").read_text()
    crash_first = (
        "\n\ndef test_crash_first(worker):\n"
        "    worker.call('double', torch.zeros(7, 7))\n"
    )
    head, rest = tests.split("\n\n\ndef test_double", 1)
    (suite / "test_mini.py").write_text(head + crash_first + "\n\ndef test_double" + rest + f"\nSECRET = {PLANTED!r}\n")
    monkeypatch.setenv("KIT_INSTRUCTOR_TOKEN", PLANTED)
    body = "import os\nif tuple(x.shape) == (7, 7):\n    os.kill(os.getpid(), 11)\n" + SCAN
    folder = _submission(tmp_path, "scanner", replace_function("double", body))
    assignment = MINI.model_copy(update={"tests": {"test_crash_first": MINI.tests["test_double"], **MINI.tests}})
    result = runner.grade(CONFIG, assignment, folder, only=["test_crash_first", "test_double"], suite=suite, warm=True)
    assert not result.grader_errors, result.grader_errors
    first, double = result.tests
    assert first.score == 0 and first.fault == "crash" and "SIGSEGV" in first.message, first.message
    assert double.score == 40, double.message


def test_no_worker_holds_the_grading_secret(tmp_path, monkeypatch):
    """The key of the hidden data variants travels in the judge's job: a worker that held it
    could draw the variants itself. The scan looks for the secret as the job spells it; the
    submission builds both needles from masked bytes, so it never holds either itself."""
    monkeypatch.setenv(runner.SECRET_VARIABLE, "a course's own secret")
    secret = runner.grading_secret(MINI, EXAMPLE / "suite")[:24].encode()
    control = hashlib.sha256(b"control").hexdigest()[:24].encode()
    masked = {word: bytes(b ^ 0x5A for b in value) for word, value in (("planted", secret), ("control", control))}
    scan = SCAN.replace("    return hashlib.sha256(word.encode()).hexdigest()[:24].encode()",
                        f"    return bytes(b ^ 0x5A for b in {masked!r}[word])")
    assert scan != SCAN
    folder = _submission(tmp_path, "scanner", replace_function("double", scan))
    for warm in (True, False):
        result = runner.grade(CONFIG, MINI, folder, only=["test_double"], warm=warm)
        assert not result.grader_errors, result.grader_errors
        assert result.tests[0].score == 40, (warm, result.tests[0].message)
    # the negative case: a worker that does hold the secret (read from its own file) loses the points
    keeps = scan.replace("import ctypes, hashlib, os", "import ctypes, hashlib, os\nkept = open('notes.txt').read()")
    keeper = _submission(tmp_path, "keeper", replace_function("double", keeps), {"notes.txt": secret.decode()})
    assert runner.grade(CONFIG, MINI, keeper, only=["test_double"], warm=True).tests[0].score == 0


def test_the_memory_scan_finds_a_planted_needle(tmp_path):
    """The negative case: a submission that keeps the needle in memory itself loses the points."""
    keeps = SCAN.replace("import ctypes, hashlib, os", "import ctypes, hashlib, os\nkept = open('notes.txt').read()")
    assert keeps != SCAN
    folder = _submission(tmp_path, "keeper", replace_function("double", keeps), {"notes.txt": PLANTED})
    result = runner.grade(CONFIG, MINI, folder, only=["test_double"], warm=True)
    assert not result.grader_errors, result.grader_errors
    assert result.tests[0].score == 0, result.tests[0].message


def test_no_fork_server_means_a_cold_grading(tmp_path, monkeypatch, capsys):
    """A fork server that cannot start costs time, never a grade; the instructor is told."""
    def broken():
        raise forkserver.ForkServerError("the fork server exited: ImportError")

    monkeypatch.setattr(forkserver, "for_this_thread", broken)
    result = runner.grade(CONFIG, MINI, _submission(tmp_path, "student", GOOD), only=["test_double"], warm=True)
    assert not result.grader_errors and result.score == 40
    assert "warm start failed" in capsys.readouterr().err


def test_a_killed_zygote_costs_one_grading_at_most(tmp_path):
    """The zygote killed while its judge grades (the OOM killer, an operator): that student is a
    grader error, never a wrong score, and the next grading starts a new zygote."""
    folder = _submission(tmp_path, "student", GOOD)
    server = forkserver.for_this_thread()
    killer = threading.Timer(1.0, os.kill, (server.process.pid, signal.SIGKILL))
    # the judge needs > 1 s: its first test sleeps in the student's code
    slow = _submission(tmp_path, "slow", replace_function("double", "import time\ntime.sleep(4)\nreturn 2 * x"))
    runner.grade(CONFIG, MINI, folder, only=["test_double"], warm=True)  # the zygote is ready
    killer.start()
    result = runner.grade(CONFIG, MINI, slow, only=["test_double"], warm=True)
    killer.join()
    assert result.grader_errors and result.status == "grader-error", _graded(result)
    after = runner.grade(CONFIG, MINI, folder, warm=True)
    assert not after.grader_errors and after.score == 100
    assert forkserver.for_this_thread() is not server


@pytest.mark.parametrize("threads", [2])
def test_each_thread_has_its_own_fork_server(tmp_path, threads):
    """--jobs N: N threads grade at once, each through a zygote of its own."""
    folders = [_submission(tmp_path, f"s{i}", GOOD) for i in range(threads)]
    results, servers = [None] * threads, [None] * threads

    def grade(i):
        results[i] = runner.grade(CONFIG, MINI, folders[i], only=["test_double"], warm=True)
        servers[i] = forkserver.for_this_thread().process.pid

    workers = [threading.Thread(target=grade, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert [r.score for r in results] == [40] * threads
    assert len(set(servers)) == threads


PRESTART = """
import sys, threading
from autograder.sandbox import forkserver

forkserver.prestart(2)
ahead = sorted(s.process.pid for s in forkserver._started_ahead)
taken, took, checked = [], threading.Barrier(3), threading.Event()

def grading_thread():  # takes its server, and lives on (as a Dask worker's thread does)
    taken.append(forkserver.for_this_thread().process.pid)
    took.wait()
    checked.wait()

threads = [threading.Thread(target=grading_thread) for _ in range(2)]
for t in threads:
    t.start()
took.wait()
forkserver.prestart(2)  # both alive, each a thread's own: none more
print(ahead == sorted(taken), len(set(taken)), sum(s.alive for s in forkserver._servers), "torch" in sys.modules)
checked.set()
"""


def test_servers_started_ahead_go_to_the_first_threads_that_ask():
    """prestart(N) (a Dask worker joining, WarmWorkers): the next N threads take those zygotes,
    one each, and no other is started; the batch's own process never imports torch for it."""
    done = subprocess.run([sys.executable, "-c", PRESTART], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "2", "2", "False"]


TAKER = """
import sys
from pathlib import Path
from autograder import config
from autograder.sandbox import forkserver
from autograder.grading import runner

course = config.load(sys.argv[3])
assert forkserver.take_over(sys.argv[1], 1) == 1
print("took", flush=True)
runner.grade(course, course.get("mini"), Path(sys.argv[2]), only=["test_double"], warm=True)
print("graded", flush=True)
"""


def _grading(zygote: int) -> bool:
    """A judge of ``zygote`` has its request: it works in its grading's folder, not in /."""
    try:
        return any(os.readlink(f"/proc/{judge}/cwd") != "/" for judge in children().get(zygote, []))
    except OSError:
        return False


def test_a_zygote_handed_over_ends_its_judge_when_its_taker_dies(tmp_path):
    """HandOver (local:N): a zygote started here and taken by another process (a Dask worker)
    outlives that taker. Killed mid-grading, the taker must take the grading with it: the
    zygote sees the taker's end of its socket close and ends, its judge and the student's
    worker with it; nothing grades on for nobody while the student is graded again elsewhere."""
    course = tmp_path / "course"
    shutil.copytree(EXAMPLE, course)
    yml = course / "grading.yml"
    yml.write_text(yml.read_text().replace("probe_seconds: 8", "probe_seconds: 120"))  # it would grade on for long
    slow = _submission(tmp_path, "slow", replace_function("double", "import time\ntime.sleep(110)\nreturn 2 * x"))
    hand_over = forkserver.HandOver(1)
    try:
        zygote = hand_over._waiting[0].process.pid
        taker = subprocess.Popen([sys.executable, "-c", TAKER, hand_over.address, str(slow), str(yml)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert taker.stdout.readline().strip() == "took", taker.stderr.read()
        grading_by = time.monotonic() + 120
        while not _grading(zygote) and time.monotonic() < grading_by:
            time.sleep(0.2)
        assert _grading(zygote), descendants(zygote)
        time.sleep(3)  # the student's code is asleep in its probe
        tree = descendants(zygote)  # the judge, and the student's worker under it
        assert len(tree) >= 2, tree
        taker.kill()
        taker.wait()
        assert still_running_after([zygote, *tree], 10) == []
        assert forkserver.take_over(hand_over.address, 1) == 0  # one was offered, and taken: a late worker starts its own
    finally:
        hand_over.close()
