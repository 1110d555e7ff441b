"""A submission is data: a folder of regular files, copied without following any link.

The student lays the folder out; the kit trusts none of it. ``copy`` walks it without
following symbolic links and refuses, with one line naming the entry, anything that is not
a regular file or a folder: a symlink (to the solutions, to ``/dev/zero``, a loop), a
device, a FIFO, a socket. Files are read through ``O_NOFOLLOW`` descriptors and written
dense; the total apparent size (a sparse file counts whole) and the number of entries are
capped before anything is written.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path

IGNORED = ("__pycache__", "*.pyc", ".git", ".ipynb_checkpoints", ".DS_Store")
MAX_BYTES = 64 * 2**20
MAX_ENTRIES = 2000


class SubmissionError(Exception):
    """The submission cannot be graded as it is laid out; the message is one line."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def hash_field(hasher, data: bytes) -> None:
    """One field of a hash key: its length, then its bytes. With lengths, no two different
    sequences of fields hash alike (a separator byte could also occur inside a file or a name)."""
    hasher.update(len(data).to_bytes(8, "big") + data)


def inventory(folder: Path, max_bytes: int = MAX_BYTES, max_entries: int = MAX_ENTRIES) -> list[tuple[str, bool]]:
    """The folder's entries as (relative path, is_folder), checked; raises SubmissionError."""
    folder = Path(folder)
    info = os.lstat(folder)
    if stat.S_ISLNK(info.st_mode):
        raise SubmissionError(f"{folder}: is a symbolic link; a submission is a folder of its own files")
    if not stat.S_ISDIR(info.st_mode):
        raise SubmissionError(f"{folder}: not a folder")
    entries, total, pending = [], 0, [""]
    while pending:
        relative = pending.pop()
        try:
            with os.scandir(folder / relative if relative else folder) as listing:
                children = sorted(listing, key=lambda e: e.name)
        except OSError as error:
            raise SubmissionError(f"{folder / relative}: cannot be read ({error.strerror})") from None
        for entry in children:
            if any(fnmatch.fnmatch(entry.name, pattern) for pattern in IGNORED):
                continue
            path = os.path.join(relative, entry.name) if relative else entry.name
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                entries.append((path, True))
                pending.append(path)
            elif stat.S_ISREG(mode):
                entries.append((path, False))
                total += entry.stat(follow_symlinks=False).st_size
            else:
                raise SubmissionError(f"{folder / path}: is {_kind(mode)}; a submission may hold only "
                                      "regular files and folders")
            if len(entries) > max_entries:
                raise SubmissionError(f"{folder}: more than {max_entries} files and folders")
            if total > max_bytes:
                raise SubmissionError(f"{folder}: more than {max_bytes >> 20} MB of files")
    return entries


def read_regular(path: Path, limit: int) -> bytes | None:
    """A regular file's bytes, read through no link and waiting on no FIFO, or None where it is
    missing, not a regular file or larger than ``limit``: for the small files of a student's
    folder the class steps read (timestamps, metadata)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as source:
        info = os.fstat(source.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        data = source.read(limit + 1)
    return data if len(data) <= limit else None


def copy(source: Path, target: Path, max_bytes: int = MAX_BYTES, max_entries: int = MAX_ENTRIES) -> None:
    """Copy the checked submission ``source`` into the new folder ``target``."""
    entries = inventory(source, max_bytes, max_entries)
    target.mkdir(parents=True)
    written = 0
    for path, is_folder in sorted(entries):
        if is_folder:
            (target / path).mkdir()
            continue
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(Path(source) / path, flags)
        except OSError as error:
            raise SubmissionError(f"{Path(source) / path}: cannot be read ({error.strerror})") from None
        with os.fdopen(fd, "rb") as src, open(target / path, "xb") as dst:
            if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):  # swapped since the inventory
                raise SubmissionError(f"{Path(source) / path}: changed while being copied")
            while chunk := src.read(1 << 20):
                written += len(chunk)
                if written > max_bytes:
                    raise SubmissionError(f"{source}: more than {max_bytes >> 20} MB of files")
                dst.write(chunk)
