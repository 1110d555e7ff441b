"""`autograder export github`: the workflow's structure, and its grading steps run here.

GitHub is not reachable here. The workflow is parsed with PyYAML and its structure checked;
then the grade job's own ``run:`` steps are taken out of it and run in order, as a runner
runs them (``bash -e -o pipefail``, the workflow's and the job's ``env``, files for
``$GITHUB_OUTPUT`` and ``$GITHUB_STEP_SUMMARY``), in a workspace laid out as the job lays it
out: the student's repository in ``submission/`` and the instructor's kit in ``kit/`` (here the
example course, standing in for the checkout the secret token makes). The install step is
skipped (the kit is already installed) and the ``uses:`` steps are GitHub's own.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from autograder.authoring.export import ExportError, github
from tests.example_course import EXAMPLE, GOOD, cli, replace_function

KIT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def workflow(tmp_path_factory) -> tuple[str, dict]:
    out = tmp_path_factory.mktemp("repo")
    done = cli("--config", str(EXAMPLE / "grading.yml"), "export", "github", "--assignment", "mini",
               "--out", str(out), "--kit-repo", "prof/genai-kit", "--secret", "GRADER_TOKEN")
    assert done.returncode == 0, done.stderr
    text = (out / github.WORKFLOW).read_text()
    return text, yaml.safe_load(text)


def _steps(job: dict) -> dict[str, dict]:
    return {step.get("id") or step.get("name") or step["uses"]: step for step in job["steps"]}


def test_triggers_jobs_and_where_the_kit_goes(workflow):
    text, flow = workflow
    triggers = flow.get("on", flow.get(True))  # PyYAML reads the bare key `on` as true
    assert "push" in triggers
    assert set(flow["jobs"]) == {"public-checks", "grade"}
    grade = flow["jobs"]["grade"]
    assert grade["name"] == "Autograding Tests"  # the check run Classroom's reporter updates
    checkouts = [s for s in grade["steps"] if s.get("uses", "").startswith("actions/checkout")]
    student, kit = checkouts
    assert "repository" not in student.get("with", {}) and student["with"]["path"] == "submission"
    assert kit["with"]["repository"] == "${{ env.KIT_REPOSITORY }}" and flow["env"]["KIT_REPOSITORY"] == "prof/genai-kit"
    assert kit["with"]["path"] == "kit" and kit["with"]["persist-credentials"] is False
    # the kit sits beside the student's repository, never inside it
    assert not Path(kit["with"]["path"]).is_relative_to(student["with"]["path"])
    assert grade["env"]["KIT"] == "kit" and grade["env"]["SUBMISSION"] == "submission"


def test_the_secret_is_used_once_where_it_is_declared(workflow):
    text, flow = workflow
    assert text.count("secrets.") == 1
    kit = [s for s in flow["jobs"]["grade"]["steps"] if s.get("with", {}).get("repository")][0]
    assert kit["with"]["token"] == "${{ secrets.GRADER_TOKEN }}"
    assert "secrets." not in yaml.safe_dump(flow["jobs"]["public-checks"])


def test_the_public_checks_job_is_the_student_package_alone(workflow):
    _, flow = workflow
    public = flow["jobs"]["public-checks"]
    runs = "\n".join(s.get("run", "") for s in public["steps"])
    assert "autograder check" in runs and f"pip install {github.WHEELS}/*.whl" in runs
    assert "kit" not in runs.replace("/*.whl", "")


def test_points_reach_the_reporter_and_only_student_reports_are_uploaded(workflow):
    _, flow = workflow
    steps = _steps(flow["jobs"]["grade"])
    reporter = steps["Autograding Reporter"]
    assert reporter["uses"].startswith("classroom-resources/autograding-grading-reporter@")
    assert reporter["with"]["runners"] == github.RUNNER
    assert reporter["env"][f"{github.RUNNER.upper()}_RESULTS"] == "${{ steps.points.outputs.result }}"
    upload = steps["Upload the reports a student may see"]
    assert upload["with"]["path"].rstrip("/") == flow["jobs"]["grade"]["env"]["STUDENT_REPORTS"]


def test_the_student_wheel_goes_into_the_template(tmp_path):
    wheel = tmp_path / "genai_course_student-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    out = tmp_path / "template"
    done = cli("--config", str(EXAMPLE / "grading.yml"), "export", "github", "--assignment", "mini",
               "--out", str(out), "--student-wheel", str(wheel))
    assert done.returncode == 0 and (out / github.WHEELS / wheel.name).read_bytes() == b"PK"
    done = cli("--config", str(EXAMPLE / "grading.yml"), "export", "github", "--assignment", "mini",
               "--out", str(out), "--student-wheel", str(tmp_path / "missing.whl"))
    assert done.returncode == 2 and "--student-wheel" in done.stderr and "Traceback" not in done.stderr


def test_odd_values_are_refused_not_written():
    for option in ({"kit_repo": "prof/kit\n  evil: 1"}, {"secret": "X }} ${{ secrets.OTHER"},
                   {"kit_ref": "main; curl"}, {"torch_index": "a b"}):
        with pytest.raises(ExportError, match="not a valid value"):
            github.workflow("mini", **{"kit_repo": "prof/kit", **option})


# --------------------------------------------------------------------------- the grading steps, run here


def _run_grading_steps(flow: dict, workspace: Path) -> tuple[dict, str, dict]:
    """Run the grade job's run-steps (all but the install) in ``workspace``; return its step
    outputs, the job summary and the reporter's decoded payload."""
    job = flow["jobs"]["grade"]
    output, summary = workspace / "github_output", workspace / "step_summary"
    output.touch()
    summary.touch()
    env = {**os.environ, **{k: str(v) for k, v in flow["env"].items()}, **job["env"],
           "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary)}
    env["PYTHONPATH"] = os.pathsep.join([str(KIT), str(KIT / "datasets"), env.get("PYTHONPATH", "")])
    for step in job["steps"]:
        if "run" not in step or step.get("id") == "install":
            continue
        done = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", step["run"]],
                              cwd=workspace, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (step.get("name"), done.stdout[-2000:], done.stderr[-2000:])
    outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
    payload = json.loads(base64.b64decode(outputs["result"]))
    return outputs, summary.read_text(), payload


def _workspace(tmp_path: Path, source: str | None) -> Path:
    workspace = tmp_path / "work"
    shutil.copytree(EXAMPLE, workspace / "kit")  # the instructor's repository, as the token fetches it
    (workspace / "submission").mkdir()
    if source is not None:
        (workspace / "submission" / "mini.py").write_text(source)
    return workspace


def test_grading_steps_write_the_summary_and_the_points(workflow, tmp_path):
    workspace = _workspace(tmp_path, GOOD)
    outputs, summary, payload = _run_grading_steps(workflow[1], workspace)
    assert outputs["exit-code"] == "0"
    # only the visible test (40 points); the hidden and after-due-date ones are not counted
    assert payload["max_score"] == 40 and [t["name"] for t in payload["tests"]] == ["test_double"]
    assert payload["tests"][0] == {**payload["tests"][0], "status": "pass", "score": 40}
    assert payload["status"] == "pass" and payload["version"] == 1
    assert "mini: 40 / 40 points" in summary and "`test_double`" in summary
    assert "test_normalise" not in summary and "test_device" not in summary
    uploaded = {p.name for p in (workspace / "feedback").iterdir()}
    assert {"feedback.md", "junit.xml"} <= uploaded and not uploaded & {"results.json", "report.md", "grade.log"}
    assert "test_normalise" not in (workspace / "feedback" / "feedback.md").read_text()


def test_a_wrong_function_loses_its_points(workflow, tmp_path):
    workspace = _workspace(tmp_path, replace_function("double", "return 3 * x"))
    _, summary, payload = _run_grading_steps(workflow[1], workspace)
    assert payload["status"] == "fail" and payload["max_score"] == 40
    assert payload["tests"][0]["status"] == "fail" and payload["tests"][0]["score"] == 0
    assert "mini: 0 / 40 points" in summary and "❌" in summary


def test_a_refused_submission_is_an_error_with_its_reason(workflow, tmp_path):
    workspace = _workspace(tmp_path, None)
    (workspace / "submission" / "mini.py").symlink_to(EXAMPLE / "solutions" / "01_mini" / "mini.py")
    outputs, summary, payload = _run_grading_steps(workflow[1], workspace)
    assert outputs["exit-code"] == "2"
    assert payload["status"] == "error" and payload["max_score"] == 0
    assert "symbolic link" in payload["tests"][0]["message"] and "Not graded" in summary


def test_the_kits_own_ci_runs_ci_run():
    flow = yaml.safe_load((KIT / ".github" / "workflows" / "ci.yml").read_text())
    triggers = flow.get("on", flow.get(True))
    assert {"push", "pull_request"} <= set(triggers)
    runs = [s.get("run", "") for job in flow["jobs"].values() for s in job["steps"]]
    assert "bash .ci/run" in runs
    assert (KIT / ".ci" / "run").is_file()
    assert "secrets." not in (KIT / ".github" / "workflows" / "ci.yml").read_text()


def test_the_template_holds_the_starter_code_and_its_checks(tmp_path):
    """A student clones the template and works in it: the released assignment is there (the
    skeleton, not the solution), and `autograder check .` finds its public checks."""
    course = tmp_path / "course"  # the example course, its public checks beside the solution
    shutil.copytree(EXAMPLE, course)
    shutil.copytree(EXAMPLE / "checks", course / "solutions" / "01_mini" / "checks")
    out = tmp_path / "template"
    done = cli("--config", str(course / "grading.yml"), "export", "github", "--assignment", "mini",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    skeleton = (out / "mini.py").read_text()
    assert "### BEGIN SOLUTION" not in skeleton and "return 2 * x" not in skeleton
    assert (out / "checks" / "test_public.py").is_file()
    checked = cli("--config", str(course / "grading.yml"), "check", ".", "--assignment", "mini", cwd=out)
    out_text = checked.stdout + checked.stderr
    assert checked.returncode == 1 and "no public checks" not in out_text and "FAIL" in out_text, out_text[-2000:]


def test_torchs_wheels_are_cached_between_pushes(workflow):
    """Each job's Python keeps pip's cache between pushes, keyed on what it installs."""
    _, flow = workflow
    keys = {}
    for name, job in flow["jobs"].items():
        (setup,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python")]
        assert setup["with"]["cache"] == "pip", name
        keys[name] = setup["with"]["cache-dependency-path"]
    assert keys == {"public-checks": ".autograder/*.whl", "grade": "kit/pyproject.toml"}
