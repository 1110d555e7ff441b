"""The judge <-> worker channel: length-prefixed frames of safely deserialisable values.

A frame is an 8-byte big-endian length followed by a payload written by ``torch.save``.
The judge reads payloads with ``torch.load(weights_only=True)``, which rebuilds tensors,
numbers, strings and containers and refuses everything else, so nothing the student's
code sends can run code in the judge (no plain unpickling, ever).

Values that cannot cross (student objects, tensor subclasses' extra state, meta tensors)
are turned into plain markers on the worker side by :func:`to_wire`, and back into the
small classes below by :func:`from_wire` on the judge side.
"""

from __future__ import annotations

import io
import os
import signal
import struct
from dataclasses import dataclass

import torch

HEADER = struct.Struct(">Q")
MAX_FRAME_BYTES = 512 * 2**20  # a reply larger than this is refused, not read into memory
# Besides the frames: the judge's request for the worker's Python stack (faulthandler writes it
# to the worker's output log), sent before it stops a call that did not return in time.
STACK_SIGNAL = signal.SIGUSR1

_META = "__kit_meta_tensor__"
_UNSUPPORTED = "__kit_unsupported__"
_RAISED = "__kit_raised__"


@dataclass(frozen=True)
class MetaTensor:
    """A tensor that lived on the ``meta`` device: only its shape and dtype exist."""

    shape: tuple
    dtype: torch.dtype
    device: str = "meta"


@dataclass(frozen=True)
class Unsupported:
    """Stands for a value of a type that may not cross the channel (e.g. a student's object)."""

    type_name: str

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"


@dataclass(frozen=True)
class Raised:
    """Stands for a student's call that raised (``autograder.sandbox.worker.attempt``): the one-line
    message says what was raised and where in the student's files."""

    message: str

    def __str__(self) -> str:
        return self.message


class ChannelError(Exception):
    """The channel broke: the peer died, or sent something that is not a valid frame."""


def to_wire(value, _depth: int = 0):
    """Convert a probe's result to plain, safely loadable data (worker side)."""
    if _depth > 20:
        return {_UNSUPPORTED: "deeply nested value"}
    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            return {_META: True, "shape": list(value.shape), "dtype": str(value.dtype)}
        # as_subclass drops any student tensor subclass (and its overridden __eq__ & co).
        plain = torch.Tensor.as_subclass(value, torch.Tensor)
        return plain.detach().cpu().clone()
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, Raised):
        return {_RAISED: value.message}
    if isinstance(value, torch.dtype):
        return str(value)
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, (list, tuple)):
        items = [to_wire(v, _depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {str(k): to_wire(v, _depth + 1) for k, v in value.items()}
    try:  # numpy scalars and arrays, without importing numpy here
        import numpy as np

        if isinstance(value, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(value)).clone()
        if isinstance(value, np.generic):
            return value.item()
    except ImportError:  # pragma: no cover
        pass
    return {_UNSUPPORTED: type(value).__name__}


# What a reply may hold once decoded: dense, strided CPU tensors of real dtypes and plain values,
# within these bounds, counted while decoding, before anything is copied.
REAL_DTYPES = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.uint8, torch.int8,
                         torch.int16, torch.int32, torch.int64, torch.bool})
MAX_DEPTH = 32
MAX_ITEMS = 1_000_000            # containers' entries and scalars, shared references counted each time
MAX_TENSOR_BYTES = 1 << 30       # all tensors of one reply together
MAX_TEXT = 1 << 20               # one str or bytes


class BadValue(ChannelError):
    """A reply the judge refuses to decode; the message, for the student, says what it was."""


class _Budget:
    def __init__(self):
        self.items = 0
        self.tensor_bytes = 0

    def item(self) -> None:
        self.items += 1
        if self.items > MAX_ITEMS:
            raise BadValue(f"the value returned holds more than {MAX_ITEMS:,} items")


def _tensor(value: torch.Tensor, budget: _Budget) -> torch.Tensor:
    if type(value) is not torch.Tensor:
        raise BadValue(f"a {type(value).__name__} (only plain tensors are accepted)")
    if value.layout != torch.strided or value.is_quantized:
        raise BadValue(f"a {str(value.layout).removeprefix('torch.')} tensor (only dense tensors are accepted)")
    if value.dtype not in REAL_DTYPES:
        raise BadValue(f"a tensor of dtype {str(value.dtype).removeprefix('torch.')} (complex and exotic dtypes "
                       "are not accepted)")
    if value.device.type != "cpu":
        raise BadValue(f"a tensor on {value.device.type}")
    size = value.numel() * value.element_size()
    budget.tensor_bytes += size
    if budget.tensor_bytes > MAX_TENSOR_BYTES:
        raise BadValue(f"tensors of more than {MAX_TENSOR_BYTES >> 20} MB in all")
    if size and value.untyped_storage().nbytes() < size and not value.is_contiguous():
        # strides that reuse a small storage (an expanded tensor): materialised, within the budget
        value = value.contiguous()
    return value


def from_wire(value, _budget: _Budget | None = None, _depth: int = 0):
    """Decode a reply into plain values and tensors (judge side), or raise BadValue.

    Bounds on depth, item count and tensor bytes are counted as the value is walked, so a
    small reply that expands through shared references is refused before it is copied.
    The markers written by :func:`to_wire` become :class:`MetaTensor` and :class:`Unsupported`.
    """
    budget = _budget or _Budget()
    if _depth > MAX_DEPTH:
        raise BadValue(f"the value returned is nested more than {MAX_DEPTH} levels deep")
    budget.item()
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise BadValue("an integer too large for the grader")
        return value
    if isinstance(value, (str, bytes)):
        if len(value) > MAX_TEXT:
            raise BadValue(f"a {type(value).__name__} longer than {MAX_TEXT:,} characters")
        return value
    if isinstance(value, torch.Tensor):
        return _tensor(value, budget)
    if isinstance(value, dict):
        if value.get(_META) is True:
            return _meta(value)
        if _UNSUPPORTED in value and len(value) == 1:
            return Unsupported(str(value[_UNSUPPORTED])[:100])
        if _RAISED in value and len(value) == 1:
            return Raised(str(value[_RAISED])[:1000])
        return {str(k)[:200]: from_wire(v, budget, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [from_wire(v, budget, _depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    raise BadValue(f"a {type(value).__name__} (not a tensor, number, string or container)")


def _meta(value: dict) -> MetaTensor:
    shape, dtype = value.get("shape"), value.get("dtype")
    if not isinstance(shape, list) or len(shape) > MAX_DEPTH or not all(
            isinstance(s, int) and 0 <= s < 2**40 for s in shape):
        raise BadValue("a meta tensor with an impossible shape")
    named = getattr(torch, str(dtype).removeprefix("torch."), None)
    if named not in REAL_DTYPES:
        raise BadValue(f"a meta tensor of unknown dtype {str(dtype)[:40]!r}")
    return MetaTensor(tuple(shape), named)


def dumps(message) -> bytes:
    buffer = io.BytesIO()
    torch.save(message, buffer)
    return buffer.getvalue()


def loads(payload: bytes):
    """Safe deserialisation: tensors, numbers, strings and containers only."""
    try:
        return torch.load(io.BytesIO(payload), weights_only=True, map_location="cpu")
    except Exception as error:  # any malformed or forbidden payload is the peer's fault
        raise ChannelError(f"unreadable message ({type(error).__name__})") from None


def write_frame(fd: int, message) -> None:
    payload = dumps(message)
    data = HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def read_exactly(fd: int, n: int, wait=None) -> bytes:
    """Read n bytes; ``wait(fd)``, if given, is called before each read and may raise
    (the judge uses it to enforce time and memory limits while it waits)."""
    chunks, remaining = [], n
    while remaining:
        if wait is not None:
            wait(fd)
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise ChannelError("the worker closed the channel")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, wait=None):
    (length,) = HEADER.unpack(read_exactly(fd, HEADER.size, wait))
    if length > MAX_FRAME_BYTES:
        raise ChannelError(f"a reply of {length} bytes is larger than the channel allows")
    return loads(read_exactly(fd, length, wait))
