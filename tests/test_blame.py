"""Feedback names the function at fault, and a test judges its own function: a bug in an
upstream maths helper costs only that helper's test, because the probes run the downstream
function on the grader's correct helper (``substituted`` in each suite's probes.py); where no
substitution is possible (a training step, a model class), a test that fails because an
upstream function is wrong says so first (the suites' ``upstream`` and ``judges`` markers,
read by the judge plugin); the untouched skeleton reads "not started"; a parametrised case is named in words,
never by pytest's bracketed id; the unused-notebook notice appears only where it applies."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from autograder import config
from autograder.grading import notebook, reports, runner
from autograder.grading.judge.plugin import Blame, case_words
from tests.bugbank import apply, bugs_of

KIT = Path(__file__).resolve().parents[1]
COURSE = config.load(KIT / "grading.yml")

# assignment: (a bug in one upstream function, the function, its test, a downstream test that
# runs on the grader's version of that function)
UPSTREAM_BUGS = {
    "classifiers": ("ce_summed", "cross_entropy", "test_cross_entropy", "test_train_mechanics"),
    "autoencoders": ("recon_mean_over_pixels", "reconstruction_loss", "test_reconstruction_loss", "test_train_mechanics"),
    "vae": ("kl_wrong_sign", "kl_divergence", "test_kl_divergence", "test_train_mechanics"),
    "gan": ("d_loss_labels_swapped", "discriminator_loss", "test_discriminator_loss", "test_discriminator_step"),
    "diffusion": ("q_sample_alpha_bar_not_sqrt", "q_sample", "test_q_sample", "test_loss"),
    "tiny_lm": ("loss_mean_over_vocab", "lm_loss", "test_loss", "test_train_loop"),
}


# (assignment, a bug in an upstream function no grader's version can stand in for, the
# function, its test, a downstream test that calls it)
NOT_SUBSTITUTED = [
    ("gan", "d_step_real_only", "discriminator_step", "test_discriminator_step", "test_train_step"),
]


def _graded(assignment_id: str, bug_name: str, tests: list[str], tmp_path):
    assignment = COURSE.get(assignment_id)
    bug = next(b for b in bugs_of(assignment_id) if b.name == bug_name)
    submission = apply(bug, COURSE.solution_dir(assignment), tmp_path / "sub")
    result = runner.grade(COURSE, assignment, submission, only=tests, warm=True)
    assert not result.grader_errors, result.grader_errors
    return result, {t.name: t for t in result.tests}


@pytest.mark.parametrize("assignment_id", sorted(UPSTREAM_BUGS))
def test_an_upstream_bug_costs_only_its_own_test(assignment_id, tmp_path):
    bug_name, function, upstream, downstream = UPSTREAM_BUGS[assignment_id]
    _, tests = _graded(assignment_id, bug_name, [upstream, downstream], tmp_path)
    assert tests[upstream].score < tests[upstream].max_score
    # the downstream test ran on the grader's own function: it keeps its points, and its message
    # blames nothing upstream
    assert tests[downstream].score == tests[downstream].max_score, tests[downstream].message
    assert "is wrong: see" not in tests[downstream].message, tests[downstream].message


def test_the_upstream_markers_no_longer_name_a_substituted_function():
    """A substituted function's test is not upstream of the tests that run on the grader's
    version of it: a failure of theirs is their own function's, and its message must say so."""
    for assignment_id, (_, _, upstream, downstream) in UPSTREAM_BUGS.items():
        path = KIT / "autograder" / "suites" / assignment_id / f"test_{assignment_id}.py"
        tree = ast.parse(path.read_text())
        test = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == downstream)
        named = {arg.value for d in test.decorator_list if isinstance(d, ast.Call)
                 and getattr(d.func, "attr", "") == "upstream" for arg in d.args}
        assert upstream not in named, f"{assignment_id}: {downstream} still declares {upstream} upstream"


@pytest.mark.parametrize("assignment_id,bug_name,function,upstream,downstream", NOT_SUBSTITUTED,
                         ids=[case[0] for case in NOT_SUBSTITUTED])
def test_a_downstream_failure_names_the_upstream_function_first(assignment_id, bug_name, function, upstream,
                                                                downstream, tmp_path):
    result, tests = _graded(assignment_id, bug_name, [upstream, downstream], tmp_path)
    assert tests[upstream].score < tests[upstream].max_score
    assert tests[downstream].score < tests[downstream].max_score          # it keeps its failure...
    assert tests[downstream].message.startswith(f"{function} is wrong: see {upstream}. "), tests[downstream].message
    feedback = reports.feedback_markdown(result)                          # ...and the student reads it first
    row = next(line for line in feedback.splitlines() if f"`{downstream}`" in line)
    assert row.split("|")[4].strip().startswith(f"{function.replace('_', chr(92) + '_')} is wrong"), row


def test_the_untouched_skeleton_is_not_started(tmp_path):
    assignment = COURSE.get("vae")
    result = runner.grade(COURSE, assignment, KIT / "assignments" / assignment.folder, warm=True)
    assert not result.grader_errors and result.score == 0
    assert result.status == "not-started" and result.reason.startswith("not started")
    assert result.notices == []            # the untouched notebook beside the module: nothing to say
    feedback = reports.feedback_markdown(result)
    assert "Not started" in feedback
    assert not re.search(r"\[[\w.-]+\]", "\n".join(t.message for t in result.tests))  # no pytest ids
    shapes = next(t for t in result.tests if t.name == "test_shapes")
    assert shapes.message.startswith("(case batch=1, z_dim=2, k=5) ")
    # a function that still raises the skeleton's NotImplementedError "is not written yet"
    # (train runs on the grader's kl_divergence, but on the student's VAE, judged by test_shapes)
    train = next(t for t in result.tests if t.name == "test_training_loop")
    assert train.message.startswith("VAE is not written yet: see test_shapes"), train.message


def test_a_started_submission_is_graded():
    passing = SimpleNamespace(status="passed", score=1.0, message="")
    stub = SimpleNamespace(status="failed", score=0.0, message=f"NotImplementedError: {notebook.STUB}")
    other = SimpleNamespace(status="failed", score=0.0, message="kl_divergence is off by up to 3")
    assert runner.not_started(SimpleNamespace(tests=[stub, stub], score=0.0))
    assert not runner.not_started(SimpleNamespace(tests=[stub, other], score=0.0))
    assert not runner.not_started(SimpleNamespace(tests=[stub, passing], score=1.0))
    assert not runner.not_started(SimpleNamespace(tests=[], score=0.0))


def test_the_notebook_notice_only_where_the_notebook_was_worked_in(tmp_path):
    released = KIT / "assignments" / COURSE.get("vae").folder
    folder = tmp_path / "sub"
    shutil.copytree(released, folder)
    # untouched, both: nothing to say
    assert notebook.prepare(folder, ["vae.py"], tmp_path / "p1", skeletons=(released,))[1] == []
    # the released folder graded in place: the same
    assert notebook.prepare(released, ["vae.py"], tmp_path / "p2", skeletons=(released,))[1] == []
    # the module done, the notebook done as well: the notebook was not used, and the student is told
    book = folder / "vae.ipynb"
    shutil.copy(COURSE.solution_dir(COURSE.get("vae")) / "vae.py", folder / "vae.py")
    source = book.read_text().replace(notebook.STUB, "done")
    book.write_text(source)
    notices = notebook.prepare(folder, ["vae.py"], tmp_path / "p3", skeletons=(released,))[1]
    assert len(notices) == 1 and "vae.ipynb beside it was not used" in notices[0]


# --- the plugin's rules, as units -------------------------------------------------------------

def _blame(upstream: dict, judges: dict, bad: dict) -> Blame:
    blame = Blame({name: tuple(upstream.get(name, ())) for name in {*upstream, *judges, *bad}},
                  {name: tuple(f) for name, f in judges.items()})
    for name, message in bad.items():
        blame.record(name, message)
    return blame


def test_blame_goes_to_the_first_wrong_function():
    upstream = {"test_elbo": ["test_kl"], "test_mechanics": ["test_kl", "test_elbo"],
                "test_training": ["test_kl", "test_elbo", "test_mechanics"]}
    judges = {"test_kl": ["kl_divergence"], "test_elbo": ["reconstruction_loss", "elbo"], "test_mechanics": ["train"]}
    # the KL wrong: every test after it names kl_divergence, once
    blame = _blame(upstream, judges, {"test_kl": "off", "test_elbo": "elbo(...)['kl'] is off", "test_mechanics": "x"})
    assert blame.prefix("test_training") == "kl_divergence is wrong: see test_kl. "
    assert blame.prefix("test_elbo") == "kl_divergence is wrong: see test_kl. "
    # the reconstruction wrong: named from the upstream test's own message
    blame = _blame(upstream, judges, {"test_elbo": "reconstruction_loss (float64) is off by up to 2"})
    assert blame.prefix("test_training") == "reconstruction_loss is wrong: see test_elbo. "
    # not named in the message: every function the test judges
    blame = _blame(upstream, judges, {"test_elbo": "a dict was expected"})
    assert blame.prefix("test_mechanics") == "reconstruction_loss or elbo is wrong: see test_elbo. "
    # the training loop wrong on its own: train, from the mechanics test
    blame = _blame(upstream, judges, {"test_mechanics": "train took 39 steps"})
    assert blame.prefix("test_training") == "train is wrong: see test_mechanics. "
    # nothing upstream failed, or no declaration: the message is the test's own
    assert _blame(upstream, judges, {}).prefix("test_training") == ""
    assert _blame(upstream, judges, {"test_kl": "off"}).prefix("test_kl") == ""
    # a declaration that loops ends
    looped = _blame({"test_a": ["test_b"], "test_b": ["test_a"]}, {}, {"test_a": "x", "test_b": "y"})
    assert looped.prefix("test_a") in ("b is wrong: see test_b. ", "a is wrong: see test_a. ", "")


def test_upstream_tests_run_first():
    items = [SimpleNamespace(originalname=n) for n in ("test_training", "test_kl", "test_other", "test_mechanics")]
    blame = Blame({"test_training": ("test_mechanics", "test_kl"), "test_kl": (), "test_other": (),
                   "test_mechanics": ("test_kl",)}, {})
    assert [i.originalname for i in blame.upstream_first(items)] == \
        ["test_kl", "test_mechanics", "test_training", "test_other"]
    in_order = [SimpleNamespace(originalname=n) for n in ("test_kl", "test_mechanics", "test_training")]
    assert blame.upstream_first(in_order) == in_order   # a suite already in order keeps it


def test_a_case_is_named_in_words():
    def item(params, id_):
        return SimpleNamespace(callspec=SimpleNamespace(params=params, id=id_))
    assert case_words(item({"batch": 1, "z_dim": 2, "k": 5}, "1-2-5")) == "batch=1, z_dim=2, k=5"
    assert case_words(item({"case": "typical"}, "typical")) == "typical"
    assert case_words(item({"saturating": True}, "saturating")) == "saturating"
    assert case_words(item({"temperature": 0.5}, "0.5")) == "temperature=0.5"
    assert case_words(SimpleNamespace()) == ""


def _declared(path: Path) -> tuple[set[str], set[str]]:
    """(the test functions of a suite file, the tests its upstream markers name)."""
    tree = ast.parse(path.read_text())
    tests = {n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}
    named = {arg.value for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "upstream"
             for arg in n.args if isinstance(arg, ast.Constant)}
    return tests, named


@pytest.mark.parametrize("path", sorted([*KIT.glob("autograder/suites/*/test_*.py"), *KIT.glob("solutions/*/checks/test_*.py")]),
                         ids=lambda p: str(p.relative_to(KIT)))
def test_every_upstream_marker_names_a_test_of_its_suite(path):
    tests, named = _declared(path)
    assert named <= tests, f"upstream names no test of {path.name}: {sorted(named - tests)}"
