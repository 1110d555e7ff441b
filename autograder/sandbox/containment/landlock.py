"""Landlock: the worker may read the trees the policy names and write only its scratch folder.

Landlock (Linux >= 5.13) needs no privilege and holds for root as well. A ruleset lists
the access rights it *handles*; anything handled and not granted by a rule is denied,
everywhere, for the rest of the process's life. The ABI is negotiated down: rights an
older kernel does not know are simply not handled.

    ABI 1  files: read, write, execute, make and remove
    ABI 2  REFER (links and renames across folders)      ABI 3  TRUNCATE
    ABI 4  TCP bind / connect                            ABI 5  device ioctls
    ABI 6  scopes: signals and abstract UNIX sockets to processes outside the sandbox

Nothing of ``/proc`` is granted, so other processes' ``environ``, ``mem`` and links are
out of reach; signals to processes outside the domain are scoped away from ABI 6 on.
"""

from __future__ import annotations

import ctypes
import os

from autograder.sandbox.containment._syscalls import check, libc, no_new_privs

NAME = "landlock"

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446  # the same on every architecture
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1

FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV   # the rights a rule on a file may grant
READ = READ_FILE | READ_DIR
# In the scratch folder: files, folders, symlinks (followed only to what is granted), renames
# between its own folders (REFER on both ends; nothing outside has it, so no link comes in).
WRITE = READ | WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM | REFER | TRUNCATE


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def abi_version() -> int:
    """The kernel's Landlock ABI, 0 when Landlock is absent or disabled."""
    version = libc.syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(0, int(version))


def unavailable(policy=None) -> str | None:
    """Why Landlock cannot be used here, or None."""
    return None if abi_version() >= 1 else "the kernel has no Landlock (Linux >= 5.13 with lsm=landlock)"


class Ruleset:
    def __init__(self):
        self.abi = abi_version()
        if self.abi < 1:
            raise OSError(unavailable())
        self.handled = FS_BY_ABI.get(self.abi, (1 << 16) - 1)
        attr = _RulesetAttr(self.handled, NET_BIND_TCP | NET_CONNECT_TCP if self.abi >= 4 else 0,
                            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if self.abi >= 6 else 0)
        size = 8 if self.abi < 4 else 16 if self.abi < 6 else 24
        self.fd = check(libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                                     ctypes.c_uint32(0)), "landlock_create_ruleset")

    def allow(self, path: str, access: int) -> None:
        """Grant ``access`` on ``path`` and everything beneath it (a missing path is skipped)."""
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            if not os.path.isdir(path):
                access &= FILE_RIGHTS
            rule = _PathBeneathAttr(access & self.handled, fd)
            check(libc.syscall(SYS_ADD_RULE, self.fd, RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)),
                  f"landlock_add_rule({path})")
        finally:
            os.close(fd)

    def enforce(self) -> None:
        no_new_privs()
        try:
            check(libc.syscall(SYS_RESTRICT_SELF, self.fd, ctypes.c_uint32(0)), "landlock_restrict_self")
        finally:
            os.close(self.fd)


def apply(policy) -> str:
    """Restrict this process to the policy's trees; return a one-line description."""
    rules = Ruleset()
    hidden = [os.path.realpath(h) for h in policy.hidden]
    for tree in policy.readable:
        _grant(rules, os.path.realpath(tree), READ, hidden)
    rules.allow(policy.scratch, WRITE)
    rules.allow("/dev/null", READ_FILE | WRITE_FILE)
    for device in policy.devices:
        rules.allow(device, READ_FILE | WRITE_FILE | IOCTL_DEV)
    rules.enforce()
    scoped = "; signals and abstract sockets scoped to itself" if rules.abi >= 6 else ""
    return f"ABI {rules.abi}: reads {len(policy.readable)} trees less {len(hidden)} hidden, writes its scratch folder only{scoped}"


def _grant(rules: Ruleset, path: str, access: int, hidden: list[str]) -> None:
    """Grant ``access`` on ``path``'s tree, less the hidden paths inside it.

    A rule covers a whole tree, so a folder that holds something hidden is granted for
    listing only and its entries one by one, down to the hidden ones, which get nothing."""
    inside = [h for h in hidden if h == path or h.startswith(path.rstrip(os.sep) + os.sep)]
    if not inside:
        rules.allow(path, access)
        return
    if path in inside or not os.path.isdir(path):
        return
    rules.allow(path, READ_DIR)
    for entry in os.scandir(path):
        _grant(rules, entry.path, access, inside)
