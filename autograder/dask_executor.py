"""Batch grading on Dask (``grade-batch --scheduler tcp://HOST:8786`` or ``local:N``).

One Dask task per student runs :func:`autograder.batch.grade_task` on a Dask worker, that is
the same sandboxed grading as ``--jobs``: the judge and the student's worker are processes of
the Dask worker's machine. The kit (and the course folder, at the same path) must be there;
the reports are written under ``--out``, which must be shared by the workers and this process.

A Dask worker that dies during a task (out of memory, a lost node) makes the scheduler run the
task again elsewhere; ``SCHEDULER_CONFIG`` (set here for ``local:N``, to be set in the
scheduler's config for a cluster of one's own) allows exactly one retry, after which the task
fails with ``KilledWorker``: a grader error for that student alone.

Warm gradings (the default) on ``local:N`` give each worker
:class:`autograder.warm_workers.WarmWorkers`: it starts its fork servers as it joins, so that
their torch imports overlap the cluster's start instead of following the first task. On a
cluster of one's own a worker thread starts its fork server at its first task, unless the
cluster registers the plugin itself (``client.register_plugin(WarmWorkers())``).

This module imports Dask only when an executor is made: ``local:N`` first starts the server its
worker processes are forked from, whose imports (Dask's, the kit's) then run beside this
process's on another core instead of after them.
"""

from __future__ import annotations

import uuid
from typing import Iterator

from autograder.batch import Task, grade_task

# The scheduler's settings a grading cluster wants (a scheduler of one's own: its dask config):
# one retry after a worker's death, and one task per worker thread at a time, so that a worker
# that dies takes exactly one student's grading with it.
SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0}
# Dask's own background work, which a grading cluster does not use: the statistical profiler
# (a sample of every task thread each 10 ms), the event-loop watchdog (each 20 ms) and the
# resource monitors. Idle, a LocalCluster of two workers spent 100 ms of CPU a second on them,
# 13 ms with these settings: on a busy machine that time is taken from the gradings.
QUIET_CONFIG = {"distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                "distributed.admin.system-monitor.interval": "5s", "distributed.worker.memory.monitor-interval": "1s"}
# local:N starts its worker processes from multiprocessing's fork server (Dask preloads
# distributed into it), not as fresh interpreters that each import Dask again. Not by fork
# from this process: a fork of a process with threads (the cluster's event loop, pytest's)
# copies locks that other threads hold; one such worker hung for good in a logging lock.
LOCAL_CONFIG = {**SCHEDULER_CONFIG, **QUIET_CONFIG, "distributed.worker.multiprocessing-method": "forkserver"}


class SchedulerError(Exception):
    """--scheduler names no usable scheduler; the message is one line."""


class DaskExecutor:
    """``--scheduler ADDRESS``: tcp://HOST:PORT of a running scheduler, or local:N for a
    LocalCluster of N worker processes (one grading at a time each) started and stopped here."""

    def __init__(self, scheduler: str, warm: bool = True):
        if scheduler.startswith("local:"):
            _start_worker_process_server()
        try:
            import dask
            from distributed import Client, LocalCluster

            from autograder.warm_workers import WarmWorkers
        except ImportError:
            raise SchedulerError("--scheduler needs Dask: pip install 'genai-autograder-kit[cluster]'") from None
        self.cluster = None
        if scheduler.startswith("local:"):
            try:
                workers = int(scheduler.split(":", 1)[1])
            except ValueError:
                workers = 0
            if workers < 1:
                raise SchedulerError(f"--scheduler {scheduler}: local:N needs a whole number of workers, at least 1")
            with dask.config.set(LOCAL_CONFIG):
                self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=40,
                                            plugins=(WarmWorkers(),) if warm else ())
            address = self.cluster.scheduler_address
        elif "://" in scheduler:
            address = scheduler
        else:
            raise SchedulerError(f"--scheduler {scheduler}: expected tcp://HOST:PORT or local:N")
        try:
            self.client = Client(address, timeout="20s")
        except (OSError, TimeoutError) as error:
            self.close()
            raise SchedulerError(f"--scheduler {scheduler}: no Dask scheduler answers there ({error})") from None

    def run(self, tasks: list[Task]) -> Iterator[tuple[Task, dict]]:
        from distributed import as_completed

        # pure=False: a task is a grading to run, never a value to reuse from an earlier batch.
        # The keys form one task group ("grade": Dask's key_split stops at the all-digit word), so
        # that the scheduler queues a class larger than twice its threads and hands each worker
        # one student at a time (worker-saturation 1.0): a dying worker takes one student with
        # it. A group per student ("grade-alice-...") was never queued.
        futures = {self.client.submit(grade_task, t, key=f"grade-{uuid.uuid4().int % 10**12:012d}-{t.student}",
                                      pure=False): t for t in tasks}
        for future in as_completed(futures):
            task = futures[future]
            try:
                outcome = future.result()
            except Exception as error:  # KilledWorker: the worker died on it twice; a lost scheduler
                outcome = {"status": "grader-error", "result": None,
                           "reason": f"the Dask task for {task.student} failed: {type(error).__name__}: {error}"}
            yield task, outcome

    def close(self) -> None:
        if getattr(self, "client", None) is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _start_worker_process_server() -> None:
    """Start multiprocessing's fork server, which local:N's worker processes are forked from
    (LOCAL_CONFIG), with what they import preloaded: Dask, the plugin, the tasks' module and
    this CLI (a child of a fork server imports its parent's main module again). Started before
    this process imports Dask, so that both imports run at once. Dask preloads the server
    itself when it starts it; one already running is used as it is."""
    import multiprocessing
    import multiprocessing.forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(
        ["distributed", "autograder.warm_workers", "autograder.batch", "autograder.cli"])
    multiprocessing.forkserver.ensure_running()
