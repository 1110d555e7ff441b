"""`autograder export gradescope`: the zip, unpacked into a root laid out like Gradescope's
/autograder, set up and run for the reference, the released notebook and a hostile submission.

Gradescope itself is not reachable here; what it does is simulated from its specification:
the zip unpacked into ``source/``, ``setup.sh`` run once (the dependencies' install skipped:
they are already here; the kit itself installed, into a virtual environment that sees this
machine's packages, so that the kit in the zip is what the scrubbed worker imports),
``run_autograder`` run with the student's files in ``submission/``, and
``results/results.json`` read back and validated.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from autograder import config as config_module
from autograder.authoring.export import ExportError, gradescope
from tests.example_course import cli
from tests.test_cli import RESULTS_SCHEMA

KIT = Path(__file__).resolve().parent.parent
COURSE = config_module.load(KIT / "grading.yml")
ASSIGNMENT = COURSE.get("vae")  # quick (~12 s for the reference) and it reads the shipped digits
MODULE = ASSIGNMENT.files[0]


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    """The zip, written by the command an instructor runs."""
    out = tmp_path_factory.mktemp("export") / f"{ASSIGNMENT.id}-autograder.zip"
    done = cli("--config", str(KIT / "grading.yml"), "export", "gradescope", "--assignment", ASSIGNMENT.id,
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> Path:
    """A virtual environment over the packages of the environment running these tests: where
    setup.sh installs the zip's kit (never over the kit this checkout has installed).

    Not ``--system-site-packages``: from inside a venv that reaches the base interpreter's
    packages (an old setuptools, no wheel), not the ones the README's install put in the venv.
    The running environment's site-packages are put on the path as plain entries, so their
    packages import but their .pth files (the checkout's editable install) do not run."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    packages = next((venv / "lib").glob("python3*/site-packages"))
    (packages / "running_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv / "bin"


def _path(python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "PATH": f"{python}:{env.get('PATH', '')}"}


def _unpack(package: Path, root: Path, python: Path) -> Path:
    """A fresh /autograder: source/ (the zip, set up), submission/, results/."""
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    with zipfile.ZipFile(package) as archive:
        for info in archive.infolist():  # zipfile drops the modes; Gradescope's unzip keeps them
            archive.extract(info, root / "source")
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777)
    for script in ("setup.sh", "run_autograder"):  # the whole of each parses, not only the part run here
        assert subprocess.run(["bash", "-n", script], cwd=root / "source").returncode == 0, script
    setup = subprocess.run(["bash", "setup.sh"], cwd=root / "source", capture_output=True, text=True,
                           env={**_path(python), "AUTOGRADER_SKIP_INSTALL": "1"})
    assert setup.returncode == 0 and "dependencies not installed" in setup.stdout, setup.stdout + setup.stderr
    return root


def _run(root: Path, python: Path) -> dict:
    """run_autograder as Gradescope starts it (the environment's python3 first on PATH; no
    PYTHONPATH of ours: the script must find the kit it was shipped with)."""
    env = {**_path(python), "AUTOGRADER_ROOT": str(root)}
    done = subprocess.run([str(root / "source" / "run_autograder")], cwd=root, capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(results, RESULTS_SCHEMA)
    return results


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


# --------------------------------------------------------------------------- what the zip holds


def test_zip_holds_one_suite_one_entry_and_no_solution(package):
    with zipfile.ZipFile(package) as archive:
        names = archive.namelist()
        contents = {n: archive.read(n) for n in names}
        modes = {n: (archive.getinfo(n).external_attr >> 16) & 0o777 for n in names}
    assert {"setup.sh", "run_autograder", "requirements.txt", "kit/grading.yml", "kit/pyproject.toml"} <= set(names)
    assert modes["setup.sh"] & 0o111 and modes["run_autograder"] & 0o111
    assert not [n for n in names if "solutions" in Path(n).parts]
    suites = {Path(n).parts[3] for n in names if n.startswith("kit/autograder/suites/")}
    assert suites == {ASSIGNMENT.id}
    assert yaml.safe_load(contents["kit/grading.yml"])["assignments"][0]["thresholds"] == ASSIGNMENT.thresholds
    assert [a["id"] for a in yaml.safe_load(contents["kit/grading.yml"])["assignments"]] == [ASSIGNMENT.id]
    # no solution's bytes anywhere, under whatever name (every file of solutions/, all assignments)
    solutions = [p for p in (KIT / "solutions").rglob("*.py") if p.stat().st_size > 200]
    assert solutions
    for path in solutions:
        assert not [n for n, data in contents.items() if path.read_bytes() in data], path
    # and no other assignment's suite by content either
    for other in COURSE.assignments:
        if other.id != ASSIGNMENT.id:
            test_file = next(COURSE.suite_dir(other).glob("test_*.py")).read_bytes()
            assert not [n for n, data in contents.items() if test_file in data], other.id


def test_zip_is_the_same_bytes_twice(package, tmp_path):
    again = tmp_path / "again.zip"
    gradescope.write_zip(gradescope.package(COURSE, ASSIGNMENT), again)
    assert again.read_bytes() == package.read_bytes()


def test_a_second_suite_or_entry_is_refused():
    files = gradescope.package(COURSE, ASSIGNMENT)
    with pytest.raises(ExportError, match="suites"):
        gradescope._check_package({**files, "kit/autograder/suites/gan/test_gan.py": b""}, COURSE, ASSIGNMENT)
    with pytest.raises(ExportError, match="solution"):
        gradescope._check_package({**files, "kit/solutions/03_vae/vae.py": b""}, COURSE, ASSIGNMENT)
    two = yaml.safe_dump({"assignments": [{"id": "vae"}, {"id": "gan"}]}).encode()
    with pytest.raises(ExportError, match="grading.yml"):
        gradescope._check_package({**files, "kit/grading.yml": two}, COURSE, ASSIGNMENT)


def test_the_torch_index_is_written_as_given_or_refused():
    files = gradescope.package(COURSE, ASSIGNMENT, torch_index="https://example.invalid/whl/cpu")
    assert 'TORCH_INDEX_URL="https://example.invalid/whl/cpu"' in files["setup.sh"].decode()
    for odd in ('x"; rm -rf /; "', "a b", "$(id)"):
        with pytest.raises(ExportError, match="--torch-index"):
            gradescope.package(COURSE, ASSIGNMENT, torch_index=odd)


def test_a_suite_that_refers_to_the_solutions_is_refused(tmp_path):
    for source in ("from solutions.x import y\n", "import solutions\n", "p = ROOT / 'solutions'\n"):
        with pytest.raises(ExportError, match=r"probes.py:1: the suite refers to solutions/"):
            gradescope._check_suite({"probes.py": source.encode()}, tmp_path)
    gradescope._check_suite({"probes.py": b"import torch\nname = 'my solutions'\n"}, tmp_path)  # prose is fine


def test_no_suite_imports_from_solutions():
    for assignment in COURSE.assignments:
        suite = COURSE.suite_dir(assignment)
        gradescope._check_suite(gradescope._tree(suite), suite)


def test_an_unknown_assignment_or_folder_is_one_line(tmp_path):
    done = cli("--config", str(KIT / "grading.yml"), "export", "gradescope", "--assignment", "nope",
               "--out", str(tmp_path / "x.zip"))
    assert done.returncode == 2 and "no assignment with id 'nope'" in done.stderr and "Traceback" not in done.stderr
    done = cli("--config", str(KIT / "grading.yml"), "export", "gradescope", "--assignment", ASSIGNMENT.id,
               "--out", str(tmp_path / "missing" / "x.zip"))
    assert done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_the_submission_folder_is_found_where_the_student_put_it(tmp_path):
    top = tmp_path / "top"
    (top / ASSIGNMENT.folder).mkdir(parents=True)
    (top / ASSIGNMENT.folder / MODULE).write_text("x = 1\n")
    assert gradescope.submission_folder(top, [MODULE]) == top / ASSIGNMENT.folder
    (top / MODULE).write_text("x = 1\n")
    assert gradescope.submission_folder(top, [MODULE]) == top
    notebook = tmp_path / "nb"
    (notebook / "work").mkdir(parents=True)
    (notebook / "work" / Path(MODULE).with_suffix(".ipynb").name).write_text("{}")
    assert gradescope.submission_folder(notebook, [MODULE]) == notebook / "work"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert gradescope.submission_folder(empty, [MODULE]) == empty  # the kit then says what is missing
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / MODULE).write_text("x = 1\n")
    (empty / "link").symlink_to(tmp_path / "elsewhere")  # a link is never followed, nor a loop
    (empty / "loop").symlink_to(empty)
    assert gradescope.submission_folder(empty, [MODULE]) == empty


# --------------------------------------------------------------------------- run as Gradescope runs it


def test_reference_gets_full_marks_with_pictures(package, python, tmp_path):
    root = _unpack(package, tmp_path / "autograder", python)
    # what the worker imports (a scrubbed environment, -s -P): the kit shipped in the zip
    seen = subprocess.run([str(python / "python3"), "-s", "-P", "-c",
                           "import autograder, kitdata; print(autograder.__file__); print(kitdata.__file__)"],
                          capture_output=True, text=True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    kit = root / "source" / "kit"
    assert [Path(line).is_relative_to(kit) for line in seen.stdout.split()] == [True, True], seen.stdout + seen.stderr
    shutil.copy(COURSE.solution_dir(ASSIGNMENT) / MODULE, root / "submission" / MODULE)
    results = _run(root, python)
    assert results["score"] == ASSIGNMENT.max_points
    assert len(results["tests"]) == len(ASSIGNMENT.tests)
    assert all(t["status"] == "passed" and t["output_format"] == "md" for t in results["tests"])
    assert {t["name"]: t["visibility"] for t in results["tests"]} == {n: t.visibility for n, t in ASSIGNMENT.tests.items()}
    assert results["stdout_visibility"] == "hidden" and results["visibility"] == "visible"
    assert "](data:image/png;base64," in results["output"]


def test_skeleton_notebook_gets_zero(package, python, tmp_path):
    """The released notebook, handed in as it is: graded through its cells (autograder.grading.notebook)."""
    root = _unpack(package, tmp_path / "autograder", python)
    notebook = Path(MODULE).with_suffix(".ipynb").name
    shutil.copy(KIT / "assignments" / ASSIGNMENT.folder / notebook, root / "submission" / notebook)
    results = _run(root, python)
    assert results["score"] == 0
    assert "NotImplementedError" in json.dumps(results) or "your code goes here" in json.dumps(results)
    assert all(t["status"] == "failed" and t["score"] == 0 for t in results["tests"])
    assert all(t["output"] for t in results["tests"])  # each failure says why


def test_hostile_submission_cannot_change_the_kit_or_the_results(package, python, tmp_path):
    root = _unpack(package, tmp_path / "autograder", python)
    kit = root / "source" / "kit"
    before = _digest(kit)
    targets = [root / "results" / "results.json", kit / "grading.yml",
               kit / "autograder" / "suites" / ASSIGNMENT.id / f"test_{ASSIGNMENT.id}.py"]
    forged = json.dumps({"score": 1000, "tests": []})
    attack = f"""

import pathlib as _pathlib
for _target in {[str(t) for t in targets]!r}:  # forge the results, loosen the thresholds, empty the suite
    try:
        _pathlib.Path(_target).parent.mkdir(parents=True, exist_ok=True)
        _pathlib.Path(_target).write_text({forged!r})
    except OSError:
        pass
"""
    skeleton = (KIT / "assignments" / ASSIGNMENT.folder / MODULE).read_text()
    (root / "submission" / MODULE).write_text(skeleton + attack)
    results = _run(root, python)
    assert results["score"] == 0 and len(results["tests"]) == len(ASSIGNMENT.tests)
    assert _digest(kit) == before


def test_a_refused_submission_still_gets_results(package, python, tmp_path):
    root = _unpack(package, tmp_path / "autograder", python)
    (root / "submission" / MODULE).symlink_to(KIT / "solutions" / ASSIGNMENT.folder / MODULE)
    results = _run(root, python)
    assert results["score"] == 0 and results["tests"] == []
    assert "not graded" in results["output"] and "symbolic link" in results["output"]


def test_torch_comes_from_the_cpu_index_unless_cuda_is_asked_for(tmp_path):
    """Gradescope's and GitHub's machines have no GPU: the exports install torch and torchvision
    from PyTorch's CPU index by default; --cuda-torch keeps the package index's builds."""
    from autograder.authoring.export import CPU_TORCH_INDEX

    for extra, index in (((), CPU_TORCH_INDEX), (("--cuda-torch",), "")):
        out = tmp_path / f"zip{len(extra)}.zip"
        done = cli("--config", str(KIT / "grading.yml"), "export", "gradescope", "--assignment", ASSIGNMENT.id,
                   "--out", str(out), *extra)
        assert done.returncode == 0, done.stderr
        with zipfile.ZipFile(out) as archive:
            setup = archive.read("setup.sh").decode()
        assert f'TORCH_INDEX_URL="{index}"' in setup
        assert re.search(r'--index-url "\$TORCH_INDEX_URL" "torch[^"]*" "torchvision[^"]*"', setup), setup
        flow = tmp_path / f"flow{len(extra)}"
        done = cli("--config", str(KIT / "grading.yml"), "export", "github", "--assignment", ASSIGNMENT.id,
                   "--out", str(flow), *extra)
        assert done.returncode == 0, done.stderr
        workflow = next(flow.rglob("*.yml")).read_text()
        assert f'TORCH_INDEX_URL: "{index}"' in workflow
    both = cli("--config", str(KIT / "grading.yml"), "export", "gradescope", "--assignment", ASSIGNMENT.id,
               "--out", str(tmp_path / "x.zip"), "--cuda-torch", "--torch-index", CPU_TORCH_INDEX)
    assert both.returncode == 2 and "do not go together" in both.stderr
