"""WarmWorkers: a Dask worker plugin that starts the worker's fork servers as it joins.

``--scheduler local:N`` gives it to its workers; a cluster of one's own registers it once:
``client.register_plugin(WarmWorkers())``. Without it a worker thread starts its fork server
at its first task, and that task waits for torch's import.

A module of its own, because defining it imports Dask: ``autograder.dask_executor`` must not,
so that ``local:N`` can start its worker processes' server before this process imports Dask.
"""

from __future__ import annotations

from distributed import WorkerPlugin


class WarmWorkers(WorkerPlugin):
    """Start a Dask worker's fork servers (one per thread) when it joins the cluster, or when
    this is registered. ``setup`` runs on the worker's event loop, a thread as long-lived as
    the worker process, which the zygotes' parent-death signal requires."""

    name = "autograder-warm-workers"

    def setup(self, worker) -> None:
        from autograder import forkserver

        forkserver.prestart(worker.state.nthreads)
