"""Oracle submissions (tests/oracles/) earn nothing on learned quality: each is graded on the
test it targets, the n-th oracle of an assignment at grader seed SEEDS[n % 5] (every seed is
exercised at the cost of one grading each), and must get 0 points there with no grader error."""

from __future__ import annotations

from pathlib import Path

import pytest

from autograder import config
from autograder.grading import runner
from tests.bugbank import SEEDS
from tests.oracles import apply, oracles_of

KIT = Path(__file__).resolve().parent.parent
COURSE = config.load(KIT / "grading.yml")
CASES = [pytest.param(a, o, SEEDS[n % len(SEEDS)], id=f"{a.id}-{o.name}")
         for a in COURSE.assignments for n, o in enumerate(oracles_of(a.id))]


@pytest.mark.parametrize("assignment,oracle,seed", CASES)
def test_oracle_scores_zero_on_learned_quality(assignment, oracle, seed, tmp_path):
    assert oracle.test in assignment.tests, f"{oracle.name} names no test of {assignment.id}"
    submission = apply(oracle, COURSE.solution_dir(assignment), tmp_path / oracle.name)
    result = runner.grade(COURSE, assignment, submission, only=[oracle.test], seed=seed, warm=True)
    assert not result.grader_errors, result.grader_errors
    (test,) = [t for t in result.tests if t.name == oracle.test]
    assert test.score == 0, f"{oracle.name} earned {test.score}/{test.max_score} on {oracle.test}"
    assert test.message  # the student is told why
