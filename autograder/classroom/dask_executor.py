"""Batch grading on Dask (``grade-batch --scheduler tcp://HOST:8786`` or ``local:N``).

One Dask task per student runs :func:`autograder.classroom.batch.grade_task` on a Dask worker, that is
the same sandboxed grading as ``--jobs``: the judge and the student's worker are processes of
the Dask worker's machine. The kit (and the course folder, at the same path) must be there;
the reports are written under ``--out``, which must be shared by the workers and this process.

A Dask worker that dies during a task (out of memory, a lost node) makes the scheduler run the
task again elsewhere; ``SCHEDULER_CONFIG`` (set here for ``local:N``, to be set in the
scheduler's config for a cluster of one's own) allows exactly one retry, after which the task
fails with ``KilledWorker``: a grader error for that student alone.

Warm gradings (the default) on ``local:N``: this process starts one fork server per worker
before anything else (:class:`autograder.sandbox.forkserver.HandOver`), so that their torch imports
run while Dask is imported and the cluster starts, and each worker takes one as it joins
(:class:`autograder.classroom.warm_workers.WarmWorkers`). Then the server the worker processes are
forked from starts, preloaded with Dask and the kit, its imports beside this process's; only
then does this process import Dask. On a cluster of one's own a worker thread starts its fork
server at its first task, unless the cluster registers the plugin itself
(``client.register_plugin(WarmWorkers())``): it then starts them as it joins.
"""

from __future__ import annotations

import uuid
from typing import Iterator

from autograder.classroom.batch import Task, grade_task

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
        self.cluster = self.hand_over = self.client = None
        workers = _local_workers(scheduler)
        if workers is not None:
            if warm:  # the workers' zygotes start first: their torch imports run beside all that follows
                from autograder.sandbox import forkserver

                self.hand_over = forkserver.HandOver(workers)
            _start_worker_process_server()
        try:
            import dask
            from distributed import Client, LocalCluster

            from autograder.classroom.warm_workers import WarmWorkers
        except ImportError:
            self.close()
            raise SchedulerError("--scheduler needs Dask: pip install 'genai-autograder-kit[cluster]'") from None
        if workers is not None:
            try:
                with dask.config.set(LOCAL_CONFIG):
                    self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                dashboard_address=None, silence_logs=40,
                                                plugins=(WarmWorkers(self.hand_over.address),) if warm else ())
            except BaseException:
                self.close()
                raise
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
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
            _stop_worker_process_server()
        if self.hand_over is not None:  # after the workers: their zygotes end as they do
            self.hand_over.close()


def _local_workers(scheduler: str) -> int | None:
    """N of ``local:N``; None for a scheduler's address."""
    if not scheduler.startswith("local:"):
        return None
    try:
        workers = int(scheduler.split(":", 1)[1])
    except ValueError:
        workers = 0
    if workers < 1:
        raise SchedulerError(f"--scheduler {scheduler}: local:N needs a whole number of workers, at least 1")
    return workers


def _start_worker_process_server() -> None:
    """Start multiprocessing's fork server, which local:N's worker processes are forked from
    (LOCAL_CONFIG), with what they import preloaded: Dask, the plugin, the tasks' module and
    this CLI (a child of a fork server imports its parent's main module again). Started before
    this process imports Dask, so that both imports run at once. Dask preloads the server
    itself when it starts it; one already running is used as it is."""
    import multiprocessing
    import multiprocessing.forkserver

    multiprocessing.get_context("forkserver").set_forkserver_preload(
        ["distributed", "autograder.classroom.warm_workers", "autograder.classroom.batch", "autograder.cli"])
    multiprocessing.forkserver.ensure_running()


def _stop_worker_process_server() -> None:
    """Stop that server once local:N's workers are gone, here, while the reports are written,
    rather than after this process exits (it holds this process's output: a caller reading it
    waited 0.3 s more). CPython stops it in its own tests only, with a private method; the next
    ensure_running() starts a new one."""
    import multiprocessing.forkserver

    stop = getattr(multiprocessing.forkserver._forkserver, "_stop", None)
    if stop is not None:
        stop()
