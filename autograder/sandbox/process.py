"""A forked process made into what a fresh one would have been: the fork server's judges and
spare workers are forks of one process, and each must start as a cold start would."""

from __future__ import annotations

import os
import tempfile


def take_on(cwd: str, output: int, env: dict[str, str]) -> None:
    """Become what a fresh process would have been started as: ``cwd`` as working folder,
    nothing to read, stdout and stderr to the file ``output`` (closed here), exactly ``env``.
    The judge-to-be does this with its request, the spare worker with its set-up frame."""
    os.chdir(cwd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    for fd in (null, output):
        os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    tempfile.tempdir = None  # read again from TMPDIR
