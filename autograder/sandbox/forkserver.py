"""Warm processes for batches: a grading starts from a process that has already imported
torch and pytest, instead of two fresh interpreters that each import them.

    batch thread: ForkServer ══ socket ══ zygote   python -s -P, the worker's scrubbed environment;
                                            │      torch, numpy, pytest, the engine and the data
                                            │      modules every worker imports; nothing hidden
                                            └─ fork: judge-to-be
                                                  ├─ fork at once: spare worker (waits for its set-up)
                                                  └─ then reads its request and becomes the judge:
                                                     pytest.main(), its first worker is the spare

The order is the guarantee. The zygote never reads a request: it forks a judge-to-be,
which forks its spare worker before it reads anything of a grading (the job, the suite,
the runner's environment). The process a worker is forked from has therefore loaded
nothing a cold worker does not load itself, and every containment layer is applied after
the fork, by the worker, exactly as in a cold start (``autograder.sandbox.worker.main``). Any
later worker of that grading (a restart after a fault) starts cold: by then the judge has
loaded the hidden suite and must not be forked.

The socket carries JSON lines; the zygote writes, the judge-to-be reads its request:

    zygote -> runner   {"ready": PID}          a judge-to-be is waiting
    runner -> PID      {"pid": PID, "args": [...], "cwd": ..., "env": {...}}  + fds (output, report)
    zygote -> runner   {"exit": CODE, "pid": PID}  that judge has exited (CODE as Popen.returncode)

Each process dies with its parent (PR_SET_PDEATHSIG): the runner's thread, the zygote,
the judge, the spare, so a killed batch leaves nothing behind. A zygote may also be started
by one process and handed to another (:class:`HandOver`: ``--scheduler local:N`` starts its
Dask workers' zygotes before the workers exist); it then also ends, and its judge with it,
when the runner's end of the socket closes: a killed taker leaves nothing behind either.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref

from autograder.sandbox.containment._syscalls import adopt_orphans, die_with_parent
from autograder.sandbox.containment.policy import base_environment
from autograder.sandbox import lean_torch
from autograder.sandbox.process import take_on

# What every grading imports, loaded once by the zygote. Only what a cold worker loads
# anyway (autograder.sandbox.worker.main's load) or what is public code: never a suite, never
# held-out data, never the runner's configuration.
PRELOAD = ("numpy", "torch", "pytest", "scipy.linalg", "scipy.stats", "matplotlib.pyplot",
           "autograder.grading.judge.plugin", "autograder.grading.judge.expect", "autograder.sandbox.worker",
           "kitdata", "kitdata.digits", "kitdata.toy2d", "kitdata.text", "kitdata.features")


class ForkServerError(Exception):
    """The zygote could not start or went away; the runner grades cold instead."""


# --------------------------------------------------------------------------- the runner's side


class WarmJudge:
    """The runner's handle on a judge forked by the zygote: ``pid`` and ``wait()`` as Popen's."""

    def __init__(self, server: "ForkServer", pid: int):
        self.server, self.pid, self.returncode = server, pid, None

    def wait(self) -> int:
        if self.returncode is None:
            try:
                message = self.server.read()
                if message.get("pid") != self.pid:
                    raise ForkServerError(f"the fork server said {message!r} where judge {self.pid} should exit")
                self.returncode = int(message["exit"])
            except (ForkServerError, KeyError, ValueError):
                self.server.close()
                self.returncode = -signal.SIGKILL  # the zygote died, and its judge with it
        return self.returncode


class ForkServer:
    """One zygote, used by one thread at a time (see :func:`for_this_thread`)."""

    def __init__(self, ready_seconds: float = 300.0):
        self.ready_seconds = ready_seconds
        self._socket, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._buffer = b""
        self._errors = tempfile.TemporaryFile()  # the zygote's own traceback, should it fail
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-s", "-P", "-c", "from autograder.sandbox.forkserver import main; main()",
                 str(theirs.fileno()), str(os.getpid())],
                env=base_environment(), cwd="/", stdin=subprocess.DEVNULL, stdout=self._errors,
                stderr=subprocess.STDOUT, pass_fds=(theirs.fileno(),), start_new_session=True)
        finally:
            theirs.close()
        _servers.add(self)

    @classmethod
    def adopted(cls, channel: socket.socket, pid: int, ready_seconds: float = 300.0) -> "ForkServer":
        """The zygote ``pid``, started by another process and handed over with ``channel``
        (:func:`take_over`). Its parent, which reaps it and keeps its traceback, is the other."""
        server = cls.__new__(cls)
        server.ready_seconds, server._socket, server._buffer = ready_seconds, channel, b""
        server._errors = None
        server.process = _Stranger(pid)
        _servers.add(server)
        return server

    def launch(self, args: list[str], cwd: str, env: dict[str, str], output: int, report: int) -> WarmJudge:
        """Start ``pytest.main(args + ["--kit-results-fd", N])`` in ``cwd`` with ``env``, its
        output going to the file ``output`` and N its copy of the pipe ``report``."""
        ready = self.read(self.ready_seconds)
        while "exit" in ready:  # of a judge nobody waited for (its grading was interrupted)
            ready = self.read(self.ready_seconds)
        if "ready" not in ready:
            self.close()
            raise ForkServerError(f"the fork server said {ready!r} where it should be ready")
        pid = int(ready["ready"])
        line = json.dumps({"pid": pid, "args": args, "cwd": cwd, "env": env}).encode() + b"\n"
        try:
            socket.send_fds(self._socket, [line], [output, report])
        except OSError as error:
            self.close()
            raise ForkServerError(f"the fork server went away: {error}") from None
        return WarmJudge(self, pid)

    def read(self, seconds: float | None = None) -> dict:
        deadline = None if seconds is None else time.monotonic() + seconds
        while b"\n" not in self._buffer:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and (left <= 0 or not select.select([self._socket], [], [], left)[0]):
                self.close()
                raise ForkServerError(f"the fork server was not ready within {seconds:g} s")
            try:
                chunk = self._socket.recv(1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                raise ForkServerError(f"the fork server exited{self._why()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def _why(self) -> str:
        self.close()
        if self._errors is None:  # adopted: the process that started it has its traceback
            return ""
        try:
            self._errors.seek(0)
            lines = self._errors.read().decode(errors="replace").strip().splitlines()
        except (OSError, ValueError):
            lines = []
        return f": {lines[-1]}" if lines else ""

    @property
    def alive(self) -> bool:
        return self._socket.fileno() >= 0 and self.process.poll() is None

    def close(self) -> None:
        """The waiting judge-to-be reads the closed socket as the end and exits, its spare with
        it; the zygote, told of that exit, finds no one to tell and exits too."""
        self._socket.close()
        if self.process.poll() is None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class _Stranger:
    """Popen's ``pid``, ``poll``, ``wait`` and ``kill`` for an adopted zygote, which is not
    this process's child: watched through a pidfd; its exit status is its parent's to read."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None
        self._pidfd = os.pidfd_open(pid)

    def poll(self) -> int | None:
        return self.wait(0) if self.returncode is None else self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        if self.returncode is None:
            if not select.select([self._pidfd], [], [], timeout)[0]:
                if timeout == 0:
                    return None
                raise subprocess.TimeoutExpired(f"zygote {self.pid}", timeout)
            self.returncode = 0
            os.close(self._pidfd)
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)


class HandOver:
    """``count`` fork servers started here for other processes of this machine, each handed
    (its socket passed with SCM_RIGHTS) to the first that asks at ``address``
    (:func:`take_over`): ``--scheduler local:N`` starts them before its Dask workers exist,
    so that their torch imports overlap the cluster's start. The socket lives in a folder
    only this user may enter. The zygotes die with the thread that made this (keep it as long
    as the takers: a process's main thread), or with their taker's end of the socket."""

    def __init__(self, count: int):
        self._waiting = [ForkServer() for _ in range(count)]
        self._handed: list[ForkServer] = []
        self._folder = tempfile.mkdtemp(prefix="autograder-hand-over-")
        self.address = os.path.join(self._folder, "socket")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.address)
        self._listener.listen()
        threading.Thread(target=self._serve, name="fork server hand-over", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            with connection:
                try:
                    wanted = int(connection.recv(64).decode() or 0)
                except (OSError, ValueError):
                    continue
                offered, self._waiting = self._waiting[:wanted], self._waiting[wanted:]
                given = [server for server in offered if server.alive]
                for server in offered:
                    if not server.alive:  # died waiting: reaped now, the taker starts its own
                        server.close()
                try:
                    socket.send_fds(connection, [json.dumps([s.process.pid for s in given]).encode()],
                                    [s._socket.fileno() for s in given])
                except OSError:  # the taker went away: these are nobody's now
                    for server in given:
                        server.close()
                    continue
                for server in given:
                    server._socket.close()  # the taker's alone: its closing ends the zygote
                self._handed += given

    def close(self) -> None:
        """Stop handing over; close what nobody took; reap the zygotes handed over (each exits
        when its taker closes its socket or dies)."""
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        except OSError:
            pass
        self._listener.close()
        shutil.rmtree(self._folder, ignore_errors=True)
        for server in self._waiting + self._handed:
            server.close()


def take_over(address: str, count: int) -> int:
    """Adopt up to ``count`` fork servers handed over at ``address`` (:class:`HandOver`), for
    this process's threads as :func:`prestart`'s; return how many came."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(address)
        connection.sendall(str(count).encode())
        data, fds, _, _ = socket.recv_fds(connection, 1 << 16, count)
    pids = json.loads(data) if data else []
    with _ahead_lock:
        _started_ahead.extend(ForkServer.adopted(socket.socket(fileno=fd), pid) for fd, pid in zip(fds, pids))
    return len(fds)


_local = threading.local()
_servers: "weakref.WeakSet[ForkServer]" = weakref.WeakSet()
_started_ahead: list[ForkServer] = []  # by prestart(), each for the first thread that asks
_ahead_lock = threading.Lock()


def for_this_thread() -> ForkServer:
    """The calling thread's fork server: one started ahead (:func:`prestart`) if one is left,
    else one started now. One per thread, because a zygote serves one judge at a time."""
    server = getattr(_local, "server", None)
    if server is None or not server.alive:
        with _ahead_lock:
            ahead = [s for s in _started_ahead if s.alive]
            server = ahead.pop(0) if ahead else None
            _started_ahead[:] = ahead
        _local.server = server = server or ForkServer()
    return server


def prestart(count: int) -> None:
    """Start ``count`` fork servers now (fewer if some are up already, a thread's own included),
    so that their torch imports overlap whatever comes before the first grading: a Dask
    worker's registration (``warm_workers.WarmWorkers``). Each zygote dies with
    the thread that started it (PR_SET_PDEATHSIG follows threads): call this from a thread that
    lives as long as the process, such as its main thread or a Dask worker's event loop."""
    with _ahead_lock:
        missing = count - sum(server.alive for server in _servers)  # a thread's own counts too
        _started_ahead.extend(ForkServer() for _ in range(missing))


@atexit.register
def _close_all() -> None:
    for server in list(_servers):
        server.close()


# --------------------------------------------------------------------------- the zygote's side


def main() -> None:
    """The zygote: preload, then keep one judge-to-be forked ahead, one at a time, until the
    runner goes. It then exits at once: finalizing an interpreter that holds torch takes a
    second, which the runner would wait for at every batch's end."""
    code = 0
    try:
        _serve()
    except BaseException:  # noqa: BLE001 - the runner reads its last line (ForkServer._why)
        traceback.print_exc()
        code = 1
    finally:
        _exit_now(code)


def _serve() -> None:
    channel = socket.socket(fileno=int(sys.argv[1]))
    die_with_parent(signal.SIGKILL, int(sys.argv[2]))
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    lean_torch.install()
    lean_torch.lean_allocator()
    # The collector writes into every object it visits: left to run in a judge or a worker,
    # it would copy each page of the interpreter's preloaded heap they share with this one.
    gc.collect()
    gc.freeze()
    lean_torch.drop_loaded_pages()
    zygote = os.getpid()
    while True:
        pid = os.fork()
        if pid == 0:
            _judge(channel, zygote)  # never returns
        try:
            _send(channel, {"ready": pid})
        except OSError:  # the runner has gone
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return
        status = _judge_status(pid, channel)
        if status is None:  # the runner has gone: the judge dies with this process (SIGTERM)
            return
        try:
            _send(channel, {"exit": os.waitstatus_to_exitcode(status), "pid": pid})
        except OSError:
            return


def _judge_status(judge: int, channel: socket.socket) -> int | None:
    """The judge's wait status, or None if the runner's end of ``channel`` closes first: a
    zygote handed over outlives its taker (a Dask worker killed mid-grading), and must not
    let a judge grade on for nobody while the student is graded again elsewhere."""
    try:
        watch = os.pidfd_open(judge)
    except OSError:  # a kernel before 5.3: the runner is this zygote's parent, which it dies with
        return os.waitpid(judge, 0)[1]
    poller = select.poll()
    poller.register(watch, select.POLLIN)
    poller.register(channel, 0)  # POLLHUP and POLLERR are always reported
    try:
        while True:
            for fd, _ in poller.poll():
                if fd == watch:
                    return os.waitpid(judge, 0)[1]
                return None
    finally:
        os.close(watch)


def _send(channel: socket.socket, message: dict) -> None:
    channel.sendall(json.dumps(message).encode() + b"\n")


def _judge(channel: socket.socket, zygote: int) -> None:
    """A judge-to-be: fork the spare worker first, then read the request and run pytest."""
    from autograder.sandbox import supervisor

    code = 70
    try:
        die_with_parent(signal.SIGKILL, zygote)
        adopt_orphans()  # the nursery's spares
        spare = _fork_spare()
        nursery = _fork_nursery()
        request, fds = _receive(channel)
        channel.close()
        if request is None:  # the runner has gone
            os._exit(0)
        output, report = fds
        os.setsid()  # the runner kills the judge's process group on a timeout
        take_on(request["cwd"], output, request["env"])
        supervisor.spare, supervisor.nursery = spare, nursery
        import pytest

        code = int(pytest.main(request["args"] + ["--kit-results-fd", str(report)]))
    except BaseException:  # noqa: BLE001 - the runner reads it in the judge's log
        traceback.print_exc()
    finally:
        _exit_now(code)


def _receive(channel: socket.socket) -> tuple[dict | None, list[int]]:
    """This judge-to-be's request, and the fds sent with it (requests meant for a sibling that
    died before reading its own are skipped)."""
    me = os.getpid()
    while True:
        data, fds = b"", []
        while not data.endswith(b"\n"):
            chunk, more, _, _ = socket.recv_fds(channel, 1 << 20, 2)
            if not chunk:
                return None, []
            data += chunk
            fds += more
        request = json.loads(data)
        if request.get("pid") == me:
            return request, fds
        for fd in fds:
            os.close(fd)


def _fork_spare():
    """Fork the worker-to-be: its own session, no fd of ours but its two pipes, dead with us."""
    from autograder.sandbox import supervisor

    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    judge = os.getpid()
    pid = os.fork()
    if pid == 0:
        _be_spare(request_read, reply_write, judge)
    os.close(request_read)
    os.close(reply_write)
    return supervisor.SpareWorker(supervisor.Forked(pid), request_write, reply_read)


def _be_spare(request_read: int, reply_write: int, judge: int) -> None:
    """The worker-to-be's side of a fork (never returns): wait for the judge's set-up frame."""
    from autograder.sandbox import worker

    code = 1
    try:
        die_with_parent(signal.SIGKILL, judge)
        os.setsid()
        _close_all_but(request_read, reply_write)
        sys.argv = ["-c", str(request_read), str(reply_write)]
        worker.main(request_read, reply_write)
        code = 0
    except BaseException:  # noqa: BLE001 - as a cold worker's uncaught error: to its log
        traceback.print_exc()
    finally:
        _exit_now(code)


def _fork_nursery():
    """Fork the process that makes the judge's later spares (``supervisor.Nursery``)."""
    from autograder.sandbox import supervisor

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    judge = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            die_with_parent(signal.SIGKILL, judge)
            _close_all_but(theirs.fileno())
            _nurse(theirs, judge)
            code = 0
        except BaseException:  # noqa: BLE001 - to the judge's log
            traceback.print_exc()
        finally:
            _exit_now(code)
    theirs.close()
    return supervisor.Nursery(supervisor.Forked(pid), ours)


def _nurse(channel: socket.socket, judge: int) -> None:
    """For each byte the judge sends, a spare: forked by a go-between that exits at once, so
    that the spare is adopted by the judge (a subreaper), which can then wait for it and read
    how it died. Its pid and the judge's ends of its pipes go back on ``channel``."""
    while channel.recv(1):
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        born_read, born_write = os.pipe()
        middle = os.fork()
        if middle == 0:
            spare = os.fork()
            if spare == 0:
                go_between = os.getppid()
                while os.getppid() == go_between:  # adopted once it has exited
                    time.sleep(0.001)
                _be_spare(request_read, reply_write, judge)  # dies at once if not adopted by the judge
            os.write(born_write, str(spare).encode())
            os._exit(0)
        os.waitpid(middle, 0)
        pid = int(os.read(born_read, 32))
        for fd in (request_read, reply_write, born_read, born_write):
            os.close(fd)
        try:
            socket.send_fds(channel, [json.dumps({"pid": pid}).encode()], [request_write, reply_read])
        finally:
            os.close(request_write)
            os.close(reply_read)


def _exit_now(code: int) -> None:
    """A fork ends here, output flushed, never returning into the code it was forked from."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # its file may be at its size limit
            pass
    os._exit(code)


def _close_all_but(*keep: int) -> None:
    """Close every fd above 2 but ``keep``: the spare must hold no handle on the runner's
    socket, nor on anything else its judge-to-be or the zygote had open."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:  # the listing's own fd, closed already
                pass
