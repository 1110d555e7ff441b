"""Peak memory of one grading, for Gradescope's memory setting (docs/INSTRUCTORS.md, "Gradescope").

Grades each assignment's reference solution with ``autograder grade`` (what run_autograder runs)
and samples, every 20 ms, the resident memory of the whole process tree: the CLI, the judge
(pytest) and the worker, which live at once. /usr/bin/time and getrusage report the largest
single process only, which undercounts this. Prints one line per assignment and the largest.

    python benchmarks/gradescope_memory.py [ID ...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


def _tree_rss(root: int) -> int:
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * PAGE
        except OSError:
            continue
        todo += _children(pid)
    return total


def peak(assignment) -> tuple[float, float, str]:
    """(peak MB of the tree, seconds, the score line) for the reference of ``assignment``."""
    from autograder import config

    cfg = config.load(KIT / "grading.yml")
    folder = cfg.solution_dir(cfg.get(assignment))
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "autograder.cli", "grade", str(folder), "--assignment",
                                assignment, "--quiet"], cwd=KIT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True)
    highest = 0
    while process.poll() is None:
        highest = max(highest, _tree_rss(process.pid))
        time.sleep(0.02)
    return highest / 2**20, time.monotonic() - started, process.stdout.read().strip().splitlines()[-1]


def main() -> None:
    from autograder import config

    ids = sys.argv[1:] or [a.id for a in config.load(KIT / "grading.yml").assignments]
    worst = 0.0
    for assignment in ids:
        mb, seconds, line = peak(assignment)
        worst = max(worst, mb)
        print(f"{assignment:<14} peak {mb:7.0f} MB  {seconds:6.1f} s   {' '.join(line.split()[1:4])}", flush=True)
    print(f"largest peak: {worst:.0f} MB (resident, CLI + judge + worker together)")


if __name__ == "__main__":
    main()
