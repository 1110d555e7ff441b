"""The worker's cgroup (autograder.sandbox.containment.cgroup) on its own: a fresh one per worker.

A cgroup left behind (its removal gave up while a killed worker was still exiting) once had
the very name the next worker's cgroup was given: judges' pids are reused, and a restart
counter starts at 1 in every judge. Writing the new limit into the old cgroup then failed
(the kernel refuses a memory limit above the old memory+swap limit: EINVAL), a grader error
for a student who had done nothing wrong, and its processes would have been charged to the
new worker.

Without root, the cgroup is made only in a cgroup v2 subtree delegated to the user; the
tests of that find one in a tree laid out like systemd's, made in a temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from autograder.sandbox.containment import cgroup

needs_cgroups = pytest.mark.skipif(cgroup.unavailable() is not None, reason=f"no cgroups here: {cgroup.unavailable()}")


def _limit_mb(group: cgroup.Cgroup) -> int:
    name = "memory.limit_in_bytes" if group.version == 1 else "memory.max"
    return int((group.memory / name).read_text()) // 2**20


@needs_cgroups
def test_a_left_over_cgroup_of_the_same_name_is_never_reused():
    left_over = cgroup.Cgroup("autograder-test-reuse", 64, 16)
    try:
        fresh = cgroup.Cgroup("autograder-test-reuse", 1500, 64)
        try:
            assert not set(fresh.dirs) & set(left_over.dirs)
            assert _limit_mb(fresh) == 1500 and _limit_mb(left_over) == 64
            assert (fresh.pids / "pids.max").read_text().strip() == "64"
        finally:
            fresh.remove()
    finally:
        left_over.remove()
    assert not any(folder.exists() for folder in fresh.dirs + left_over.dirs)


@needs_cgroups
def test_the_name_given_to_the_worker_is_the_cgroups_own():
    group = cgroup.Cgroup("autograder-test-name", 100, 8)
    try:
        assert group.name.startswith("autograder-test-name-")
        assert all(folder.name == group.name for folder in group.dirs)
    finally:
        group.remove()


@needs_cgroups
def test_the_cgroups_of_a_judge_that_is_gone_are_removed(tmp_path):
    """A judge killed mid-grading leaves its worker's cgroup behind: the next judge removes it.
    The cgroups of a judge that lives, and names of another kind, are left alone."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    orphan = cgroup.Cgroup(f"autograder-test-orphans-{dead_pid}-1", 64, 16)
    alive = cgroup.Cgroup(f"autograder-test-orphans-{os.getpid()}-1", 64, 16)
    other = cgroup.Cgroup("autograder-test-orphans-x", 64, 16)
    try:
        assert cgroup.remove_orphans("autograder-test-orphans-") == len(orphan.dirs)
        assert not any(folder.exists() for folder in orphan.dirs)
        assert all(folder.exists() for folder in alive.dirs + other.dirs)
    finally:
        for group in (orphan, alive, other):
            group.remove()


# --------------------------------------------------------------------------- without root


def _fake_v2(tmp_path, monkeypatch, offered: str, delegated: bool) -> Path:
    """A cgroup v2 tree like systemd's Delegate=yes with DelegateSubgroup=judge: the judge runs
    in svc/judge, svc has the controllers enabled for its children; the judge is uid 1000."""
    root = tmp_path / "cgroup"
    svc = root / "user.slice" / "svc"
    (svc / "judge").mkdir(parents=True)
    (root / "cgroup.controllers").write_text(offered + "\n")
    for folder in (root, root / "user.slice", svc, svc / "judge"):
        (folder / "cgroup.procs").write_text("")
    (svc / "cgroup.subtree_control").write_text(offered if delegated else "")
    (svc / "judge" / "cgroup.subtree_control").write_text("")
    monkeypatch.setattr(cgroup, "ROOT", root)
    monkeypatch.setattr(cgroup, "_own_path", lambda controller: "/user.slice/svc/judge")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    return svc


def test_a_delegated_cgroup_v2_subtree_is_used_without_root(tmp_path, monkeypatch):
    svc = _fake_v2(tmp_path, monkeypatch, "cpu memory pids", delegated=True)
    assert cgroup.delegated() == svc and cgroup.unavailable() is None
    group = cgroup.Cgroup("autograder-test-delegated", 1500, 64)
    assert group.version == 2 and group.memory == group.pids and group.memory.parent == svc
    assert (group.memory / "memory.max").read_text() == str(1500 * 2**20)
    assert (group.memory / "pids.max").read_text() == "64"
    group.add(4321)
    assert (group.memory / "cgroup.procs").read_text() == "4321"


def test_no_cgroup_without_root_says_why(tmp_path, monkeypatch):
    _fake_v2(tmp_path, monkeypatch, "cpu memory pids", delegated=False)
    assert cgroup.delegated() is None
    assert "no delegated cgroup v2 subtree" in cgroup.unavailable()


def test_a_subtree_the_user_may_not_write_is_not_delegated(tmp_path, monkeypatch):
    _fake_v2(tmp_path, monkeypatch, "cpu memory pids", delegated=True)
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # owned by root, as systemd's slices are
    assert cgroup.delegated() is None and "no delegated cgroup v2 subtree" in cgroup.unavailable()


def test_controllers_on_cgroup_v1_are_never_delegated(tmp_path, monkeypatch):
    """Like this machine: cgroup v2 is mounted (hybrid) with no controllers, memory and pids are on v1."""
    _fake_v2(tmp_path, monkeypatch, "", delegated=True)
    assert cgroup.delegated() is None and "on cgroup v1" in cgroup.unavailable()
