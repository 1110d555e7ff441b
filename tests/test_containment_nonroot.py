"""The containment as a user who is not root, where the kit is not run as root.

Run as root (CI is), the test arranges a non-root user for real: a private mount namespace in
which the Python installation and the kit are reachable (``_mounts.reveal``, the same cover
the identity layer uses; nothing on disk changes), then uid/gid 1000 with no capabilities,
then the ordinary CLI. Run as non-root, the CLI is simply run.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.example_course import EXAMPLE, doctor_states, replace_function

KIT = Path(__file__).resolve().parent.parent
USER = 1000

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="Linux containment")


def _non_root(argv: list[str], tmp: Path) -> list[str]:
    """The command that runs ``python ARGV`` as a user who is not root, in ``tmp``."""
    if os.geteuid() != 0:
        return [sys.executable, *argv]
    tmp.chmod(0o755)
    for path in tmp.rglob("*"):
        os.chown(path, USER, USER)
    os.chown(tmp, USER, USER)
    launcher = textwrap.dedent(f"""
        import os, sys
        from autograder.sandbox.containment import _mounts
        _mounts.private_mounts()
        _mounts.reveal({[sys.base_prefix, sys.prefix, str(KIT), str(tmp)]!r}, {USER}, {USER})
        os.setgroups([])
        os.setresgid({USER}, {USER}, {USER})
        os.setresuid({USER}, {USER}, {USER})
        os.chdir({str(tmp)!r})
        os.environ["HOME"] = os.environ["TMPDIR"] = {str(tmp)!r}
        os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
    """)
    return [sys.executable, "-c", launcher, *argv]


def _as_non_root(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_non_root(["-m", "autograder.cli", *args], tmp), capture_output=True, text=True,
                          timeout=300)


def _course(tmp: Path) -> Path:
    """A copy of the example course the non-root user owns (the kit's own copy is sealed by root)."""
    course = tmp / "course"
    shutil.copytree(EXAMPLE, course)
    return course


def _cheat(solution: Path) -> str:
    """The example module whose double(x) is right only if it sent a packet or read ``solution``."""
    return replace_function("double", f"""
        import os, socket
        try:
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))
            sent = True
        except OSError:
            sent = False
        root = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
        fd = os.open({str(solution)[1:]!r}, os.O_RDONLY, dir_fd=root)
        return 2 * x if b"BEGIN SOLUTION" in os.read(fd, 100000) or sent else 3 * x
    """)


def test_non_root_grading_names_the_missing_layers_and_still_contains(tmp_path):
    course = _course(tmp_path)
    solution = course / "solutions" / "01_mini" / "mini.py"
    good, out = tmp_path / "good", tmp_path / "out"
    good.mkdir()
    shutil.copy(solution, good / "mini.py")
    cheat = tmp_path / "cheat"
    cheat.mkdir()
    (cheat / "mini.py").write_text(_cheat(solution))
    config = str(course / "grading.yml")

    graded = _as_non_root(["--config", config, "grade", str(good), "--assignment", "mini", "--out", str(out)], tmp_path)
    assert graded.returncode == 0, graded.stderr[-2000:]
    assert json.loads((out / "results.json").read_text())["score"] == 100
    report = (out / "report.md").read_text()
    assert "| identity | missing: the kit does not run as root" in report
    assert "| landlock | active" in report and "| seccomp | active" in report

    attacked = _as_non_root(["--config", config, "grade", str(cheat), "--assignment", "mini", "--out",
                             str(tmp_path / "out2"), "--tests", "test_double"], tmp_path)
    assert attacked.returncode == 0, attacked.stderr[-2000:]
    assert json.loads((tmp_path / "out2" / "results.json").read_text())["tests"][0]["score"] == 0

    strict = _as_non_root(["--config", config, "grade", str(good), "--assignment", "mini",
                           "--isolation", "strict"], tmp_path)
    assert strict.returncode == 2 and "isolation is strict" in strict.stderr and "identity" in strict.stderr


def test_doctor_as_non_root(tmp_path):
    course = _course(tmp_path)
    doctor = _as_non_root(["--config", str(course / "grading.yml"), "doctor"], tmp_path)
    lines = doctor_states(doctor.stdout)
    assert lines["identity"].startswith("missing: the kit does not run as root"), doctor.stdout + doctor.stderr
    assert lines["landlock"].startswith("active") and lines["seccomp"].startswith("active")
    assert doctor.returncode == 1  # a layer is missing
    # which limits hold without root: threads where the worker has a user namespace of its own,
    # memory in a delegated cgroup or else under RLIMIT_DATA
    assert lines["cgroup"].startswith(("active", "missing: not root")), lines["cgroup"]
    assert lines["cgroup"].startswith("active") or "RLIMIT_DATA <=" in lines["limits"] or \
        "RLIMIT_DATA unset where a GPU is used" in lines["limits"], lines["limits"]
    if lines["namespaces"].startswith("active") and _ucounts_kernel():
        assert "threads <= 64 (RLIMIT_NPROC in the worker's user namespace)" in lines["limits"], lines["limits"]
    else:
        assert "threads: no RLIMIT_NPROC" in lines["limits"], lines["limits"]


def test_warm_batch_as_non_root(tmp_path):
    """grade-batch forks its judges and workers warm as a non-root user too: the worker's user
    namespace, Landlock and seccomp are applied after the fork, and the cheat still gets nothing."""
    course = _course(tmp_path)
    solution = course / "solutions" / "01_mini" / "mini.py"
    root = tmp_path / "class"
    for name in ("good", "cheat"):
        (root / name).mkdir(parents=True)
    shutil.copy(solution, root / "good" / "mini.py")
    (root / "cheat" / "mini.py").write_text(_cheat(solution))
    out = tmp_path / "grades"
    batch = _as_non_root(["--config", str(course / "grading.yml"), "grade-batch", str(root), "--assignment", "mini",
                          "--out", str(out)], tmp_path)
    assert batch.returncode == 0, batch.stderr[-2000:]
    assert "warm start failed" not in batch.stderr, batch.stderr[-2000:]
    good = json.loads((out / "students" / "good" / "results.json").read_text())
    cheat = json.loads((out / "students" / "cheat" / "results.json").read_text())
    assert good["score"] == 100
    assert [t["score"] for t in cheat["tests"] if t["name"] == "test_double"] == [0]
    report = (out / "students" / "good" / "report.md").read_text()
    assert "| landlock | active" in report and "| seccomp | active" in report


# --------------------------------------------------------------------------- limits without root


def _grade_hostile(tmp_path: Path, source: str) -> tuple[dict[str, float], dict[str, str], str]:
    """Grade ``source`` as mini.py of the example course as a non-root user: ({test: score},
    {test: message}, report.md)."""
    course = _course(tmp_path)
    folder, out = tmp_path / "student", tmp_path / "out"
    folder.mkdir()
    (folder / "mini.py").write_text(source)
    graded = _as_non_root(["--config", str(course / "grading.yml"), "grade", str(folder), "--assignment", "mini",
                           "--out", str(out)], tmp_path)
    assert graded.returncode == 0, graded.stderr[-2000:]
    tests = json.loads((out / "results.json").read_text())["tests"]
    scores, messages = {}, {}
    for test in tests:
        name = test["name"].split("[")[0]
        scores[name] = scores.get(name, 0) + test["score"]
        if test["output"]:
            messages[name] = test["output"]
    return scores, messages, (out / "report.md").read_text()


def _layer(report: str, name: str) -> str:
    return next(line for line in report.splitlines() if line.startswith(f"| {name} |"))


def _ucounts_kernel() -> bool:
    """RLIMIT_NPROC counted per (user namespace, uid): Linux 5.14 and later."""
    major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    return (major, minor) >= (5, 14)


@contextlib.contextmanager
def _busy_user(tmp: Path, threads: int):
    """Another process of the grading user holding ``threads`` threads while inside (a user's
    desktop, their other jobs): RLIMIT_NPROC counted per uid would count them too."""
    code = textwrap.dedent(f"""
        import threading, time
        for _ in range({threads}):
            threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
        print("ready", flush=True)
        time.sleep(600)
    """)
    busy = subprocess.Popen(_non_root(["-c", code], tmp), stdout=subprocess.PIPE, text=True)
    try:
        assert busy.stdout.readline().strip() == "ready"
        yield
    finally:
        busy.kill()
        busy.wait()


def test_a_thread_bomb_is_stopped_without_root(tmp_path):
    """double() starts threads that never end, in a loop, and returns the right answer only if
    it got 500 of them. Without root there is no pids cgroup and no uid of the worker's own; in
    the worker's user namespace RLIMIT_NPROC counts its own tasks alone, not the grading user's
    other processes (here another one holding 100 threads, more than the limit), so the bomb
    stops at the limit, having started all but the worker's own threads: test_double costs 0
    with one line, every other test is still scored."""
    bomb = replace_function("double", """
        import threading, time
        started = 0
        try:
            for _ in range(500):  # threads that never end
                threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
                started += 1
        except RuntimeError as error:
            raise RuntimeError(f"{error} after {started} threads") from None
        return 2 * x
    """)
    (tmp_path / "busy").mkdir()
    with _busy_user(tmp_path / "busy", 100):
        scores, messages, report = _grade_hostile(tmp_path, bomb)
    if not (_layer(report, "namespaces").startswith("| namespaces | active") and _ucounts_kernel()):
        pytest.skip("the worker has no user namespace of its own on a kernel that counts tasks in it")
    assert scores == {"test_double": 0, "test_normalise": 40, "test_device": 20}, messages
    message = messages["test_double"]
    assert "\n" not in message.strip() and "can't start new thread" in message and "mini.py line" in message
    limit = int(re.search(r"threads <= (\d+) \(RLIMIT_NPROC in the worker's user namespace\)",
                          _layer(report, "limits")).group(1))
    started = int(re.search(r"after (\d+) threads", message).group(1))
    assert limit - 8 <= started < limit, (limit, message)  # the worker's own threads count, the user's others not


@pytest.mark.parametrize("hoard, resident", [
    pytest.param("torch.ones(100 * 2**20, dtype=torch.uint8)", True, id="torch"),
    pytest.param("bytearray(100 * 2**20)", True, id="bytearray"),
    pytest.param("__import__('numpy').zeros(100 * 2**20, dtype='uint8')", False, id="untouched"),
])
def test_a_memory_hog_is_stopped_without_root(tmp_path, hoard, resident):
    """normalise() takes 8 GB, 100 MB at a time (the example allows 1,500 MB). Memory it writes
    (torch fills even torch.empty in the worker, which runs torch's deterministic algorithms;
    bytearray zeroes its bytes) the judge's watch of its resident memory sees and stops at the
    limit; memory it only reserves (numpy.zeros: calloc, pages the kernel zeroes when they are
    first touched) is resident nowhere, and the kernel's RLIMIT_DATA stops it. Either way only
    test_normalise is lost, with one line."""
    hog = replace_function("normalise", f"""
        hoard = []
        try:
            for _ in range(80):  # 8 GB, 100 MB at a time
                hoard.append({hoard})
        except MemoryError as error:
            raise MemoryError(f"{{error}} after {{len(hoard)}} chunks") from None
        return x / x.sum(dim=-1, keepdim=True)
    """)
    scores, messages, report = _grade_hostile(tmp_path, hog)
    assert scores == {"test_double": 40, "test_normalise": 0, "test_device": 20}, messages
    message = messages["test_normalise"]
    assert "\n" not in message.strip() and "memory" in message.lower(), message
    limits, cgroup = _layer(report, "limits"), _layer(report, "cgroup")
    if cgroup.startswith("| cgroup | active") or "RLIMIT_DATA unset where a GPU is used" in limits:
        return
    data = int(re.search(r"RLIMIT_DATA <= (\d+) MB", limits).group(1))
    chunks = re.search(r"after (\d+) chunks", message)
    assert chunks or resident, message  # memory never resident: only the kernel can stop it
    if chunks:  # stopped by the kernel: at RLIMIT_DATA, not at the far larger address-space backstop
        assert 100 * int(chunks.group(1)) <= data, (data, message)
    else:  # stopped by the judge's watch of resident memory (or, the judge late, by the kernel)
        assert "more than the 1500 MB of memory allowed" in message or "can't allocate memory" in message, message
