"""The class report (``OUT/index.html``): its numbers, its escaping and its links, built from
synthetic rows; then a small class graded for real and its report opened in headless Chromium
(driven by Playwright): no console error, no request leaving ``OUT``, every student and test
named, every link and picture inside ``OUT``, hostile names shown as text. A screenshot of the
report is left as the test's artifact (its path is printed).

The browser tests need ``pip install playwright`` (the ``test`` extra) and a system Chromium
(``apt-get install chromium``; Playwright's own browser download is not used).
"""

from __future__ import annotations

import csv
import html.parser
import os
import shutil
import statistics
import sys
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

import numpy as np
import pytest

from autograder.authoring import release
from autograder.classroom import batch, class_report, outputs, similarity
from autograder.config import Assignment
from autograder.escape import student_name
from autograder.grading.runner import Result
from autograder.grading import runner
from tests.example_course import EXAMPLE, GOOD, cli, replace_function

SCRIPT_NAME = "<script>alert(1)</script>"
IMG_NAME = '"><img src=x onerror=alert(1)>'
LATIN = os.fsdecode(b"caf\xe9")                         # a name that is not UTF-8
ASSIGNMENT = Assignment(id="demo", folder="01_demo", files=["mini.py"],
                        tests={"test_a": {"points": 30}, "test_b": {"points": 30}, "test_c": {"points": 20},
                               "test_d": {"points": 20}})
TESTS = list(ASSIGNMENT.tests)
POINTS = {"test_a": 30, "test_b": 30, "test_c": 20, "test_d": 20}
# points per student and test; test_c everybody passes, test_d nobody
SCORES = {
    "alice": {"test_a": 30, "test_b": 30, "test_c": 20, "test_d": 0},
    "bob": {"test_a": 30, "test_b": 20, "test_c": 20, "test_d": 0},
    SCRIPT_NAME: {"test_a": 15, "test_b": 10, "test_c": 20, "test_d": 0},
    IMG_NAME: {"test_a": 0, "test_b": 0, "test_c": 20, "test_d": 0},
    LATIN: {"test_a": 0, "test_b": 5, "test_c": 20, "test_d": 0},
}
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c6360f8cfc0000003010100c9fe92ef0000000049454e44ae426082")


def _test(name: str, score: float) -> runner.TestResult:
    most = POINTS[name]
    status = "passed" if score == most else "partial" if score else "failed"
    message = {"test_a": IMG_NAME, "test_b": "expected <b>bold</b>", "test_d": "expected 1, got 0"}.get(name, "")
    return runner.TestResult(name, score, most, status, "" if status == "passed" else message,
                      artifacts=["samples.png", "evil.png", "../../grades.csv"] if name == "test_a" else [])


def synthetic_class(out: Path, late: bool = False) -> tuple[list, dict[str, Path]]:
    """Rows as the batch has them, the students' report folders (a picture each, a link to
    /etc/passwd for bob), similar.csv and runtime_code.csv, and the submissions' folders."""
    rows = []
    for i, (name, scores) in enumerate(SCORES.items()):
        result = Result("demo", f"/class/{name}", [_test(t, s) for t, s in scores.items()], 1.0 + i, 0)
        status, reason = ("timeout", "double(x) did not finish within 8 s") if name == LATIN else ("graded", "")
        row = (name, result, status, reason)
        rows.append(row + ({"late": True, "penalty": 10.0},) if late and name == "alice" else row)
        if "/" in name:  # no folder can be named so: its pictures are never linked
            continue
        folder = batch.report_folder(out, name)
        folder.mkdir(parents=True)
        (folder / "samples.png").write_bytes(PNG)
        (folder / "feedback.md").write_text(f"# Feedback\n\n{student_name(name)} <script>alert(2)</script>\n")
        (folder / "report.md").write_text("# Instructor report\n")
    (batch.report_folder(out, "bob") / "evil.png").symlink_to("/etc/passwd")
    rows.append(("erin", None, "refused", "erin is a symbolic link, not a student's folder"))
    outputs.write_grades_csv([row[:4] for row in rows], out / "grades.csv", TESTS)
    folders = {}
    for name in SCORES:
        folder = out.parent / "class" / os.fsencode(name).replace(b"/", b"_").decode("utf-8", "surrogateescape")
        folder.mkdir(parents=True)
        (folder / "mini.py").write_text("import torch\n\n# </pre><script>alert(3)</script>\n" + GOOD)
        folders[name] = folder
    fingerprints = [similarity.read_submission(f, ["mini.py"]) for f in folders.values()]
    for fingerprint, name in zip(fingerprints, folders):
        fingerprint.name = name
    fingerprints[1].runtime.append(("mini.py", 3, "runs Python code given as a string or code object"))
    similarity.write_csv(similarity.similar_pairs(fingerprints[:3]), out / "similar.csv")
    similarity.write_runtime_csv(fingerprints, out / "runtime_code.csv")
    return rows, folders


@pytest.fixture
def report(tmp_path):
    out = tmp_path / "out"
    rows, folders = synthetic_class(out)
    unwritten = class_report.write(out, rows, ASSIGNMENT, TESTS, folders)
    assert unwritten == {}
    return out, rows


class Elements(html.parser.HTMLParser):
    """Every element of a page with its attributes, and the page's text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parsed(path: Path) -> Elements:
    elements = Elements()
    elements.feed(path.read_text(encoding="utf-8"))
    return elements


def pages(out: Path) -> list[Path]:
    return [out / "index.html", *sorted((out / class_report.REPORT).glob("*.html"))]


def link_target(page: Path, link: str, out: Path) -> Path | None:
    """Where a relative link of ``page`` leads (None: an in-page anchor)."""
    parts = urlsplit(link)
    assert not parts.scheme and not parts.netloc, f"{page.name}: {link} leaves the report"
    if not parts.path:
        return None
    target = Path(os.path.normpath(page.parent / os.fsdecode(unquote_to_bytes(parts.path))))
    assert target.resolve().is_relative_to(out.resolve()), f"{page.name}: {link} leaves OUT"
    return target


# --------------------------------------------------------------------------- numbers


def test_item_statistics_numbers():
    rows = []
    for name, scores in SCORES.items():
        rows.append((name, Result("demo", name, [_test(t, s) for t, s in scores.items()], 1.0, 0), "graded", ""))
    rows.append(("erin", None, "refused", "a link"))
    stats = {s.test: s for s in class_report.item_statistics(rows, TESTS, POINTS)}
    a = stats["test_a"]
    items = [SCORES[n]["test_a"] for n in SCORES]
    rest = [sum(SCORES[n].values()) - SCORES[n]["test_a"] for n in SCORES]
    assert (a.n, a.passed, a.partial, a.failed, a.not_run) == (5, 2, 1, 2, 1)
    assert a.mean == pytest.approx(statistics.fmean(items)) and a.sd == pytest.approx(np.std(items))
    assert a.correlation == pytest.approx(np.corrcoef(items, rest)[0, 1])
    # 27 % of five students is one: alice (rest 50) against the image-named one (rest 20)
    assert a.upper_lower == pytest.approx((30 - 0) / 30)
    assert a.flags == []
    b = stats["test_b"]
    assert (b.passed, b.partial, b.failed) == (1, 3, 1)
    assert b.correlation == pytest.approx(np.corrcoef([SCORES[n]["test_b"] for n in SCORES],
                                                      [sum(SCORES[n].values()) - SCORES[n]["test_b"]
                                                       for n in SCORES])[0, 1])
    c, d = stats["test_c"], stats["test_d"]
    assert c.passed == 5 and c.correlation is None and c.sd == 0 and "everybody passes" in c.flags[0]
    assert d.passed == 0 and d.mean == 0 and "nobody passes" in d.flags[0]
    common = class_report.common_failures(rows, TESTS)
    assert common["test_d"] == ("expected 1, got 0", 5, 5)
    assert common["test_a"][1:] == (3, 3) and "test_c" not in common


# --------------------------------------------------------------------------- escaping and links


def test_every_student_and_test_named_and_hostile_names_are_text(report):
    out, rows = report
    index = parsed(out / "index.html")
    text = "".join(index.text)
    for name, *_ in rows:
        assert student_name(name) in text, name
    assert "caf\\xe9" in text                        # the byte that is not UTF-8, as an escape
    for test in TESTS:
        assert test in text
    for page in pages(out):
        source = page.read_text(encoding="utf-8")
        for raw in ("<script>alert", "<img src=x", "<b>bold", "</pre><script"):
            assert raw not in source, f"{page.name} holds {raw!r} unescaped"
        elements = parsed(page).elements
        scripts = [attrs for tag, attrs in elements if tag == "script"]
        assert scripts == ([{}] if page.name == "index.html" else [])  # the kit's own inline script only
        assert not [(tag, a) for tag, attrs in elements for a in attrs if a.startswith("on")]
        assert not [attrs for tag, attrs in elements if tag == "img" and attrs.get("src") == "x"]
        assert all("style" not in attrs for tag, attrs in elements if tag not in ("svg", "rect", "text", "line"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in (out / "index.html").read_text()
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in (out / "index.html").read_text()


def test_links_stay_inside_out_and_resolve(report):
    out, rows = report
    linked, from_students = set(), set()
    for page in pages(out):
        for tag, attrs in parsed(page).elements:
            link = attrs.get("href") if tag == "a" else attrs.get("src") if tag == "img" else None
            if link is None:
                continue
            target = link_target(page, link, out)
            if target is not None:
                assert target.is_file(), f"{page.name}: {link} leads nowhere"
                linked.add(target)
                if page.name.startswith("s-"):
                    from_students.add(target)
    for name, *_ in rows:
        assert out / "report" / class_report.page_name(name) in linked
        if name not in ("erin", SCRIPT_NAME):  # the pictures, the feedback and the report, each by percent-encoded name
            for file in ("samples.png", "feedback.md", "report.md"):
                assert batch.report_folder(out, name) / file in linked
    # a picture that is a link, or a path that climbs out of the student's folder, is never shown
    assert not any(t.name == "evil.png" for t in linked) and out / "grades.csv" not in from_students
    assert out / "grades.csv" in linked and out / "similar.csv" in linked
    assert (out / "report" / "pair-0.html") in linked


def test_student_and_pair_pages(report):
    out, rows = report
    alice = (out / "report" / class_report.page_name("alice")).read_text()
    assert "30 / 30" in alice and "Instructor's report" in alice and "runs code" not in alice
    bob = (out / "report" / class_report.page_name("bob")).read_text()
    assert "runs code built at run time" in bob and "expected &lt;b&gt;bold&lt;/b&gt;" in bob
    latin = (out / "report" / class_report.page_name(LATIN)).read_text()
    assert "caf\\xe9" in latin and "timeout" in latin and "students/caf%E9/samples.png" in latin
    pair = (out / "report" / "pair-0.html").read_text()
    assert pair.count('class="line hit"') > 10                  # the matching lines, marked on both sides
    assert "&lt;/pre&gt;&lt;script&gt;alert(3)&lt;/script&gt;" in pair
    index = (out / "index.html").read_text()
    assert "<th>late</th>" not in index                    # no row carries late information
    assert "everybody passes" in index and "nobody passes" in index
    assert "expected 1, got 0" in index and "(5 of 5 not passing)" in index


def test_late_information_is_shown_where_rows_carry_it(tmp_path):
    out = tmp_path / "out"
    rows, folders = synthetic_class(out, late=True)
    class_report.write(out, rows, ASSIGNMENT, TESTS, folders)
    index = (out / "index.html").read_text()
    assert "<th>late</th>" in index and "late, penalty 10" in index
    assert "late, penalty 10" in (out / "report" / class_report.page_name("alice")).read_text()


def test_late_entries_of_the_records_are_shown(tmp_path):
    """The record's ``late`` entry (autograder.classroom.late): the table shows the score after
    the penalty and how late; an on-time submission says so."""
    out = tmp_path / "out"
    rows, folders = synthetic_class(out)
    entry = {"submitted": "2026-01-02T10:00:00+00:00", "source": "git", "due": "2026-01-01T10:00:00+00:00",
             "extended": False, "late_by_seconds": 86400, "days_late": 1, "penalty_percent": 10.0,
             "raw_score": 70.0, "score": 63.0, "penalty_points": 7.0, "max_score": 100.0, "notes": []}
    batch.write_record(out / batch.RECORDS, "bob", {"status": "graded", "reason": "", "result": None, "late": entry})
    batch.write_record(out / batch.RECORDS, "alice", {"status": "graded", "reason": "", "result": None,
                                                      "late": {**entry, "late_by_seconds": 0, "days_late": 0,
                                                               "penalty_percent": 0.0, "score": 80.0}})
    class_report.write(out, rows, ASSIGNMENT, TESTS, folders)
    index = (out / "index.html").read_text()
    assert "<th>late</th>" in index and "1 d late: −10 % (70 → 63)" in index and "on time" in index
    assert 'data-v="63">63 / 100' in index
    bob = (out / "report" / class_report.page_name("bob")).read_text()
    assert "63 / 100" in bob and "2026-01-02T10:00:00+00:00" in bob and "source: git" in bob


def test_a_student_page_that_fails_is_a_note_not_the_end(report, monkeypatch):
    out, rows = report
    real = class_report._student_page

    def broken(out_, row, *args):
        if row[0] == "bob":
            raise RuntimeError("boom")
        return real(out_, row, *args)

    monkeypatch.setattr(class_report, "_student_page", broken)
    unwritten = class_report.write(out, rows, ASSIGNMENT, TESTS)
    assert list(unwritten) == ["bob"] and "not written" in unwritten["bob"]
    assert "(page not written)" in (out / "index.html").read_text()
    assert (out / "report" / class_report.page_name("bob")).is_file()


# --------------------------------------------------------------------------- in a browser


def browser():
    """Playwright and the system's Chromium, or skip saying how to install them."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install -e '.[test]' (or pip install playwright)")
    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if chromium is None:
        pytest.skip("no Chromium on this machine: apt-get install chromium (Debian) or chromium-browser (Ubuntu)")
    return sync_playwright, chromium


class Watched:
    """A Chromium page that records console errors, page errors, dialogs and every request."""

    def __init__(self, context):
        self.page = context.new_page()
        self.errors, self.dialogs, self.requests = [], [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self, path: Path) -> None:
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")

    def check(self, out: Path) -> None:
        """Nothing went wrong on the pages opened so far, and every link of this one is inside OUT."""
        assert self.errors == [] and self.dialogs == []
        for url in self.requests:
            parts = urlsplit(url)
            assert parts.scheme == "file", f"a request that is not a file of the report: {url}"
            path = Path(os.fsdecode(unquote_to_bytes(parts.path)))
            assert path.resolve().is_relative_to(out.resolve()), f"a request outside OUT: {url}"
        links = self.page.evaluate("""() => [...document.querySelectorAll('a[href]')].map(a => a.href)
                                      .concat([...document.querySelectorAll('img[src]')].map(i => i.src))""")
        for url in links:
            parts = urlsplit(url)
            assert parts.scheme == "file", url
            path = Path(os.fsdecode(unquote_to_bytes(parts.path)))
            assert path.resolve().is_relative_to(out.resolve()) and path.is_file(), url
        assert self.page.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
        injected = self.page.evaluate("""() => document.querySelectorAll('[onerror], [onload], img[src="x"], '
                                         + 'script[src]').length + document.scripts.length""")
        assert injected == (1 if self.page.url.endswith("/index.html") else 0)


def visit_every_page(context, out: Path) -> Watched:
    watched = Watched(context)
    for page in pages(out):
        watched.open(page)
        watched.check(out)
    return watched


@pytest.fixture(scope="module")
def chromium():
    sync_playwright, executable = browser()
    with sync_playwright() as playwright:
        # root (CI) cannot use Chromium's own sandbox; the pages are the kit's, static and local
        launched = playwright.chromium.launch(executable_path=executable, chromium_sandbox=False)
        try:
            yield launched
        finally:
            launched.close()


def test_synthetic_report_in_chromium_shows_its_pictures(chromium, report):
    out, _ = report
    context = chromium.new_context()
    try:
        visit_every_page(context, out)
    finally:
        context.close()


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    """The example course graded for real: the reference, a partial one, the skeleton, a
    timeout, a copy, two folders named with HTML in them and one that is not UTF-8."""
    tmp = tmp_path_factory.mktemp("class-report")
    course = tmp / "course"
    shutil.copytree(EXAMPLE, course)
    skeleton = release.render_assignment(course / "solutions" / "01_mini")["mini.py"].decode()
    (course / "assignments" / "01_mini").mkdir(parents=True)
    (course / "assignments" / "01_mini" / "mini.py").write_text(skeleton)
    partial = replace_function("normalise", "return (x / x.sum(dim=-1, keepdim=True)).squeeze()")
    students = {
        "alice": GOOD,
        "bob": partial,
        "carol": skeleton,
        "dave": replace_function("double", "while True:\n    pass"),
        "erin": partial,                                    # bob's copy
        IMG_NAME: GOOD,
        "<script>alert(1)": "def double(:\n",
        LATIN: GOOD.replace("return 2 * x", "return 3 * x"),
    }
    root = tmp / "class"
    for name, source in students.items():
        (root / name).mkdir(parents=True)
        (root / name / "mini.py").write_text(source)
    out = tmp / "grades"
    run = cli("--config", str(course / "grading.yml"), "grade-batch", str(root), "--assignment", "mini",
              "--jobs", "2", "--out", str(out), timeout=600)
    assert run.returncode == 0, run.stderr
    assert "class report" in run.stdout and (out / "index.html").is_file()
    return out, list(students), tmp


def test_graded_class_in_chromium(chromium, graded_class, tmp_path):
    out, students, _ = graded_class
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert len(rows) == len(students)            # the report came after grades.csv, which it left whole
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        watched = visit_every_page(context, out)
        watched.open(out / "index.html")
        page = watched.page
        table = page.locator("#students").inner_text()
        for name in students:
            assert student_name(name) in table
        for test in ("test_double", "test_normalise", "test_device"):
            assert page.locator("#students thead").get_by_text(test).count() == 1
        assert page.get_by_text(IMG_NAME, exact=True).count() >= 1   # shown as text, injected nowhere
        assert page.locator("a[href$='pair-0.html']").count() == 1    # bob and erin, side by side
        # the table sorts and filters
        page.locator("#students th", has_text="score").click()
        page.locator("#students th", has_text="score").click()       # descending: full marks first
        first = page.locator("#students tbody tr").first.inner_text()
        assert "100" in first
        page.fill("#filter", "onerror")
        assert page.locator("#students tbody tr:visible").count() == 1
        page.fill("#filter", "")
        page.select_option("#status", "timeout")
        assert page.locator("#students tbody tr:visible").count() == 1
        page.select_option("#status", "")
        shot = tmp_path / "class_report.png"
        page.screenshot(path=str(shot), full_page=True)
        shutil.copy(shot, out / "class_report.png")
        print(f"class report screenshot: {shot} (and {out / 'class_report.png'})", file=sys.stderr)
        assert shot.stat().st_size > 1000
        watched.check(out)
    finally:
        context.close()


def test_resumed_batch_gets_the_same_report(graded_class):
    """Built from the records: a --resume that grades nobody writes the same class page."""
    out, _, tmp = graded_class
    before = (out / "index.html").read_text()
    run = cli("--config", str(tmp / "course" / "grading.yml"), "grade-batch", str(tmp / "class"), "--assignment",
              "mini", "--jobs", "2", "--out", str(out), "--resume", timeout=600)
    assert run.returncode == 0, run.stderr
    assert "kept 8 grade(s)" in run.stderr
    assert (out / "index.html").read_text() == before
