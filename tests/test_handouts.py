"""Every handout can be followed by a student, for every assignment in grading.yml:

* it starts with "Set up": the student package's install line, the one check command
  (`autograder check .`), and which tests are shown only after the due date;
* it shows figures the kit made from the reference (`solutions/NN/hidden_make_figures.py`,
  never released; the PNGs in `solutions/NN/figures/` are released as they are): every image
  it references exists, beside the handout and in the released assignment, is a small PNG,
  is made by that script, and every picture in figures/ is referenced;
* it never names a test that students cannot see yet.

A failure says exactly what the handout lacks, so the assignment's author can add it.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from autograder import config as config_module
from autograder.authoring.release import STUDENT_DIST, render_assignment

KIT = Path(__file__).resolve().parents[1]
CFG = config_module.load(KIT / "grading.yml")
ASSIGNMENTS = [a for a in CFG.assignments if (CFG.solution_dir(a) / "handout.md").is_file()]
WHEEL = STUDENT_DIST.replace("-", "_")
CHECK = "autograder check ."
MAX_BYTES = 100_000
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|<img\s[^>]*src=[\"']([^\"']+)[\"']", re.I)
FENCE = re.compile(r"^ {0,3}(```|~~~)")
ids = pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=[a.id for a in ASSIGNMENTS])


def sections(text: str) -> list[tuple[str, str]]:
    """(title, body) of each level-2 section, fenced code blocks taken as text."""
    found, title, body, fenced = [], None, [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            if title is not None:
                found.append((title, "\n".join(body)))
            title, body = line[3:].strip(), []
        elif title is not None:
            body.append(line)
    if title is not None:
        found.append((title, "\n".join(body)))
    return found


def images(text: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in IMAGE.finditer(text)]


def setup_text(a) -> str:
    return (f"## Set up\n\n1. Install the course's student package once:\n\n"
            f"       pip install {WHEEL}-<version>-py3-none-any.whl\n\n"
            f"2. From this folder (any name: `{a.folder}-main` works), run the public checks:\n\n"
            f"       {CHECK}\n\n"
            "3. Which tests are shown only after the due date (or that none is).")


@ids
def test_handout_starts_with_set_up(assignment):
    path = CFG.solution_dir(assignment) / "handout.md"
    found = sections(path.read_text(encoding="utf-8"))
    where = path.relative_to(KIT)
    if not found or not found[0][0].lower().lstrip("0123456789. ").startswith("set up"):
        pytest.fail(f"{where}: the first '## ' section should be '## Set up', right after the title; add "
                    f"(see solutions/03_vae/handout.md):\n{setup_text(assignment)}")
    body = " ".join(found[0][1].split())  # a phrase may run over two lines
    missing = [what for what, ok in (
        (f"the install line 'pip install {WHEEL}-...whl'", f"pip install {WHEEL}" in body),
        (f"the check command '{CHECK}' (the same in every handout)", CHECK in body),
        ("which tests are shown only after the due date (say 'after the due date', listing them or saying "
         "none is)", "after the due date" in body),
    ) if not ok]
    if missing:
        pytest.fail(f"{where}: its 'Set up' section lacks " + "; ".join(missing))
    later = [n for n, t in assignment.tests.items() if t.visibility != "visible"]
    if later and not re.search(r"\d+ points", body):
        pytest.fail(f"{where}: {len(later)} test(s) are shown only after the due date; 'Set up' should say what "
                    "they judge and how many points they are worth (not their names)")


@ids
def test_handout_names_no_test_students_cannot_see(assignment):
    path = CFG.solution_dir(assignment) / "handout.md"
    released = render_assignment(CFG.solution_dir(assignment)).get("handout.md", b"").decode("utf-8")
    later = [n for n, t in assignment.tests.items() if t.visibility != "visible" and n in released]
    assert not later, (f"{path.relative_to(KIT)}: names {', '.join(later)}, shown only after the due date; "
                       "describe them without their names (e.g. '(shown after the due date)')")


@ids
def test_handout_figures_exist_and_are_referenced(assignment):
    source = CFG.solution_dir(assignment)
    where = (source / "handout.md").relative_to(KIT)
    text = (source / "handout.md").read_text(encoding="utf-8")
    released = (KIT / "assignments" / assignment.folder)
    referenced = images(text)
    if not referenced:
        pytest.fail(f"{where}: no figure. Add figures made from the reference by "
                    f"solutions/{assignment.folder}/hidden_make_figures.py (deterministic, cheap, never released), "
                    f"saved as PNGs under solutions/{assignment.folder}/figures/ (< 100 KB each): the data, a "
                    "sample grid and a training curve, referenced as ![what it shows](figures/NAME.png); then run "
                    "'autograder release'")
    script = source / "hidden_make_figures.py"
    script_text = script.read_text(encoding="utf-8") if script.is_file() else ""
    problems = []
    for ref in referenced:
        if re.match(r"[a-z]+:", ref) or ref.startswith("/"):
            problems.append(f"{ref}: not a file beside the handout (no URL, no absolute path)")
            continue
        picture = source / ref
        if not picture.is_file():
            problems.append(f"{ref}: missing (run 'python {script.relative_to(KIT)}')")
            continue
        if not (released / ref).is_file() or (released / ref).read_bytes() != picture.read_bytes():
            problems.append(f"{ref}: not in assignments/{assignment.folder}/ as it is here (run 'autograder release')")
        if picture.stat().st_size > MAX_BYTES:
            problems.append(f"{ref}: {picture.stat().st_size} bytes (at most {MAX_BYTES}: lower the dpi)")
        if picture.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            problems.append(f"{ref}: not a PNG")
        if Path(ref).name not in script_text:
            problems.append(f"{ref}: not made by {script.relative_to(KIT)} (the script that makes the figures "
                            "from the reference must name it)")
    figures = source / "figures"
    unused = sorted(p.relative_to(source).as_posix() for p in figures.glob("*") if p.is_file()) if figures.is_dir() else []
    problems += [f"{rel}: in figures/ but never referenced" for rel in unused if rel not in referenced]
    assert not problems, f"{where}:\n" + "\n".join(problems)
