"""The worker's containment policy: one typed record, built by the runner, applied by the worker.

Everything the worker may touch is named here and nowhere else: the trees it may read,
the one folder it may write, its identity, its limits and the layers that enforce them.
The judge sends it to the worker in the set-up frame (``Policy.to_dict``), the worker
rebuilds it (``Policy.from_dict``) and hands it to :func:`autograder.sandbox.containment.contain`.
"""

from __future__ import annotations

import glob
import os
import site
import sys
from dataclasses import asdict, dataclass

# The containment steps, in the order the worker applies them (see containment/__init__.py).
LAYERS = ("cgroup", "namespaces", "identity", "limits", "landlock", "seccomp", "fence")

# A worker's uid/gid is WORKER_ID_BASE + the judge's pid: unprivileged, owned by no user
# of the machine, and different for every grading running at the same time.
WORKER_ID_BASE = 1 << 30

# What every worker may read besides the Python installation and the kit's data: the
# system's libraries and the few files the C library and matplotlib look up.
SYSTEM_READABLE = ("/usr", "/lib", "/lib64", "/etc/ld.so.cache", "/etc/localtime", "/etc/fonts",
                   "/proc/self", "/proc/cpuinfo", "/proc/meminfo",
                   "/dev/urandom", "/dev/random", "/dev/zero",
                   # CUDA reads these when a GPU is present (not exercised on a machine without one)
                   "/proc/driver/nvidia", "/sys/bus/pci", "/sys/devices")


@dataclass(frozen=True)
class Policy:
    scratch: str                                   # the worker's folder: its cwd, the only place it writes
    readable: tuple[str, ...] = ()                 # trees it may read (Python, site-packages, kit data)
    hidden: tuple[str, ...] = ()                   # never readable, even inside a readable tree (held-out data, the kit)
    devices: tuple[str, ...] = ()                  # device files it may read, write and ioctl (GPUs)
    uid: int | None = None                         # None: keep the judge's identity
    gid: int | None = None
    memory_mb: int = 3000                          # everything the worker holds: RSS, memfd, shmem, its tmpfs
    file_mb: int = 64                              # one file (and the printed output)
    scratch_mb: int = 256                          # the scratch folder in all
    scratch_files: int = 4096                      # files and folders in the scratch folder
    pids: int = 64                                 # threads of the worker (cgroup, RLIMIT_NPROC)
    threads: int = 1                               # torch / BLAS threads
    cgroup: str | None = None                      # set by the judge when it made one for this worker
    layers: tuple[str, ...] = LAYERS               # the layers to apply (tests switch some off)
    strict: bool = False                           # refuse to grade when a layer is missing

    @classmethod
    def for_grading(cls, hidden=(), layers=None, strict: bool = False) -> "Policy":
        """The worker reads the Python installation, the system's libraries and the kit's data
        (training splits only), less ``hidden`` and the held-out splits' sources; it writes
        its scratch folder, which the judge fills in with the limits and its identity."""
        import autograder
        import kitdata

        # Site-packages folders on the path besides this environment's own: a venv whose .pth
        # lists another environment's (a nested or layered venv) imports torch from there, and
        # torch imports parts of itself lazily, after Landlock. Only folders of that name: a
        # path entry such as an editable checkout must not open the kit's folder to the worker.
        layered = [p for p in sys.path if os.path.basename(p.rstrip(os.sep)) in ("site-packages", "dist-packages")]
        python = {sys.base_prefix, sys.prefix, *site.getsitepackages(), *layered}
        readable = sorted({os.path.realpath(p) for p in python}) + [os.path.dirname(kitdata.__file__)]
        readable += [p for p in SYSTEM_READABLE if os.path.exists(p)]
        engine_suites = os.path.join(os.path.dirname(autograder.__file__), "suites")
        hidden = {os.path.realpath(h) for h in (*hidden, engine_suites, *kitdata.heldout_sources())}
        gpus = tuple(sorted(glob.glob("/dev/nvidia*")))
        return cls(scratch="", readable=tuple(readable), hidden=tuple(sorted(hidden)), devices=gpus,
                   layers=tuple(LAYERS if layers is None else layers), strict=strict)

    def wants(self, layer: str) -> bool:
        return layer in self.layers

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Policy":
        data = dict(data)
        for key in ("readable", "hidden", "devices", "layers"):
            data[key] = tuple(data.get(key) or ())
        return cls(**data)


def base_environment(threads: int = 1) -> dict[str, str]:
    """The worker's environment, less its folders: all it inherits of the judge's is the
    choice of GPUs and where their libraries are. The fork server starts with it too (here,
    not in the sandbox, so that starting one never imports torch into the batch's process)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
        "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
        "MPLBACKEND": "Agg", "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    }
    for name in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env
