"""The containment as a user who is not root, where the kit is not run as root.

Run as root (CI is), the test arranges a non-root user for real: a private mount namespace in
which the Python installation and the kit are reachable (``_mounts.reveal``, the same cover
the identity layer uses; nothing on disk changes), then uid/gid 1000 with no capabilities,
then the ordinary CLI. Run as non-root, the CLI is simply run.
"""

from __future__ import annotations

import json
import os
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


def _as_non_root(args: list[str], tmp: Path) -> subprocess.CompletedProcess:
    if os.geteuid() != 0:
        return subprocess.run([sys.executable, "-m", "autograder.cli", *args], capture_output=True, text=True,
                              timeout=300)
    tmp.chmod(0o755)
    for path in tmp.rglob("*"):
        os.chown(path, USER, USER)
    os.chown(tmp, USER, USER)
    launcher = textwrap.dedent(f"""
        import os, sys
        from autograder.containment import _mounts
        _mounts.private_mounts()
        _mounts.reveal({[sys.base_prefix, sys.prefix, str(KIT), str(tmp)]!r}, {USER}, {USER})
        os.setgroups([])
        os.setresgid({USER}, {USER}, {USER})
        os.setresuid({USER}, {USER}, {USER})
        os.chdir({str(tmp)!r})
        os.environ["HOME"] = os.environ["TMPDIR"] = {str(tmp)!r}
        os.execv(sys.executable, [sys.executable, "-m", "autograder.cli", *sys.argv[1:]])
    """)
    return subprocess.run([sys.executable, "-c", launcher, *args], capture_output=True, text=True, timeout=300)


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
