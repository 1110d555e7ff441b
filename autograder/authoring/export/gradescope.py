"""Gradescope: the autograder zip (`autograder export gradescope`) and what runs inside it.

The zip is what Gradescope's "zip file upload" expects, unpacked into ``/autograder/source``:

    setup.sh          run once, as root, when Gradescope builds the image: the kit's dependencies,
                      then the kit itself (``pip install -e kit``)
    run_autograder    run as root for every submission: ``python3 -m autograder.authoring.export.gradescope``
    requirements.txt  the kit's dependencies (read from its pyproject.toml)
    kit/              the engine, kitdata, ONE assignment's hidden suite, a grading.yml holding
                      only that assignment (no solution, no other suite or entry), a pyproject.toml

The kit is installed in place (editable), as in the kit's own checkout: the worker, started
with a scrubbed environment, imports the engine and kitdata through that installation, and
``kit/`` is both the engine and the course root, which the engine already keeps out of the
worker's reach (runner._policy hides the course root and the suite). Gradescope
runs ``run_autograder`` as root, so the worker runs as a uid of its own (the ``identity``
layer); the grading's ``report.md``, printed to the stdout Gradescope shows instructors only,
says which layers held.

At run time (``main``) the submission is graded through ``autograder grade`` itself, so
whatever that command accepts (a ``.py``; a notebook once the kit grades notebooks) works here
too, and Gradescope's ``results.json`` is the kit's own (reports.gradescope: per-test status,
visibility, ``output_format: md``), with the pictures of the tests a student may already see
embedded in the top-level output. A submission the kit refuses still gets a results.json:
0 points and the one-line reason.

Tests only: ``AUTOGRADER_ROOT`` moves ``/autograder`` (the kit's tests unpack the zip into a
temporary root); ``AUTOGRADER_SKIP_INSTALL=1`` makes setup.sh install no package but the kit
(the dependencies are there already; the tests install the kit into a virtual environment).
"""

from __future__ import annotations

import ast
import base64
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import yaml

from autograder.escape import markdown, one_line
from autograder.authoring.export import CPU_TORCH_INDEX, ExportError

KIT = "kit"                       # the kit's folder inside the zip (/autograder/source/kit)
ROOT_VARIABLE = "AUTOGRADER_ROOT"  # tests only: where /autograder is
# Pictures go into results.json as data URIs; past these sizes they are named, not embedded
# (a results.json of many megabytes is slow for Gradescope to store and show).
PICTURE_BYTES = 1 << 20
PICTURES_TOTAL = 4 << 20
JUNK_PARTS = frozenset({"__pycache__", ".pytest_cache", ".ipynb_checkpoints", ".DS_Store"})

SETUP_SH = """\
#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu).
# It installs Python and the kit's dependencies; the kit itself is in ./kit, used in place.
set -euo pipefail
cd "$(dirname "$0")"
if [ "${AUTOGRADER_SKIP_INSTALL:-0}" = 1 ]; then  # the kit's own tests: dependencies already there
    echo "setup.sh: AUTOGRADER_SKIP_INSTALL=1, dependencies not installed"
    python3 -m pip install --quiet --no-deps --no-build-isolation --no-index -e ./kit
    exit 0
fi
apt-get update -q
apt-get install -y -q python3 python3-pip libseccomp2
# CPU-only torch (PyTorch's CPU index, the export's default): Gradescope has no GPU, and it is a
# few hundred MB instead of ~5 GB. torchvision from the same index, or the package index's would
# pull its own CUDA torch back in. Empty (export --cuda-torch): the package index's builds.
TORCH_INDEX_URL="__TORCH_INDEX_URL__"
if [ -n "$TORCH_INDEX_URL" ]; then
    python3 -m pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" "__TORCH__" "__TORCHVISION__"
fi
python3 -m pip install --no-cache-dir -r requirements.txt
# The kit in place: the worker (a scrubbed environment, no PYTHONPATH) imports it from here.
python3 -m pip install --no-cache-dir --no-deps -e ./kit
# Which containment layers hold in this image (shown in the build log).
PYTHONPATH="$PWD/kit:$PWD/kit/datasets" python3 -m autograder.cli --config kit/grading.yml doctor || true
"""

RUN_AUTOGRADER = """\
#!/usr/bin/env bash
# Gradescope runs this as root for every submission; it writes /autograder/results/results.json.
ROOT="${AUTOGRADER_ROOT:-/autograder}"
export PYTHONPATH="$ROOT/source/kit:$ROOT/source/kit/datasets"
cd "$ROOT"
exec python3 -m autograder.authoring.export.gradescope --root "$ROOT" --assignment "__ASSIGNMENT__"
"""


# --------------------------------------------------------------------------- building the zip


def _is_junk(path: PurePosixPath) -> bool:
    return any(p in JUNK_PARTS for p in path.parts) or path.suffix in (".pyc", ".pyo")


def _tree(folder: Path, pattern: str = "*") -> dict[str, bytes]:
    """Every regular file under ``folder`` matching ``pattern`` (relative posix path -> bytes)."""
    found = {}
    for path in sorted(folder.rglob(pattern)):
        rel = PurePosixPath(path.relative_to(folder).as_posix())
        if path.is_file() and not path.is_symlink() and not _is_junk(rel):
            found[str(rel)] = path.read_bytes()
    return found


def _check_suite(files: dict[str, bytes], suite: Path) -> None:
    """A suite that imports or opens the solutions would need them in the zip: refuse it."""
    for rel, data in files.items():
        if not rel.endswith(".py"):
            continue
        for node in ast.walk(ast.parse(data, filename=str(suite / rel))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value == "solutions" or node.value.startswith("solutions/"):
                    names = [node.value]
            if any(n == "solutions" or n.startswith(("solutions.", "solutions/")) for n in names):
                raise ExportError(f"{suite / rel}:{node.lineno}: the suite refers to solutions/ "
                                  "(the grader's zip never holds a solution; keep references in the suite)")


def course_entry(cfg, assignment) -> dict:
    """The assignment's entry of grading.yml as written (thresholds and all), without ``suite``:
    in the zip the suite sits where the engine looks by default."""
    raw = yaml.safe_load(cfg.path.read_text(encoding="utf-8"))
    entry = dict(next(a for a in raw["assignments"] if a.get("id") == assignment.id))
    entry.pop("suite", None)
    return {"course": cfg.course.course, "isolation": cfg.isolation, "assignments": [entry]}


def requirements() -> list[str]:
    """The kit's dependencies, as its pyproject.toml lists them."""
    import autograder

    pyproject = Path(autograder.__file__).resolve().parent.parent / "pyproject.toml"
    try:
        import tomllib

        return list(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"])
    except (ImportError, OSError, KeyError):  # Python 3.10, or the kit installed without its source
        from importlib.metadata import requires

        return [r for r in requires("genai-autograder-kit") or [] if "extra ==" not in r]


def _pyproject(deps: list[str]) -> str:
    """The kit's pyproject.toml in the zip: the kit's packages and dependencies (without a script
    or a README: run_autograder calls the module)."""
    from autograder.authoring.release import pyproject

    return pyproject("genai-autograder-kit", "0.1.0",
                     "The kit as Gradescope's image holds it: one assignment's hidden suite.", deps, """\
[tool.setuptools.packages.find]
where = [".", "datasets"]
include = ["autograder*", "kitdata*"]

[tool.setuptools.package-data]
kitdata = ["*.npz"]
""", scripts=False)


def package(cfg, assignment, torch_index: str = CPU_TORCH_INDEX) -> dict[str, bytes]:
    """The zip's files (path -> bytes): scripts, requirements and the one-assignment kit."""
    import autograder
    import kitdata

    engine = Path(autograder.__file__).resolve().parent
    data = Path(kitdata.__file__).resolve().parent
    if not re.fullmatch(r"[^\s\"'$`\\]*", torch_index):  # it goes into setup.sh between quotes
        raise ExportError(f"--torch-index: {torch_index!r} is not a valid value")
    suite = cfg.suite_dir(assignment)
    if not (suite / "probes.py").is_file():
        raise ExportError(f"{suite}: no hidden suite for {assignment.id} (a suite needs probes.py)")
    suite_files = _tree(suite)
    _check_suite(suite_files, suite)
    deps = requirements()
    torch = next((d for d in deps if re.match(r"torch\b(?!vision)", d)), "torch")
    torchvision = next((d for d in deps if d.startswith("torchvision")), "torchvision")
    files = {
        "setup.sh": SETUP_SH.replace("__TORCH_INDEX_URL__", torch_index).replace("__TORCHVISION__", torchvision)
                     .replace("__TORCH__", torch).encode(),
        "run_autograder": RUN_AUTOGRADER.replace("__ASSIGNMENT__", assignment.id).encode(),
        "requirements.txt": ("\n".join(deps) + "\n").encode(),
        f"{KIT}/pyproject.toml": _pyproject(deps).encode(),
        f"{KIT}/grading.yml": yaml.safe_dump(course_entry(cfg, assignment), sort_keys=False,
                                             allow_unicode=True).encode(),
    }
    # The engine: every module but the suites (only this assignment's goes in, below).
    for rel, content in _tree(engine, "*.py").items():
        if not rel.startswith("suites/"):
            files[f"{KIT}/autograder/{rel}"] = content
    files.update({f"{KIT}/datasets/kitdata/{rel}": content for rel, content in _tree(data).items()})
    files.update({f"{KIT}/autograder/suites/{assignment.id}/{rel}": content for rel, content in suite_files.items()})
    _check_package(files, cfg, assignment)
    return files


def _check_package(files: dict[str, bytes], cfg, assignment) -> None:
    """What must never be in the zip, checked on the finished list (not trusted to the code above)."""
    suites = {PurePosixPath(p).parts[3] for p in files if p.startswith(f"{KIT}/autograder/suites/")}
    if suites != {assignment.id}:
        raise ExportError(f"the zip would hold the suites {sorted(suites)}, not only {assignment.id}'s")
    for path in files:
        if "solutions" in PurePosixPath(path).parts:
            raise ExportError(f"the zip would hold {path}, a solution file")
    held = [a["id"] for a in yaml.safe_load(files[f"{KIT}/grading.yml"])["assignments"]]
    if held != [assignment.id]:
        raise ExportError(f"the zip's grading.yml would hold {held}, not only {assignment.id}")


def write_zip(files: dict[str, bytes], out: Path) -> None:
    """A deterministic zip (sorted names, fixed dates); the two scripts executable."""
    out = Path(out)
    if not out.parent.is_dir():
        raise ExportError(f"{out}: its folder {out.parent} does not exist")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            mode = 0o755 if name in ("setup.sh", "run_autograder") else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    out.write_bytes(buffer.getvalue())


def export(cfg, assignment, out: Path, torch_index: str = CPU_TORCH_INDEX) -> list[str]:
    """Write the zip; return what it holds, one line per part."""
    files = package(cfg, assignment, torch_index)
    write_zip(files, out)
    suite = [p for p in files if p.startswith(f"{KIT}/autograder/suites/")]
    return [f"{out}: {len(files)} files, {Path(out).stat().st_size / 1e6:.1f} MB",
            f"  setup.sh, run_autograder, requirements.txt ({len(requirements())} dependencies)",
            f"  {KIT}/grading.yml: the {assignment.id} entry only",
            f"  {KIT}/autograder/suites/{assignment.id}/: {len(suite)} files (no other suite, no solution)"]


# --------------------------------------------------------------------------- inside Gradescope


def submission_folder(submitted: Path, files: list[str]) -> Path:
    """The folder holding the assignment's files: the submission itself, or the one folder in it
    that does (a student who zipped a folder, or submitted a repository). A name counts as a
    ``.py`` or as a notebook of the same stem, so notebooks are found once the kit grades them."""
    def holds(folder: Path) -> bool:
        return any((folder / f).is_file() or (folder / f).with_suffix(".ipynb").is_file() for f in files)

    if holds(submitted):
        return submitted
    inside = []
    for folder, subfolders, _ in os.walk(submitted):  # never follows a link: a submission is data
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        if holds(Path(folder)):
            inside.append(Path(folder))
    return inside[0] if len(inside) == 1 else submitted


def _pictures(report: Path) -> tuple[list[str], list[str]]:
    """The pictures of the tests a student may see now (those feedback.md shows), as markdown:
    data-URI images, or their names past the size caps."""
    feedback = report / "feedback.md"
    names = re.findall(r"^!\[[^\]]*\]\(([^)]+)\)$", feedback.read_text(encoding="utf-8"), re.M) if feedback.is_file() else []
    embedded, named, total = [], [], 0
    for name in names:
        path = report / name
        if path.suffix.lower() != ".png" or not path.is_file() or path.is_symlink():
            continue
        size = path.stat().st_size
        if size > PICTURE_BYTES or total + size > PICTURES_TOTAL:
            named.append(name)
            continue
        total += size
        encoded = base64.b64encode(path.read_bytes()).decode("ascii")
        embedded.append(f"![{markdown(name)}](data:image/png;base64,{encoded})")
    return embedded, named


def refused(assignment_id: str, reason: str) -> dict:
    """results.json for a submission the kit could not grade: 0 points and the reason."""
    return {"score": 0.0, "output": markdown(f"{assignment_id}: not graded: {one_line(reason)}"),
            "output_format": "md", "visibility": "visible", "stdout_visibility": "hidden", "tests": []}


def grade(root: Path, assignment_id: str) -> dict:
    """Grade ``root/submission`` with ``autograder grade`` and return Gradescope's results."""
    kit = root / "source" / KIT
    config = kit / "grading.yml"
    files = yaml.safe_load(config.read_text(encoding="utf-8"))["assignments"][0]["files"]
    submission = submission_folder(root / "submission", files)
    with tempfile.TemporaryDirectory(prefix="gradescope-") as tmp:
        report = Path(tmp) / "report"
        command = [sys.executable, "-m", "autograder.cli", "--config", str(config), "grade", str(submission),
                   "--assignment", assignment_id, "--out", str(report), "--quiet"]
        print("$", " ".join(command), flush=True)
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        print(done.stdout + done.stderr, flush=True)  # stdout_visibility hidden: instructors only
        if not (report / "results.json").is_file():
            errors = [line for line in done.stderr.splitlines() if line.startswith("autograder: ")]
            return refused(assignment_id, errors[-1].split(": ", 2)[-1] if errors else
                           f"the grader exited with code {done.returncode}")
        if (report / "report.md").is_file():  # the instructor's report, isolation layers included
            print((report / "report.md").read_text(encoding="utf-8"), flush=True)
        results = json.loads((report / "results.json").read_text(encoding="utf-8"))
        embedded, named = _pictures(report)
    if embedded or named:
        results["output"] += "\n\n" + "\n\n".join(embedded)
        if named:
            results["output"] += "\n\n" + markdown(f"(pictures too large to show here: {', '.join(named)})")
        results["output_format"] = "md"
    return results


def main(argv: list[str] | None = None) -> int:
    """run_autograder's entry point: always leaves a results.json, exits 0 so Gradescope reads it."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m autograder.authoring.export.gradescope",
                                     description="grade /autograder/submission for Gradescope")
    parser.add_argument("--root", type=Path, default=Path(os.environ.get(ROOT_VARIABLE, "/autograder")))
    parser.add_argument("--assignment", required=True)
    args = parser.parse_args(argv)
    out = args.root / "results" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        results = grade(args.root, args.assignment)
    except Exception as error:  # a broken image or kit: the student sees one line, not nothing
        print(f"run_autograder: {type(error).__name__}: {error}", file=sys.stderr)
        results = refused(args.assignment, "the autograder failed; your instructor has been told")
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}: {results.get('score', 0):g} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
