"""Checking many outputs at once: a probe returns {function name: output}, the suite
states what each should be, and every function gets its own verdict.

An expected output is a *spec*: a shape tuple (one tensor), a list of shape tuples (a
tuple of tensors, e.g. ``encode``'s (mu, logvar)), or a dict of shape tuples (e.g.
``elbo``'s {"elbo", "recon", "kl"}). ``check(name, value, shape)`` judges one tensor and
raises AssertionError; :func:`on_device` makes the usual one.
"""

from __future__ import annotations

import torch

from autograder.grading.judge.expect import describe_value, expect_meta, expect_same, expect_tensor, fails
from autograder.sandbox.wire import Raised


def expect_structure(value, spec, *, name: str, check) -> None:
    """Judge one function's output ``value`` against ``spec`` (see the module's docstring)."""
    if isinstance(value, Raised):
        fails(f"{name} raised {value}")
    if isinstance(spec, dict):
        if not isinstance(value, dict) or set(spec) - set(value):
            keys = ", ".join(repr(k) for k in spec)
            fails(f"{name} should return a dict with keys {keys}, got {describe_value(value)}")
        for key, shape in spec.items():
            check(f"{name}(...)[{key!r}]", value[key], shape)
    elif isinstance(spec, list):
        if not isinstance(value, (tuple, list)) or len(value) != len(spec):
            fails(f"{name} should return a tuple of {len(spec)} tensors, got {describe_value(value)}")
        for i, (item, shape) in enumerate(zip(value, spec)):
            check(f"{name}(...)[{i}]", item, shape)
    else:
        check(name, value, spec)


def output_problems(outputs, expected: dict, check) -> list[str]:
    """One verdict per function named in ``expected``: the problems found (empty when every
    output matches its spec). ``outputs`` is the probe's {name: output} reply."""
    problems = []
    for name, spec in expected.items():
        value = outputs.get(name) if isinstance(outputs, dict) else None
        try:
            expect_structure(value, spec, name=name, check=check)
        except AssertionError as error:
            problems.append(str(error))
    return problems


def on_device(device: str, dtype: torch.dtype, *, where: str = ""):
    """The check for outputs computed on ``device`` from ``dtype`` inputs: a meta tensor on
    'meta', else a tensor of that dtype. ``where`` is added to each name (' on cuda')."""
    def check(name, value, shape):
        if device == "meta":
            expect_meta(value, name=name, shape=shape, dtype=dtype)
        else:
            expect_tensor(value, name=f"{name}{where}", shape=shape, dtype=dtype)
    return check


def score_checks(problems: list[str], total: int, credit, context: str = "") -> None:
    """Partial credit for a test made of ``total`` independent checks: fails with the first
    problem when none passed, else keeps the fraction passed and names one problem."""
    prefix = f"{context}: " if context else ""
    if not problems:
        return
    if len(problems) >= total:
        fails(prefix + problems[0])
    credit(1 - len(problems) / total, f"{prefix}{len(problems)} of {total} checks failed, e.g. {problems[0]}")


def changed_inputs(after, inputs: dict, names) -> list[str]:
    """"f changed its argument a in place" for each function f of ``names`` whose copy of a
    judge's tensor (``after[f][a]``, read back by the probe once f returned) differs from
    ``inputs[a]``."""
    if not isinstance(after, dict):
        return ["the functions' inputs could not be read back"]
    problems = []
    for name in names:
        copies = after.get(name)
        for arg, original in inputs.items():
            if isinstance(copies, dict) and arg in copies and isinstance(original, torch.Tensor):
                try:
                    expect_same(copies[arg], original, name=arg)
                except AssertionError:
                    problems.append(f"{name} changed its argument {arg} in place: leave the inputs as they are")
    return problems


def recorded_groups(out, function: str, *, calls: str = "batches", hint: str = "") -> list[dict]:
    """The parameter groups a mechanics probe recorded while the student's ``function`` trained
    a grader-owned model: each a dict with its ``weights`` and a non-empty list ``calls``.
    Fails the test when the reply is not what the probe records, when ``function`` raised, or
    when it never called the model (``hint`` says how it should have)."""
    if not isinstance(out, dict) or not isinstance(out.get("groups"), list):
        fails(f"{function}: expected what the grader recorded, got {describe_value(out)}")
    if isinstance(out.get("losses"), Raised):
        fails(f"{function} raised {out['losses']}")
    groups = [grp for grp in out["groups"] if isinstance(grp, dict) and isinstance(grp.get("weights"), dict)
              and isinstance(grp.get(calls), list) and grp[calls]]
    if len(groups) != len(out["groups"]) or not groups:
        fails(f"{function} never called the model it was given" + (f" ({hint})" if hint else ""))
    return groups
