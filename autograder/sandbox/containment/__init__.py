"""Containment of the worker, one small module per layer, applied in a fixed order.

Like nsjail's ``containProc``: each layer is a module with ``NAME``, ``unavailable(policy)``
(why it cannot run on this machine, or None) and ``apply(policy)`` (enforce it, return one
line saying what it did). The worker calls :func:`contain` before any student code is
imported; the report names every layer as active, off or missing, and goes into every
grading's ``report.md``.

    cgroup      memory (memfd, shmem, tmpfs counted) and task limits, made by the judge
    namespaces  no network, own IPC, the scratch folder on a size-capped tmpfs; without
                root, first a user namespace of the worker's own
    identity    an unprivileged uid/gid of the grading's own (when the kit runs as root)
    limits      setrlimit: file size, no core dumps, threads where the count is the worker's
                own (its uid, or its user namespace: hence after the two layers above),
                private memory where no cgroup counts it, an address-space backstop
    ----------  the worker imports torch and the probes here, while it can still read them
    landlock    read the Python installation and the kit's data, write the scratch folder only
    seccomp     no processes, sockets, ptrace, pidfd, memfd, mounts, signals to others
    fence       an audit hook that turns refusals into friendly messages (not a boundary)

Only the kernel's layers are the boundary: anything in the worker's interpreter (the fence)
can be undone by the student's code, so it only makes messages clearer.
"""

from __future__ import annotations

import os
import time

from autograder.sandbox.containment import cgroup, identity, landlock, limits, namespaces, seccomp
from autograder.sandbox.containment.policy import LAYERS, WORKER_ID_BASE, Policy

__all__ = ["Policy", "LAYERS", "WORKER_ID_BASE", "contain", "available_layers", "IsolationError"]

BEFORE_IMPORT = (cgroup, namespaces, identity, limits)
AFTER_IMPORT = (landlock, seccomp)


class IsolationError(Exception):
    """``strict`` isolation was asked for and a layer is missing; the message names it."""


def _run(steps, policy: Policy, report: dict[str, str], seconds: dict[str, float]) -> None:
    for step in steps:
        started = time.perf_counter()
        try:
            _step(step, policy, report)
        finally:
            seconds[step.NAME] = time.perf_counter() - started


def _step(step, policy: Policy, report: dict[str, str]) -> None:
    if not policy.wants(step.NAME):
        report[step.NAME] = "off"
        return
    why = step.unavailable(policy)
    if why is None:
        try:
            report[step.NAME] = "active: " + step.apply(policy)
            return
        except OSError as error:
            why = str(error)
    report[step.NAME] = "missing: " + why
    if policy.strict:
        raise IsolationError(f"isolation is strict and the {step.NAME} layer is missing: {why}")


def contain(policy: Policy, load, seconds: dict[str, float] | None = None) -> dict[str, str]:
    """Apply every layer of ``policy``; ``load()`` runs between the layers that still let the
    worker read its own installation and those that lock it (it imports torch and the probes).
    Returns {layer: "active: ...", "off" or "missing: why"}; ``seconds``, if given, receives
    the time each layer took to set up."""
    report: dict[str, str] = {}
    seconds = {} if seconds is None else seconds
    _run(BEFORE_IMPORT, policy, report, seconds)
    load()
    _run(AFTER_IMPORT, policy, report, seconds)
    return report


def available_layers() -> list[str]:
    """The layers this machine offers to a grading started by this process."""
    probe = Policy(scratch="/", uid=WORKER_ID_BASE if os.geteuid() == 0 else None)
    found = [step.NAME for step in BEFORE_IMPORT + AFTER_IMPORT if step.unavailable(probe) is None]
    return found + ["fence"]
