"""The classifiers assignment's data: kitdata.labelled2d (exact class-conditionals and Bayes
error) and kitdata.planted (a class pattern at a recorded place)."""
import numpy as np
import pytest

from kitdata import labelled2d, planted


def test_labelled2d_sampling_is_seeded_and_matches_the_priors():
    x, y = labelled2d.sample(20_000, 3)
    x2, y2 = labelled2d.sample(20_000, 3)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (20_000, 2)
    assert abs(y.mean() - 0.5) < 5 * 0.5 / np.sqrt(len(y))


def test_labelled2d_posterior_and_bayes_error():
    mix = labelled2d.two_class()
    x, y = mix.sample(50_000, np.random.default_rng(1))
    post = mix.posterior(x)
    assert np.allclose(post.sum(1), 1.0)
    # the Bayes rule's empirical error agrees with the shipped constant (5 standard errors)
    err = float(np.mean(post.argmax(1) != y))
    assert abs(err - labelled2d.BAYES_ERROR) < 5 * np.sqrt(labelled2d.BAYES_ERROR / len(y))
    # a coarse quadrature is already within 1e-4 of it
    assert mix.bayes_error(h=0.04) == pytest.approx(labelled2d.BAYES_ERROR, abs=1e-4)


def test_planted_patterns_sit_where_recorded():
    x, y, centres = planted.make(200, 5, noise=0.0)
    for i in range(len(x)):
        r, c = centres[i]
        assert np.array_equal(x[i, 0, r - 1:r + 2, c - 1:c + 2], planted.PATTERNS[y[i]])
        assert x[i].sum() == planted.PATTERNS[y[i]].sum()
    maps = x[:, 0].astype(np.float64) * 1.0
    maps[np.arange(len(x)), centres[:, 0], centres[:, 1]] += 5.0
    assert planted.pointing_hits(maps, centres).all()
    assert not planted.pointing_hits(np.full((1, 12, 12), np.nan), centres[:1]).any()
    a, b = planted.train_set(), planted.make(planted.TRAIN_N, planted.TRAIN_SEED)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_labelled2d_variant_moves_the_bayes_rule_far_from_the_public_one():
    """A grading's hidden variant: its exact linear-rule error agrees with counting on samples,
    and the public Bayes rule applied to it is far worse than the variant's own."""
    base = labelled2d.two_class()
    variant = labelled2d.variant(np.random.default_rng(5))
    again = labelled2d.variant(np.random.default_rng(5))
    assert np.array_equal(variant.priors, again.priors)
    x, y = variant.sample(200_000, generator=1)
    w, b = np.array([0.7, -1.3]), 0.4
    counted = float(np.mean((x @ w + b > 0).astype(int) != y))
    assert variant.linear_rule_error(w, b) == pytest.approx(counted, abs=4e-3)
    own = variant.bayes_error(h=0.02)
    public_rule = float(np.mean(base.posterior(x).argmax(1) != y))
    assert own < public_rule - 0.05


def test_planted_variant_patterns_are_like_the_public_ones():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(30):
        patterns = planted.variant_patterns(rng)
        assert patterns.shape == (3, 3, 3)
        for label, p in enumerate(patterns):
            assert np.array_equal(p, p[::-1, ::-1])           # unchanged by a half turn
            assert 4 <= p.sum() <= 8 and p.any(0).all() and p.any(1).all()
            public = planted.PATTERNS[label]                   # far from its public namesake
            assert min(planted._shifted_distance(p, public), planted._shifted_distance(public, p)) >= 4
        seen.add(patterns.tobytes())
        images, labels, centres = planted.make(20, generator=1, patterns=patterns)
        assert images.shape == (20, 1, planted.SIZE, planted.SIZE) and set(labels) <= {0, 1, 2}
    assert len(seen) > 10
