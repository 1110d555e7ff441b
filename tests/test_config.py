"""grading.yml: validated on load, one clear line per problem, exit code 2 from the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autograder import config
from autograder.cli import main

KIT = Path(__file__).resolve().parent.parent
EXAMPLE = KIT / "tests" / "fixtures" / "example" / "grading.yml"


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "grading.yml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _example() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def test_kit_course_file_loads_with_100_points_per_assignment():
    course = config.load(KIT / "grading.yml")
    for assignment in course.assignments:
        assert assignment.max_points == 100, assignment.id


@pytest.mark.parametrize("mutate, words", [
    (lambda d: d["assignments"][0]["tests"]["test_double"].update(points=-5), ["assignments[0].tests.test_double.points", "-5"]),
    (lambda d: d["assignments"][0]["tests"]["test_double"].update(visibility="secret"), ["visibility", "secret"]),
    (lambda d: d["assignments"][0].pop("files"), ["assignments[0].files", "required"]),
    (lambda d: d["assignments"][0].update(id="Mini Assignment"), ["assignments[0].id"]),
    (lambda d: d["assignments"][0]["limits"].update(probe_seconds="soon"), ["probe_seconds", "soon"]),
    (lambda d: d["assignments"][0].update(colour="blue"), ["assignments[0].colour", "not permitted"]),
    (lambda d: d["assignments"].append(dict(d["assignments"][0])), ["share the id"]),
    (lambda d: d["assignments"][0]["tests"].update(double={"points": 1}), ["should start with 'test_'"]),
])
def test_bad_fields_are_named(tmp_path, mutate, words):
    data = _example()
    mutate(data)
    with pytest.raises(config.ConfigError) as error:
        config.load(_write(tmp_path, data))
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "grading.yml"))
    assert all(w in message for w in words), message


def test_broken_yaml_names_the_line(tmp_path):
    with pytest.raises(config.ConfigError, match=r"grading.yml line 3: not valid YAML"):
        config.load(_write(tmp_path, "course: x\nassignments:\n\t- id: mini\n"))


def test_missing_file(tmp_path):
    with pytest.raises(config.ConfigError, match="file not found"):
        config.load(tmp_path / "nope.yml")


def test_cli_reports_bad_config_in_one_line_with_exit_2(tmp_path):
    data = _example()
    data["assignments"][0]["tests"]["test_double"]["points"] = "ten"
    path = _write(tmp_path, data)
    run = subprocess.run([sys.executable, "-m", "autograder.cli", "--config", str(path), "list"],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "test_double.points" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("argv, words", [
    (["grade"], ["required"]),
    (["grade", "x", "--assignment", "mini", "--all"], ["not allowed with"]),
    (["frobnicate"], ["invalid choice"]),
    (["grade", str(KIT), "--assignment", "nope"], ["no assignment with id 'nope'"]),
    (["grade", "/no/such/folder", "--assignment", "mini"], ["not a folder"]),
    (["grade", str(KIT), "--assignment", "mini", "--tests", "test_nothing"], ["test_nothing is not a test of mini"]),
    (["check", str(KIT)], ["not an assignment folder"]),
])
def test_bad_command_lines_exit_2_in_one_line(capsys, argv, words):
    assert main(["--config", str(EXAMPLE), *argv]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0, err
    assert all(w in err for w in words), err


def test_list_shows_tests_and_points(capsys):
    assert main(["--config", str(EXAMPLE), "list"]) == 0
    out = capsys.readouterr().out
    assert "mini" in out and "test_normalise" in out and "40" in out
