"""The worker's cgroup (autograder.containment.cgroup) on its own: a fresh one per worker.

A cgroup left behind (its removal gave up while a killed worker was still exiting) once had
the very name the next worker's cgroup was given: judges' pids are reused, and a restart
counter starts at 1 in every judge. Writing the new limit into the old cgroup then failed
(the kernel refuses a memory limit above the old memory+swap limit: EINVAL), a grader error
for a student who had done nothing wrong, and its processes would have been charged to the
new worker.
"""

from __future__ import annotations

import os

import pytest

from autograder.containment import cgroup

pytestmark = pytest.mark.skipif(cgroup.unavailable() is not None, reason=f"no cgroups here: {cgroup.unavailable()}")


def _limit_mb(group: cgroup.Cgroup) -> int:
    name = "memory.limit_in_bytes" if group.version == 1 else "memory.max"
    return int((group.memory / name).read_text()) // 2**20


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


def test_the_name_given_to_the_worker_is_the_cgroups_own():
    group = cgroup.Cgroup("autograder-test-name", 100, 8)
    try:
        assert group.name.startswith("autograder-test-name-")
        assert all(folder.name == group.name for folder in group.dirs)
    finally:
        group.remove()


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
