"""Reports of a grading: Gradescope results.json, JUnit XML, the student's feedback.md,
the class's grades.csv and the terminal's score table.

What a student may see (results.json's test outputs, feedback.md, junit.xml for a student's
CI) holds names, points and the one-line messages only: hidden test code and expected
values never reach them, and the tests whose visibility is not yet open are left out,
totals included. Gradescope gets every test with its visibility and hides them itself.
report.md, for the instructor, keeps everything. Student text is escaped for each format
(``autograder.escape``).
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

from autograder.escape import block, look_alike_groups, markdown, one_line, student_name, xml
from autograder.runner import Result

STUDENT_VISIBLE = ("visible",)

# The three states a student and an instructor see (plus the grader's own error).
MARKS = {"passed": "✅ passed", "partial": "🟡 partial", "failed": "❌ failed", "error": "⚠️ grader error"}
TERMINAL = {"passed": "ok  ", "partial": "PART", "failed": "FAIL", "error": "ERR "}


def points_message(test) -> str:
    """A test short of full marks says so, with its points, before what the grader saw."""
    if test.status == "passed":
        return test.message
    return f"{test.score:g} of {test.max_score:g} points" + (f": {test.message}" if test.message else "")


def student_visible(result: Result) -> list:
    """The tests a student may see now (visibility not yet open: left out, totals included)."""
    return [t for t in result.tests if t.visibility in STUDENT_VISIBLE]


def gradescope(result: Result) -> dict:
    """Gradescope's autograder results format (results.json)."""
    tests = []
    for number, test in enumerate(result.tests, 1):
        # The notes go with the test, so Gradescope shows them when it shows the test.
        message = points_message(test)
        output = "\n\n".join(markdown(line) for line in [message] * bool(message) + test.notes)
        entry = {"name": test.name, "number": str(number), "score": test.score, "max_score": test.max_score,
                 "status": "passed" if test.status == "passed" else "failed",
                 "output": output, "output_format": "md", "visibility": test.visibility}
        tests.append(entry)
    shown = student_visible(result)
    held = len(result.tests) - len(shown)
    return {
        "score": result.score,
        "execution_time": round(result.execution_time, 2),
        # the top-level output is shown at once: only the tests already visible count in it
        "output": f"{result.assignment}: {sum(t.score for t in shown):g} / {sum(t.max_score for t in shown):g} "
                  "points on the tests shown" + (f"; {held} more test(s) are released later" if held else "")
                  + "".join(f"\n\n{markdown(notice)}" for notice in result.notices),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def junit(result: Result) -> ET.ElementTree:
    """JUnit XML of the tests a student may see now (a student's CI shows it), totals included."""
    shown = student_visible(result)
    failures = sum(t.status in ("failed", "partial") for t in shown)
    errors = sum(t.status == "error" for t in shown)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(suites, "testsuite", name=result.assignment, tests=str(len(shown)),
                          failures=str(failures), errors=str(errors), skipped="0",
                          time=f"{result.execution_time:.3f}")
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", name="score", value=f"{sum(t.score for t in shown):g}")
    ET.SubElement(properties, "property", name="max_score", value=f"{sum(t.max_score for t in shown):g}")
    ET.SubElement(properties, "property", name="seed", value=str(result.seed))
    for test in shown:
        case = ET.SubElement(suite, "testcase", classname=result.assignment, name=test.name,
                             time=f"{test.duration:.3f}")
        case_properties = ET.SubElement(case, "properties")
        ET.SubElement(case_properties, "property", name="score", value=f"{test.score:g}")
        ET.SubElement(case_properties, "property", name="max_score", value=f"{test.max_score:g}")
        message = xml(one_line(points_message(test)))
        if test.status in ("failed", "partial"):
            ET.SubElement(case, "failure", message=message, type=test.status).text = message
        elif test.status == "error":
            ET.SubElement(case, "error", message=message, type="grader_error").text = message
    ET.indent(suites)
    return ET.ElementTree(suites)


def feedback_markdown(result: Result, instructor: bool = False) -> str:
    """The student's feedback (visible tests only), or with ``instructor`` every test."""
    shown = result.tests if instructor else student_visible(result)
    held = [] if instructor else [t for t in result.tests if t.visibility not in STUDENT_VISIBLE]
    title = "Instructor report" if instructor else "Feedback"
    lines = [f"# {title}: {result.assignment}", ""]
    if held:
        lines += [f"**{sum(t.score for t in shown):g} / {sum(t.max_score for t in shown):g}** points on the tests "
                  f"shown here; {len(held)} more test(s) worth {sum(t.max_score for t in held):g} points are "
                  "not shown (hidden, or released after the due date).", ""]
    else:
        lines += [f"**{result.score:g} / {result.max_score:g}** points", ""]
    lines += [f"> {markdown(notice)}" for notice in result.notices] + [""] * bool(result.notices)
    lines += ["| | test | points | what the grader saw |", "|---|---|---|---|"]
    for t in shown:
        message = markdown(t.message or "")
        lines.append(f"| {MARKS.get(t.status, '')} | `{t.name}` | {t.score:g} / {t.max_score:g} | {message} |")
    counts = {state: sum(t.status == state for t in shown) for state in MARKS}
    lines += ["", ", ".join(f"{n} {state}" for state, n in counts.items() if n) + "."]
    pictures = [(t, a) for t in shown for a in t.artifacts]
    notes = [(t, n) for t in shown for n in t.notes]
    if notes:
        lines += ["", "## Notes", ""] + [f"- `{t.name}`: {markdown(n)}" for t, n in notes]
    if pictures:
        lines += ["", "## Pictures", ""] + [f"![{a}]({a})" for _, a in pictures]
    if instructor:
        lines += ["", f"Submission {markdown(result.submission)}, seed {result.seed}, {result.execution_time:.1f} s."]
        if result.isolation:
            lines += ["", "## Isolation", "", "The layers the submission's code ran under "
                      "(`autograder doctor` explains a missing one):", "", "| layer | state |", "|---|---|"]
            lines += [f"| {layer} | {state.replace('|', '/')} |" for layer, state in result.isolation.items()]
        if result.grader_errors:
            lines += ["", "## Grader errors", "", "```", *map(block, result.grader_errors), "```"]
    return "\n".join(lines) + "\n"


def write(result: Result, out: Path) -> None:
    """results.json, junit.xml, feedback.md (the student's) and report.md (the instructor's:
    every test, note and picture) into ``out``; the pictures are already there."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(gradescope(result), indent=2) + "\n")
    junit(result).write(out / "junit.xml", encoding="utf-8", xml_declaration=True)
    (out / "feedback.md").write_text(feedback_markdown(result), encoding="utf-8")
    (out / "report.md").write_text(feedback_markdown(result, instructor=True), encoding="utf-8")
    if result.grader_errors:
        (out / "grader-errors.txt").write_text("\n\n".join(result.grader_errors) + "\n")


def table(results: list[Result], with_tests: bool = True) -> str:
    """The score table printed by the CLI."""
    lines = []
    for r in results:
        lines.append(f"{r.assignment:<14} {r.score:>7g} / {r.max_score:<5g}  ({r.execution_time:.1f} s)  "
                     f"{one_line(r.submission)}")
        if with_tests:
            for t in r.tests:
                status = TERMINAL[t.status]
                message = f"  {t.message}" if t.message and t.status != "passed" else ""
                lines.append(f"    {status} {t.name:<40} {t.score:>6g} / {t.max_score:<4g}{message[:150]}")
    if len(results) > 1:
        total = sum(r.score for r in results)
        most = sum(r.max_score for r in results)
        lines.append(f"{'total':<14} {total:>7g} / {most:<5g}")
    return "\n".join(lines)


def batch_table(rows: list[tuple[str, Result | None, str, str]]) -> str:
    """The class at a glance: student, score, status and the first line of the reason."""
    lines = [f"{'student':<24} {'score':>15}  {'status':<13} reason"]
    for student, result, status, reason in rows:
        score = f"{result.score:g} / {result.max_score:g}" if result else "-"
        lines.append(f"{student_name(student, 24):<24} {score:>15}  {status:<13} {one_line(reason, 100)}")
    return "\n".join(lines)


def spreadsheet_cell(text: str) -> str:
    """A cell a spreadsheet shows as text: student text that starts like a formula is quoted."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_grades_csv(rows: list[tuple[str, Result | None, str, str]], path: Path, test_names: list[str]) -> None:
    """One line per student: name, score, max, status (one word: graded, import-error, timeout,
    memory, grader-error, refused), the first line of the reason, then each test's points
    (empty for a test that did not run)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["student", "score", "max_score", "status", "reason", *test_names])
        for student, result, status, reason in rows:
            cells = [spreadsheet_cell(student_name(student)), "0", "", status, spreadsheet_cell(one_line(reason))]
            if result is not None:
                by_name = {t.name: t.score for t in result.tests}
                cells[1:3] = f"{result.score:g}", f"{result.max_score:g}"
                cells += [f"{by_name[n]:g}" if n in by_name else "" for n in test_names]
            else:
                cells += [""] * len(test_names)
            writer.writerow(cells)


# Each status a batch row can have but "graded", by the kind of failure an instructor looks into.
FAILURE_KINDS = {"timeout": "timeout", "memory": "memory", "import-error": "import error",
                 "grader-error": "grader error", "refused": "refused (not a gradable folder)"}


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
