"""What students install holds no answer.

`autograder release --student-bundle DIR` is built once here, from the real kit, and every
file in it is read, the wheel's members included:

* no file of autograder/suites/, no solution file that release changes (the modules, the
  handouts with their instructor notes), nothing named hidden*, no path through suites/ or
  solutions/;
* no code line from inside a solution region (the detectors of tests/test_release_kit.py);
* no hidden-suite code line, no threshold name or threshold value from grading.yml (values:
  in every file but the kit's engine and kitdata modules copied unchanged, whose numbers are
  their own), no name of a test that students may not see yet.

The detectors are shown to work on a copy of the bundle with leaks planted in it. Then the
wheel goes into a fresh virtual environment (the wheel alone, ``--no-deps``; torch through a
path file, see ``_venv``), the test proves that ``autograder`` and ``kitdata`` are imported
from that wheel and that the hidden suites cannot be reached from it, and runs
``autograder check`` on a released skeleton under a download's name (``03_vae-main``): it
works, and fails cleanly. ``KIT_BUNDLE_ALL=1`` checks every released assignment there.
Everything is derived from grading.yml, so new assignments are covered as they appear.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from autograder import config as config_module
from autograder.authoring.release import COURSE_FILE, render_assignment, student_bundle
from tests.test_release_kit import code_lines, files, secret_solution_lines, sources

KIT = Path(__file__).resolve().parents[1]
CFG = config_module.load(KIT / "grading.yml")
RELEASED = [a for a in CFG.assignments if CFG.solution_dir(a).is_dir()]
# Threshold values this common ("0.5", "8", "1.0") are in any code; the ones checked are the
# ones that say something: more than one significant digit, or a decimal fraction off the
# round values (0.92, 25.5, -0.05, 0.03), written as grading.yml writes them.
COMMON = {"0.1", "0.2", "0.25", "0.3", "0.4", "0.5", "0.6", "0.7", "0.75", "0.8", "0.9", "1.0", "2.0",
          "0.01", "0.02", "0.05", "10.0", "20.0", "100"}
# Lines of public checks where a number equal to one of the assignment's thresholds means
# something else, each reviewed (the line itself is the key: an edit is reviewed again).
REVIEWED = {
    "if not 0.25 < zeroed < 0.35:": "autoencoders: bounds on the share of pixels masking_noise zeroes at "
                                    "p = 0.3, not mix_excess_tiers",
    "Requires-Dist: pyyaml>=6.0": "the student package's dependency on PyYAML 6, not gen_fid_tiers",
}
SECRET_KEY = re.compile(r"tiers|floor|max|min|tolerance|below|gain|ceiling|bound", re.I)


# --- reading a bundle -----------------------------------------------------------------------

def members(root: Path):
    """(name, bytes) of every file under root; a zip's (a wheel's) members as name!member."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        data = path.read_bytes()
        yield rel, data
        if data[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                for info in archive.infolist():
                    if not info.is_dir():
                        yield f"{rel}!{info.filename}", archive.read(info)


def text_of(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\0" in text else text


def digest(data: bytes) -> str:
    return hashlib.sha256(data.replace(b"\r\n", b"\n").strip()).hexdigest()


# --- what counts as an answer ---------------------------------------------------------------

def forbidden_files(kit: Path) -> dict[str, str]:
    """digest -> where: every hidden-suite file, and every solution file that students never get
    as it is (release changes it, or it is private: hidden*, dotfiles)."""
    found = {}
    for path in files(kit / "autograder" / "suites"):
        if len(path.read_bytes().strip()) > 40:
            found[digest(path.read_bytes())] = path.relative_to(kit).as_posix()
    for a in RELEASED:
        source = CFG.solution_dir(a)
        released = render_assignment(source)
        for path in files(source):
            rel = path.relative_to(source).as_posix()
            data = path.read_bytes()
            if len(data.strip()) > 40 and released.get(rel) != data:
                found[digest(data)] = path.relative_to(kit).as_posix()
    return found


def suite_lines(kit: Path) -> set[str]:
    """Code lines of the hidden suites that appear nowhere in solutions/ or in the engine the
    student package carries (so a student could only have them from the suite)."""
    lines = set()
    for path in files(kit / "autograder" / "suites"):
        for text in sources(path) or []:
            lines |= code_lines(text)
    public = "\n".join(t for p in files(kit / "solutions") for t in sources(p) or [])
    public += "\n".join(t for p in files(kit / "autograder") if "suites" not in p.parts for t in sources(p) or [])
    public += "\n".join(t for p in files(kit / "datasets" / "kitdata") for t in sources(p) or [])
    return {line for line in lines if line not in public}


def _numbers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)


def secret_thresholds(only=None) -> tuple[set[str], set[str]]:
    """(names, values as written) of the verdict thresholds in grading.yml (tiers, floors,
    maxima...; settings such as steps and batch sizes are not secret), of every assignment or of
    the one in folder ``only``. For tiers the thresholds, not the credit fractions; only the
    informative values (see COMMON)."""
    names, values = set(), set()
    for a in CFG.assignments:
        if only is not None and a.folder != only:
            continue
        for key, value in a.thresholds.items():
            if not SECRET_KEY.search(key):
                continue  # a setting (steps, batch size, z_dim): its name is any code's
            names.add(key)
            if "tiers" in key and isinstance(value, list):
                value = [tier[0] for tier in value if isinstance(tier, list) and tier]
            for number in _numbers(value):
                written = repr(float(number)) if isinstance(number, float) else str(number)
                if written not in COMMON and not (isinstance(number, int) and abs(number) < 100):
                    values.add(written)
    return names, values


def not_yet_visible_tests() -> set[str]:
    return {name for a in CFG.assignments for name, t in a.tests.items() if t.visibility != "visible"}


def leaks(bundle: Path) -> list[str]:
    forbidden = forbidden_files(KIT)
    solution = secret_solution_lines(KIT)
    suite = suite_lines(KIT)
    names, values = secret_thresholds()
    later = not_yet_visible_tests()
    # The kit's own engine and data modules, copied into the wheel unchanged: numbers in them
    # (a grid's grey 0.35, a quadrature step) are their own, since thresholds live in grading.yml
    # only; the other detectors still read them.
    engine = {digest(p.read_bytes()) for root in (KIT / "autograder", KIT / "datasets" / "kitdata")
              for p in files(root) if "suites" not in p.relative_to(KIT).parts and p.suffix == ".py"}

    def value_pattern(rel: str):
        """An assignment's threshold values in its own folder; every one in what all share."""
        parts = rel.split("/")
        mine = secret_thresholds(parts[1])[1] if parts[0] == "assignments" and len(parts) > 2 else values
        return re.compile(r"(?<![\w.])(" + "|".join(map(re.escape, sorted(mine))) + r")(?![\w.])") if mine else None

    name_pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names | later))) + r")\b")
    found = []
    for rel, data in members(bundle):
        parts = re.split(r"[/!]", rel)
        if any(p.lower().startswith("hidden") for p in parts):
            found.append(f"{rel}: named hidden*")
        if {"suites", "solutions"} & set(parts):
            found.append(f"{rel}: a path through suites/ or solutions/")
        if digest(data) in forbidden:
            found.append(f"{rel}: a copy of {forbidden[digest(data)]}")
        text = text_of(data)
        if text is None:
            continue
        found += [f"{rel}: solution line {line!r}" for line in sorted(solution) if line in text]
        found += [f"{rel}: hidden suite line {line!r}" for line in sorted(suite) if line in text]
        found += [f"{rel}: {m.group(1)!r} (a threshold's or not-yet-visible test's name)"
                  for m in name_pattern.finditer(text)]
        pattern = None if digest(data) in engine else value_pattern(rel)
        if pattern:
            for number, line in enumerate(text.split("\n"), 1):
                if line.strip() in REVIEWED:
                    continue
                for m in pattern.finditer(line):
                    found.append(f"{rel}:{number}: threshold value {m.group(1)} in {line.strip()[:80]!r}")
    return found


# --- the bundle -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bundle")
    os.chmod(root, 0o755)  # the venv below is read by the worker's own uid when the kit runs as root
    out = root / "bundle"
    student_bundle(CFG, out)
    return out


def wheel_of(bundle: Path) -> Path:
    wheels = list(bundle.glob("*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_bundle_layout(bundle):
    assert sorted(p.name for p in (bundle / "assignments").iterdir()) == sorted(a.folder for a in RELEASED)
    for a in RELEASED:
        assert (bundle / "assignments" / a.folder / "checks" / "probes.py").is_file(), a.folder
    install = (bundle / "INSTALL.md").read_text()
    assert f"pip install {wheel_of(bundle).name}" in install and "autograder check" in install
    with zipfile.ZipFile(wheel_of(bundle)) as wheel:
        names = set(wheel.namelist())
    assert {"autograder/cli.py", "autograder/grading/judge/plugin.py", "autograder/sandbox/worker.py", f"autograder/{COURSE_FILE}",
            "kitdata/digits.py", "kitdata/metrics.py", "kitdata/digits_train.npz"} <= names
    assert not any(n.startswith(("autograder/suites", "tests/")) or n.endswith("release.py") for n in names)


def test_student_course_file(bundle):
    course = config_module.load(bundle / COURSE_FILE)
    raw = yaml.safe_load((bundle / COURSE_FILE).read_text())
    assert [a.id for a in course.assignments] == [a.id for a in RELEASED]
    for mine, theirs in zip(CFG.assignments, course.assignments):
        assert theirs.thresholds == {}
        visible = {n: t for n, t in mine.tests.items() if t.visibility == "visible"}
        assert theirs.tests == visible
        assert theirs.tests_after_due_date == len(mine.tests) - len(visible)
        assert theirs.limits == mine.limits
        assert theirs.checks, f"{theirs.id}: no public check listed"
    assert all("thresholds" not in a for a in raw["assignments"])


def test_bundle_holds_no_answer(bundle):
    found = leaks(bundle)
    assert not found, f"{len(found)} leak(s) in the student bundle:\n" + "\n".join(found[:40])


def test_detectors_find_planted_leaks(bundle, tmp_path):
    """Each kind of leak, planted in a copy of the bundle (inside the wheel, where it is
    hardest to see), is found: an empty answer above then means something."""
    planted = tmp_path / "planted"
    shutil.copytree(bundle, planted)
    suite_file = next(p for p in files(KIT / "autograder" / "suites") if p.name.startswith("test_"))
    solution = next(a for a in RELEASED)
    module = CFG.solution_dir(solution) / solution.files[0]
    names, values = secret_thresholds()
    later = sorted(not_yet_visible_tests() or {"test_nothing_hidden"})
    wheel = wheel_of(planted)
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("autograder/extra/copied.py", suite_file.read_bytes())
        archive.writestr("kitdata/notes.txt", f"threshold = {sorted(values)[0]}\n")
    (planted / "assignments" / "reference.py").write_bytes(module.read_bytes())
    (planted / "hidden_notes.md").write_text(f"{sorted(names)[0]}: see {later[0]}\n")
    found = "\n".join(leaks(planted))
    assert f"!autograder/extra/copied.py: a copy of {suite_file.relative_to(KIT).as_posix()}" in found
    assert "kitdata/notes.txt:1: threshold value" in found
    assert "assignments/reference.py: a copy of" in found
    assert "assignments/reference.py: solution line" in found
    assert "hidden_notes.md: named hidden*" in found
    assert f"{sorted(names)[0]!r} (a threshold's" in found


def _venv(root: Path, wheel: Path) -> Path:
    """A fresh venv holding the wheel alone (no dependencies, no index). Torch and the other
    dependencies come from this interpreter's site-packages through a path file, which adds
    the folder to sys.path without running its .pth files: the kit's own editable install
    there stays invisible, as on a student's machine. (``--system-site-packages`` would run
    it, and the kit's hidden suites would be importable in the venv.)"""
    import site

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "_course_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                    "--no-index", "--quiet", str(wheel)], check=True, capture_output=True)
    return venv


PROBE = """
import importlib.util, sys
import autograder, kitdata, kitdata.digits
print(autograder.__file__); print(kitdata.__file__)
def absent(name):  # find_spec raises where the parent package itself is absent
    try:
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:
        return True
for name in ("autograder.suites", "autograder.authoring", "autograder.authoring.release", "autograder.classroom",
             "autograder.classroom.gradebook", "kitdata.calibrate"):
    assert absent(name), name
assert not absent("autograder.grading.runner")  # the check is not vacuous
try:
    kitdata.digits.load_digits("heldout")
except ValueError as error:
    print("heldout refused")
assert kitdata.digits.load_digits("train")[0].shape == (1497, 64)
"""


def test_bundle_installs_and_checks_a_skeleton(bundle, tmp_path_factory):
    root = tmp_path_factory.mktemp("student")
    os.chmod(root, 0o755)
    venv = _venv(root, wheel_of(bundle))
    python, autograder = venv / "bin" / "python", venv / "bin" / "autograder"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    work = root / "work"  # a student's folder: no grading.yml, not the kit
    work.mkdir()
    probe = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, cwd=work, env=env)
    assert probe.returncode == 0, probe.stderr[-2000:]
    first, second, refused = probe.stdout.split("\n")[:3]
    assert first.startswith(site) and second.startswith(site), (site, first, second)
    assert refused == "heldout refused"
    instructor = subprocess.run([str(autograder), "grade", ".", "--assignment", RELEASED[0].id],
                                capture_output=True, text=True, cwd=work, env=env)
    assert instructor.returncode == 2 and "student package" in instructor.stderr, instructor.stderr
    listed = subprocess.run([str(autograder), "list"], capture_output=True, text=True, cwd=work, env=env)
    assert listed.returncode == 0 and all(a.id in listed.stdout for a in RELEASED)
    assert not (not_yet_visible_tests() & set(re.findall(r"test_\w+", listed.stdout)))

    wanted = RELEASED if os.environ.get("KIT_BUNDLE_ALL") else [
        next((a for a in RELEASED if a.id == "vae"), RELEASED[0])]
    for a in wanted:
        folder = work / f"{a.folder}-main"  # as a zip download names it
        shutil.copytree(bundle / "assignments" / a.folder, folder)
        done = subprocess.run([str(autograder), "check", folder.name], capture_output=True, text=True,
                              cwd=work, env=env, timeout=300)
        out = done.stdout + done.stderr
        assert done.returncode == 1, f"{a.id}: exit {done.returncode}\n{out[-3000:]}"
        assert "Traceback" not in out and "internal error" not in out and "grader error" not in out, out[-3000:]
        assert f"public checks of {a.id}" in done.stderr and "1 torch thread" in done.stderr
        fails = re.findall(r"^  FAIL  (test_\w+)", done.stdout, re.M)
        assert fails and re.search(r"^0 passed, \d+ failed$", done.stdout, re.M), done.stdout
        assert "NotImplementedError" in done.stdout, done.stdout[-2000:]
