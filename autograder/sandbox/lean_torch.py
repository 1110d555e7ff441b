"""torch without its compiler (torch._dynamo and torch._inductor) until something compiles.

Three everyday calls import the compiler, and with it sympy, mpmath and triton: about
150 MB resident with the CUDA build of torch (70 MB with the CPU build), in the judge and in
the worker, for gradings that never compile anything:

- every ``Optimizer.step`` runs ``import torch._dynamo; torch._dynamo.graph_break()``;
- every function torch wraps with ``torch._disable_dynamo`` imports it on its first call;
- ``torch.use_deterministic_algorithms`` imports ``torch._inductor.config`` to set the
  compiler's flag beside the eager one.

Here they become what they are when nothing compiles, until something does:

- ``torch._dynamo`` is a stand-in whose ``graph_break`` does nothing; any other attribute
  imports the real module, which then replaces the stand-in everywhere (:func:`install`);
- each ``_disable_dynamo`` wrapper calls its function directly while the real module is
  not loaded, and through ``torch._dynamo.disable`` once it is (:func:`install`);
- :func:`deterministic_algorithms` sets the eager flag alone, and the compiler's when it is
  loaded.

Without compilation this is exactly torch's behaviour (no frame evaluation hook can be set
without the real module). :func:`install` changes nothing where torch's source differs
from what it expects.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import sys
import types

NAME = "torch._dynamo"


class _StandIn(types.ModuleType):
    """``torch._dynamo`` until someone needs more than ``graph_break``."""

    def graph_break(self, msg: str = "") -> None:  # noqa: ARG002 - torch's signature
        real = _loaded()
        if real is not None:  # inside a compiled region the real one must see the call
            real.graph_break(msg)

    def __getattr__(self, name: str):
        return getattr(_load(), name)


def _loaded():
    module = sys.modules.get(NAME)
    return None if module is None or isinstance(module, _StandIn) else module


def _load():
    real = _loaded()
    if real is None:
        torch = sys.modules["torch"]
        sys.modules.pop(NAME, None)
        torch.__dict__.pop("_dynamo", None)
        real = importlib.import_module(NAME)
    return real


def _direct_until_loaded(fn, recursive: bool):
    """``fn``'s cached disabler for a ``torch._disable_dynamo`` wrapper (its ``__dynamo_disable``)."""
    disabled = None

    def call(*args, **kwargs):
        nonlocal disabled
        real = _loaded()
        if real is None:
            return fn(*args, **kwargs)
        if disabled is None:
            disabled = real.disable(fn, recursive, wrapping=False)
        return disabled(*args, **kwargs)

    return call


def install() -> int:
    """Defer the import in this process (torch imported, torch._dynamo not yet); return how
    many ``_disable_dynamo`` wrappers now call their function directly."""
    torch = sys.modules.get("torch")
    if torch is None or NAME in sys.modules or not callable(getattr(torch, "_disable_dynamo", None)):
        return 0
    wrapper = torch._disable_dynamo(lambda: None)
    if not isinstance(wrapper, types.FunctionType) or set(wrapper.__code__.co_freevars) != {"fn", "recursive"}:
        return 0  # a torch whose wrapper is not the one described above
    code, count = wrapper.__code__, 0
    for obj in gc.get_objects():
        if type(obj) is types.FunctionType and obj.__code__ is code:  # type(): no proxy's __class__ is asked
            cells = dict(zip(code.co_freevars, (cell.cell_contents for cell in obj.__closure__)))
            fn = cells["fn"]
            if getattr(fn, "__dynamo_disable", None) is None:
                fn.__dynamo_disable = _direct_until_loaded(fn, cells["recursive"])
                count += 1
    stand_in = _StandIn(NAME, "torch._dynamo, not imported yet (autograder.sandbox.lean_torch)")
    sys.modules[NAME] = stand_in
    torch._dynamo = stand_in
    return count


def deterministic_algorithms(torch, warn_only: bool = True) -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=...)`` without importing the
    compiler for its own flag: set on the compiler too where it is loaded already."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=warn_only)
    else:
        setter(True, warn_only=warn_only)


def lean_allocator() -> None:
    """glibc's malloc keeps freed blocks of up to 32 MB for reuse by default, so one test's
    tensors would stay resident in the judge and the worker through the next. Here blocks
    from 1 MB up go back to the system when freed, and the heap's free top from 2 MB up.
    Measured on the six references (``benchmarks/memory.py``, warm; ``bench_assignments.py``):
    glibc's default, largest peak 752 MB; 4 MB blocks, 760 MB; 1 MB, 664 MB at the default's
    speed; 256 KB, 672 MB but tiny_lm twice as slow (a step's many mid-sized tensors each
    mapped and unmapped)."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 2**20)    # M_MMAP_THRESHOLD (fixed: no longer raised as blocks are freed)
        libc.mallopt(-1, 2 * 2**20)   # M_TRIM_THRESHOLD
    except (OSError, AttributeError):   # not glibc
        pass


MADV_DONTNEED = 4


def drop_loaded_pages() -> int:
    """Unmap the pages of read-only file mappings (libraries' code and constants) that this
    process holds, and return how many MB: importing torch reads about 250 MB of them, most
    never used again (the CUDA libraries' on a machine without a GPU). A process forked from
    this one maps again, from the page cache, only what it runs. Mappings holding a page of
    their own (a relocation written before the mapping turned read-only) are left alone:
    for them the file is not the content."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    dropped, vma = 0, None
    try:
        with open("/proc/self/smaps") as smaps:
            lines = smaps.read().splitlines()
    except OSError:
        return 0
    for line in lines + ["end-of-list"]:
        fields = line.split()
        if fields and "-" in fields[0] and not fields[0].endswith(":"):  # a mapping's header
            if vma is not None and vma["drop"]:
                if libc.madvise(vma["start"], vma["end"] - vma["start"], MADV_DONTNEED) == 0:
                    dropped += vma["rss"]
            if line == "end-of-list":
                break
            start, end = (int(part, 16) for part in fields[0].split("-"))
            file_backed = len(fields) >= 6 and fields[5].startswith("/")
            vma = {"start": start, "end": end, "drop": file_backed and "w" not in fields[1], "rss": 0}
        elif vma is not None and fields[0] == "Rss:":
            vma["rss"] = int(fields[1])
        elif vma is not None and fields[0] == "Anonymous:" and int(fields[1]):
            vma["drop"] = False
    return dropped // 1024
