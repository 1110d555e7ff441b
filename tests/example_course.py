"""The example course the engine's tests grade (tests/fixtures/example): its files, its
loaded config, and submissions made from its good ``mini.py``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from autograder import config as config_module

EXAMPLE = Path(__file__).parent / "fixtures" / "example"
CONFIG = config_module.load(EXAMPLE / "grading.yml")
MINI = CONFIG.get("mini")
GOOD = (EXAMPLE / "solutions" / "01_mini" / "mini.py").read_text()
SUITE = (EXAMPLE / "suite" / "test_mini.py").read_text()


def replace_function(name: str, body: str) -> str:
    """The good module with one function's body replaced."""
    start = GOOD.index(f"def {name}(")
    end = GOOD.index("### END SOLUTION", start) + len("### END SOLUTION")
    signature = GOOD[start:GOOD.index("\n", start)]
    return GOOD[:start] + signature + "\n" + textwrap.indent(textwrap.dedent(body).strip(), "    ") + GOOD[end:]


def cmdline(pid: str) -> str:
    """A process's command line ('' once it is gone): how the tests find strays by marker."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def children() -> dict[int, list[int]]:
    """The machine's process tree now: {parent pid: [child pids]}."""
    tree: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` now: its children, theirs, and so on."""
    tree, found, pending = children(), [], [pid]
    while pending:
        for child in tree.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def running(pids) -> list[int]:
    """Those of ``pids`` still running (a zombie has finished)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def still_running_after(pids, seconds: float) -> list[int]:
    """Wait up to ``seconds`` for ``pids`` to end (a process killed by its parent's death, say,
    ends a moment after it); return those still running then."""
    deadline = time.monotonic() + seconds
    while running(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return running(pids)


def cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``autograder ARGS`` as a user would (a process of its own), with extra ``env``."""
    return subprocess.run([sys.executable, "-m", "autograder.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def doctor_states(stdout: str) -> dict[str, str]:
    """``autograder doctor``'s table: {layer: "active: ...", "missing: why" or "off"}."""
    return dict(line.split(None, 1) for line in stdout.splitlines() if line[:1].isalpha() and "  " in line)
