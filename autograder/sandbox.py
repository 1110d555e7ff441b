"""The judge's side of the worker: start it, call probes, enforce limits, restart after faults.

One ``Sandbox`` serves a whole grading run, so torch is imported once per assignment; a
fault (time, memory, crash, exit, garbled reply) costs only the probe that caused it:
the worker's whole process group is killed and a fresh worker is started for the next
call. Faults become ``StudentError`` with a one-line message for the student.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder import wire

PAGE = os.sysconf("SC_PAGE_SIZE")
IGNORED_FILES = shutil.ignore_patterns("__pycache__", "*.pyc", ".git", ".ipynb_checkpoints")


class StudentError(Exception):
    """The student's code failed a probe: raised, hung, crashed, exited or ran out of memory."""


class _Fault(Exception):
    """The worker must be restarted; the message is for the student."""


@dataclass
class Limits:
    probe_seconds: float = 30.0
    memory_mb: int = 3000
    file_mb: int = 64
    threads: int = 1
    startup_seconds: float = 120.0


@dataclass
class Sandbox:
    submission: Path                       # the student's folder (never written to)
    workdir: Path                          # private to this grading; scratch copies go here
    probes_source: str
    modules: list[str]                     # the submission's modules, imported first
    limits: Limits = field(default_factory=Limits)
    read_rules: list[tuple[str, bool]] = field(default_factory=list)

    def __post_init__(self):
        self._process: subprocess.Popen | None = None
        self._requests = self._replies = -1
        self._next_id = 0
        self._fatal: str | None = None     # the submission cannot even be imported
        self.starts = 0                    # workers started (each imports torch once)
        self.devices: list[str] = []
        self.log_path = self.workdir / "worker-output.log"

    # ------------------------------------------------------------------ lifecycle

    @property
    def scratch(self) -> Path:
        return self.workdir / "submission"

    def _environment(self) -> dict[str, str]:
        threads = str(self.limits.threads)
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.scratch), "LANG": "C.UTF-8",
            "TMPDIR": str(self.scratch / ".tmp"), "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
            "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(self.scratch / ".tmp"),
            "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
        }
        for name in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
            if name in os.environ:
                env[name] = os.environ[name]
        return env

    def start(self) -> None:
        self.stop()
        if self.scratch.exists():
            shutil.rmtree(self.scratch)
        shutil.copytree(self.submission, self.scratch, ignore=IGNORED_FILES, symlinks=False)
        (self.scratch / ".tmp").mkdir(exist_ok=True)
        self.starts += 1
        request_read, self._requests = os.pipe()
        self._replies, reply_write = os.pipe()
        log = open(self.log_path, "ab")
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-s", "-P", "-c", "from autograder.worker import main; main()",
                 str(request_read), str(reply_write)],
                cwd=self.scratch, env=self._environment(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, pass_fds=(request_read, reply_write),
                start_new_session=True,  # its own process group: killed as a whole
            )
        finally:
            log.close()
            os.close(request_read)
            os.close(reply_write)
        writable = [str(self.scratch)]
        rules = [(p, ok) for p, ok in self.read_rules] + [(str(self.scratch), True)]
        setup = {"probes_source": self.probes_source, "read_rules": rules, "writable": writable,
                 "memory_mb": self.limits.memory_mb, "file_mb": self.limits.file_mb,
                 "threads": self.limits.threads}
        try:
            wire.write_frame(self._requests, setup)
            ready = self._read_reply(self.limits.startup_seconds, "starting")
        except _Fault as fault:
            self.stop()
            raise RuntimeError(f"the grader's worker did not start: {fault}") from None
        self.devices = list(ready.get("devices", []))
        self._import_submission()

    def _import_submission(self) -> None:
        """Import the submission's modules once, so that an import that exits, hangs or
        crashes is reported once, clearly, instead of costing a restart per test."""
        try:
            reply = self._request({"op": "import", "modules": self.modules}, "importing your submission")
        except _Fault as fault:
            self._fatal = f"importing your submission {fault}"
            self.stop()
            return
        if not reply["ok"]:
            self._fatal = str(reply["error"])

    def stop(self) -> None:
        for fd in (self._requests, self._replies):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._requests = self._replies = -1
        if self._process is not None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._process.wait()
            self._process = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ calls

    def call(self, probe: str, *args, seed: int = 0, timeout: float | None = None, **kwargs):
        """Run ``probe(*args, **kwargs)`` in the worker and return its result.

        Raises StudentError (one line, for the student) if the student's code failed.
        """
        if self._fatal is None and self._process is None:
            self.start()
        if self._fatal is not None:
            raise StudentError(self._fatal)
        message = {"op": "call", "probe": probe, "args": list(args), "kwargs": kwargs, "seed": int(seed)}
        try:
            reply = self._request(message, f"in {probe}", timeout)
        except _Fault as fault:
            self.stop()
            raise StudentError(f"{probe}: {fault}") from None
        finally:
            self._reap_strays()
        if not reply["ok"]:
            raise StudentError(f"{probe}: {reply['error']}")
        return wire.from_wire(reply["value"])

    def _request(self, message: dict, doing: str, timeout: float | None = None) -> dict:
        self._next_id += 1
        message["id"] = self._next_id
        try:
            wire.write_frame(self._requests, message)
        except OSError:
            raise _Fault(self._death_notice()) from None
        reply = self._read_reply(timeout or self.limits.probe_seconds, doing)
        if not isinstance(reply, dict) or reply.get("id") != self._next_id or "ok" not in reply:
            raise _Fault("the grader received a garbled reply (did your code write to the grader's channel?)")
        return reply

    def _read_reply(self, seconds: float, doing: str):
        deadline = time.monotonic() + seconds
        pid = self._process.pid

        def wait(fd: int) -> None:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Fault(f"did not finish within {seconds:g} s (an endless loop, or far too slow?)")
                if select.select([fd], [], [], min(remaining, 0.02))[0]:
                    return
                if _resident_mb(pid) > self.limits.memory_mb:
                    raise _Fault(f"used more than the {self.limits.memory_mb} MB of memory allowed")

        try:
            return wire.read_frame(self._replies, wait)
        except wire.ChannelError as error:
            if self._process.poll() is not None or "closed" in str(error):
                raise _Fault(self._death_notice()) from None
            raise _Fault(f"the grader received a garbled reply ({error})") from None

    def _death_notice(self) -> str:
        try:
            code = self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "the worker stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            return f"the worker process was killed by {name} (a crash in native code, or killed for its memory use)"
        last = self._last_output_line()
        hint = "; did your code call os._exit()?" if code >= 0 else ""
        return f"the worker process exited with code {code}{hint}" + (f" Last output: {last}" if last else "")

    def _last_output_line(self) -> str:
        try:
            with open(self.log_path, "rb") as log:
                log.seek(max(0, log.seek(0, 2) - 400))
                lines = log.read().decode("utf-8", "replace").strip().splitlines()
            return lines[-1][:200] if lines else ""
        except OSError:
            return ""

    def _reap_strays(self) -> None:
        """Kill any process left in the worker's group besides the worker itself."""
        if self._process is None:
            return
        group = self._process.pid
        for pid in _group_members(group):
            if pid != group:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def accelerators(self) -> list[str]:
        """The accelerators the worker sees (starting it if need be): e.g. ["cuda"] or []."""
        if self._process is None and self._fatal is None:
            self.start()
        return self.devices


def _resident_mb(pid: int) -> float:
    """Resident memory of the worker in MB (read every 20 ms, so one file, not a /proc scan:
    the fence forbids forks, and strays are reaped after every call)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def _group_members(group: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:  # the fields after the name: state, ppid, pgrp
                members.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return members
