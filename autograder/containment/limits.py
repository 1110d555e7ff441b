"""Resource limits of the worker process itself (setrlimit): no core files, a largest file,
a thread count for its own uid, open files, and an address-space backstop.

Resident memory, memfd and tmpfs are counted by the cgroup layer where there is one; the
judge also watches the worker's resident memory and, where the scratch folder is not a
tmpfs of its own, the folder's total size (see ``autograder.sandbox``).
"""

from __future__ import annotations

import resource
import signal

NAME = "limits"
MB = 2**20


def unavailable(policy) -> str | None:
    return None


def apply(policy) -> str:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (policy.file_mb * MB, policy.file_mb * MB))
    # Only a backstop: a CUDA build of torch maps over 2 GB of address space just to import.
    address = (policy.memory_mb + 8192) * MB
    resource.setrlimit(resource.RLIMIT_AS, (address, address))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    if policy.uid is not None:  # counted per uid, and the worker's uid is its alone
        resource.setrlimit(resource.RLIMIT_NPROC, (policy.pids, policy.pids))
    # A write past the file-size limit must fail with an error, not kill the worker.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return f"files <= {policy.file_mb} MB, address space <= {address // MB} MB, no core dumps"
