"""Hidden variants of the data (kitdata.variants), the grading's secret they are drawn from, and
the check that learned quality comes from the trained weights (shuffled_weights, expect_learned)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autograder.grading import runner
from autograder.grading.judge import expect_learned
from autograder.sandbox.worker import shuffled_weights
from kitdata import toy2d, variants
from tests.example_course import EXAMPLE, MINI


def test_pixel_permutation_is_undone_exactly_on_numpy_and_torch():
    perm = variants.PixelPermutation(np.random.default_rng(1))
    x = np.random.default_rng(2).random((5, 64)).astype(np.float32)
    assert not np.array_equal(perm.apply(x), x)                       # it moves pixels
    assert np.array_equal(np.sort(perm.apply(x), 1), np.sort(x, 1))   # and only moves them
    assert np.array_equal(perm.undo(perm.apply(x)), x)
    t = torch.from_numpy(x)
    assert torch.equal(perm.undo(perm.apply(t)), t) and torch.equal(perm.apply(t), torch.from_numpy(perm.apply(x)))


def test_digit_symmetry_is_a_symmetry_of_the_square():
    image = np.arange(64.0).reshape(8, 8)
    seen = set()
    for seed in range(40):
        sym = variants.DigitSymmetry(np.random.default_rng(seed))
        moved = sym.apply(image.reshape(1, 64)).reshape(8, 8)
        expected = np.rot90(image.T if sym.transpose else image, sym.k)
        assert np.array_equal(moved, expected)
        assert np.array_equal(sym.undo(moved.reshape(1, 64)).reshape(8, 8), image)
        seen.add((sym.k, sym.transpose))
    assert len(seen) == 8   # every symmetry can be drawn


def test_mixture_variant_is_the_base_density_moved():
    """With the weights kept, the variant's density is the base density at the point moved back,
    divided by the Jacobian s^2: p_v(x) = p(R^-1 (x - b) / s) / s^2."""
    base = toy2d.ring8()
    variant = variants.mixture(base, np.random.default_rng(7), weights=(1.0, 1.0))
    assert not np.allclose(variant.means, base.means)
    x = variant.sample(500, generator=3).astype(np.float64)
    s = float(variant.std) / base.std
    # the similarity maps mode 0 to mode 0 (means are moved in order): recover R and b from two modes
    rotation_col = (variant.means[1] - variant.means[0]) / s
    angle = math.atan2(rotation_col[1], rotation_col[0]) - math.atan2(*(base.means[1] - base.means[0])[::-1])
    R = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    b = variant.means[0] - s * R @ base.means[0]
    back = (x - b) @ R / s
    assert np.allclose(variant.log_prob(x), base.log_prob(back) - 2 * math.log(s), atol=1e-9)


def test_mixture_variants_differ_by_draw_and_repeat_by_seed():
    base = toy2d.ring8()
    a, b = (variants.mixture(base, np.random.default_rng(s)) for s in (0, 1))
    again = variants.mixture(base, np.random.default_rng(0))
    assert not np.allclose(a.means, b.means)
    assert np.array_equal(a.means, again.means) and np.array_equal(a.weights, again.weights)
    assert a.weights.min() >= 0.6 / 1.4 / 8 - 1e-12   # no mode is reweighted out of sight


def test_the_grading_secret_is_hidden_files_or_the_instructors_own(tmp_path, monkeypatch):
    monkeypatch.delenv(runner.SECRET_VARIABLE, raising=False)
    suite = tmp_path / "suite"
    suite.mkdir()
    for name in ("probes.py", "test_mini.py"):
        (suite / name).write_text((EXAMPLE / "suite" / name).read_text())
    files = runner.grading_secret(MINI, suite)
    assert files == runner.grading_secret(MINI, suite)              # reproducible
    (suite / "test_mini.py").write_text((suite / "test_mini.py").read_text() + "\n# edited\n")
    assert runner.grading_secret(MINI, suite) != files               # keyed by what students never get
    retuned = MINI.model_copy(update={"thresholds": {**MINI.thresholds, "tolerance": 0.5}})
    assert runner.grading_secret(retuned, suite) != runner.grading_secret(MINI, suite)
    monkeypatch.setenv(runner.SECRET_VARIABLE, "the course's own")
    chosen = runner.grading_secret(MINI, suite)
    (suite / "test_mini.py").write_text((suite / "test_mini.py").read_text() + "\n# again\n")
    assert runner.grading_secret(MINI, suite) == chosen not in (files,)


def test_shuffled_weights_keeps_the_values_and_loses_the_arrangement():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    before = [p.detach().clone() for p in net.parameters()]
    twin = shuffled_weights(net, torch.Generator().manual_seed(1))
    assert all(torch.equal(p, q) for p, q in zip(net.parameters(), before))     # the original is untouched
    for p, q in zip(twin.parameters(), net.parameters()):
        assert torch.equal(p.detach().reshape(-1).sort().values, q.detach().reshape(-1).sort().values)
    z = torch.randn(10, 6)
    assert not torch.allclose(twin(z), net(z))


def test_expect_learned_fails_outputs_that_ignore_the_weights_or_survive_the_shuffle():
    a = torch.randn(20, 2)
    with pytest.raises(AssertionError, match="same outputs when the trained network's weights are shuffled"):
        expect_learned(a, a.clone(), 0.0, name="sample(G, n)")
    with pytest.raises(AssertionError, match="scores as well with the trained network's weights shuffled"):
        expect_learned(a, a + 1, 0.5, name="sample(G, n)")
    expect_learned(a, a + 1, 0.0, name="sample(G, n)")   # learned: different, and nothing without the weights
