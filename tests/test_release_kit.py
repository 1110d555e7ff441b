"""Kit-wide release checks over the real kit: assignments/ is exactly what `autograder release`
writes, and nothing under it is solution code, hidden-suite code, a marker or instructor notes.

The detectors are first run on the fixture kit (tests/fixtures/release_example) with leaks
planted on purpose: each must find its leak there, so that an empty answer on the real kit
means something.
"""
import json
import re
import shutil
from pathlib import Path

import pytest

from autograder.authoring.release import release

KIT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "release_example"
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
NOTES_HEADING = re.compile(r"^ {0,3}(#{1,6}[ \t]+|\*\*|__)?instructor notes\b", re.I | re.M)
CACHES = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
MIN_CHARS = 12  # shorter lines ("return x", "import torch") are too common to call a leak


# --- reading the kit ------------------------------------------------------------------------

def folders(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and not CACHES & set(p.relative_to(root).parts) and p.suffix != ".pyc")


def sources(path: Path) -> list[str] | None:
    """What an author wrote in a file: one string, or a notebook's cell sources; None if binary."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return None
    if path.suffix == ".ipynb":
        try:
            return ["".join(cell["source"]) for cell in json.loads(text)["cells"]]
        except (ValueError, KeyError, TypeError):
            pass
    return [text]


def student_text(path: Path) -> str | None:
    """Everything a student can read in a file (a notebook's outputs included); None if binary."""
    parts = sources(path)
    if parts is None:
        return None
    if path.suffix == ".ipynb":
        parts = parts + [path.read_text(encoding="utf-8")]  # outputs, metadata: raw JSON
    return "\n".join(parts)


def code_lines(text: str) -> set[str]:
    stripped = (line.strip() for line in text.split("\n"))
    return {line for line in stripped if len(line) > MIN_CHARS and not line.startswith("#")}


def split_regions(text: str) -> tuple[list[str], list[str]]:
    """(lines inside solution or hidden-test regions, lines outside them)."""
    inside, outside, depth = [], [], 0
    for line in text.split("\n"):
        if any(marker in line for marker in MARKERS[0::2]):
            depth += 1
        elif any(marker in line for marker in MARKERS[1::2]):
            depth = max(depth - 1, 0)
        else:
            (inside if depth else outside).append(line)
    return inside, outside


# --- the detectors ----------------------------------------------------------------------------

def secret_solution_lines(kit: Path) -> set[str]:
    """Code lines from inside solution regions that appear nowhere outside a region in solutions/."""
    inside, outside = [], []
    for path in files(kit / "solutions"):
        for text in sources(path) or []:
            lines_in, lines_out = split_regions(text)
            inside += lines_in
            outside += lines_out
    public = "\n".join(outside)
    return {line for line in code_lines("\n".join(inside)) if line not in public}


def leaked_solution_lines(kit: Path) -> list[str]:
    secrets = secret_solution_lines(kit)
    leaks = []
    for path in files(kit / "assignments"):
        text = student_text(path)
        if text is not None:
            rel = path.relative_to(kit).as_posix()
            leaks += [f"{rel}: solution line {line!r}" for line in sorted(secrets) if line in text]
    return leaks


def hidden_suite_leaks(kit: Path) -> list[str]:
    """Files named hidden*, copies of hidden-suite files, and hidden-suite code lines found
    nowhere in solutions/ (so a student could only have got them from the suite)."""
    suite_files = files(kit / "autograder" / "suites")
    solutions_text = "\n".join(student_text(p) or "" for p in files(kit / "solutions"))
    distinctive = set()
    for path in suite_files:
        distinctive |= code_lines(student_text(path) or "")
    distinctive = {line for line in distinctive if line not in solutions_text}
    suite_bytes = {p.read_bytes().strip(): p for p in suite_files if len(p.read_bytes().strip()) > 40}
    leaks = []
    for path in files(kit / "assignments"):
        rel = path.relative_to(kit).as_posix()
        if any(part.lower().startswith("hidden") for part in path.relative_to(kit).parts):
            leaks.append(f"{rel}: named hidden*")
        copied = suite_bytes.get(path.read_bytes().strip())
        if copied:
            leaks.append(f"{rel}: a copy of {copied.relative_to(kit).as_posix()}")
        text = student_text(path)
        if text is not None:
            leaks += [f"{rel}: hidden suite line {line!r}" for line in sorted(distinctive) if line in text]
    return leaks


def leftover_markers(kit: Path) -> list[str]:
    found = []
    for path in files(kit / "assignments"):
        text = student_text(path)
        if text is None:
            continue
        rel = path.relative_to(kit).as_posix()
        found += [f"{rel}: marker {marker!r}" for marker in MARKERS if marker in text]
        if NOTES_HEADING.search(text):
            found.append(f"{rel}: an 'Instructor notes' heading")
    return found


# --- the real kit ---------------------------------------------------------------------------

SOLUTIONS = folders(KIT / "solutions")
needs_solutions = pytest.mark.skipif(not SOLUTIONS, reason="no assignment under solutions/ yet")


@needs_solutions
def test_assignments_are_what_release_writes():
    problems = release(KIT, SOLUTIONS, check=True)
    problems += [f"stale: assignments/{name} has no solutions/{name}"
                 for name in folders(KIT / "assignments") if name not in SOLUTIONS]
    assert not problems, ("assignments/ is not what `autograder release` writes:\n"
                          + "\n".join(problems))


@needs_solutions
def test_no_solution_code_under_assignments():
    leaks = leaked_solution_lines(KIT)
    assert not leaks, "solution code under assignments/:\n" + "\n".join(leaks)


@needs_solutions
def test_no_hidden_suite_under_assignments():
    leaks = hidden_suite_leaks(KIT)
    assert not leaks, "hidden suite code under assignments/:\n" + "\n".join(leaks)


@needs_solutions
def test_no_markers_or_instructor_notes_under_assignments():
    found = leftover_markers(KIT)
    assert not found, "\n".join(found)


# --- the detectors, on the fixture kit with planted leaks ----------------------------------------

@pytest.fixture
def released(tmp_path):
    kit = tmp_path / "kit"
    shutil.copytree(FIXTURE, kit)
    release(kit, folders(kit / "solutions"))
    return kit


def test_detectors_pass_a_clean_release(released):
    # The detectors have something to look for ...
    secrets = secret_solution_lines(released)
    assert "squared_error = (x - mu).pow(2) / logvar.exp()" in secrets
    assert "model = DiagonalGaussian(2).fit(x)" in secrets                # from the notebook
    assert "return self" not in secrets and "LOG_2PI = math.log(2 * math.pi)" not in secrets
    # ... and find nothing in what release wrote.
    assert leaked_solution_lines(released) == []
    assert hidden_suite_leaks(released) == []
    assert leftover_markers(released) == []


def _append(rel, text):
    def plant(kit):
        path = kit / "assignments" / "01_demo" / rel
        path.write_text(path.read_text() + text)
    return plant


def _copy(source, rel):
    def plant(kit):
        shutil.copy(kit / source, kit / "assignments" / "01_demo" / rel)
    return plant


def _notebook_line(kit):
    path = kit / "assignments" / "01_demo" / "demo.ipynb"
    nb = json.loads(path.read_text())
    nb["cells"][1]["source"].append('\nmodel = DiagonalGaussian(2).fit(x)  # "a quote"')
    path.write_text(json.dumps(nb, indent=1))


@pytest.mark.parametrize("plant, detector, expected", [
    (_append("demo.py", "        self.mu = x.mean(dim=0)\n"), leaked_solution_lines,
     "demo.py: solution line 'self.mu = x.mean(dim=0)'"),
    (_notebook_line, leaked_solution_lines, "demo.ipynb: solution line"),
    (_copy("solutions/01_demo/demo.py", "reference.py"), leaked_solution_lines, "reference.py"),
    (_copy("autograder/suites/demo/suite_demo.py", "checks/suite_demo.py"), hidden_suite_leaks,
     "checks/suite_demo.py: a copy of autograder/suites/demo/suite_demo.py"),
    (_append("checks/public_checks.py", "    g = torch.Generator().manual_seed(seed)\n"),
     hidden_suite_leaks, "public_checks.py: hidden suite line"),
    (_copy("solutions/01_demo/checks/hidden_cases.py", "checks/hidden_cases.py"), hidden_suite_leaks,
     "hidden_cases.py: named hidden*"),
    (_append("handout.md", "\n### Instructor Notes\n"), leftover_markers, "an 'Instructor notes' heading"),
    (_append("demo.py", "    ### BEGIN SOLUTION\n"), leftover_markers, "marker 'BEGIN SOLUTION'"),
], ids=["solution-line", "solution-line-in-notebook", "solution-file", "suite-file", "suite-line",
        "hidden-name", "instructor-notes", "marker"])
def test_detectors_catch_planted_leaks(released, plant, detector, expected):
    plant(released)
    found = detector(released)
    assert any(expected in line for line in found), found
    assert release(released, ["01_demo"], check=True) != []  # and the drift check sees it too
