"""Hidden-suite time and score of each reference solution under several grader seeds.

    python benchmarks/bench_assignments.py [--seeds 0 1 2 3 4] [--assignment vae] [--cold]

Prints, per assignment and seed, the score and the suite's wall time (the quality bar:
full marks under every seed, at most 60 s on 2 cores), graded as ``autograder grade`` does:
the judge and its worker forked from one process that has imported torch (``--cold``: two
fresh interpreters). Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from autograder import config
from autograder.grading import runner

KIT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--assignment", action="append", help="only these (default: all)")
    parser.add_argument("--cold", action="store_true", help="a fresh judge and worker for each grading")
    args = parser.parse_args()
    course = config.load(KIT / "grading.yml")
    for assignment in course.assignments:
        if args.assignment and assignment.id not in args.assignment:
            continue
        times = []
        for seed in args.seeds:
            result = runner.grade(course, assignment, course.solution_dir(assignment), seed=seed, warm=not args.cold)
            lost = [f"{t.name} {t.score:g}/{t.max_score:g}" for t in result.tests if t.score < t.max_score]
            times.append(result.execution_time)
            print(f"{assignment.id:<10} seed {seed}: {result.score:g}/{result.max_score:g} in {result.execution_time:5.1f} s"
                  + (f"  lost: {', '.join(lost)}" if lost else "") + ("  GRADER ERRORS" if result.grader_errors else ""),
                  flush=True)
        print(f"{assignment.id:<10} suite time: median {statistics.median(times):.1f} s, max {max(times):.1f} s")


if __name__ == "__main__":
    main()
