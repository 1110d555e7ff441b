"""Mutation score of the hidden suites: every bug of tests/bugbank/ under several grader seeds.

    python benchmarks/mutation_score.py [--seeds 0 1 2 3 4] [--assignment vae] [--bug NAME]
                                        [--kind KIND] [--jobs 2] [--json scores.json]

Each bug is planted in the reference solution and graded on the test named for it (the
test's parametrised cases included), once per seed. A bug is *killed* when that test loses
points at every seed; a (bug, seed) pair is killed when it loses points at that seed.
Prints the score per assignment, per test and per kind of weakness, then every bug that
survived at some seed. Asserts nothing: the quality bar is 95 % of bugs killed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(KIT))  # tests.bugbank

from autograder import config  # noqa: E402
from autograder.grading import runner
from tests.bugbank import KINDS, SEEDS, apply, bugs_of  # noqa: E402


def grade_one(course, assignment, bug, seed: int, scratch: Path) -> dict:
    """One bug at one seed: did its named test lose points? (A grading that could not run
    is a row with a grader error, never the end of the whole benchmark.)"""
    try:
        folder = apply(bug, course.solution_dir(assignment), scratch / f"{assignment.id}-{bug.name}-seed{seed}")
        result = runner.grade(course, assignment, folder, only=[bug.test], seed=seed, warm=True)  # a batch
    except Exception as error:  # noqa: BLE001 -- reported with the survivors
        return {"assignment": assignment.id, "bug": bug.name, "test": bug.test, "kind": bug.kind or "formula",
                "seed": seed, "score": 0, "max_score": 0, "killed": False,
                "grader_errors": [f"{type(error).__name__}: {error}"], "seconds": 0.0}
    tests = [t for t in result.tests if t.name == bug.test]
    score = sum(t.score for t in tests)
    max_score = sum(t.max_score for t in tests)
    return {"assignment": assignment.id, "bug": bug.name, "test": bug.test, "kind": bug.kind or "formula",
            "seed": seed, "score": score, "max_score": max_score, "killed": bool(tests) and score < max_score,
            "grader_errors": result.grader_errors, "seconds": result.execution_time}


def percent(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.0f}%)" if whole else "0/0"


def summarise(rows: list[dict], seeds: list[int]) -> None:
    by_bug: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        by_bug[(row["assignment"], row["bug"])].append(row)
    killed_bug = {key: all(r["killed"] for r in runs) for key, runs in by_bug.items()}

    def table(title: str, group) -> None:
        print(f"\n{title}")
        groups: dict[str, list[tuple]] = defaultdict(list)
        for key, runs in by_bug.items():
            groups[group(key, runs[0])].append(key)
        for name in sorted(groups):
            keys = groups[name]
            pairs = [r for k in keys for r in by_bug[k]]
            print(f"  {name:<44} bugs killed at every seed {percent(sum(killed_bug[k] for k in keys), len(keys)):>14}"
                  f"   (bug, seed) pairs {percent(sum(r['killed'] for r in pairs), len(pairs)):>16}")

    print(f"Mutation score at grader seeds {seeds}: a bug is killed when its test loses points at every seed.")
    table("per assignment", lambda key, row: key[0])
    table("per test", lambda key, row: f"{key[0]}::{row['test']}")
    table("per kind of weakness", lambda key, row: row["kind"])
    survivors = [(key, runs) for key, runs in sorted(by_bug.items()) if not killed_bug[key]]
    print(f"\nsurvivors ({len(survivors)}):" if survivors else "\nno survivors")
    for (assignment, bug), runs in survivors:
        kept = [r["seed"] for r in runs if not r["killed"]]
        errors = [r["seed"] for r in runs if r["grader_errors"]]
        print(f"  {assignment}/{bug} on {runs[0]['test']}: full marks at seed(s) {kept}"
              + (f"; grader errors at {errors}" if errors else ""))
    errors = [r for r in rows if r["grader_errors"]]
    if errors:
        print(f"\n{len(errors)} grading(s) had grader errors, e.g. {errors[0]['bug']}: {errors[0]['grader_errors'][0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--assignment", action="append", help="only these assignments (default: every bank)")
    parser.add_argument("--bug", action="append", help="only these bugs (by name)")
    parser.add_argument("--kind", action="append", choices=sorted(KINDS) + ["formula"], help="only bugs of these kinds")
    parser.add_argument("--jobs", type=int, default=2, help="gradings at once (each worker uses one torch thread)")
    parser.add_argument("--json", type=Path, default=None, help="also write every (bug, seed) outcome here")
    args = parser.parse_args()

    course = config.load(KIT / "grading.yml")
    work = []
    for assignment in course.assignments:
        if args.assignment and assignment.id not in args.assignment:
            continue
        for bug in bugs_of(assignment.id):
            if args.bug and bug.name not in args.bug:
                continue
            if args.kind and (bug.kind or "formula") not in args.kind:
                continue
            work += [(assignment, bug, seed) for seed in args.seeds]
    if not work:
        parser.error("no bug matches the selection")

    rows, started = [], time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch, ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(grade_one, course, a, b, s, Path(scratch)) for a, b, s in work]
        for done, future in enumerate(as_completed(futures), start=1):
            row = future.result()
            rows.append(row)
            verdict = "killed" if row["killed"] else ("ERROR" if row["grader_errors"] else "SURVIVED")
            print(f"[{done}/{len(work)} {time.monotonic() - started:6.0f} s] {row['assignment']}/{row['bug']} "
                  f"seed {row['seed']}: {row['score']:g}/{row['max_score']:g} {verdict}", file=sys.stderr, flush=True)
    summarise(rows, args.seeds)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
