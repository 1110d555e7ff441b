"""Namespaces: no network interface at all, no shared IPC, and a scratch folder on a tmpfs of
its own size.

* network: a new network namespace holds only a loopback that is down, so nothing can be
  sent anywhere, not even to this machine;
* IPC: System V shared memory and message queues of the host are out of sight;
* mounts: a private mount namespace in which the scratch folder is a tmpfs capped at
  ``scratch_mb`` and ``scratch_files``; the submission is copied onto it. The tmpfs is
  charged to the worker's memory cgroup and disappears with the worker.

Root makes them directly; anyone else first makes a user namespace (when the kernel
allows unprivileged ones) in which it is root over these namespaces and nothing more. That
namespace is also what lets the limits layer, applied after this one, bound the worker's
threads without root (see ``limits``).
"""

from __future__ import annotations

import os
import shutil

from autograder.sandbox.containment import _mounts

NAME = "namespaces"

_own_user_namespace = False  # this process made a user namespace of its own (not as root)


def _userns_allowed() -> bool:
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            if int(f.read()) == 0:
                return False
        with open("/proc/sys/kernel/unprivileged_userns_clone") as f:
            return f.read().strip() != "0"
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False


def unavailable(policy=None) -> str | None:
    if os.geteuid() != 0 and not _userns_allowed():
        return "not root, and unprivileged user namespaces are disabled on this kernel"
    return None


def in_own_user_namespace() -> bool:
    """Whether this process made and entered a user namespace of its own: there, since Linux
    5.14, RLIMIT_NPROC counts only its own tasks."""
    return _own_user_namespace


def _enter_user_namespace() -> None:
    global _own_user_namespace
    uid, gid = os.geteuid(), os.getegid()
    _mounts.unshare(_mounts.CLONE_NEWUSER)
    _own_user_namespace = True
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def apply(policy) -> str:
    if os.geteuid() != 0:
        _enter_user_namespace()
    _mounts.unshare(_mounts.CLONE_NEWNET | _mounts.CLONE_NEWIPC)
    _mounts.private_mounts()
    # The judge's copy of the submission lies under the mount point: keep a handle on it,
    # cover it with the tmpfs, copy it onto the tmpfs through the handle.
    copy = os.open(policy.scratch, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    options = f"size={policy.scratch_mb}m,nr_inodes={policy.scratch_files},mode=0700"
    _mounts.mount("kit-scratch", policy.scratch, "tmpfs", _mounts.MS_NOSUID | _mounts.MS_NODEV, options)
    shutil.copytree(f"/proc/self/fd/{copy}", policy.scratch, dirs_exist_ok=True, symlinks=True)
    os.close(copy)
    os.chdir(policy.scratch)  # the old working directory was the folder now underneath
    return (f"no network, own IPC, scratch on a tmpfs of {policy.scratch_mb} MB "
            f"and {policy.scratch_files} files")
