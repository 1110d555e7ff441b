"""The class report: ``OUT/index.html``, one page of a graded class an instructor opens in a
browser, with a page per student and per similar pair under ``OUT/report/``.

    write(out, rows, assignment, tests, folders=...) -> {student: why their page is missing}

Static files only: inline CSS, inline SVG, a few lines of plain JavaScript (sorting and
filtering the class table), no framework, nothing fetched. The pages work opened from the
file system, from an unpacked zip or from a CI artifact: every link is relative and stays
inside ``OUT``.

What is on it: the score distribution, each test's pass / partial / fail rates and its most
common failure message, item statistics (mean, spread, corrected item-total correlation and
the upper-minus-lower difference, see :func:`item_statistics`), failures by kind, the slowest
students, the class table, the similarity step's pairs (side by side, matching lines marked),
its runtime-code flags and look-alike names. A student's page has their tests with messages,
their pictures (the PNGs their grading left in ``OUT/students/NAME``), their feedback and the
instructor's report. Fields a row's record may carry about lateness (``late``, ``penalty``,
``raw_score``...) are shown where present.

Everything is built from what the batch has at its end: the rows (read back from the records,
so a resumed or Dask batch gets the same page), the records and the CSV files of ``OUT``.
Every student-controlled string (names, messages, file contents) is escaped with
``html.escape(..., quote=True)``; no student HTML or script is ever included, and the
Content-Security-Policy of each page lets only the kit's own script run (by its hash).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import math
import os
import statistics
import tempfile
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from autograder.classroom.batch import RECORDS, STUDENTS, read_record, report_folder
from autograder.classroom.outputs import FAILURE_KINDS
from autograder.config import Assignment
from autograder.escape import block, look_alike_groups, one_line, path_text, spreadsheet_cell, student_name

INDEX = "index.html"
REPORT = "report"              # OUT/report: the student and pair pages, named by the kit only
LATE_FIELDS = ("late", "days_late", "penalty", "raw_score", "due")   # flat fields a row may carry
MAX_SHOWN = 200_000            # characters of a student's file or report shown on a page
MAX_LINES = 4000               # lines of a student's file shown side by side
CLASS_FILES = (("grades", "grades.csv"), ("points per test", "scores.png"), ("similar pairs", "similar.csv"),
               ("code built at run time", "runtime_code.csv"))
GROUP = 0.27                   # the upper and lower groups of the upper-minus-lower difference

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:75em;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:.2em .5em;text-align:left;
vertical-align:top}th{background:#f4f4f4}table.sortable th{cursor:pointer}td.n{text-align:right}td.n,td.nw{white-space:nowrap}
.passed{color:#1a7f37}.partial{color:#9a6700}.failed,.error{color:#cf222e}.flag{color:#cf222e;font-weight:bold}
.muted{color:#777}.grid{display:flex;flex-wrap:wrap;gap:1.5em}
pre{background:#f6f8fa;padding:.5em;overflow:auto;max-height:40em;font-size:12px}
.pair{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:1em}.pair pre{max-height:none}
.line{display:block;min-height:1.2em}.hit{background:#fff3b0}
.ln{color:#999;user-select:none;display:inline-block;width:3.5em}
figure{display:inline-block;margin:.5em}figure img{max-width:28em;border:1px solid #ddd}
input,select{font:inherit;margin-right:1em}.wide{overflow-x:auto}
"""

# Sorting (click a column's head) and filtering (text and status) of the class table.
_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, column) {
    th.addEventListener("click", function () {
      var up = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(heads, function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      var rows = Array.prototype.slice.call(table.tBodies[0].rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-v"), y = b.cells[column].getAttribute("data-v");
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = !isNaN(nx) && !isNaN(ny) ? nx - ny : String(x).localeCompare(String(y));
        return up ? order : -order;
      });
      rows.forEach(function (row) { table.tBodies[0].appendChild(row); });
    });
  });
});
var text = document.getElementById("filter"), state = document.getElementById("status");
function filter() {
  var words = text.value.toLowerCase(), wanted = state.value;
  document.querySelectorAll("#students tbody tr").forEach(function (row) {
    row.hidden = !(row.textContent.toLowerCase().indexOf(words) >= 0
                   && (!wanted || row.getAttribute("data-status") === wanted));
  });
}
if (text) { text.addEventListener("input", filter); state.addEventListener("change", filter); }
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()


def h(text) -> str:
    """Any text made safe inside an HTML element or a quoted attribute."""
    return html.escape(str(text), quote=True)


def name_html(name: str, limit: int = 300) -> str:
    """A student's name as HTML: ``escape.student_name`` (invisible characters and bytes that
    are not UTF-8 written as escapes), then escaped."""
    return h(student_name(name, limit))


def message_html(text, limit: int = 300) -> str:
    return h(one_line("" if text is None else text, limit))


def page_name(student: str) -> str:
    """A student's page, ``OUT/report/s-<hash>.html``: a name of fixed length that no folder
    name can make too long, collide or climb out of the report's folder."""
    return "s-" + hashlib.sha256(student.encode("utf-8", "surrogateescape")).hexdigest()[:20] + ".html"


def student_href(out: Path, student: str, *parts: str) -> str | None:
    """A relative link from a page in ``OUT/report`` to a regular file the student's grading
    left in ``OUT/students/NAME``, percent-encoded; None for anything missing, a link, or a path
    that would leave that folder."""
    if any(part in ("", ".", "..") or "/" in part or "\0" in part for part in (student, *parts)):
        return None
    folder = report_folder(out, student)
    path = folder.joinpath(*parts)
    try:
        if any(p.is_symlink() for p in [folder, *(folder.joinpath(*parts[:i + 1]) for i in range(len(parts)))]):
            return None
        if not path.is_file() or not path.resolve().is_relative_to(folder.resolve()):
            return None
        if not folder.resolve().is_relative_to(Path(out).resolve()):
            return None
    except (OSError, ValueError):
        return None
    return "../" + "/".join(quote(os.fsencode(p), safe="") for p in (STUDENTS, student, *parts))


# --------------------------------------------------------------------------- statistics


@dataclass
class ItemStats:
    """One test across the class. ``mean`` and ``sd`` in points over the ``n`` students whose
    grading ran it; ``correlation`` is the corrected item-total correlation (the test's points
    against the rest of the total, Pearson's r: the point-biserial for a pass/fail test);
    ``upper_lower`` the mean fraction of the test's points in the upper group by rest score
    minus that in the lower group (27 % each); None where it is undefined."""
    test: str
    max_points: float
    n: int = 0
    mean: float = 0.0
    sd: float = 0.0
    passed: int = 0
    partial: int = 0
    failed: int = 0
    not_run: int = 0
    correlation: float | None = None
    upper_lower: float | None = None
    flags: list[str] = field(default_factory=list)


def _pearson(xs: list[float], ys: list[float]) -> float | None:
    if len(xs) < 2:
        return None
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx, syy = sum((x - mx) ** 2 for x in xs), sum((y - my) ** 2 for y in ys)
    if sxx <= 1e-12 or syy <= 1e-12:
        return None
    return sxy / math.sqrt(sxx * syy)


def item_statistics(rows, tests: list[str], points: dict[str, float] | None = None) -> list[ItemStats]:
    """Per test: how many passed, partly passed, failed or did not run it (over every row), and
    over the students whose grading ran it the mean and spread of its points and how well it
    tells strong submissions from weak ones. A test everybody passes, or nobody, is flagged."""
    results = [(row[0], row[1]) for row in rows if row[1] is not None]
    stats = []
    for test in tests:
        found = [(name, r, next((t for t in r.tests if t.name == test), None)) for name, r in results]
        ran = [(name, r, t) for name, r, t in found if t is not None]
        most = (points or {}).get(test) or max((t.max_score for _, _, t in ran), default=0.0)
        item = ItemStats(test, float(most), n=len(ran))
        item.passed = sum(t.status == "passed" for _, _, t in ran)
        item.partial = sum(t.status == "partial" for _, _, t in ran)
        item.failed = len(ran) - item.passed - item.partial
        item.not_run = len(rows) - len(ran)
        if ran:
            scores = [t.score for _, _, t in ran]
            rest = [r.score - t.score for _, r, t in ran]
            item.mean, item.sd = statistics.fmean(scores), statistics.pstdev(scores)
            item.correlation = _pearson(scores, rest)
            if len(ran) >= 2 and most > 0:
                ordered = sorted(zip(rest, scores, (name for name, _, _ in ran)))
                size = max(1, round(GROUP * len(ordered)))
                lower, upper = ordered[:size], ordered[-size:]
                item.upper_lower = (statistics.fmean(s for _, s, _ in upper)
                                    - statistics.fmean(s for _, s, _ in lower)) / most
            if item.passed == len(ran):
                item.flags.append("everybody passes: it tells no one apart")
            elif item.passed == 0:
                item.flags.append("nobody passes: check the test and the handout")
            if item.correlation is not None and item.correlation < 0:
                item.flags.append("negative discrimination: weaker submissions do better on it")
        stats.append(item)
    return stats


def common_failures(rows, tests: list[str]) -> dict[str, tuple[str, int, int]]:
    """Per test with a failure: (the most common message, how many students got it, how many
    did not pass it)."""
    found = {}
    for test in tests:
        messages = Counter(one_line(t.message or t.status, 200) for row in rows if row[1] is not None
                           for t in row[1].tests if t.name == test and t.status != "passed")
        if messages:
            message, count = sorted(messages.items(), key=lambda kv: (-kv[1], kv[0]))[0]
            found[test] = (message, count, sum(messages.values()))
    return found


@dataclass
class Lateness:
    """What a row and its record say about lateness: a short text for the class table (empty:
    nothing to show), the score after a penalty (None: none), the days late (for sorting), and
    every field for the student's page."""
    text: str = ""
    score: float | None = None
    days: float = 0.0
    fields: dict = field(default_factory=dict)


def _float(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def lateness(row, record: dict | None) -> Lateness:
    """From the record's ``late`` entry (a mapping: ``submitted``, ``due``, ``days_late``,
    ``penalty_percent``, ``raw_score``, ``score``...), or flat fields (``late``, ``penalty``,
    ``raw_score``...) of the record, of the result or of a mapping carried as the row's fifth
    element; nothing is required."""
    record = record if isinstance(record, dict) else {}
    entry = record.get("late")
    if isinstance(entry, dict) and row[1] is not None:
        fields_ = {k: v for k, v in entry.items() if v is not None and v != "" and v != [] and v != {}}
        if not entry.get("due"):   # no due date: nothing is late, only when it was handed in
            return Lateness(fields={k: v for k, v in fields_.items() if k in ("submitted", "source", "notes")})
        days, percent = _float(entry.get("days_late")) or 0.0, _float(entry.get("penalty_percent")) or 0.0
        if not entry.get("late_by_seconds"):
            text = "on time"
        elif percent:
            raw, after = _float(entry.get("raw_score")), _float(entry.get("score"))
            text = f"{days:g} d late: −{percent:g} %" + (f" ({raw:g} → {after:g})" if raw is not None
                                                        and after is not None else "")
        else:
            text = f"{days:g} d late, no penalty"
        return Lateness(text, _float(entry.get("score")), days, fields_)
    found: dict[str, object] = {}
    nested = record.get("result") if isinstance(record.get("result"), dict) else {}
    for source in (nested, record, row[4] if len(row) > 4 and isinstance(row[4], dict) else {}):
        found.update({k: source[k] for k in LATE_FIELDS if source.get(k) not in (None, "")})
    for key in LATE_FIELDS:
        value = getattr(row[1], key, None) if row[1] is not None else None
        if value not in (None, "") and key not in found:
            found[key] = value
    if not found:
        return Lateness()
    parts = []
    for key, value in found.items():
        if key == "late" and isinstance(value, bool):
            parts.append("late" if value else "on time")
        elif _float(value) is not None:
            parts.append(f"{key.replace('_', ' ')} {_float(value):g}")
        else:
            parts.append(f"{key.replace('_', ' ')} {one_line(value, 80)}")
    days = _float(found.get("days_late")) or (1.0 if found.get("late") is True else 0.0)
    return Lateness(", ".join(parts), None, days, found)


# --------------------------------------------------------------------------- pictures


def histogram_svg(values: list[float], most: float, bins: int = 10, label: str = "points") -> str:
    """An inline SVG histogram of ``values`` over [0, most]."""
    width, height, left, bottom = 460, 170, 34, 30
    most = most or max(values, default=0.0) or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, max(0, int(value / most * bins)))] += 1
    top = max(counts, default=0) or 1
    step = (width - left - 10) / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="histogram of {h(label)}">',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#999"/>']
    for i, count in enumerate(counts):
        bar = (height - bottom - 12) * count / top
        x, y = left + i * step, height - bottom - bar
        low, high = most * i / bins, most * (i + 1) / bins
        parts.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{step - 2:.1f}" height="{bar:.1f}" fill="#4878a8">'
                     f'<title>{low:g} to {high:g} {h(label)}: {count} student(s)</title></rect>')
        if count:
            parts.append(f'<text x="{x + step / 2:.1f}" y="{y - 2:.1f}" font-size="10" text-anchor="middle">{count}</text>')
    for i in range(0, bins + 1, 2):
        parts.append(f'<text x="{left + i * step:.1f}" y="{height - bottom + 14}" font-size="10" '
                     f'text-anchor="middle">{most * i / bins:g}</text>')
    parts.append(f'<text x="{(width + left) / 2:.0f}" y="{height - 3}" font-size="11" text-anchor="middle">'
                 f'{h(label)} (of {most:g})</text>')
    parts.append(f'<text x="10" y="{(height - bottom) / 2:.0f}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 10 {(height - bottom) / 2:.0f})">students</text></svg>')
    return "".join(parts)


def rates_svg(item: ItemStats) -> str:
    """One stacked bar: passed, partial, failed, not run."""
    total = item.passed + item.partial + item.failed + item.not_run or 1
    parts, x = ['<svg xmlns="http://www.w3.org/2000/svg" width="160" height="14" role="img" '
                'aria-label="pass, partial and fail rates">'], 0.0
    for count, colour, what in ((item.passed, "#2da44e", "passed"), (item.partial, "#d4a72c", "partial"),
                                (item.failed, "#cf222e", "failed"), (item.not_run, "#bbb", "not run")):
        width = 160 * count / total
        if width:
            parts.append(f'<rect x="{x:.1f}" y="0" width="{width:.1f}" height="14" fill="{colour}">'
                         f'<title>{what}: {count}</title></rect>')
        x += width
    return "".join(parts) + "</svg>"


# --------------------------------------------------------------------------- similarity


@dataclass
class SimilarPair:
    a: str                  # the students' names, as in the rows where they could be matched
    b: str
    similarity: str
    grounds: str
    lines_a: str
    lines_b: str


def _shown_names(names) -> dict[str, str]:
    """similar.csv's and runtime_code.csv's student cells back to the rows' names."""
    found: dict[str, str] = {}
    for name in names:
        found.setdefault(spreadsheet_cell(student_name(name)), name)
    return found


def _read_csv(path: Path) -> list[dict]:
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as source:
            return list(csv.DictReader(source))
    except OSError:
        return []


def similar_pairs(out: Path, names) -> list[SimilarPair]:
    shown = _shown_names(names)
    return [SimilarPair(shown.get(r.get("student_a", ""), r.get("student_a", "")),
                        shown.get(r.get("student_b", ""), r.get("student_b", "")), r.get("similarity", ""),
                        r.get("grounds", ""), r.get("lines_a", ""), r.get("lines_b", ""))
            for r in _read_csv(Path(out) / "similar.csv")]


def runtime_flags(out: Path, names) -> list[tuple[str, str, str, str]]:
    shown = _shown_names(names)
    return [(shown.get(r.get("student", ""), r.get("student", "")), r.get("file", ""), r.get("line", ""),
             r.get("what", "")) for r in _read_csv(Path(out) / "runtime_code.csv")]


def line_spans(spans: str, files: list[str]) -> dict[str, set[int]]:
    """similar.csv's lines ('mini.py 3-9, 12; other.py 4') as {file: {3, ..., 9, 12}}."""
    found: dict[str, set[int]] = {}
    for part in filter(None, (p.strip() for p in spans.split(";"))):
        file = next((f for f in sorted(files, key=len, reverse=True) if part.startswith(f + " ")), None)
        if file is None:
            file, _, ranges = part.rpartition(" ")
        else:
            ranges = part[len(file) + 1:]
        for piece in ranges.split(","):
            low, _, high = piece.strip().partition("-")
            try:
                a, b = int(low), int(high or low)
            except ValueError:
                continue
            found.setdefault(file, set()).update(range(a, min(b, a + MAX_LINES) + 1))
    return found


def _source(folder: Path | None, file: str) -> str | None:
    """A submission's file as the similarity step read it (a notebook: its graded module)."""
    if folder is None:
        return None
    from autograder.classroom import similarity

    path = Path(folder) / file
    data = similarity._read(path, similarity.MAX_SOURCE) or similarity._from_notebook(path.with_suffix(".ipynb"))
    return data[:similarity.MAX_SOURCE].decode("utf-8", "replace") if data else None


def _visible(text: str) -> str:
    """A line of a student's file with every control or format character (bidirectional
    overrides included) shown as an escape, then escaped for HTML."""
    return h("".join(ch if ch == "\t" or unicodedata.category(ch)[0] != "C" else f"\\u{ord(ch):04x}"
                     for ch in text))


def code_html(source: str | None, marked: set[int]) -> str:
    if source is None:
        return '<p class="muted">not available (the file is missing, or the student\'s folder was not given)</p>'
    lines = source[:MAX_SHOWN].splitlines()
    shown = []
    for number, line in enumerate(lines[:MAX_LINES], start=1):
        hit = " hit" if number in marked else ""
        shown.append(f'<span class="line{hit}"><span class="ln">{number}</span>{_visible(line)}</span>')
    more = f"… {len(lines) - MAX_LINES} more line(s)" if len(lines) > MAX_LINES else ""
    return "<pre>" + "".join(shown) + more + "</pre>"


# --------------------------------------------------------------------------- pages


def _page(title: str, body: str, script: bool = False) -> str:
    scripts = f"'sha256-{_SCRIPT_HASH}'" if script else "'none'"
    policy = (f"default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; script-src {scripts}; "
              "base-uri 'none'; form-action 'none'")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
            '<meta name="referrer" content="no-referrer">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title><style>{_STYLE}</style></head>\n<body>\n{body}\n"
            + (f"<script>{_SCRIPT}</script>" if script else "") + "</body></html>\n")


def _write(path: Path, text: str) -> None:
    """Written whole or not at all (a temporary file renamed into place)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as target:
            target.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _points(value: float) -> str:
    return f"{value:g}"


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _read_text(out: Path, student: str, name: str) -> str | None:
    if student_href(out, student, name) is None:
        return None
    try:
        with open(report_folder(out, student) / name, encoding="utf-8", errors="replace") as source:
            return source.read(MAX_SHOWN)
    except OSError:
        return None


def _student_page(out: Path, row, record: dict | None, assignment: Assignment, tests: list[str],
                  pairs: list[tuple[int, SimilarPair]], runtime: list[tuple[str, str, str, str]],
                  look_alikes: list[str]) -> str:
    name, result, status, reason = row[:4]
    title = f"{name_html(name, 80)}: {h(assignment.id)}"
    body = ['<p><a href="../index.html">← the class</a></p>', f"<h1>{name_html(name)}</h1>"]
    late = lateness(row, record)
    final = late.score if late.score is not None else result.score if result else None
    score = f"{_points(final)} / {_points(result.max_score)}" if result else "–"
    facts = [("score", h(score)), ("status", f'<span class="{h(status)}">{h(status)}</span>')]
    if reason:
        facts.append(("reason", message_html(reason, 1000)))
    if late.text:
        facts.append(("late", h(late.text)))
    if late.fields:
        facts.append(("submission time", "<br>".join(
            f"{h(k.replace('_', ' '))}: "
            + message_html("; ".join(map(str, v)) if isinstance(v, (list, tuple)) else v, 200)
            for k, v in late.fields.items())))
    if result:
        facts.append(("time", f"{result.execution_time:.1f} s, seed {result.seed}"))
    if look_alikes:
        facts.append(("look-alike names", '<span class="flag">' + ", ".join(name_html(n, 80) for n in look_alikes)
                      + "</span> (different folders: check they are different students)"))
    body.append("<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in facts) + "</table>")
    if result is None:
        body.append('<p class="muted">No grading result: nothing of this submission was graded.</p>')
    else:
        if result.notices:
            body.append("<ul>" + "".join(f"<li>{message_html(n)}</li>" for n in result.notices) + "</ul>")
        body.append("<h2>Tests</h2><table><thead><tr><th>test</th><th>visibility</th><th>status</th><th>points</th>"
                    "<th>what the grader saw</th></tr></thead><tbody>")
        by_name = {t.name: t for t in result.tests}
        for test in tests + [t.name for t in result.tests if t.name not in tests]:
            t = by_name.get(test)
            if t is None:
                body.append(f'<tr><td>{h(test)}</td><td></td><td class="muted">not run</td><td></td><td></td></tr>')
                continue
            notes = "".join(f'<br><span class="muted">note: {message_html(n)}</span>' for n in t.notes)
            detail = f"<details><summary>detail</summary><pre>{h(block(t.detail))}</pre></details>" if t.detail else ""
            body.append(f'<tr><td>{h(t.name)}</td><td>{h(t.visibility)}</td><td class="{h(t.status)}">{h(t.status)}</td>'
                        f'<td class="n">{_points(t.score)} / {_points(t.max_score)}</td>'
                        f"<td>{message_html(t.message)}{notes}{detail}</td></tr>")
        body.append("</tbody></table>")
        figures = []
        for t in result.tests:
            for artifact in t.artifacts:
                href = student_href(out, name, *Path(str(artifact)).parts)
                if href is not None:
                    figures.append(f'<figure><a href="{h(href)}"><img src="{h(href)}" alt="{h(path_text(artifact))}">'
                                   f"</a><figcaption>{h(t.name)}: {h(path_text(artifact))}</figcaption></figure>")
        if figures:
            body.append("<h2>Pictures</h2>" + "".join(figures))
        if result.grader_errors:
            body.append("<h2>Grader errors</h2>" + "".join(f"<pre>{h(block(e))}</pre>" for e in result.grader_errors))
        if result.isolation:
            body.append("<h2>Isolation</h2><table>" + "".join(
                f"<tr><th>{h(layer)}</th><td>{message_html(state)}</td></tr>" for layer, state in result.isolation.items())
                + "</table>")
    if pairs or runtime:
        body.append("<h2>Similarity</h2><ul>")
        for index, pair in pairs:
            other = pair.b if pair.a == name else pair.a
            body.append(f'<li><a href="pair-{index}.html">similar to {name_html(other, 80)}</a> '
                        f"({h(pair.similarity)}, {h(pair.grounds)})</li>")
        for _, file, line, what in runtime:
            body.append(f'<li class="flag">runs code built at run time: {h(file)} line {h(line)}: {h(what)}</li>')
        body.append("</ul>")
    for file, heading in (("feedback.md", "Feedback (what the student sees)"), ("report.md", "Instructor's report")):
        text = _read_text(out, name, file)
        if text is not None:
            href = student_href(out, name, file)
            body.append(f'<h2>{heading}</h2><p><a href="{h(href)}">{h(file)}</a></p>'
                        f"<details><summary>show</summary><pre>{_visible_block(text)}</pre></details>")
    return _page(title, "\n".join(body))


def _visible_block(text: str) -> str:
    return "\n".join(_visible(line) for line in text.splitlines())


def _pair_page(pair: SimilarPair, files: list[str], folders: dict) -> str:
    marked_a, marked_b = line_spans(pair.lines_a, files), line_spans(pair.lines_b, files)
    shown = list(dict.fromkeys([*files, *marked_a, *marked_b]))
    body = ['<p><a href="../index.html#similarity">← the class</a></p>',
            f"<h1>{name_html(pair.a, 80)} and {name_html(pair.b, 80)}</h1>",
            f"<p>similarity {h(pair.similarity)}: {h(pair.grounds)}. Marked: the lines their shared fingerprints "
            "start on. A pointer for a human to read both, not a verdict of copying.</p>"]
    for file in shown:
        body.append(f"<h2>{h(file)}</h2><div class=\"pair\">")
        for student, marked in ((pair.a, marked_a), (pair.b, marked_b)):
            source = _source(folders.get(student), file)
            body.append(f"<div><h3>{name_html(student, 80)}</h3>{code_html(source, marked.get(file, set()))}</div>")
        body.append("</div>")
    return _page(f"{name_html(pair.a, 40)} and {name_html(pair.b, 40)}", "\n".join(body))


def _index_page(out: Path, rows, assignment: Assignment, tests: list[str], records: dict,
                pairs: list[SimilarPair], runtime, groups: list[list[str]], unwritten: dict) -> str:
    points = {name: entry.points for name, entry in assignment.tests.items()}
    results = [row[1] for row in rows if row[1] is not None]
    most = sum(points.get(t, 0.0) for t in tests) or max((r.max_score for r in results), default=0.0)
    items = item_statistics(rows, tests, points)
    failures = common_failures(rows, tests)
    late = {row[0]: lateness(row, records.get(row[0])) for row in rows}
    with_late = any(entry.text for entry in late.values())
    link = {row[0]: "report/" + quote(page_name(row[0])) for row in rows}

    def student_link(name: str, limit: int = 80) -> str:
        return f'<a href="{h(link[name])}">{name_html(name, limit)}</a>' if name in link else name_html(name, limit)

    body = [f"<h1>Class report: {h(assignment.id)}</h1>",
            f"<p>{len(rows)} student(s), {len(results)} graded, {len(tests)} test(s) worth {_points(most)} points. "
            + ", ".join(f'{what}: <a href="{file}">{file}</a>' for what, file in CLASS_FILES if (out / file).is_file())
            + "</p>"]
    body.append("<h2>The class at a glance</h2><div class=\"grid\"><div><h3>Scores</h3>"
                + histogram_svg([late[row[0]].score if late[row[0]].score is not None else row[1].score
                                 for row in rows if row[1] is not None], most) + "</div><div><h3>Tests</h3><table><thead><tr>"
                "<th>test</th><th>passed / partial / failed / not run</th><th></th><th>most common failure</th></tr>"
                "</thead><tbody>")
    for item in items:
        common = failures.get(item.test)
        said = (f"{message_html(common[0], 200)} <span class=\"muted\">({common[1]} of {common[2]} not passing)</span>"
                if common else '<span class="muted">none</span>')
        body.append(f"<tr><td>{h(item.test)}</td><td>{item.passed} / {item.partial} / {item.failed} / {item.not_run}"
                    f"</td><td>{rates_svg(item)}</td><td>{said}</td></tr>")
    body.append("</tbody></table></div></div>")

    counts = {kind: [row[0] for row in rows if row[2] == kind] for kind in FAILURE_KINDS}
    body.append("<h3>Failures by kind</h3><table><tbody>")
    for kind, label in FAILURE_KINDS.items():
        names = counts[kind]
        body.append(f"<tr><th>{h(label)}</th><td class=\"n\">{len(names)}</td><td>"
                    + ", ".join(student_link(n, 40) for n in names[:20]) + (", …" if len(names) > 20 else "")
                    + "</td></tr>")
    body.append("</tbody></table>")
    slowest = sorted(((row[1].execution_time, row[0]) for row in rows if row[1] is not None), reverse=True)[:5]
    body.append("<h3>Slowest</h3><p>" + (", ".join(f"{student_link(n, 40)} {t:.1f} s" for t, n in slowest) or "–")
                + "</p>")

    body.append("<h2>Item statistics</h2><p class=\"muted\">Mean and spread (standard deviation) of each test's "
                "points over the students whose grading ran it; r: the corrected item-total correlation (the "
                "test's points against the rest of the total: the point-biserial for a pass/fail test); U−L: the "
                "share of the test's points the upper 27 % (by the rest of the total) got minus the lower 27 %'s. "
                "Near 0 or negative: the test does not tell strong submissions from weak ones.</p>"
                "<table><thead><tr><th>test</th><th>points</th><th>n</th><th>mean</th><th>spread</th><th>r</th>"
                "<th>U−L</th><th>flags</th></tr></thead><tbody>")
    for item in items:
        body.append(f"<tr><td>{h(item.test)}</td><td class=\"n\">{_points(item.max_points)}</td>"
                    f"<td class=\"n\">{item.n}</td><td class=\"n\">{_number(item.mean)}</td>"
                    f"<td class=\"n\">{_number(item.sd)}</td><td class=\"n\">{_number(item.correlation)}</td>"
                    f"<td class=\"n\">{_number(item.upper_lower)}</td><td class=\"flag\">"
                    + "<br>".join(h(f) for f in item.flags) + "</td></tr>")
    body.append("</tbody></table>")

    statuses = sorted({row[2] for row in rows})
    body.append("<h2>Students</h2><p><label>filter <input id=\"filter\" type=\"search\" placeholder=\"name, message…\">"
                "</label><label>status <select id=\"status\"><option value=\"\">all</option>"
                + "".join(f'<option value="{h(s)}">{h(s)}</option>' for s in statuses)
                + "</select></label><span class=\"muted\">click a column's head to sort</span></p>"
                "<div class=\"wide\"><table id=\"students\" class=\"sortable\"><thead><tr><th>student</th><th>score</th><th>%</th>"
                "<th>status</th>" + ("<th>late</th>" if with_late else "")
                + "".join(f"<th>{h(t)}</th>" for t in tests) + "<th>time (s)</th><th>reason</th></tr></thead><tbody>")
    for row in rows:
        name, result, status, reason = row[:4]
        shown = student_name(name)
        cells = [f'<td data-v="{h(shown.casefold())}">{student_link(name)}'
                 + (' <span class="flag">(page not written)</span>' if name in unwritten else "") + "</td>"]
        score = (late[name].score if late[name].score is not None else result.score) if result else 0.0
        share = 100 * score / result.max_score if result and result.max_score else 0.0
        cells.append(f'<td class="n" data-v="{score:g}">{_points(score)}'
                     f'{" / " + _points(result.max_score) if result else ""}</td>')
        cells.append(f'<td class="n" data-v="{share:.2f}">{share:.0f}</td>')
        cells.append(f'<td class="{h(status)} nw" data-v="{h(status)}">{h(status)}</td>')
        if with_late:
            cells.append(f'<td data-v="{late[name].days:g}">{h(late[name].text)}</td>')
        by_name = {t.name: t for t in result.tests} if result else {}
        for test in tests:
            t = by_name.get(test)
            cells.append(f'<td class="n {h(t.status)}" data-v="{t.score:g}" title="{message_html(t.message, 200)}">'
                         f"{_points(t.score)}</td>" if t else '<td class="n" data-v="-1"></td>')
        seconds = result.execution_time if result else 0.0
        cells.append(f'<td class="n" data-v="{seconds:.2f}">{seconds:.1f}</td>')
        cells.append(f'<td data-v="{message_html(reason, 120)}">{message_html(reason, 120)}</td>')
        body.append(f'<tr data-status="{h(status)}">' + "".join(cells) + "</tr>")
    body.append("</tbody></table></div>")

    body.append('<h2 id="similarity">Similarity</h2><p class="muted">Pairs of submissions that look alike '
                "(winnowing fingerprints, the released skeleton left out): a pointer for a human to read both, "
                "not a verdict of copying.</p>")
    if pairs:
        body.append("<table><thead><tr><th>student</th><th>student</th><th>similarity</th><th>grounds</th>"
                    "<th></th></tr></thead><tbody>")
        for index, pair in enumerate(pairs):
            body.append(f"<tr><td>{student_link(pair.a)}</td><td>{student_link(pair.b)}</td>"
                        f"<td class=\"n\">{h(pair.similarity)}</td><td>{h(pair.grounds)}</td>"
                        f'<td><a href="report/pair-{index}.html">side by side</a></td></tr>')
        body.append("</tbody></table>")
    else:
        body.append("<p>No similar pair.</p>")
    if runtime:
        body.append("<h3>Code built at run time</h3><p class=\"muted\">Calls that run code built at run time or from "
                    "a string (exec, eval, compile, marshal, ...): read such code before trusting the grade.</p>"
                    "<table><thead><tr><th>student</th><th>file</th><th>line</th><th>what</th></tr></thead><tbody>"
                    + "".join(f"<tr><td>{student_link(n)}</td><td>{h(f)}</td><td class=\"n\">{h(line)}</td>"
                              f"<td>{h(what)}</td></tr>" for n, f, line, what in runtime)
                    + "</tbody></table>")
    if groups:
        body.append("<h3>Look-alike names</h3><p class=\"muted\">Different folders whose names look the same on a "
                    "screen: check they are different students.</p><ul>"
                    + "".join("<li>" + ", ".join(student_link(n) for n in group) + "</li>" for group in groups)
                    + "</ul>")
    return _page(f"Class report: {h(assignment.id)}", "\n".join(body), script=True)


def write(out: Path, rows, assignment: Assignment, tests: list[str] | None = None,
          folders: dict[str, Path] | None = None) -> dict[str, str]:
    """Write ``OUT/index.html`` and the pages under ``OUT/report``, from the batch's ``rows``
    ((name, Result or None, status, reason[, ...]), in the class table's order), its records and
    the similarity step's CSV files. ``folders`` (name -> submission folder) lets the pair pages
    show the files side by side. Returns {student: why} for each student whose page could not
    be written (their row is still in the class table); a failure of the class page raises."""
    out = Path(out)
    tests = list(tests if tests is not None else assignment.tests)
    folders = dict(folders or {})
    (out / INDEX).unlink(missing_ok=True)  # an earlier run's page never passes for this one's
    pages = out / REPORT
    pages.mkdir(parents=True, exist_ok=True)
    for stale in pages.glob("*.html"):  # the pages of an earlier run of this batch
        if stale.name.startswith(("s-", "pair-")) and not stale.is_symlink():
            stale.unlink(missing_ok=True)
    names = [row[0] for row in rows]
    records = {name: read_record(out / RECORDS, name) for name in names}
    pairs = similar_pairs(out, names)
    runtime = runtime_flags(out, names)
    groups = look_alike_groups(names)
    unwritten: dict[str, str] = {}
    for row in rows:
        name = row[0]
        try:
            mine = [(i, p) for i, p in enumerate(pairs) if name in (p.a, p.b)]
            alike = next((g for g in groups if name in g), [])
            page = _student_page(out, row, records.get(name), assignment, tests, mine,
                                 [f for f in runtime if f[0] == name], [n for n in alike if n != name])
        except Exception as error:  # one student's page never ends the class's report
            unwritten[name] = f"class report page not written ({type(error).__name__})"
            page = _page("page not written", '<p><a href="../index.html">← the class</a></p>'
                         f"<p>The page of {name_html(name)} could not be written ({h(type(error).__name__)}).</p>")
        _write(pages / page_name(name), page)
    for index, pair in enumerate(pairs):
        try:
            page = _pair_page(pair, list(assignment.files), folders)
        except Exception as error:
            page = _page("pair not shown", f"<p>This pair could not be shown ({h(type(error).__name__)}).</p>")
        _write(pages / f"pair-{index}.html", page)
    _write(out / INDEX, _index_page(out, rows, assignment, tests, records, pairs, runtime, groups, unwritten))
    return unwritten
