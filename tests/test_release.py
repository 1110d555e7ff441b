"""`autograder release` on a tiny fake kit (tests/fixtures/release_example): skeletons,
handouts, notebooks, public checks, and the drift check."""
import importlib.util
import inspect
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder.authoring.release import ReleaseError, release, render_assignment

FIXTURE = Path(__file__).parent / "fixtures" / "release_example"
DEMO = "01_demo"


@pytest.fixture
def kit(tmp_path):
    """A fresh copy of the fixture kit (release writes into it)."""
    shutil.copytree(FIXTURE, tmp_path / "kit")
    return tmp_path / "kit"


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rendered(kit):
    return render_assignment(kit / "solutions" / DEMO)


def text(kit, rel):
    return rendered(kit)[rel].decode("utf-8")


# --- .py: skeletons -----------------------------------------------------------------------

def test_skeleton_raises_where_the_solution_was_and_keeps_the_rest(kit, tmp_path):
    (tmp_path / "skeleton.py").write_bytes(rendered(kit)["demo.py"])
    skeleton = load(tmp_path / "skeleton.py", "release_demo_skeleton")  # imports cleanly
    solution = load(kit / "solutions" / DEMO / "demo.py", "release_demo_solution")
    import torch

    x = torch.randn(5, 3)
    with pytest.raises(NotImplementedError):
        skeleton.gaussian_log_prob(x, x, x)
    with pytest.raises(NotImplementedError):
        skeleton.DiagonalGaussian(3).fit(x)
    # Code outside the regions is the student's to keep, and still works.
    assert skeleton.DiagonalGaussian(3).sample(4).shape == (4, 3)
    assert skeleton.LOG_2PI == solution.LOG_2PI
    for name in ("gaussian_log_prob", "DiagonalGaussian.fit", "DiagonalGaussian.sample"):
        obj_s, obj_r = skeleton, solution
        for part in name.split("."):
            obj_s, obj_r = getattr(obj_s, part), getattr(obj_r, part)
        assert inspect.signature(obj_s) == inspect.signature(obj_r), name
        assert inspect.getdoc(obj_s) == inspect.getdoc(obj_r), name
    assert inspect.getdoc(skeleton.DiagonalGaussian) == inspect.getdoc(solution.DiagonalGaussian)


def test_skeleton_contains_no_solution_line_and_keeps_indentation(kit):
    skeleton = text(kit, "demo.py")
    compile(skeleton, "demo.py", "exec")
    for secret in ("squared_error = (x - mu).pow(2)", "x.var(dim=0, unbiased=False)",
                   "BEGIN SOLUTION", "END SOLUTION"):
        assert secret not in skeleton
    stub = 'raise NotImplementedError("your code goes here (see the handout)")'
    assert "\n    # YOUR CODE HERE\n    " + stub + "\n" in skeleton          # in the function
    assert "\n        # YOUR CODE HERE\n        " + stub + "\n" in skeleton  # in the method
    assert skeleton.count(stub) == 2


def _edit(kit, rel, old, new):
    path = kit / "solutions" / DEMO / rel
    content = path.read_text()
    assert content.count(old) == 1, old
    path.write_text(content.replace(old, new))


@pytest.mark.parametrize("old, new, line, why", [
    ("        ### END SOLUTION\n        return self", "        return self", 30, "is never closed"),
    ("    ### END SOLUTION\n\n\nclass", "\n\nclass", 29, "inside the region opened on line 15"),
    ("    ### BEGIN SOLUTION\n    squared", "    squared", 17, "without a 'BEGIN SOLUTION' before it"),
])
def test_unbalanced_markers_name_the_file_and_line(kit, old, new, line, why):
    _edit(kit, "demo.py", old, new)
    with pytest.raises(ReleaseError) as error:
        rendered(kit)
    assert f"demo.py:{line}:" in str(error.value)
    assert why in str(error.value)


def test_a_skeleton_that_is_not_python_is_refused(kit):
    # A region that ends inside an expression leaves a dangling bracket behind.
    _edit(kit, "demo.py", "    return -0.5 * (logvar + squared_error + LOG_2PI).sum(dim=-1)\n",
          "    ### END SOLUTION\n    return -0.5 * (\n    ### BEGIN SOLUTION\n"
          "        logvar + squared_error + LOG_2PI).sum(dim=-1)\n")
    with pytest.raises(ReleaseError, match=r"demo\.py: the generated skeleton is not valid Python"):
        rendered(kit)


def test_a_region_outside_any_function_is_refused(kit):
    _edit(kit, "demo.py", "LOG_2PI = math.log(2 * math.pi)\n",
          "### BEGIN SOLUTION\nLOG_2PI = math.log(2 * math.pi)\n### END SOLUTION\n")
    with pytest.raises(ReleaseError, match=r"demo\.py: a solution region outside any function"):
        rendered(kit)


def test_markers_in_a_file_release_cannot_clear_are_refused(kit):
    (kit / "solutions" / DEMO / "notes.txt").write_text("a\n### BEGIN SOLUTION\nb\n### END SOLUTION\n")
    with pytest.raises(ReleaseError, match=r"notes\.txt"):
        rendered(kit)


# --- handouts and notebooks -----------------------------------------------------------------

def test_instructor_notes_are_stripped_from_the_handout(kit):
    handout = text(kit, "handout.md")
    # the whole section, its fenced code block (whose '# comment' is no heading) and subsection
    for secret in ("Instructor notes", "SECRET-CALIBRATION", "calibration run", "for seed in range(5)",
                   "Bug bank measurements", "SECRET-BUGBANK"):
        assert secret not in handout
    # ... and nothing else: the next section of the same level is kept.
    assert "## Submitting\n\nSubmit `demo.py` only.\n" in handout
    assert "## What to write" in handout and "`(B, D) -> (B,)`" in handout
    # a solution region in markdown becomes nbgrader's text stub
    assert "maximum-likelihood variance divides by N" not in handout
    assert "## Question: why divide by N and not N - 1?\n\nYOUR ANSWER HERE\n" in handout


def test_notebook_is_cleared_with_nbgraders_preprocessors(kit):
    nb = nbformat.reads(text(kit, "demo.ipynb"), as_version=4)
    nbformat.validate(nb)
    assert [cell.id for cell in nb.cells] == ["intro", "fit", "check-fit", "next"]
    source = "\n".join(cell.source for cell in nb.cells)
    assert "raise NotImplementedError" in nb.cells[1].source
    assert "x = torch.randn(100, 2)" in nb.cells[1].source
    for secret in ("DiagonalGaussian(2).fit(x)", "torch.allclose", "Instructor notes",
                   "SECRET-NOTEBOOK-CHECK", "BEGIN", "END"):
        assert secret not in source
    assert "assert model.mu.shape == (2,)" in nb.cells[2].source   # the visible test stays
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


# --- what is copied -------------------------------------------------------------------------

def test_public_checks_are_copied_and_private_files_are_not(kit):
    folder = kit / "solutions" / DEMO
    (folder / "checks" / "__pycache__").mkdir()
    (folder / "checks" / "__pycache__" / "probes.cpython-311.pyc").write_bytes(b"\0junk")
    (folder / ".ipynb_checkpoints").mkdir()
    (folder / ".ipynb_checkpoints" / "demo-checkpoint.ipynb").write_text("{}")
    (folder / "hidden_data").mkdir()
    (folder / "hidden_data" / "cases.txt").write_text("1 2 3\n")
    files = rendered(kit)
    assert list(files) == ["checks/probes.py", "checks/public_checks.py", "demo.ipynb",
                           "demo.py", "handout.md"]
    for rel in ("checks/probes.py", "checks/public_checks.py"):
        assert files[rel] == (folder / rel).read_bytes()


def test_output_is_deterministic_with_lf_line_endings(kit):
    first = rendered(kit)
    assert rendered(kit) == first
    for path in (kit / "solutions" / DEMO).rglob("*.*"):
        if path.suffix in (".py", ".md"):
            path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert rendered(kit) == first
    assert all(b"\r" not in content for content in first.values())


# --- release and release --check -------------------------------------------------------------

def test_release_then_check_is_in_sync_and_release_is_idempotent(kit):
    written = release(kit, [DEMO])
    assert written == [f"wrote: assignments/{DEMO}/{rel}" for rel in rendered(kit)]
    assert release(kit, [DEMO], check=True) == []
    assert release(kit, [DEMO]) == []      # nothing to do the second time
    for rel, content in rendered(kit).items():
        assert (kit / "assignments" / DEMO / rel).read_bytes() == content


def test_check_reports_drift_missing_and_extra_files(kit):
    release(kit, [DEMO])
    out = kit / "assignments" / DEMO
    (out / "demo.py").write_text((out / "demo.py").read_text() + "\nx = 1\n")
    (out / "handout.md").unlink()
    (out / "checks" / "my_notes.py").write_text("print('mine')\n")
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert release(kit, [DEMO], check=True) == [
        f"extra: assignments/{DEMO}/checks/my_notes.py",
        f"drifted: assignments/{DEMO}/demo.py",
        f"missing: assignments/{DEMO}/handout.md",
    ]
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    # Releasing repairs all three.
    assert release(kit, [DEMO]) == [
        f"removed: assignments/{DEMO}/checks/my_notes.py",
        f"wrote: assignments/{DEMO}/demo.py",
        f"wrote: assignments/{DEMO}/handout.md",
    ]
    assert release(kit, [DEMO], check=True) == []


def test_a_changed_solution_is_drift_and_an_unreleased_folder_is_missing(kit):
    assert release(kit, [DEMO], check=True) == [f"missing: assignments/{DEMO}/{rel}"
                                                for rel in rendered(kit)]
    release(kit, [DEMO])
    _edit(kit, "handout.md", "Submit `demo.py` only.", "Submit `demo.py` and nothing else.")
    assert release(kit, [DEMO], check=True) == [f"drifted: assignments/{DEMO}/handout.md"]


def test_extra_folders_are_removed_and_caches_left_alone(kit):
    release(kit, [DEMO])
    out = kit / "assignments" / DEMO
    (out / "old").mkdir()
    (out / "old" / "stale.py").write_text("")
    (out / "checks" / "__pycache__").mkdir()
    (out / "checks" / "__pycache__" / "probes.cpython-311.pyc").write_bytes(b"\0")
    assert release(kit, [DEMO], check=True) == [f"extra: assignments/{DEMO}/old/stale.py"]
    assert release(kit, [DEMO]) == [f"removed: assignments/{DEMO}/old/stale.py"]
    assert not (out / "old").exists()
    assert (out / "checks" / "__pycache__" / "probes.cpython-311.pyc").exists()


@pytest.mark.parametrize("folder", ["02_missing", "../solutions", ""])
def test_unknown_folders_are_refused(kit, folder):
    with pytest.raises(ReleaseError):
        release(kit, [folder], check=True)
