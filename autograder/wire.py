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
import struct
from dataclasses import dataclass

import torch

HEADER = struct.Struct(">Q")
MAX_FRAME_BYTES = 512 * 2**20  # a reply larger than this is refused, not read into memory

_META = "__kit_meta_tensor__"
_UNSUPPORTED = "__kit_unsupported__"


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


class ChannelError(Exception):
    """The channel broke: the peer died, or sent something that is not a valid frame."""


def _dtype_from_name(name: str) -> torch.dtype:
    dtype = getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise ChannelError(f"unknown dtype {name!r}")
    return dtype


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


def from_wire(value):
    """Turn the markers written by :func:`to_wire` back into objects (judge side)."""
    if isinstance(value, dict):
        if value.get(_META) is True:
            return MetaTensor(tuple(int(s) for s in value["shape"]), _dtype_from_name(value["dtype"]))
        if _UNSUPPORTED in value and len(value) == 1:
            return Unsupported(str(value[_UNSUPPORTED]))
        return {k: from_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_wire(v) for v in value]
    if isinstance(value, tuple):
        return tuple(from_wire(v) for v in value)
    return value


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
