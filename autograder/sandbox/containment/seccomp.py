"""seccomp-bpf: after set-up, the worker cannot start processes, open sockets, reach into other
processes, signal them, or hide memory; each refused call fails with EPERM (a PermissionError
in Python, so the student reads a message, not a dead worker).

Built with libseccomp through ctypes. The filter is installed last and inherited by every
thread; the worker can neither remove nor loosen it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os

from autograder.sandbox.containment._syscalls import no_new_privs

NAME = "seccomp"

ACT_ALLOW = 0x7FFF0000
CMP_NE, CMP_MASKED_EQ = 1, 7
CLONE_THREAD = 0x00010000

DENIED = (
    # new processes (threads are clone() with CLONE_THREAD, allowed below)
    "fork", "vfork", "execve", "execveat",
    # sockets: no network, no UNIX sockets to other processes
    "socket", "socketpair",
    # other processes' memory and handles
    "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open", "pidfd_send_signal", "pidfd_getfd",
    "kcmp",
    # memory the resident-memory watch cannot see, and IPC that outlives the worker
    "memfd_create", "memfd_secret", "shmget", "msgget", "semget", "mq_open",
    # the kernel's own state
    "mount", "umount2", "unshare", "setns", "chroot", "pivot_root", "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd", "open_by_handle_at", "name_to_handle_at",
    "fsopen", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "fanotify_init",
    "io_uring_setup", "io_uring_enter", "io_uring_register",   # io_uring calls bypass seccomp
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "quotactl", "personality",
)
# Signals: only to the worker itself (the first argument is its pid / thread group id).
SELF_ONLY = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


@functools.cache
def _library():
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    return lib


def _errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def unavailable(policy=None) -> str | None:
    if _library() is None:
        return "libseccomp is not installed (apt-get install libseccomp2)"
    try:
        with open("/proc/self/status") as status:
            if not any(line.startswith("Seccomp:") for line in status):
                return "the kernel was built without seccomp"
    except OSError:
        pass
    return None


def apply(policy) -> str:
    lib = _library()
    if lib is None:
        raise OSError(unavailable())
    ctx = lib.seccomp_init(ACT_ALLOW)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        def rule(name: str, action: int, *comparisons: _ArgCmp) -> bool:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:  # not a system call on this architecture
                return False
            array = (_ArgCmp * len(comparisons))(*comparisons) if comparisons else None
            result = lib.seccomp_rule_add_array(ctx, action, number, len(comparisons), array)
            if result < 0:
                raise OSError(-result, f"seccomp rule for {name}: {os.strerror(-result)}")
            return True

        denied = [name for name in DENIED if rule(name, _errno(errno.EPERM))]
        # clone() without CLONE_THREAD makes a process; clone3() hides its flags in memory
        # the filter cannot read, so it answers ENOSYS and the C library falls back to clone().
        rule("clone", _errno(errno.EPERM), _ArgCmp(0, CMP_MASKED_EQ, CLONE_THREAD, 0))
        rule("clone3", _errno(errno.ENOSYS))
        me = os.getpid()
        for name in SELF_ONLY:
            rule(name, _errno(errno.EPERM), _ArgCmp(0, CMP_NE, me, 0))
        no_new_privs()
        result = lib.seccomp_load(ctx)
        if result < 0:
            raise OSError(-result, f"seccomp_load: {os.strerror(-result)}")
    finally:
        lib.seccomp_release(ctx)
    return f"{len(denied) + 2} system calls refused, signals only to itself"
