"""Fixtures shared by the engine's tests."""

from __future__ import annotations

import functools

import pytest

from autograder.grading import runner

_grade = runner.grade


@pytest.fixture(params=["cold", "warm"])
def start(request, monkeypatch) -> str:
    """Every grading of the test through ``runner.grade`` starts cold (a fresh judge and worker,
    each importing torch) or warm (forked from this thread's fork server, as batches do): the
    hostile banks must hold both ways. ``pytestmark = pytest.mark.usefixtures("start")``."""
    if request.param == "warm":
        monkeypatch.setattr(runner, "grade", functools.partial(_grade, warm=True))
    return request.param
