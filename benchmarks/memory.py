"""Peak memory of a grading as a container charges it, for Gradescope's memory setting.

For each assignment's reference solution: one cold grading (``autograder grade --cold``: the
judge and the worker are fresh interpreters), one warm grading (``autograder grade``: both
forked from a process that has imported torch once) and a ``grade-batch --jobs 2`` of two
copies. The whole process tree is sampled every 0.1 s; the figure is the peak of its summed
PSS (each shared page counted once over the processes sharing it: what a container's memory
limit charges, where nothing outside the grading maps torch) and, beside it, of its summed RSS
(which counts torch's shared pages once per process). Measure on an idle machine: other
processes mapping the same libraries lower everyone's PSS. The worker's largest RSS is the
figure the judge's watch compares with ``memory_mb``.

    python benchmarks/memory.py [ID ...] [--only cold|warm|batch]

The torch measured is the running interpreter's: for the CPU build (the Gradescope export's
default), run the script with the python of an environment that holds it.

Prints figures; asserts nothing (Gradescope's default container is 768 MB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent
PAGE = os.sysconf("SC_PAGE_SIZE")
GRADESCOPE_DEFAULT_MB = 768


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


def _rollup(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in bytes, from /proc/PID/smaps_rollup."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1]) * 1024
    except OSError:
        pass
    return pss, rss


def _pids(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += _children(pid)
    return found


def tree(root: int) -> tuple[int, int, int, int] | None:
    """(summed PSS, summed RSS, processes, the largest RSS of a worker) of ``root`` and all its
    descendants, or None when a process started or ended while they were read: a parent read
    before its fork and a child after it would count the pages they share twice. A worker is
    a process with no child two levels or more below ``root`` (the judge's watch compares its
    RSS with ``memory_mb``)."""
    pids = _pids(root)
    pss = rss = count = worker = 0
    for pid in pids:
        p, r = _rollup(pid)
        if r:
            pss, rss, count = pss + p, rss + r, count + 1
            if pid != root and pid not in _children(root) and not _children(pid):
                worker = max(worker, r)
    return (pss, rss, count, worker) if _pids(root) == pids else None


def sample(command: list[str]) -> dict:
    """Run ``command`` from the kit's folder, sampling its tree; its peaks and its last line."""
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=KIT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak_pss = peak_rss = most = worker = 0
    while process.poll() is None:
        figures = tree(process.pid)
        if figures is not None:
            pss, rss, count, largest = figures
            peak_pss, peak_rss, most = max(peak_pss, pss), max(peak_rss, rss), max(most, count)
            worker = max(worker, largest)
        time.sleep(0.1)
    lines = process.stdout.read().strip().splitlines()
    return {"pss": peak_pss / 2**20, "rss": peak_rss / 2**20, "processes": most, "worker": worker / 2**20,
            "seconds": time.monotonic() - started, "code": process.returncode, "last": lines[-1] if lines else ""}


def _grade(assignment: str, folder: Path, cold: bool) -> list[str]:
    return [sys.executable, "-m", "autograder.cli", "grade", str(folder), "--assignment", assignment, "--quiet",
            *(["--cold"] if cold else [])]


def _batch(assignment: str, folder: Path, scratch: Path) -> list[str]:
    root = scratch / "class"
    shutil.rmtree(root, ignore_errors=True)
    for name in ("alice", "bob"):
        shutil.copytree(folder, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return [sys.executable, "-m", "autograder.cli", "grade-batch", str(root), "--assignment", assignment,
            "--jobs", "2", "--out", str(scratch / "out")]


def main() -> None:
    sys.path.insert(0, str(KIT))
    from autograder import config

    cfg = config.load(KIT / "grading.yml")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ids", nargs="*", default=[a.id for a in cfg.assignments])
    parser.add_argument("--only", choices=("cold", "warm", "batch"), action="append")
    args = parser.parse_args()
    kinds = args.only or ["cold", "warm", "batch"]

    import torch
    print(f"torch {torch.__version__} ({'CUDA build' if torch.version.cuda else 'CPU build'}); "
          f"figures in MB; Gradescope's default container: {GRADESCOPE_DEFAULT_MB} MB", flush=True)
    print(f"{'assignment':<14}{'run':<7}{'peak PSS':>9}{'peak RSS':>9}{'worker RSS':>11}{'procs':>6}{'seconds':>8}  result")
    worst = {kind: 0.0 for kind in kinds}
    with tempfile.TemporaryDirectory(prefix="memory-bench-") as scratch:
        for assignment in args.ids:
            folder = cfg.solution_dir(cfg.get(assignment))
            for kind in kinds:
                if kind == "batch":
                    command = _batch(assignment, folder, Path(scratch))
                else:
                    command = _grade(assignment, folder, cold=kind == "cold")
                figures = sample(command)
                worst[kind] = max(worst[kind], figures["pss"])
                result = " ".join(figures["last"].split()[1:4]) if kind != "batch" else f"exit {figures['code']}"
                print(f"{assignment:<14}{kind:<7}{figures['pss']:9.0f}{figures['rss']:9.0f}{figures['worker']:11.0f}"
                      f"{figures['processes']:6d}"
                      f"{figures['seconds']:8.1f}  {result}", flush=True)
    for kind, mb in worst.items():
        verdict = "fits" if mb <= GRADESCOPE_DEFAULT_MB else "does not fit"
        print(f"largest peak PSS, {kind}: {mb:.0f} MB ({verdict} in {GRADESCOPE_DEFAULT_MB} MB)")


if __name__ == "__main__":
    main()
