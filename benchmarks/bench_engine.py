"""Engine benchmarks: judge-to-worker overhead, worker reuse, batch throughput.

    python benchmarks/bench_engine.py [--students 8]

Prints figures; asserts nothing (performance is reported, never a test).
Targets: 1 MB probe round trip median < 20 ms; torch imported once per
assignment; grade-batch --jobs 2 at least 1.7x the throughput of --jobs 1 on 2 cores.
Target: the containment layers add under 100 ms to a worker's start.
Targets (``--dask``): 12 students, --scheduler local:2 within 10% of --jobs 2, and
under 1 s of Dask overhead per task. ``--dask`` measures them on a one-test toy class (gradings
of 0.6 s: the worst case, where Dask's own start weighs most), then on 12 copies of the
autoencoders reference (gradings of seconds, the issue's case); ``--dask-on ASSIGNMENT`` on
``--students`` copies of another. Target (``--fixed-cost``): a warm one-test
grading (judge and worker forked from the fork server) under 1.5 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from autograder.sandbox.containment import LAYERS, Policy
from autograder.sandbox.supervisor import Limits, Sandbox

KIT = Path(__file__).resolve().parent.parent
EXAMPLE = KIT / "tests" / "fixtures" / "example"
PROBES = "import torch\n\ndef megabyte(x):\n    return torch.zeros(2**18) + x\n"


def probe_overhead(calls: int = 200) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        submission, work = Path(tmp, "submission"), Path(tmp, "work")
        submission.mkdir()
        work.mkdir()
        with Sandbox(submission, work, PROBES, [], Limits()) as sandbox:
            started = time.perf_counter()
            sandbox.call("megabyte", 1.0)
            first = time.perf_counter() - started
            times = []
            for i in range(calls):
                started = time.perf_counter()
                result = sandbox.call("megabyte", float(i))
                times.append(time.perf_counter() - started)
            assert result.numel() * result.element_size() == 2**20
            times.sort()
            print(f"probe returning a 1 MB tensor, {calls} calls: median {1000 * statistics.median(times):.2f} ms, "
                  f"p90 {1000 * times[int(0.9 * calls)]:.2f} ms, max {1000 * times[-1]:.2f} ms")
            print(f"first call (starts the worker, imports torch): {first:.2f} s; "
                  f"worker starts for {calls + 1} calls: {sandbox.starts}")


def containment_setup(starts: int = 8) -> None:
    """Each layer's set-up time as the worker measures it, and whole worker starts with every
    layer against starts with none (the torch import dominates both)."""
    with tempfile.TemporaryDirectory() as tmp:
        submission = Path(tmp, "submission")
        submission.mkdir()
        for label, layers in (("every layer", LAYERS), ("no layer", ())):
            per_layer: dict[str, list[float]] = {}
            totals, walls = [], []
            for i in range(starts):
                work = Path(tmp, f"work-{label[:2]}-{i}")
                work.mkdir()
                with Sandbox(submission, work, PROBES, [], Limits(), policy=Policy.for_grading(layers=layers)) as box:
                    started = time.perf_counter()
                    box.start()
                    walls.append(time.perf_counter() - started)
                    for layer, seconds in box.setup_seconds.items():
                        per_layer.setdefault(layer, []).append(seconds)
                    totals.append(sum(box.setup_seconds.values()))
            print(f"worker start with {label}: median {statistics.median(walls):.2f} s over {starts} starts; "
                  f"layers' set-up median {1000 * statistics.median(totals):.1f} ms, max {1000 * max(totals):.1f} ms")
            if layers:
                print("  per layer (median ms): " + ", ".join(
                    f"{name} {1000 * statistics.median(times):.1f}" for name, times in per_layer.items()))


def batch_throughput(students: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "class")
        for i in range(students):
            shutil.copytree(EXAMPLE / "solutions" / "01_mini", root / f"student{i:02d}")
        elapsed = {}
        for jobs in (1, 2):
            for how in ((), ("--cold",)):
                label = f"--jobs {jobs}" + (" --cold" if how else "")
                elapsed[label] = _grade_batch(root, Path(tmp, f"out{jobs}{how}"), "--jobs", str(jobs), *how)
                print(f"grade-batch, {students} students (3 tests each), {label}: {elapsed[label]:.1f} s "
                      f"({students / elapsed[label] * 60:.1f} students/min, {elapsed[label] / students:.2f} s each)")
        print(f"throughput --jobs 2 / --jobs 1: {elapsed['--jobs 1'] / elapsed['--jobs 2']:.2f}x warm, "
              f"{elapsed['--jobs 1 --cold'] / elapsed['--jobs 2 --cold']:.2f}x cold; "
              f"warm / cold at --jobs 1: {elapsed['--jobs 1 --cold'] / elapsed['--jobs 1']:.2f}x")


def _grade_batch(root: Path, out: Path, *how: str, config: Path = EXAMPLE / "grading.yml",
                 assignment: str = "mini") -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autograder.cli", "--config", str(config), "grade-batch",
                           str(root), "--assignment", assignment, "--out", str(out), *how], capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:  # a benchmark of a failing batch measures nothing: say why, and stop
        failed = [line for line in (out / "grades.csv").read_text().splitlines() if ",graded," not in line][1:] \
            if (out / "grades.csv").is_file() else []
        sys.exit(f"grade-batch {' '.join(how)} exited with {done.returncode}\n" + "\n".join(failed[:5])
                 + "\n" + "\n".join(done.stderr.strip().splitlines()[-15:]))
    return elapsed


def _dask_against_jobs2(root: Path, out: Path, what: str, repeat: int, jobs1: bool = False, **grading) -> None:
    """--scheduler local:2 and --jobs 2 in turns, ``repeat`` times each on the class ``root`` (a
    2-core VM's speed drifts by 15% within minutes: one pair of runs proves nothing), after
    --jobs 1 once if ``jobs1``; prints each run, the medians, the run-by-run ratio and what
    Dask costs per task."""
    students = sum(1 for _ in root.iterdir())
    if jobs1:
        one = _grade_batch(root, out / "jobs1", "--jobs", "1", **grading)
        print(f"grade-batch, {what}, --jobs 1: {one:.1f} s ({students / one * 60:.1f} students/min)")
    runs: dict[str, list[float]] = {"--scheduler local:2": [], "--jobs 2": []}
    for i in range(repeat):
        for label in runs:
            runs[label].append(_grade_batch(root, out / f"{label[2:5]}{i}", *label.split(), **grading))
    for label, times in runs.items():
        print(f"grade-batch, {what}, {label}: median {statistics.median(times):.1f} s of "
              f"{', '.join(f'{t:.1f}' for t in times)}")
    dask, jobs2 = (statistics.median(times) for times in runs.values())
    pairs = [d / j for d, j in zip(*runs.values())]
    print(f"local:2 / --jobs 2 wall time on {what}: medians {dask / jobs2:.2f} ({100 * (dask / jobs2 - 1):+.1f}%), "
          f"run by run {statistics.median(pairs):.2f} (median of {', '.join(f'{r:.2f}' for r in pairs)})")
    if jobs1:
        print(f"throughput local:2 / --jobs 1: {one / dask:.2f}x")
    print(f"Dask's cost per task against --jobs 2 (cluster start included): {2 * (dask - jobs2) / students:+.2f} s")


def dask_on_course(assignment: str, repeat: int, students: int = 12, jobs1: bool = False) -> None:
    """--jobs 2 against --scheduler local:2 on copies of a course assignment's reference (and,
    with ``jobs1``, --jobs 1 once): gradings of seconds, where the Dask workers' own start
    (imports, fork servers) weighs less than on mini."""
    from autograder import config as config_module

    cfg = config_module.load(KIT / "grading.yml")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "class")
        for i in range(students):
            shutil.copytree(cfg.solution_dir(cfg.get(assignment)), root / f"student{i:02d}")
        _dask_against_jobs2(root, Path(tmp), f"{students} x {assignment} reference", repeat, jobs1,
                            config=KIT / "grading.yml", assignment=assignment)


def dask_throughput(students: int, repeat: int, assignment: str = "autoencoders") -> None:
    """The issue's figures twice: on a one-test toy class (gradings of 0.6 s, where Dask's own
    start weighs most: the worst case), --jobs 1, then --scheduler local:2 against --jobs 2;
    then the same on copies of a course assignment's reference (gradings of seconds, the
    issue's case). Last, what one task costs in Dask itself (no-op tasks through a LocalCluster
    of two processes) and the cluster's start."""
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp, "class")
        for i in range(students):
            shutil.copytree(EXAMPLE / "solutions" / "01_mini", root / f"student{i:02d}")
        _dask_against_jobs2(root, Path(tmp), f"{students} toy students", repeat, jobs1=True)
    dask_on_course(assignment, repeat, students, jobs1=True)

    started = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        start = time.perf_counter() - started
        client.submit(len, [], pure=False).result()  # warm
        tasks = 200
        started = time.perf_counter()
        futures = [client.submit(len, [i], pure=False) for i in range(tasks)]
        client.gather(futures)
        per_task = (time.perf_counter() - started) / tasks
    print(f"LocalCluster(2 processes) start: {start:.1f} s; a no-op task through it: {1000 * per_task:.1f} ms")


def _wall(command: list[str], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def fixed_cost(repeat: int = 5) -> None:
    """Where a one-test grading's fixed cost goes: interpreter and imports,
    the worker's start under every layer, and the whole grading with the first outcome's arrival."""
    from autograder import config as config_module
    from autograder.grading import runner

    print(f"python -c 'import torch': {_wall([sys.executable, '-c', 'import torch'], repeat):.2f} s; "
          f"'import torch, pytest': {_wall([sys.executable, '-c', 'import torch, pytest'], repeat):.2f} s; "
          f"'import autograder.grading.judge.plugin': "
          f"{_wall([sys.executable, '-c', 'import autograder.grading.judge.plugin'], repeat):.2f} s")
    from autograder.sandbox import forkserver

    readies, closes = [], []
    for _ in range(repeat):  # a batch thread's zygote: its start (the preload), and its close at the end
        started = time.perf_counter()
        server = forkserver.ForkServer()
        server.read(60)
        readies.append(time.perf_counter() - started)
        started = time.perf_counter()
        server.close()
        closes.append(time.perf_counter() - started)
    print(f"a fork server: ready (torch, pytest... imported) after {statistics.median(readies):.2f} s, "
          f"closed in {statistics.median(closes):.2f} s")
    cfg = config_module.load(EXAMPLE / "grading.yml")
    with tempfile.TemporaryDirectory() as tmp:
        submission = Path(tmp, "submission")
        shutil.copytree(EXAMPLE / "solutions" / "01_mini", submission)
        starts = []
        for i in range(repeat):
            work = Path(tmp, f"work{i}")
            work.mkdir()
            with Sandbox(submission, work, PROBES, [], Limits(), policy=Policy.for_grading()) as box:
                started = time.perf_counter()
                box.start()
                starts.append(time.perf_counter() - started)
        print(f"worker start under every layer (a fresh python, torch imported): {statistics.median(starts):.2f} s")
        for how in ("cold", "warm"):
            warm = how == "warm"
            if warm:  # the fork server's own start (torch, pytest imported once per batch thread)
                started = time.perf_counter()
                runner.grade(cfg, cfg.get("mini"), submission, only=["test_double"], warm=True)
                print(f"warm: the first grading, which starts the fork server: {time.perf_counter() - started:.2f} s")
            totals, firsts, cases = [], [], []
            for _ in range(repeat):
                arrivals = []
                started = time.perf_counter()
                result = runner.grade(cfg, cfg.get("mini"), submission, only=["test_double"], warm=warm,
                                      progress=lambda case: arrivals.append((time.perf_counter() - started,
                                                                             case.duration)))
                totals.append(time.perf_counter() - started)
                firsts.append(arrivals[0][0] - arrivals[0][1])
                cases.append(sum(d for _, d in arrivals))
            print(f"{how}: one-test grading {statistics.median(totals):.2f} s in all (median of {repeat}; target "
                  f"warm < 1.5 s); judge start to its first test {statistics.median(firsts):.2f} s; the test itself "
                  f"(worker start + probes) {statistics.median(cases):.2f} s; after it (judge exit, clean-up) "
                  f"{statistics.median(totals) - statistics.median(firsts) - statistics.median(cases):.2f} s; "
                  f"score {result.score:g}")


def simulate_course(gradings: int = 2400, processes: int = 100, seconds=(20.0, 60.0)) -> None:
    """A course on 50 two-core workers: gradings of 20-60 s, each Dask worker process taking
    the next student when it is free (what the scheduler does with one thread per worker)."""
    import heapq
    import random

    for seed in range(3):
        draw = random.Random(seed)
        durations = [draw.uniform(*seconds) for _ in range(gradings)]
        free_at = [0.0] * processes
        for duration in durations:
            heapq.heappush(free_at, heapq.heappop(free_at) + duration)
        print(f"simulated course, seed {seed}: {gradings} gradings of {seconds[0]:g}-{seconds[1]:g} s on "
              f"{processes} processes end after {max(free_at) / 60:.1f} min "
              f"(work per process {sum(durations) / processes / 60:.1f} min; one 2-core machine: "
              f"{sum(durations) / 2 / 3600:.1f} h)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=None, help="the class's size (8; --dask-on: 12)")
    parser.add_argument("--dask", action="store_true",
                        help="only the Dask figures, with 12 students: a toy class, then 12 x autoencoders")
    parser.add_argument("--repeat", type=int, default=5, help="--dask, --dask-on: runs of --jobs 2 and local:2 each")
    parser.add_argument("--fixed-cost", action="store_true", help="only where a one-test grading's time goes")
    parser.add_argument("--dask-on", metavar="ASSIGNMENT", default=None,
                        help="only --jobs 2 against --scheduler local:2 on --students copies of this assignment's "
                             "reference (the issue's 12: --students 12)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available")
    if args.dask_on:
        dask_on_course(args.dask_on, args.repeat, args.students or 12)
        sys.exit(0)
    if args.fixed_cost:
        fixed_cost()
        sys.exit(0)
    if args.dask:
        simulate_course()
        dask_throughput(12, args.repeat)
        sys.exit(0)
    containment_setup()
    probe_overhead()
    batch_throughput(args.students or 8)
