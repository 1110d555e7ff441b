"""WarmWorkers: a Dask worker plugin that starts the worker's fork servers as it joins.

``--scheduler local:N`` gives it to its workers; a cluster of one's own registers it once:
``client.register_plugin(WarmWorkers())``. Without it a worker thread starts its fork server
at its first task, and that task waits for torch's import.

A module of its own, because defining it imports Dask: ``autograder.classroom.dask_executor`` must not,
so that ``local:N`` can start its worker processes' server before this process imports Dask.
"""

from __future__ import annotations

from distributed import WorkerPlugin


class WarmWorkers(WorkerPlugin):
    """Start a Dask worker's fork servers (one per thread) when it joins the cluster, or when
    this is registered. ``setup`` runs on the worker's event loop, a thread as long-lived as
    the worker process, which the zygotes' parent-death signal requires.

    ``hand_over``: the address of an :class:`autograder.sandbox.forkserver.HandOver` of the same machine
    (``local:N``'s), whose zygotes started with the cluster: the worker takes those first."""

    name = "autograder-warm-workers"

    def __init__(self, hand_over: str | None = None):
        self.hand_over = hand_over

    def setup(self, worker) -> None:
        from autograder.sandbox import forkserver

        if self.hand_over is not None:
            try:
                forkserver.take_over(self.hand_over, worker.state.nthreads)
            except OSError:  # the batch has ended, or none is left (a worker restarted): its own
                pass
        forkserver.prestart(worker.state.nthreads)
