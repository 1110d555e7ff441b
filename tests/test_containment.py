"""The kernel's containment of the worker, one attack class at a time, one layer at a time.

Each attack is a submission whose ``double`` returns the right answer (``2 * x``) only if
the attack got through, so the attack succeeded exactly when ``test_double`` scores its
points; a contained attack costs the student that one test and nothing else.

Each attack runs three ways:

* ``bare``: no layer at all (not even the in-process fence). The attack must succeed:
  this proves the attack is real, so a pass elsewhere means a layer stopped it.
* each kernel layer alone that should stop it: the attack must fail. A regression in one
  layer is seen even while another still holds.
* ``default``: every layer this machine offers, as in real grading.

Layers a machine lacks (``autograder doctor`` says why) are skipped, not passed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder.grading import runner
from autograder.sandbox.containment import Policy, available_layers
from tests.example_course import CONFIG, EXAMPLE, GOOD, MINI, cli, cmdline, doctor_states, replace_function

AVAILABLE = available_layers()

# each case graded cold and warm (tests/conftest.py)
pytestmark = pytest.mark.usefixtures("start")


# The example's 8 s per call is short for an escape that must succeed on a loaded machine (1.8 GB
# written to a memfd with no layer took longer there): no test here waits on a time limit.
ROOMY = MINI.model_copy(update={"limits": MINI.limits.model_copy(update={"probe_seconds": 30})})


def _grade(tmp_path: Path, body: str, layers, folder: Path | None = None):
    """Grade only test_double with ``double``'s body replaced; return its score and message."""
    folder = folder or tmp_path / "class" / "student"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mini.py").write_text(replace_function("double", body))
    result = runner.grade(CONFIG, ROOMY, folder, only=["test_double"], layers=layers)
    assert not result.grader_errors, result.grader_errors
    (test,) = [t for t in result.tests if t.name == "test_double"]
    assert "\n" not in test.message
    return test.score, test.message


def _ways(*stoppers: str):
    """bare (must escape), each stopping layer alone, and the default set (must be contained)."""
    ways = [pytest.param((), True, id="bare")]
    for layer in stoppers:
        marks = [] if layer in AVAILABLE else [pytest.mark.skip(reason=f"layer {layer} unavailable here")]
        ways.append(pytest.param((layer,), False, id=f"{layer}-alone", marks=marks))
    ways.append(pytest.param(None, False, id="default"))
    return ways


def _expect(score_message, escapes: bool):
    score, message = score_message
    if escapes:
        assert score == 40, f"the attack itself does not work (so the test proves nothing): {message}"
    else:
        assert score == 0, "the attack got through"
        assert message


# --------------------------------------------------------------------------- files


@pytest.mark.parametrize("layers, escapes", _ways("identity", "landlock"))
def test_fence_patched_then_hidden_suite_read(tmp_path, layers, escapes):
    suite = EXAMPLE / "suite" / "test_mini.py"
    body = f"""
    import autograder.sandbox.worker as w
    w.Fence.may_read = lambda self, path: True      # the in-process fence, switched off
    w.Fence.__call__ = lambda self, event, args: None
    text = open({str(suite)!r}).read()
    return 2 * x if "def test_double" in text else 3 * x
    """
    _expect(_grade(tmp_path, body, layers), escapes)


@pytest.mark.parametrize("layers, escapes", _ways("identity", "landlock"))
def test_dir_fd_relative_open_of_the_solution(tmp_path, layers, escapes):
    solution = EXAMPLE / "solutions" / "01_mini" / "mini.py"
    body = f"""
    import os
    root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    fd = os.open({str(solution)[1:]!r}, os.O_RDONLY, dir_fd=root)
    text = os.read(fd, 100000).decode()
    return 2 * x if "BEGIN SOLUTION" in text else 3 * x
    """
    _expect(_grade(tmp_path, body, layers), escapes)


@pytest.mark.parametrize("layers, escapes", _ways("landlock"))
def test_hard_link_to_the_solution(tmp_path, layers, escapes):
    solution = tmp_path / "kit" / "solution.py"  # on the same file system as the scratch folder
    solution.parent.mkdir()
    solution.write_text("ANSWER = 'BEGIN SOLUTION'\n")
    body = f"""
    import os
    os.link({str(solution)!r}, "linked.py")
    return 2 * x if "BEGIN SOLUTION" in open("linked.py").read() else 3 * x
    """
    _expect(_grade(tmp_path, body, layers), escapes)


@pytest.mark.parametrize("layers, escapes", _ways("landlock"))
def test_symlink_to_the_solution(tmp_path, layers, escapes):
    solution = EXAMPLE / "solutions" / "01_mini" / "mini.py"
    body = f"""
    import os
    os.symlink({str(solution)!r}, "linked.py")
    fd = os.open("linked.py", os.O_RDONLY)
    return 2 * x if b"BEGIN SOLUTION" in os.read(fd, 100000) else 3 * x
    """
    _expect(_grade(tmp_path, body, layers), escapes)


@pytest.mark.parametrize("layers, escapes", _ways("identity", "landlock"))
def test_instructor_file_outside_the_kit(tmp_path, layers, escapes):
    private = tmp_path / "instructor"
    private.mkdir(mode=0o700)
    secret = private / "answers.txt"
    secret.write_text("the answer is 42")
    secret.chmod(0o600)
    body = f"""
    import os
    root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    fd = os.open({str(secret)[1:]!r}, os.O_RDONLY, dir_fd=root)
    return 2 * x if b"42" in os.read(fd, 100) else 3 * x
    """
    _expect(_grade(tmp_path, body, layers), escapes)


@pytest.mark.parametrize("layers, escapes", _ways("landlock"))
def test_neighbour_under_a_shallow_parent(tmp_path, layers, escapes):
    stamp = f"{os.getpid()}-{time.monotonic_ns()}"
    student, neighbour = Path(f"/tmp/kit-student-{stamp}"), Path(f"/tmp/kit-neighbour-{stamp}")
    neighbour.mkdir()
    (neighbour / "mini.py").write_text("NEIGHBOUR = 'their work'\n")
    body = f"""
    text = open({str(neighbour / 'mini.py')!r}).read()
    return 2 * x if "their work" in text else 3 * x
    """
    try:
        _expect(_grade(tmp_path, body, layers, folder=student), escapes)
    finally:
        for folder in (student, neighbour):
            subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.mark.parametrize("layers, escapes", _ways("identity", "landlock"))
def test_judge_environment_through_proc(tmp_path, monkeypatch, layers, escapes):
    """A cold judge's environment is in /proc/<judge>/environ; a warm one's (forked from the
    fork server, which has the worker's scrubbed environment) only in its memory."""
    body = """
    import os
    proc = os.open("/proc", os.O_RDONLY | os.O_DIRECTORY)
    judge = os.getppid()
    needle = b"KIT_TEST_SECRET=" + b"s3cret"
    fd = os.open(f"{judge}/environ", os.O_RDONLY, dir_fd=proc)
    if needle in os.read(fd, 1 << 20):
        return 2 * x
    with os.fdopen(os.open(f"{judge}/maps", os.O_RDONLY, dir_fd=proc)) as maps:
        regions = [line.split() for line in maps]
    memory = os.open(f"{judge}/mem", os.O_RDONLY, dir_fd=proc)
    for fields in regions:
        start, end = (int(v, 16) for v in fields[0].split("-"))
        if fields[1].startswith("rw") and (len(fields) < 6 or fields[5] == "[heap]") and end - start < 2**30:
            for offset in range(start, end, 2**22):
                try:
                    if needle in os.pread(memory, min(2**22 + 32, end - offset), offset):
                        return 2 * x
                except OSError:
                    break
    return 3 * x
    """
    monkeypatch.setenv("KIT_TEST_SECRET", "s3cret")  # the runner passes its environment to the judge
    _expect(_grade(tmp_path, body, layers), escapes)


# --------------------------------------------------------------------------- processes


@pytest.mark.parametrize("layers, escapes", _ways("seccomp", "landlock"))
def test_shell_through_spawnv_passfds(tmp_path, layers, escapes):
    marker = f"kit-daemon-{os.getpid()}-{time.monotonic_ns()}"
    body = f"""
    import multiprocessing.util as util, os, time
    util.spawnv_passfds(b"/bin/sh", [b"sh", b"-c", b"echo > shell-ran; sleep 20; : {marker}"], [])
    for _ in range(50):  # the shell ran if it left its mark
        if os.path.exists("shell-ran"):
            return 2 * x
        time.sleep(0.05)
    return 3 * x
    """
    _expect(_grade(tmp_path, body, layers), escapes)
    strays = [p for p in os.listdir("/proc") if p.isdigit() and marker in cmdline(p)]
    for pid in strays:  # only the bare run may leave one; it must not outlive this test
        os.kill(int(pid), signal.SIGKILL)
    assert escapes or not strays, "a process outlived the grading"


@pytest.mark.parametrize("layers, escapes", _ways("seccomp", "identity", "landlock"))
def test_pidfd_kills_an_unrelated_process(tmp_path, layers, escapes):
    victim = subprocess.Popen(["sleep", "60"])
    body = f"""
    import os, signal
    fd = os.pidfd_open({victim.pid})
    signal.pidfd_send_signal(fd, signal.SIGKILL)
    return 2 * x
    """
    try:
        _expect(_grade(tmp_path, body, layers), escapes)
        assert escapes or victim.poll() is None, "an unrelated process was killed"
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.parametrize("layers, escapes", _ways("seccomp", "namespaces"))
def test_udp_sendmsg_leaves_the_machine(tmp_path, layers, escapes):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setblocking(False)
    port = listener.getsockname()[1]
    body = f"""
    import socket
    out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out.sendmsg([b"hidden probes"], [], 0, ("127.0.0.1", {port}))
    return 2 * x
    """
    try:
        _expect(_grade(tmp_path, body, layers), escapes)
        try:
            received = listener.recv(100)
        except BlockingIOError:
            received = b""
        assert escapes == (received == b"hidden probes")
    finally:
        listener.close()


# --------------------------------------------------------------------------- memory and disk


@pytest.mark.parametrize("layers, escapes", _ways("seccomp", "cgroup"))
def test_memfd_hides_memory_from_the_limit(tmp_path, layers, escapes):
    # 1,800 MB in a memfd, over the example's 1,500 MB limit, invisible to RSS polling.
    body = """
    import os
    fd = os.memfd_create("hoard")
    chunk = b"x" * (64 << 20)
    for _ in range(28):
        os.write(fd, chunk)
    return 2 * x
    """
    _expect(_grade(tmp_path, body, layers), escapes)


@pytest.mark.parametrize("layers, escapes", _ways("namespaces", "limits"))
def test_many_files_each_under_the_size_limit(tmp_path, layers, escapes):
    # 40 files of 7 MB (the example allows 8 MB a file and 64 MB in all): 280 MB.
    body = """
    chunk = b"x" * (7 << 20)
    for i in range(40):
        with open(f"fill-{i}.bin", "wb") as out:
            out.write(chunk)
    return 2 * x
    """
    _expect(_grade(tmp_path, body, layers), escapes)


@pytest.mark.skipif("identity" not in AVAILABLE, reason="the identity layer needs root")
def test_nothing_of_the_worker_uid_survives(tmp_path):
    # identity alone: the shell runs and detaches into its own session, out of the worker's
    # process group; it has the worker's uid, so the judge's sweep after the worker ends finds it.
    marker = f"kit-daemon-{os.getpid()}-{time.monotonic_ns()}"
    body = f"""
    import os
    if os.fork() == 0:
        os.setsid()
        os.chdir("/")  # out of the runner's sweep of processes whose folder is the grading's
        os.execv("/bin/sh", ["sh", "-c", "sleep 30; : {marker}"])
    return 2 * x
    """
    score, _ = _grade(tmp_path, body, ("identity",))
    assert score == 40  # nothing stopped the fork: only the sweep is under test here
    time.sleep(0.2)
    assert not [p for p in os.listdir("/proc") if p.isdigit() and marker in cmdline(p)]


# --------------------------------------------------------------------------- reporting


def test_report_names_the_layers_and_doctor_agrees(tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "mini.py").write_text(GOOD)
    out = tmp_path / "out"
    graded = cli("--config", str(EXAMPLE / "grading.yml"), "grade", str(folder), "--assignment", "mini",
                 "--out", str(out), "--quiet")
    assert graded.returncode == 0, graded.stderr[-2000:]
    report, feedback = (out / "report.md").read_text(), (out / "feedback.md").read_text()
    doctor = cli("--config", str(EXAMPLE / "grading.yml"), "doctor")
    states = doctor_states(doctor.stdout)
    assert set(states) == {"limits", "cgroup", "namespaces", "identity", "landlock", "seccomp", "fence"}
    for layer, state in states.items():
        assert f"| {layer} | {state.split(':')[0]}" in report  # the same verdict in every report
        assert (layer in AVAILABLE) == state.startswith("active"), (layer, state)
    assert doctor.returncode == (0 if all(s.startswith("active") for s in states.values()) else 1)
    assert "Isolation" not in feedback  # the instructor's file only


def test_strict_isolation_grades_only_where_every_layer_holds(tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "mini.py").write_text(GOOD)
    if set(AVAILABLE) >= {"limits", "cgroup", "namespaces", "identity", "landlock", "seccomp"}:
        result = runner.grade(CONFIG, MINI, folder, isolation="strict")
        assert result.score == 100 and all(s.startswith("active") for s in result.isolation.values())
    else:
        with pytest.raises(runner.IsolationError, match="isolation is strict"):
            runner.grade(CONFIG, MINI, folder, isolation="strict")


def test_site_packages_on_the_path_are_readable_and_nothing_else_is(tmp_path, monkeypatch):
    """A venv whose .pth lists another environment's site-packages imports torch from there (and
    torch imports parts of itself after Landlock): that folder is readable to the worker. Another
    path entry (an editable checkout of the kit) is not."""
    layered = tmp_path / "other-env" / "lib" / "python3.11" / "site-packages"
    checkout = tmp_path / "checkout"
    layered.mkdir(parents=True)
    checkout.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(layered), str(checkout)])
    readable = Policy.for_grading().readable
    assert os.path.realpath(layered) in readable
    assert not any(os.path.realpath(checkout).startswith(r) for r in readable)
