"""Resource limits of the worker process itself (setrlimit): no core files, a largest file,
open files, its threads, its private memory where no cgroup counts it, and an address-space
backstop.

Applied after the namespaces and identity layers, because of threads: RLIMIT_NPROC is checked
against a count of tasks per user, and it is the worker's own count only once the worker
has a uid of its own (the identity layer, as root) or, without root, once it is in a user
namespace of its own (the namespaces layer): since Linux 5.14 the count is kept per (user
namespace, uid) ("ucounts"), so the worker's RLIMIT_NPROC counts only the tasks of its
namespace, not the grading user's other processes (checked on 6.18: uid 1000 holding 100
other threads, the worker started 63 besides itself under RLIMIT_NPROC = 64; without the
namespace, none). Set before the namespace, it would also have been copied into the
namespace as the bound on the grading user's whole count. Elsewhere (the worker keeps the
grading user's uid, or an older kernel) RLIMIT_NPROC would count every process of that user
and is left alone; the report says so.

Memory: the cgroup layer counts everything the worker holds where there is one. Without
it, RLIMIT_DATA bounds the worker's private writable memory (heap, anonymous mappings,
thread stacks, libraries' data), which the kernel refuses to grow past the limit: malloc
fails, so Python raises MemoryError and torch its "can't allocate memory". Memory only
reserved and never written (``torch.empty``, a large ``bytearray``) counts too, although the
judge's watch of resident memory never sees it. What RLIMIT_DATA does not count is shared
memory (an anonymous MAP_SHARED mapping, a memfd, /dev/shm): the judge's watch still sees
what of it is resident in the worker, and seccomp refuses memfd_create. RLIMIT_AS is no
bound on memory: a CUDA build of torch maps over 3 GB of address space just to import.

The judge also watches the worker's resident memory and, where the scratch folder is not a
tmpfs of its own, the folder's total size (see ``autograder.sandbox.supervisor``).
"""

from __future__ import annotations

import os
import resource
import signal

from autograder.sandbox.containment import namespaces

NAME = "limits"
MB = 2**20

# RLIMIT_DATA = memory_mb + DATA_MARGIN_MB + a stack for each thread the limit allows: what a
# worker holds privately beyond what it has resident. Measured here (torch 2.14.1+cu130, a
# CUDA build, on a machine without a GPU, Linux 6.18; VmData and VmRSS of /proc/PID/status,
# polled every 10 ms while grading the reference solutions of all six assignments):
#   cold worker after import torch + numpy + kitdata          VmData  805 MB, VmRSS 673 MB
#   warm worker (forked from the fork server) before its set-up  VmData  815 MB, VmRSS 374 MB
#   peak over the six reference gradings, cold                 VmData 1258 MB, VmRSS 1007 MB
#   peak over the six reference gradings, warm (grade --all)   VmData 1277 MB, VmRSS  754 MB
# so private memory never resident reached 523 MB (warm: a forked worker has not yet touched
# the fork server's library pages). An honest worker that stays under memory_mb resident
# (the judge's watch stops it past that) stays under memory_mb + 523 MB of data; the margin
# doubles that. Thread stacks count (RLIMIT_STACK each, 8 MB by default, never resident):
# a torch that runs ``threads`` threads must not be stopped for their stacks, so every
# thread the pids limit allows gets one.
DATA_MARGIN_MB = 1024
PTHREAD_DEFAULT_STACK = 2 * MB   # glibc's stack for a thread where RLIMIT_STACK is unlimited

# Threads the worker starts besides the ``threads`` of torch's pool, which the limit on
# threads must leave room for: torch's autograd and device threads, the CUDA driver's.
THREAD_ROOM = 8

UCOUNTS_KERNEL = (5, 14)  # RLIMIT_NPROC counted per (user namespace, uid) from this release on


def unavailable(policy) -> str | None:
    return None


def _lower(which: int, value: int) -> int:
    """Set the soft and hard limit ``which`` to ``value``, or to the hard limit already in force
    where that is lower (an unprivileged process may only lower it); return the limit set."""
    _, hard = resource.getrlimit(which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(which, (value, value))
    return value


def _kernel() -> tuple[int, int]:
    try:
        major, minor = os.uname().release.split(".")[:2]
        return int(major), int("".join(c for c in minor if c.isdigit()) or 0)
    except ValueError:
        return 0, 0


def own_task_count(policy) -> str | None:
    """Where RLIMIT_NPROC counts the worker's tasks alone, which count (for the report);
    None where it would count other processes too. Asked after the namespaces and identity
    layers have run."""
    if policy.uid is not None and os.getuid() == policy.uid:
        return "RLIMIT_NPROC of the worker's own uid"
    if namespaces.in_own_user_namespace() and _kernel() >= UCOUNTS_KERNEL:
        return "RLIMIT_NPROC in the worker's user namespace"
    return None


def _threads(policy) -> str:
    counted = own_task_count(policy)
    if counted is None:
        if namespaces.in_own_user_namespace():
            release = os.uname().release
            return (f"threads: no RLIMIT_NPROC (Linux {release} counts it per uid in every user namespace; "
                    f"5.14 and later count the worker's namespace alone)")
        return f"threads: no RLIMIT_NPROC (it would count every process of uid {os.getuid()})"
    running = len(os.listdir("/proc/self/task"))
    tasks = _lower(resource.RLIMIT_NPROC, max(policy.pids, running + policy.threads + THREAD_ROOM))
    return f"threads <= {tasks} ({counted})"


def _thread_stack() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_STACK)
    return PTHREAD_DEFAULT_STACK if soft == resource.RLIM_INFINITY else soft


def data_limit_mb(policy) -> int:
    """RLIMIT_DATA for ``policy``'s worker, in MB (see DATA_MARGIN_MB)."""
    tasks = max(policy.pids, policy.threads + THREAD_ROOM)
    return policy.memory_mb + DATA_MARGIN_MB + -(-tasks * _thread_stack() // MB)


def _memory(policy) -> str:
    if policy.cgroup:
        return "memory: counted by the cgroup"
    if policy.devices:
        # Not measured with a GPU: a CUDA context's host memory is not known here, and an
        # honest submission must never be stopped by a bound set from a guess.
        return "memory: the judge's watch of resident memory only (no cgroup; RLIMIT_DATA unset where a GPU is used)"
    data = _lower(resource.RLIMIT_DATA, data_limit_mb(policy) * MB) // MB
    return (f"memory: RLIMIT_DATA <= {data} MB (no cgroup; shared memory is not counted in it, "
            "the judge's watch of resident memory sees it)")


def apply(policy) -> str:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    files = _lower(resource.RLIMIT_FSIZE, policy.file_mb * MB) // MB
    _lower(resource.RLIMIT_NOFILE, 256)
    threads = _threads(policy)
    memory = _memory(policy)
    # Only a backstop: a CUDA build of torch maps over 3 GB of address space just to import.
    address = _lower(resource.RLIMIT_AS, (policy.memory_mb + 8192) * MB) // MB
    # A write past the file-size limit must fail with an error, not kill the worker.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return f"files <= {files} MB, no core dumps; {threads}; {memory}; address space <= {address} MB"
