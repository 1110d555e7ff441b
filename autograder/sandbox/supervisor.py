"""The judge's side of the worker: start it, call probes, enforce limits, restart after faults.

One ``Sandbox`` serves a whole grading run, so torch is imported once per assignment; a
fault (time, memory, crash, exit, garbled reply) costs only the probe that caused it:
the worker's whole process group is killed and a fresh worker is started for the next
call. Faults become ``StudentError`` with a one-line message for the student.

Each start copies the submission (``autograder.sandbox.submission``), makes the worker's cgroup,
completes the runner's ``Policy`` with what only the judge knows (the worker's uid, its
cgroup, its limits) and sends it as the worker's first frame; the worker answers with the
containment report (``layers``). Each stop kills the process group, then anything left
running under the worker's uid, and removes the cgroup.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from autograder.sandbox import submission, wire
from autograder.config import Limits  # noqa: F401  (re-exported: the sandbox's limits are grading.yml's)
from autograder.sandbox.containment import WORKER_ID_BASE, Policy
from autograder.sandbox.containment import cgroup as cgroups
from autograder.sandbox.containment.policy import base_environment

PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class SpareWorker:
    """A worker forked ahead by a warm judge (``autograder.sandbox.forkserver``) before the judge read
    anything of its grading: it waits, uncontained, for its set-up frame, which carries its
    folder, environment and log besides the policy, and contains itself like any worker."""
    process: "Forked"
    requests: int     # the judge's ends of its two pipes
    replies: int


class Nursery:
    """A process forked by a warm judge next to its spare, before the judge read anything of
    its grading, which forks a new spare whenever the judge asks: a worker restarted after a
    fault starts as warm as the first, sharing torch's memory instead of importing it again.
    Each such spare is this judge's child (the judge adopts orphans: the nursery forks it
    through a go-between that exits at once)."""

    def __init__(self, process: "Forked", channel):
        self.process, self.channel = process, channel
        channel.settimeout(60)

    def spare(self) -> SpareWorker | None:
        """A new spare, or None where the nursery is gone (the worker then starts cold)."""
        fds = []
        try:
            self.channel.sendall(b"s")
            data, fds, _, _ = socket.recv_fds(self.channel, 1 << 10, 2)
            pid = int(json.loads(data)["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            for fd in fds:
                os.close(fd)
            self.close()
            return None
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            return None
        return SpareWorker(Forked(pid), fds[0], fds[1])

    def close(self) -> None:
        self.channel.close()


class Forked:
    """The few ``subprocess.Popen`` methods the sandbox uses, for a child made by os.fork()."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -signal.SIGKILL
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.005)
        return self.returncode


# Set in a warm judge (autograder.sandbox.forkserver): the spare is taken by its first worker
# start, and any later start (after a fault) asks the nursery for another. Without them a
# worker starts cold: the judge itself, which has loaded the hidden suite, is never forked.
spare: SpareWorker | None = None
nursery: Nursery | None = None


FAULTS = ("import", "raised", "value", "timeout", "memory", "crash", "channel", "output")


class StudentError(Exception):
    """The student's code failed a probe: raised, hung, crashed, exited or ran out of memory.

    ``str(error)`` is the one line the student reads: it names their own code, never the
    suite's probes. ``fault`` says which of FAULTS it was (for the instructor's grades.csv).
    """

    def __init__(self, message: str, fault: str = "raised"):
        super().__init__(message)
        self.fault = fault


class GraderError(Exception):
    """The suite itself is wrong (e.g. it calls a probe that does not exist): the instructor's
    problem, reported as a grader error, never charged to the student."""


class _Fault(Exception):
    """The worker must be restarted; the message is for the student, ``fault`` one of FAULTS."""

    def __init__(self, message: str, fault: str):
        super().__init__(message)
        self.fault = fault


@dataclass
class Sandbox:
    submission: Path                       # the student's folder (never written to)
    workdir: Path                          # private to this grading; scratch copies go here
    probes_source: str
    modules: list[str]                     # the submission's modules, imported first
    limits: Limits = field(default_factory=Limits)
    policy: Policy | None = None           # what the worker may read, which layers hold it (default: for_grading)

    def __post_init__(self):
        if self.policy is None:
            self.policy = Policy.for_grading()
        self._process: subprocess.Popen | None = None
        self._requests = self._replies = -1
        self._next_id = 0
        self._fatal: StudentError | None = None   # the submission cannot even be imported
        self.starts = 0                    # workers started (each imports torch once)
        self.devices: list[str] = []
        self.layers: dict[str, str] = {}   # the containment report of the last worker started
        self.setup_seconds: dict[str, float] = {}
        self.probes: set[str] = set()   # the probes the suite declares (the worker's registry)
        self.log_path = self.workdir / "worker-output.log"
        self._cgroup: cgroups.Cgroup | None = None
        self._uid: int | None = None
        self._next_scratch_check = 0.0
        # Hangs outlive the worker they stopped: the functions that never returned (sent with
        # every call, so that a later call into one fails at once) and the seconds they cost
        # (which the judge does not charge to the suite's budget).
        self.hung: list[dict] = []
        self.stalled_seconds = 0.0

    # ------------------------------------------------------------------ lifecycle

    @property
    def scratch(self) -> Path:
        return self.workdir / "submission"

    def _environment(self) -> dict[str, str]:
        env = base_environment(self.limits.threads)
        env.update(HOME=str(self.scratch), TMPDIR=str(self.scratch / ".tmp"), MPLCONFIGDIR=str(self.scratch / ".tmp"))
        return env

    def _policy(self) -> Policy:
        """The runner's policy, completed with what only the judge knows: this worker's uid,
        its cgroup and its limits."""
        base = self.policy
        limits = self.limits
        uid = WORKER_ID_BASE + os.getpid() if os.geteuid() == 0 and base.wants("identity") else None
        return replace(base, scratch=str(self.scratch), uid=uid, gid=uid, memory_mb=limits.memory_mb,
                       file_mb=limits.file_mb, scratch_mb=limits.scratch_mb, scratch_files=limits.scratch_files,
                       threads=limits.threads, cgroup=self._cgroup.name if self._cgroup else None)

    def start(self) -> None:
        global spare
        self.stop()
        if self.scratch.exists():
            shutil.rmtree(self.scratch)
        submission.copy(self.submission, self.scratch, self.limits.scratch_mb * 2**20, self.limits.scratch_files)
        (self.scratch / ".tmp").mkdir(exist_ok=True)
        self.starts += 1
        taken, spare = spare, None
        if taken is None and nursery is not None:
            taken = nursery.spare()
        if taken is not None and taken.process.poll() is not None:  # the spare died waiting
            os.close(taken.requests)
            os.close(taken.replies)
            taken = None
        setup = {}
        if taken is not None:
            self._process, self._requests, self._replies = taken.process, taken.requests, taken.replies
            open(self.log_path, "ab").close()
            setup["birth"] = {"cwd": str(self.scratch), "env": self._environment(), "log": str(self.log_path)}
        if self.policy.wants("cgroup") and cgroups.unavailable() is None:
            # The same limit for a spare: torch's memory, which a cold worker's cgroup is charged
            # for, a spare shares with the fork server, so the machine's memory is bounded alike;
            # the judge's watch counts it in the spare's RSS, as in a cold worker's.
            cgroups.remove_orphans("autograder-")
            self._cgroup = cgroups.Cgroup(f"autograder-{os.getpid()}-{self.starts}", self.limits.memory_mb,
                                          self.policy.pids)
        policy = self._policy()
        self._uid = policy.uid
        if taken is None:
            self._spawn()
        try:
            if self._cgroup is not None:  # before the worker reads its set-up: nothing runs outside it
                self._cgroup.add(self._process.pid)
            setup.update(policy=policy.to_dict(), probes_source=self.probes_source)
            wire.write_frame(self._requests, setup)
            ready = self._read_reply(self.limits.startup_seconds, "starting")
        except _Fault as fault:
            self.stop()
            raise RuntimeError(f"the grader's worker did not start: {fault}") from None
        if not ready.get("ready"):
            self.stop()
            raise RuntimeError(f"the grader's worker refused to start: {ready.get('error')}")
        self.devices = list(ready.get("devices", []))
        self.layers = dict(ready.get("layers", {}))
        self.setup_seconds = dict(ready.get("setup_seconds", {}))  # per layer, for benchmarks
        self.probes = set(ready.get("probes", []))
        self._import_submission()

    def _spawn(self) -> None:
        """A cold worker: a fresh interpreter, which imports torch itself."""
        request_read, self._requests = os.pipe()
        self._replies, reply_write = os.pipe()
        log = open(self.log_path, "ab")
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-s", "-P", "-c", "from autograder.sandbox.worker import main; main()",
                 str(request_read), str(reply_write)],
                cwd=self.scratch, env=self._environment(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, pass_fds=(request_read, reply_write),
                start_new_session=True,  # its own process group: killed as a whole
            )
        finally:
            log.close()
            os.close(request_read)
            os.close(reply_write)

    def _import_submission(self) -> None:
        """Import the submission's modules once, so that an import that exits, hangs or
        crashes is reported once, clearly, instead of costing a restart per test."""
        try:
            reply = self._request({"op": "import", "modules": self.modules}, "importing your submission")
        except _Fault as fault:
            self._fatal = StudentError(f"importing your submission {fault}",
                                       "timeout" if fault.fault == "timeout" else "import")
            self.stop()
            return
        if not reply["ok"]:
            self._fatal = StudentError(str(reply["error"]), "import")

    def kill(self) -> None:
        """Kill the worker's process group and everything of its uid, taking no lock and waiting
        for nothing: safe in a signal handler (the judge's end with its runner)."""
        process = self._process
        if process is not None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._uid is not None:
            _kill_uid(self._uid)

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
        if self._uid is not None:
            _kill_uid(self._uid)  # nothing of the worker's uid may outlive it
        if self._cgroup is not None:
            self._cgroup.remove()
            self._cgroup = None

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
            raise StudentError(str(self._fatal), self._fatal.fault)
        if probe not in self.probes:
            raise GraderError(f"the suite calls a probe named {probe!r}, but probes.py declares none "
                              f"(it has: {', '.join(sorted(self.probes)) or 'none'})")
        message = {"op": "call", "probe": probe, "args": list(args), "kwargs": kwargs, "seed": int(seed),
                   "hung": self.hung}
        started = time.monotonic()
        try:
            reply = self._request(message, f"in {probe}", timeout)
            if self.policy.wants("limits"):
                self._check_scratch()
        except _Fault as fault:
            text = f"your code {fault}"
            if fault.fault == "timeout":
                waited = time.monotonic() - started
                self.stalled_seconds += waited
                text += self._remember_hang(self._stack_at_stop(), waited)
            self.stop()
            raise StudentError(text, fault.fault) from None
        finally:
            self._reap_strays()
        if not reply["ok"]:
            raise StudentError(str(reply["error"]), "raised")
        try:
            return wire.from_wire(reply["value"])
        except wire.BadValue as error:
            raise StudentError(f"your code returned a value the grader cannot accept: {error}", "value") from None

    def _request(self, message: dict, doing: str, timeout: float | None = None) -> dict:
        self._next_id += 1
        message["id"] = self._next_id
        try:
            wire.write_frame(self._requests, message)
        except OSError:
            raise _Fault(*self._death_notice()) from None
        reply = self._read_reply(timeout or self.limits.probe_seconds, doing)
        if not isinstance(reply, dict) or reply.get("id") != self._next_id or "ok" not in reply:
            raise _Fault("sent the grader a garbled reply (did your code write to the grader's channel?)", "channel")
        return reply

    def _read_reply(self, seconds: float, doing: str):
        deadline = time.monotonic() + seconds
        pid = self._process.pid

        def wait(fd: int) -> None:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _Fault(f"did not finish within {seconds:g} s (an endless loop, or far too slow?)", "timeout")
                if select.select([fd], [], [], min(remaining, 0.02))[0]:
                    return
                self._watch(pid)

        try:
            return wire.read_frame(self._replies, wait)
        except wire.ChannelError as error:
            if self._process.poll() is not None or "closed" in str(error):
                raise _Fault(*self._death_notice()) from None
            raise _Fault(f"sent the grader a garbled reply ({error})", "channel") from None

    def _stack_at_stop(self) -> list[tuple[str, int, str]]:
        """The student's frames of the worker's stack now, innermost first: [(file relative
        to the submission, line, function)]. The worker's faulthandler writes the stack to its
        output log on STACK_SIGNAL; a worker that silenced it (or filled its log) leaves []."""
        try:
            start = os.path.getsize(self.log_path)
            os.kill(self._process.pid, wire.STACK_SIGNAL)
        except OSError:
            return []
        text, deadline = "", time.monotonic() + 1.0
        while time.monotonic() < deadline:
            time.sleep(0.05)
            with open(self.log_path, "rb") as log:
                log.seek(start)
                now = log.read(1 << 16).decode("utf-8", "replace")
            if now and now == text:  # written in one go by a signal handler: done once it stops growing
                break
            text = now
        prefix = str(self.scratch) + os.sep
        for thread in re.split(r"^(?:Current thread|Thread) 0x", text, flags=re.MULTILINE)[1:]:
            frames = [(path[len(prefix):], int(line), function)
                      for path, line, function in _FRAME.findall(thread) if path.startswith(prefix)]
            if frames:  # the first thread that was in the student's code
                return frames
        return []

    def _remember_hang(self, frames: list[tuple[str, int, str]], seconds: float) -> str:
        """Note the outermost student function of a stopped call as hung (a later call into it
        fails at once, see ``worker.hung_functions_refused``); return where it was, for the
        message: '; it was stopped at vae.py line 12 in train_step (called from train())'."""
        if not frames:
            return ""
        file, line, function = frames[0]
        outer_file, _, outer = frames[-1]
        where = f"{file} line {line} in {function}" + (f" (called from {outer}())" if outer != function else "")
        self.hung.append({"file": outer_file, "function": outer, "message": (
            f"{outer}() in {outer_file} never returned earlier in this grading (stopped after {seconds:.0f} s "
            f"at {where}); the grader does not wait for it again")})
        return f"; it was stopped at {where}"

    def _watch(self, pid: int) -> None:
        """The judge's own watch, for what no layer of the worker's counts: resident memory
        where there is no cgroup, the scratch folder's total where it is no tmpfs of its own."""
        if not self.policy.wants("limits"):
            return
        if _resident_mb(pid) > self.limits.memory_mb:
            raise _Fault(f"used more than the {self.limits.memory_mb} MB of memory allowed", "memory")
        if time.monotonic() >= self._next_scratch_check:
            self._next_scratch_check = time.monotonic() + 0.25
            self._check_scratch()

    def _check_scratch(self) -> None:
        if self.layers.get("namespaces", "").startswith("active"):
            return  # the tmpfs itself refuses what does not fit
        size, count = _folder_total(self.scratch)
        if size > self.limits.scratch_mb * 2**20 or count > self.limits.scratch_files:
            raise _Fault(f"wrote more than the {self.limits.scratch_mb} MB or {self.limits.scratch_files} files "
                         "allowed in its folder", "output")

    def _death_notice(self) -> tuple[str, str]:
        """(what happened, as a verb phrase after "your code", and its fault)."""
        try:
            code = self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            return "stopped answering the grader", "crash"
        if self._cgroup is not None and self._cgroup.oom_killed():
            return f"used more than the {self.limits.memory_mb} MB of memory allowed (killed by the kernel)", "memory"
        if code < 0:
            name = signal.Signals(-code).name
            return (f"was killed by {name} (a crash in native code, or killed for its memory use)", "crash")
        last = self._last_output_line()
        return (f"stopped: the worker process exited with code {code}; did your code call sys.exit() or os._exit()?"
                + (f" Last output: {last}" if last else ""), "crash")

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


_FRAME = re.compile(r'^\s*File "(.+)", line (\d+) in (\S+)', re.MULTILINE)  # a line of faulthandler's


def _resident_mb(pid: int) -> float:
    """Resident memory of the worker in MB (read every 20 ms, so one file, not a /proc scan:
    the fence forbids forks, and strays are reaped after every call)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * PAGE / 2**20
    except (OSError, IndexError, ValueError):
        return 0.0


def _folder_total(folder: Path) -> tuple[int, int]:
    """(bytes, entries) under ``folder``; sparse files count by their apparent size."""
    size = count = 0
    for parent, dirs, files in os.walk(folder):
        count += len(dirs) + len(files)
        for name in files:
            try:
                size += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                pass
    return size, count


def _kill_uid(uid: int) -> None:
    """Kill every process of ``uid`` (a worker's uid is its alone)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as status:
                line = next(l for l in status if l.startswith("Uid:"))
            if int(line.split()[1]) == uid:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, StopIteration, ValueError, IndexError):
            continue


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
