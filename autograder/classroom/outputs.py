"""What a batch leaves for the instructor: grades.csv (one row per student), the histograms
of points per test (scores.png), the class table and the summary printed at the end.

A row is ``(name, Result or None, status, reason)`` (``autograder.classroom.batch.Row``);
every student name is written with ``escape.student_name`` (look-alikes stay apart) and every
cell a spreadsheet could read as a formula is quoted.
"""

from __future__ import annotations

import csv
from pathlib import Path

from autograder.escape import look_alike_groups, one_line, spreadsheet_cell, student_name
from autograder.grading.runner import Result


# Appended to grades.csv after the tests' columns: what autograder.classroom.late worked out
LATE_COLUMNS = ["raw_score", "late_penalty", "late_percent", "days_late", "due", "submitted", "timestamp_source"]


def final_score(result: Result, late: dict | None) -> float:
    """The score after the late penalty (the raw score where there is none)."""
    score = (late or {}).get("score")
    return score if isinstance(score, (int, float)) and not isinstance(score, bool) else result.score


def batch_table(rows: list[tuple[str, Result | None, str, str]], late: dict[str, dict] | None = None) -> str:
    """The class at a glance: student, score (after any late penalty), status and the first line of the reason."""
    late = late or {}
    lines = [f"{'student':<24} {'score':>15}  {'status':<13} reason"]
    for student, result, status, reason in rows:
        score = f"{final_score(result, late.get(student)):g} / {result.max_score:g}" if result else "-"
        percent = (late.get(student) or {}).get("penalty_percent") if result else None
        if percent:
            reason = f"late: -{percent:g}%" + (f"; {reason}" if reason else "")
        lines.append(f"{student_name(student, 24):<24} {score:>15}  {status:<13} {one_line(reason, 100)}")
    return "\n".join(lines)


def write_grades_csv(rows: list[tuple[str, Result | None, str, str]], path: Path, test_names: list[str],
                     late: dict[str, dict] | None = None) -> None:
    """One line per student: name, score (after any late penalty), max, status (one word: graded,
    import-error, timeout, memory, grader-error, refused), the first line of the reason, each
    test's points (empty for a test that did not run), then ``LATE_COLUMNS``: the score before
    the penalty, the penalty in points and in percent, started days late, the student's due
    date (their extension included), the submission time and where it was read from."""
    late = late or {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["student", "score", "max_score", "status", "reason", *test_names, *LATE_COLUMNS])
        for student, result, status, reason in rows:
            cells = [spreadsheet_cell(student_name(student)), "0", "", status, spreadsheet_cell(one_line(reason))]
            entry = (late.get(student) or {}) if result is not None else {}
            if result is not None:
                by_name = {t.name: t.score for t in result.tests}
                cells[1:3] = f"{final_score(result, entry):g}", f"{result.max_score:g}"
                cells += [f"{by_name[n]:g}" if n in by_name else "" for n in test_names]
            else:
                cells += [""] * len(test_names)
            cells += [f"{result.score:g}" if result is not None else "",
                      f"{entry['penalty_points']:g}" if "penalty_points" in entry else "",
                      f"{entry['penalty_percent']:g}" if "penalty_percent" in entry else "",
                      str(entry.get("days_late", "")), entry.get("due") or "", entry.get("submitted") or "",
                      entry.get("source") or ""]
            writer.writerow(cells)


# Each status a batch row can have but "graded", by the kind of failure an instructor looks into.
FAILURE_KINDS = {"timeout": "timeout", "memory": "memory", "import-error": "import error",
                 "grader-error": "grader error", "refused": "refused (not a gradable folder)",
                 "not-started": "not started (the released skeleton)"}


def batch_summary(rows: list[tuple[str, Result | None, str, str]], slowest: int = 5) -> str:
    """The slowest students (a hint of where the batch's time went), the failures by kind, and
    names that look alike (``alice`` and ``alice`` with a zero-width space are two folders)."""
    timed = sorted((r.execution_time, name) for name, r, _, _ in rows if r is not None)[::-1][:slowest]
    lines = ["slowest: " + (", ".join(f"{student_name(name, 24)} {seconds:.1f} s" for seconds, name in timed) or "-")]
    counts = {kind: [name for name, _, status, _ in rows if status == kind] for kind in FAILURE_KINDS}
    failures = [f"{label} {len(counts[kind])} ({', '.join(student_name(n, 24) for n in counts[kind][:5])}"
                f"{', ...' if len(counts[kind]) > 5 else ''})" for kind, label in FAILURE_KINDS.items() if counts[kind]]
    lines.append("failures: " + ("; ".join(failures) if failures else "none"))
    for group in look_alike_groups(name for name, _, _, _ in rows):
        lines.append("look-alike names (different folders, check they are different students): "
                     + ", ".join(student_name(n, 40) for n in group))
    return "\n".join(lines)


def score_histograms(rows: list[tuple[str, Result | None, str, str]], test_names: list[str], path: Path) -> None:
    """One panel per test and one for the total: how many students got which points (a PNG)."""
    from matplotlib.figure import Figure  # not pyplot: no global state, no display, Agg by default

    results = [r for _, r, _, _ in rows if r is not None]
    panels = [(name, [t.score for r in results for t in r.tests if t.name == name],
               next((t.max_score for r in results for t in r.tests if t.name == name), 0.0)) for name in test_names]
    panels.append(("total", [r.score for r in results], max((r.max_score for r in results), default=0.0)))
    from matplotlib.ticker import MaxNLocator

    columns = min(4, len(panels))  # a grid, not one strip: a 13-test assignment stays readable
    rows_ = -(-len(panels) // columns)
    figure = Figure(figsize=(3.2 * columns, 2.6 * rows_), layout="constrained")
    grid = figure.subplots(rows_, columns, squeeze=False).ravel()
    for axes, (name, scores, most) in zip(grid, panels):
        axes.hist(scores, bins=10, range=(0, most or 1), color="#4878a8", edgecolor="white")
        axes.set_title(name, fontsize=9)
        axes.set_xlabel(f"points (of {most:g})")
        axes.set_ylabel("students")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    for axes in grid[len(panels):]:
        axes.set_visible(False)
    figure.savefig(path, dpi=80)
