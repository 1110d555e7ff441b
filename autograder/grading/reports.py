"""Reports of one grading: Gradescope results.json, JUnit XML, the student's feedback.md,
the instructor's report.md and the terminal's score table (a class's outputs are
``autograder.classroom.outputs``).

What a student may see (results.json's test outputs, feedback.md, junit.xml for a student's
CI) holds names, points and the one-line messages only: hidden test code and expected
values never reach them, and the tests whose visibility is not yet open are left out,
totals included. Gradescope gets every test with its visibility and hides them itself.
report.md, for the instructor, keeps everything. Student text is escaped for each format
(``autograder.escape``).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from autograder.escape import block, markdown, one_line, xml
from autograder.grading.runner import NOT_STARTED, Result, not_started

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
    notices = ([NOT_STARTED[:1].upper() + NOT_STARTED[1:] + ": write the functions the handout describes, "
                "then run the checks again"] if not_started(result) else []) + result.notices
    lines += [f"> {markdown(notice)}" for notice in notices] + [""] * bool(notices)
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
                     f"{one_line(r.submission)}" + ("  (not started)" if not_started(r) else ""))
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
