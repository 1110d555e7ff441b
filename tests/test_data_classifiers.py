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
