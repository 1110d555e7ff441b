"""The worker: the only process that ever runs a student's code.

The judge starts it (``autograder.sandbox.supervisor.Sandbox``) in its own process group, with a
scratch copy of the submission as working directory, a scrubbed environment and its
output going to a log file. It then:

1. reads one set-up frame: the containment ``Policy`` and the probe module's source,
2. contains itself (``autograder.sandbox.containment.contain``): cgroup, namespaces, identity and
   limits; then imports torch, the kit's data modules and the probes; then Landlock and
   seccomp, after which it can read nothing but its installation and write nothing but its
   scratch folder, and can start no process, open no socket, signal no one else,
3. installs the fence, an audit hook that only turns refusals into friendly messages,
4. answers ``call`` requests: seed everything, run the probe, send back its result.

The judge never trusts what comes back either (see ``autograder.sandbox.wire``).
"""

from __future__ import annotations

import contextlib
import errno
import faulthandler
import importlib
import os
import random
import signal
import sys
import traceback
import types

from autograder.sandbox import lean_torch, wire
from autograder.sandbox.containment import IsolationError, Policy, contain

_scratch = os.getcwd()


# --------------------------------------------------------------------------- for probes


class StudentImportError(Exception):
    """A submission module could not be imported; the message names the file."""


def student(module_name: str) -> types.ModuleType:
    """Import a module of the submission (``student("vae")`` imports ``vae.py``).

    Errors are reported as one line naming the file and the line of the fault.
    """
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = os.path.join(_scratch, module_name + ".py")
    if not os.path.exists(path) and not os.path.isdir(os.path.join(_scratch, module_name)):
        raise StudentImportError(f"your submission has no {module_name}.py")
    try:
        return importlib.import_module(module_name)
    except SyntaxError as error:
        where = os.path.basename(error.filename or module_name + ".py")
        raise StudentImportError(f"{where} line {error.lineno}: SyntaxError: {error.msg}") from None
    except Exception as error:
        sys.modules.pop(module_name, None)
        raise StudentImportError(f"importing {module_name}.py failed: {describe(error)}") from None


def attempt(fn):
    """Run one call of the student's code: its result, or ``Raised`` (what and where) if it
    raised, so one broken function costs only its own share of a test."""
    try:
        return fn()
    except Exception as error:  # noqa: BLE001 - reported to the student
        return wire.Raised(describe(error))


def detached(value):
    """``value`` with every tensor in it (through dicts, lists and tuples) detached from autograd."""
    import torch  # the worker imports torch only once its first layers hold

    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, dict):
        return {k: detached(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(detached(v) for v in value)
    return value


@contextlib.contextmanager
def substituted(module: types.ModuleType, **pieces):
    """The module's functions named in ``pieces`` replaced by the grader's for the duration,
    and restored afterwards (a function the module lacked is removed again). The student's
    code looks its functions up in its module when it calls them, so a downstream function
    (a training loop) runs on the grader's correct pieces: each test judges its own function."""
    missing = object()
    saved = {name: module.__dict__.get(name, missing) for name in pieces}
    try:
        for name, piece in pieces.items():
            setattr(module, name, piece)
        yield module
    finally:
        for name, old in saved.items():
            if old is missing:
                module.__dict__.pop(name, None)
            else:
                setattr(module, name, old)


def attempt_detached(fn):
    """:func:`attempt`, its result detached: what a probe returns of a student's forward pass."""
    return detached(attempt(fn))


@contextlib.contextmanager
def readable_meta():
    """Let a student's training loop run on the ``meta`` device, where tensors have shapes but
    no values: while inside, a meta tensor reads as 0.0 (``.item()``, ``float()``,
    ``.tolist()``), ``.cpu()`` leaves it where it is, and ``torch.distributions`` does not
    validate its arguments (validation reads values). Reading a loss is then not what
    fails; a tensor the loop puts on a device of its own still does."""
    import torch

    as_zero = {"item", "__float__", "tolist"}
    originals = {name: getattr(torch.Tensor, name) for name in (*as_zero, "cpu")}

    def wrap(name):
        def method(self, *args, **kwargs):
            if not self.is_meta:
                return originals[name](self, *args, **kwargs)
            return 0.0 if name in as_zero else self
        return method

    validate = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    for name in originals:
        setattr(torch.Tensor, name, wrap(name))
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(torch.Tensor, name, method)
        torch.distributions.Distribution.set_default_validate_args(validate)


def shuffled_weights(module, generator=None):
    """A copy of the student's trained ``module`` whose every parameter has its entries
    shuffled: the same values at the same scale, none of the learned arrangement.

    A probe runs the same generation on the trained module and on this copy, and the judge
    scores both: quality that survives the shuffle did not come from the trained weights (an
    exact sampler, shipped data replayed, an output that ignores its parameters)."""
    import copy

    import torch

    twin = copy.deepcopy(module)
    with torch.no_grad():
        for p in twin.parameters():
            flat = p.detach().reshape(-1)
            order = torch.randperm(flat.numel(), generator=generator).to(flat.device)
            p.copy_(flat[order].reshape(p.shape))
    return twin


def registry(module: types.ModuleType) -> dict:
    """The probes a suite declares: the public functions defined in its probes module."""
    return {name: value for name, value in vars(module).items()
            if not name.startswith("_") and isinstance(value, types.FunctionType)
            and value.__module__ == module.__name__}


# --------------------------------------------------------------------------- errors


def _student_frame(tb) -> str:
    """'vae.py line 42 in kl_divergence' for the innermost frame in the submission."""
    where = ""
    for frame, lineno in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        if filename.startswith(_scratch + os.sep):
            where = f"{os.path.relpath(filename, _scratch)} line {lineno} in {frame.f_code.co_name}"
    return where


def describe(error: BaseException) -> str:
    """One line: what was raised, its message and where in the student's files."""
    if isinstance(error, StillHanging):
        return str(error)
    if isinstance(error, SystemExit):
        what = f"your code called sys.exit({error.code!r})"
    elif isinstance(error, OSError) and error.errno == errno.EFBIG:
        what = "your code printed or wrote more output than the grader allows (file size limit)"
    elif isinstance(error, StudentImportError):
        return str(error)
    elif isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and "can't allocate memory" in str(error)):
        what = f"your code asked for more memory than the grader allows ({_raised(error)})"
    elif isinstance(error, OSError) and error.errno in (errno.EPERM, errno.EACCES) and "grader" not in str(error):
        what = f"{type(error).__name__}: {error.strerror} (the grader's sandbox refused this" + (
            f": {error.filename})" if error.filename else ")")
    else:
        what = _raised(error)
    where = _student_frame(error.__traceback__)
    return f"{what} ({where})" if where else what


def _raised(error: BaseException) -> str:
    """'ValueError: the first line of its message', at most 300 characters."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    what = type(error).__name__ + (f": {message}" if message else "")
    return what if len(what) <= 300 else what[:297] + "..."


# --------------------------------------------------------------------------- hangs


class StillHanging(BaseException):
    """Raised into a student's function that already hung once in this grading.

    A BaseException, so that neither ``attempt`` nor a student's ``except Exception`` turns it
    into a value: the probe ends at once and the test that called the function fails, instead
    of waiting out the probe's time limit again (and the suite's budget with it)."""


@contextlib.contextmanager
def hung_functions_refused(hung: list[dict]):
    """While inside, check every 0.1 s whether the code running is inside a function that hung
    earlier ({"file", "function", "message"} from the judge, the file relative to the
    scratch folder); if so, raise :class:`StillHanging` with the earlier hang's message.

    A timer signal, not a profiler: a profile hook would slow every call of an honest
    training loop; the handler costs a walk of the stack ten times a second, and only in
    gradings where something has hung."""
    if not hung:
        yield
        return
    known = {(entry["file"], entry["function"]): entry["message"] for entry in hung}

    def check(signum, frame):
        while frame is not None:
            code = frame.f_code
            if code.co_filename.startswith(_scratch + os.sep):
                message = known.get((os.path.relpath(code.co_filename, _scratch), code.co_name))
                if message is not None:
                    raise StillHanging(message)
            frame = frame.f_back

    previous = signal.signal(signal.SIGALRM, check)
    signal.setitimer(signal.ITIMER_REAL, 0.1, 0.1)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- the fence


class Fence:
    """The audit hook: the same rules as the Landlock layer, checked first so that an honest
    student reads which file was refused and why. It is not a boundary (the student's code
    can patch it); the kernel's layers are."""

    BLOCKED_EVENTS = {
        "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
        "os.fork", "os.forkpty", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym",
        "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
        "os.setsid", "os.setpgid",
    }
    WRITE_EVENTS = {
        "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown",
        "os.link", "os.symlink", "os.truncate", "os.utime", "shutil.rmtree",
    }
    LIST_EVENTS = {"os.listdir", "os.scandir"}

    def __init__(self, policy):
        self.readable = [os.path.realpath(p) for p in policy.readable] + [os.path.realpath(policy.scratch)]
        self.hidden = [os.path.realpath(p) for p in policy.hidden]
        self.writable = [os.path.realpath(policy.scratch), "/dev/null"]

    @staticmethod
    def _under(path: str, prefix: str) -> bool:
        return path == prefix or path.startswith(prefix.rstrip(os.sep) + os.sep)

    def _resolve(self, path) -> str | None:
        if isinstance(path, int) or path is None:
            return None
        return os.path.realpath(os.fsdecode(os.fspath(path)))  # relative to the current folder

    def may_read(self, path: str) -> bool:
        """As Landlock grants: inside a readable tree, and inside no hidden path of that tree."""
        for tree in self.readable:
            if self._under(path, tree) and not any(
                    self._under(hidden, tree) and self._under(path, hidden) for hidden in self.hidden):
                return True
        return False

    def may_write(self, path: str) -> bool:
        return any(self._under(path, prefix) for prefix in self.writable)

    def __call__(self, event: str, args: tuple) -> None:
        if event in self.BLOCKED_EVENTS:
            raise PermissionError(f"the grader does not allow {event} in submissions")
        if event in ("os.kill", "os.killpg", "signal.pthread_kill") and args and args[0] not in (0, os.getpid()):
            raise PermissionError("the grader does not allow signalling other processes")
        if event == "open":
            path = self._resolve(args[0])
            if path is None:
                return
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC))
            if writing and not self.may_write(path):
                raise PermissionError(f"submissions may only write inside their own folder, not {path}")
            if not self.may_read(path):
                raise PermissionError(f"the grader's files are off limits: {path}")
        elif event in self.LIST_EVENTS:
            path = self._resolve(args[0] if args else ".")
            if path is not None and not self.may_read(path):
                raise PermissionError(f"the grader's files are off limits: {path}")
        elif event in self.WRITE_EVENTS:
            for arg in args[:2]:
                if isinstance(arg, (str, bytes, os.PathLike)):
                    path = self._resolve(arg)
                    if path is not None and not self.may_write(path):
                        raise PermissionError(f"submissions may only change files inside their own folder, not {path}")


# --------------------------------------------------------------------------- main loop


def _devices(torch) -> list[str]:
    found = []
    try:
        if torch.cuda.is_available():
            found.append("cuda")
    except Exception:
        pass
    try:
        if torch.backends.mps.is_available():
            found.append("mps")
    except Exception:
        pass
    return found


def _seed_everything(seed: int, torch) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy

        numpy.random.seed(seed % 2**32)
    except ImportError:  # pragma: no cover
        pass


def _born(birth: dict) -> None:
    """A spare worker forked by a warm judge (``autograder.sandbox.forkserver``) takes on what a cold
    worker is started with: its folder, its environment and its output log."""
    from autograder.sandbox.process import take_on

    take_on(birth["cwd"], os.open(birth["log"], os.O_WRONLY | os.O_APPEND), birth["env"])


def main(request_fd: int | None = None, reply_fd: int | None = None) -> None:
    """Serve the judge on two pipes (a cold worker's are named on its command line)."""
    global _scratch
    if request_fd is None:
        request_fd, reply_fd = int(sys.argv[1]), int(sys.argv[2])
    try:
        setup = wire.read_frame(request_fd)
    except wire.ChannelError:
        return  # a spare the judge never needed
    if "birth" in setup:
        _born(setup["birth"])
    policy = Policy.from_dict(setup["policy"])
    _scratch = policy.scratch
    runtime = {}

    def load() -> None:
        """Everything the worker needs from the kit and the Python installation, read while
        it still may: torch, numpy, the kit's data modules and the hidden probes' source."""
        import numpy  # noqa: F401  (native code, loaded before seccomp and the fence)
        import torch

        lean_torch.install()
        lean_torch.lean_allocator()
        torch.set_num_threads(policy.threads)
        lean_torch.deterministic_algorithms(torch, warn_only=True)
        runtime["torch"], runtime["devices"] = torch, _devices(torch)
        for name in ("kitdata", "kitdata.digits", "kitdata.toy2d", "kitdata.text", "kitdata.features"):
            importlib.import_module(name)
        probes = types.ModuleType("probes")
        probes.__file__ = "<probes>"
        sys.modules["probes"] = probes
        exec(compile(setup["probes_source"], "<probes>", "exec"), probes.__dict__)
        runtime["probes"] = probes
        lean_torch.drop_loaded_pages()  # what the imports read and no call needs (a fork's: little)

    seconds: dict[str, float] = {}
    try:
        layers = contain(policy, load, seconds)
    except IsolationError as error:
        wire.write_frame(reply_fd, {"ready": False, "error": str(error)})
        return
    if policy.wants("fence"):
        sys.addaudithook(Fence(policy))
        layers["fence"] = "active: friendly messages for refused files, processes and sockets (not a boundary)"
    else:
        layers["fence"] = "off"
    torch, probes = runtime["torch"], runtime["probes"]
    sys.path.insert(0, _scratch)
    # Where a call that never returns was when the judge stopped it: the stack, written to the
    # worker's output log by a C handler (it runs even inside a native loop).
    faulthandler.register(wire.STACK_SIGNAL, file=sys.stderr, all_threads=True, chain=False)
    probes_by_name = registry(probes)
    wire.write_frame(reply_fd, {"ready": True, "devices": runtime["devices"], "layers": layers,
                                "setup_seconds": seconds, "probes": sorted(probes_by_name)})

    while True:
        try:
            request = wire.read_frame(request_fd)
        except wire.ChannelError:
            return  # the judge has gone: nothing left to do
        reply = {"id": request["id"]}
        try:
            if request["op"] == "import":
                for name in request["modules"]:
                    student(name)
                reply.update(ok=True, value=None)
            else:
                probe = probes_by_name[request["probe"]]  # the judge checked the name
                _seed_everything(request["seed"], torch)
                with hung_functions_refused(request.get("hung", [])):
                    value = probe(*request["args"], **request["kwargs"])
                reply.update(ok=True, value=wire.to_wire(value))
        except BaseException as error:  # noqa: BLE001 - everything the student raises is reported
            reply.update(ok=False, error=describe(error))
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # the output file may be at its size limit
                    pass
        try:
            wire.write_frame(reply_fd, reply)
        except Exception as error:  # e.g. a value torch.save cannot write
            wire.write_frame(reply_fd, {"id": request["id"], "ok": False,
                                        "error": f"the result could not be sent back: {describe(error)}"})
