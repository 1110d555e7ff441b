"""The quality bars of KIT.md, for every assignment in grading.yml.

- every test of a hidden suite has points in grading.yml, and every entry there has a test;
- the reference solution gets full marks, with no grader error;
- every independently written correct implementation (tests/fixtures/independent/<folder>/
  <style>/, written from the released skeleton and handout only) gets full marks too;
- the released skeleton gets zero, with no grader error;
- every bug of the assignment's bug bank loses points on the test named for its concept,
  at one of bugbank.SEEDS (bug i at SEEDS[i % 5]: every seed is exercised, at the cost of
  one grading per bug; benchmarks/mutation_score.py grades each bug at every seed).
"""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from autograder import config
from autograder.grading import runner
from tests.bugbank import SEEDS, apply, bugs_of

KIT = Path(__file__).resolve().parent.parent
COURSE = config.load(KIT / "grading.yml")
ASSIGNMENTS = COURSE.assignments
IDS = [a.id for a in ASSIGNMENTS]
BUG_JOBS = 2  # gradings at once: each worker uses one torch thread


def _suite_tests(suite: Path) -> set[str]:
    names = set()
    for path in suite.glob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                names.add(node.name)
    return names


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=IDS)
def test_every_test_has_points_and_every_entry_a_test(assignment):
    in_suite = _suite_tests(COURSE.suite_dir(assignment))
    in_config = set(assignment.tests)
    assert in_suite - in_config == set(), "tests without points in grading.yml"
    assert in_config - in_suite == set(), "grading.yml entries without a test"
    assert assignment.max_points == 100


INDEPENDENT = KIT / "tests" / "fixtures" / "independent"


def _correct_implementations():
    """(assignment, folder, seed) for the reference at seed 0 and every independent
    implementation, each at its own seed (the n-th style of an assignment at SEEDS[n])."""
    cases = []
    for assignment in ASSIGNMENTS:
        cases.append(pytest.param(assignment, COURSE.solution_dir(assignment), 0, id=f"{assignment.id}-reference"))
        styles = sorted(p for p in (INDEPENDENT / assignment.folder).glob("*") if p.is_dir())
        for n, folder in enumerate(styles, start=1):
            cases.append(pytest.param(assignment, folder, SEEDS[n % len(SEEDS)], id=f"{assignment.id}-{folder.name}"))
    return cases


@pytest.mark.parametrize("assignment,folder,seed", _correct_implementations())
def test_correct_implementations_get_full_marks(assignment, folder, seed):
    result = runner.grade(COURSE, assignment, folder, seed=seed)
    assert not result.grader_errors, result.grader_errors
    lost = {t.name: t.message for t in result.tests if t.score < t.max_score}
    assert lost == {} and result.score == 100


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=IDS)
def test_skeleton_gets_zero_without_grader_errors(assignment):
    skeleton = KIT / "assignments" / assignment.folder
    assert skeleton.is_dir(), "run 'autograder release'"
    result = runner.grade(COURSE, assignment, skeleton)
    assert not result.grader_errors, result.grader_errors
    assert {t.name: t.score for t in result.tests if t.score} == {}
    assert all(t.message for t in result.tests)  # every zero comes with a reason


@pytest.mark.parametrize("assignment", [a for a in ASSIGNMENTS if bugs_of(a.id)], ids=lambda a: a.id)
def test_every_bug_loses_points_on_its_test(assignment, tmp_path):
    bugs = bugs_of(assignment.id)
    assert len(bugs) >= 10
    unknown = {b.name: b.test for b in bugs if b.test not in assignment.tests}
    assert unknown == {}, "bugs naming tests that do not exist"

    def grade(numbered):
        i, bug = numbered
        submission = apply(bug, COURSE.solution_dir(assignment), tmp_path / bug.name)
        result = runner.grade(COURSE, assignment, submission, only=[bug.test], seed=SEEDS[i % len(SEEDS)],
                              warm=True)  # a batch of one-test gradings, as mutation_score grades them
        (test,) = result.tests
        return bug, result, test

    with ThreadPoolExecutor(BUG_JOBS) as pool:
        outcomes = list(pool.map(grade, enumerate(bugs)))
    grader_errors = {bug.name: result.grader_errors for bug, result, _ in outcomes if result.grader_errors}
    assert grader_errors == {}
    survivors = {bug.name: f"{bug.test} at seed {result.seed}" for bug, result, test in outcomes
                 if test.score >= test.max_score}
    assert survivors == {}, "bugs that kept full marks on their test"
