"""Identity: when the kit runs as root, the worker becomes a uid/gid of its own, with no
supplementary groups and no capabilities, so the kernel's file permissions and signal rules
apply to it like to any stranger: the grading's private files (mode 0700/0600, owned by the
grading user) are closed to it, and so are other users' processes.

The uid is ``WORKER_ID_BASE + the judge's pid`` (see ``policy.py``): no user of the machine
has it, and two gradings at once never share one. The folders it must read (the Python
installation, the kit's data) may sit under a folder closed to strangers, such as
``/root`` at mode 0700; they are re-exposed in the worker's private mount namespace
(``_mounts.reveal``) rather than opened up on disk.
"""

from __future__ import annotations

import os

from autograder.sandbox.containment import _mounts

NAME = "identity"


def unavailable(policy) -> str | None:
    if policy.uid is None:
        return "the kit does not run as root: the worker keeps the grading user's uid, the layers below hold"
    if os.geteuid() != 0:
        return "the worker is not root, so it cannot change its identity"
    return None


def _chown_tree(folder: str, uid: int, gid: int) -> None:
    os.chown(folder, uid, gid)
    for parent, dirs, files in os.walk(folder):
        for name in dirs + files:
            os.chown(os.path.join(parent, name), uid, gid, follow_symlinks=False)


def apply(policy) -> str:
    uid, gid = policy.uid, policy.gid
    _chown_tree(policy.scratch, uid, gid)
    needed = [p for p in policy.readable if os.path.exists(p) and not p.startswith("/proc")] + [policy.scratch]
    closed = [p for p in needed if _mounts.first_closed(p, uid, gid) is not None]
    covered = []
    if closed:
        _mounts.private_mounts()  # a namespace of its own even when the namespaces layer is off
        covered = _mounts.reveal(closed, uid, gid)
        os.chdir(policy.scratch)
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("setresuid did not take")
    note = f"; re-exposed {', '.join(covered)}" if covered else ""
    return f"uid {uid}, gid {gid}, no groups, no capabilities{note}"

