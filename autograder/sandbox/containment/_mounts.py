"""mount(2) and the two uses the layers make of it: a tmpfs, and re-exposing paths."""

from __future__ import annotations

import ctypes
import os
import stat

from autograder.sandbox.containment._syscalls import check, libc

MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 4096, 16384, 1 << 18
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x08000000, 0x10000000, 0x40000000


def unshare(flags: int) -> None:
    check(libc.unshare(flags), "unshare")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda v: None if v is None else v.encode()  # noqa: E731
    check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def private_mounts() -> None:
    """A mount namespace of our own whose changes never reach the host's."""
    unshare(CLONE_NEWNS)
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def traversable(folder: str, uid: int, gid: int) -> bool:
    info = os.stat(folder)
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def first_closed(path: str, uid: int, gid: int) -> tuple[str, str] | None:
    """The outermost folder on the way to ``path`` that ``uid`` may not enter, and the entry
    of it the way goes on through; None when the whole way is open."""
    parts = os.path.abspath(path).split(os.sep)[1:]
    for depth in range(1, len(parts)):
        folder = os.sep + os.path.join(*parts[:depth])
        if not traversable(folder, uid, gid):
            return folder, parts[depth]
    return None


def reveal(paths, uid: int, gid: int) -> list[str]:
    """Make ``paths`` reachable by ``uid`` without loosening any folder on disk.

    A folder on the way that ``uid`` may not enter (``/root`` at mode 0700, the runs folder)
    is covered, in this mount namespace only, by an empty tmpfs into which just the needed
    children are bind-mounted back; its other entries vanish from the worker's view.
    Returns the folders covered.
    """
    covered = []
    for _ in range(16):  # each round covers the outermost closed folder
        closed: dict[str, set[str]] = {}
        for path in paths:
            way = first_closed(path, uid, gid)
            if way is not None:
                closed.setdefault(way[0], set()).add(way[1])
        if not closed:
            return covered
        for folder, children in closed.items():
            handles = {child: os.open(os.path.join(folder, child), os.O_PATH | os.O_CLOEXEC) for child in children}
            mount("kit-cover", folder, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
            for child, fd in handles.items():
                target = os.path.join(folder, child)
                if os.path.isdir(f"/proc/self/fd/{fd}"):
                    os.mkdir(target)
                else:
                    open(target, "w").close()
                mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
                os.close(fd)
            covered.append(folder)
    raise OSError(f"cannot reach {list(paths)} as uid {uid}: too many closed folders")
