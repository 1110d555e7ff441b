"""A memory and pids cgroup for one worker, made and removed by the judge (cgroup v1 or v2).

The kernel charges everything the worker holds to it, resident memory, memfd, shared memory
and the tmpfs its scratch folder lives on, and kills the worker (SIGKILL) past the limit;
the judge then reads the cgroup's OOM counter to tell the student it was memory.

Root makes it under its own cgroup (v1 or v2). Anyone else only where a cgroup v2 subtree is
delegated to them: the judge's own cgroup or its parent, writable by the judge's user, with
the memory and pids controllers enabled for its children (systemd's ``Delegate=yes`` with
``DelegateSubgroup=``, which runs the service in a child of its delegated cgroup, or a
subtree an administrator gave the user). cgroup v1 is never delegated; where there is no
cgroup, the limits layer bounds the worker's threads and private memory with setrlimit.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

NAME = "cgroup"
ROOT = Path("/sys/fs/cgroup")


def _own_path(controller: str) -> str:
    """This process's cgroup path for a v1 controller ('' for v2's unified line)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(",") or (controller == "" and controllers == ""):
                return path
    except (OSError, ValueError):
        pass
    return "/"


def _base(controller: str) -> Path | None:
    """Where to make a child cgroup: below this process's own cgroup if that is visible."""
    if controller:
        mount = ROOT / controller
        if not (mount / "cgroup.procs").exists():
            return None
    else:
        mount = ROOT if (ROOT / "cgroup.controllers").exists() else ROOT / "unified"
        if not (mount / "cgroup.controllers").exists():
            return None
    own = mount / _own_path(controller).lstrip("/")
    return own if own.is_dir() else mount


def _v2_ready(base: Path) -> bool:
    try:
        enabled = (base / "cgroup.subtree_control").read_text().split()
    except OSError:
        return False
    return "memory" in enabled and "pids" in enabled


def _v2_mount() -> Path | None:
    mount = ROOT if (ROOT / "cgroup.controllers").exists() else ROOT / "unified"
    return mount if (mount / "cgroup.controllers").exists() else None


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK) and os.access(folder / "cgroup.procs", os.W_OK)


def delegated() -> Path | None:
    """Where a user who is not root may make the worker's cgroup: the first of the judge's own
    cgroup v2 and its parent that this user may write, memory and pids enabled for its
    children. Moving the worker there from the judge's cgroup needs write access to the
    cgroup.procs of the cgroup above both, which is that one."""
    mount = _v2_mount()
    if mount is None:
        return None
    own = mount / _own_path("").lstrip("/")
    for base in (own, own.parent):
        if not (base == mount or mount in base.parents) or not base.is_dir():
            break
        if _v2_ready(base) and _writable(base):
            return base
    return None


def _not_delegated() -> str:
    """Why a user who is not root has no cgroup here."""
    mount = _v2_mount()
    if mount is None:
        return "not root, and this machine has no cgroup v2 (cgroup v1 is never delegated)"
    try:
        offered = (mount / "cgroup.controllers").read_text().split()
    except OSError:
        offered = []
    if "memory" not in offered or "pids" not in offered:
        return ("not root, and the memory and pids controllers are on cgroup v1 here (never delegated), "
                "not on cgroup v2")
    return ("not root, and no delegated cgroup v2 subtree: neither the judge's cgroup nor its parent is "
            "writable by this user with memory and pids enabled for its children (systemd: Delegate=yes)")


def _placement() -> tuple[int, list[Path]]:
    """(cgroup version, [memory base, pids base] or [v2 base]) where this process makes cgroups;
    (0, []) where it makes none."""
    if os.geteuid() == 0:
        memory, pids = _base("memory"), _base("pids")
        if memory and pids:
            return 1, [memory, pids]
        v2 = _base("")
        if v2 is not None and _v2_ready(v2):
            return 2, [v2]
        return 0, []
    base = delegated()
    return (2, [base]) if base is not None else (0, [])


def unavailable(policy=None) -> str | None:
    if _placement()[0]:
        return None
    if os.geteuid() != 0:
        return _not_delegated()
    return "no writable cgroup v1 memory+pids controllers nor a cgroup v2 with memory and pids delegated"


class Cgroup:
    """memory.limit (no swap beyond it) and pids.max for the processes added to it, in cgroups
    named ``prefix-RANDOM`` (``name``): always new ones. A cgroup of the same prefix may be left
    over (its removal gave up while a killed worker was exiting, and judges' pids are reused);
    reusing it would charge its processes to this worker, and the kernel refuses a memory limit
    above its old memory+swap limit."""

    def __init__(self, prefix: str, memory_mb: int, pids: int):
        self.name = f"{prefix}-{secrets.token_hex(4)}"
        self.dirs: list[Path] = []
        name = self.name
        self.version, bases = _placement()
        if not self.version:
            raise OSError(unavailable())
        limit = str(memory_mb * 2**20)
        if self.version == 1:
            memory, pid_base = bases
            self.memory = self._make(memory / name)
            (self.memory / "memory.limit_in_bytes").write_text(limit)
            try:
                (self.memory / "memory.memsw.limit_in_bytes").write_text(limit)
            except OSError:  # no swap accounting: swap is not limited separately
                pass
            self.pids = self._make(pid_base / name)
            (self.pids / "pids.max").write_text(str(pids))
        else:
            self.memory = self.pids = self._make(bases[0] / name)
            (self.memory / "memory.max").write_text(limit)
            try:
                (self.memory / "memory.swap.max").write_text("0")
            except OSError:  # no swap accounting: swap is not limited separately
                pass
            (self.memory / "pids.max").write_text(str(pids))

    def _make(self, path: Path) -> Path:
        path.mkdir()  # FileExistsError rather than someone else's cgroup
        self.dirs.append(path)
        return path

    def add(self, pid: int) -> None:
        for folder in self.dirs:
            (folder / "cgroup.procs").write_text(str(pid))

    def oom_killed(self) -> bool:
        try:
            if self.version == 1:
                text = (self.memory / "memory.oom_control").read_text()
                fields = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
                return int(fields.get("oom_kill", 0)) > 0
            fields = dict(line.split() for line in (self.memory / "memory.events").read_text().splitlines())
            return int(fields.get("oom_kill", 0)) > 0
        except (OSError, ValueError):
            return False

    def remove(self) -> None:
        """Remove the cgroups once their processes are gone (the judge has killed them)."""
        for folder in self.dirs:
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def remove_orphans(prefix: str) -> int:
    """Remove the empty cgroups named ``<prefix><PID>-...`` whose maker, process PID, is gone;
    return how many. A judge killed mid-grading exits without removing its worker's cgroup,
    and a removal gives up after a second while a killed worker is still exiting: 150 were
    left in a day of batches and tests here. One whose maker lives (or whose pid was reused)
    is left alone, and the kernel refuses to remove one that still holds a process."""
    removed = 0
    for base in _placement()[1]:  # where Cgroup makes them
        for folder in base.glob(f"{prefix}*"):
            maker = folder.name[len(prefix):].split("-", 1)[0]
            if not maker.isdigit() or Path(f"/proc/{maker}").exists():
                continue
            try:
                folder.rmdir()
                removed += 1
            except OSError:  # still holds a process, or another judge removed it first
                pass
    return removed


def apply(policy) -> str:
    """The judge placed the worker in its cgroup before sending the policy; report it."""
    if not policy.cgroup:
        raise OSError("the judge could not make a cgroup for this worker")
    return f"{policy.cgroup}: memory <= {policy.memory_mb} MB (memfd, shmem and tmpfs included), <= {policy.pids} tasks"
