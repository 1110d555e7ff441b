"""2-D sources: exact sampling and exact log-density."""
import math

import numpy as np
import pytest
import torch

from kitdata import toy2d


def _grid_integral(src, lo, hi, n=220):
    g = np.linspace(lo, hi, n)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    return np.exp(src.log_prob(pts)).sum() * (g[1] - g[0]) ** 2


@pytest.mark.parametrize("src,lo,hi", [
    (toy2d.ring8(std=0.1), -3, 3),
    (toy2d.GaussianMixture2D([[0, 0], [1, 1], [-1, 2]], [0.3, 0.2, 0.4], weights=[1, 2, 3]), -3, 4),
    (toy2d.TwoMoons(noise=0.1), -2, 3),
    (toy2d.Spiral(noise=0.15), -4.5, 4.5),
])
def test_density_integrates_to_one(src, lo, hi):
    assert abs(_grid_integral(src, lo, hi) - 1.0) < 1e-3


def test_mixture_log_prob_matches_scipy():
    from scipy.stats import multivariate_normal

    m = toy2d.GaussianMixture2D([[0, 0], [2, -1]], [0.5, 1.5], weights=[0.25, 0.75])
    x = np.array([[0.1, 0.2], [2.0, -1.0], [5.0, 5.0], [-30.0, 0.0]])
    ref = np.log(0.25 * multivariate_normal([0, 0], 0.25).pdf(x) + 0.75 * multivariate_normal([2, -1], 2.25).pdf(x))
    np.testing.assert_allclose(m.log_prob(x), ref, rtol=1e-10)
    assert m.log_prob(np.array([[1e3, 1e3]]))[0] < -1e5  # finite far away, no underflow to -inf
    assert np.isfinite(m.log_prob(np.array([[1e3, 1e3]]))).all()


def test_ring8_and_grid25_constants():
    r, g = toy2d.ring8(), toy2d.grid25()
    assert r.means.shape == (8, 2) and r.means.dtype == np.float64 and r.std == 0.02
    np.testing.assert_allclose(np.linalg.norm(r.means, axis=1), 2.0)
    assert g.means.shape == (25, 2) and g.std == 0.05
    assert sorted(set(g.means[:, 0])) == [-4, -2, 0, 2, 4]
    np.testing.assert_allclose(r.weights, 1 / 8)


def test_samples_follow_the_mixture():
    m = toy2d.grid25()
    x = m.sample(20000, generator=0)
    assert x.shape == (20000, 2) and x.dtype == np.float32
    k, d = m.nearest_mode(x)
    counts = np.bincount(k, minlength=25)
    assert counts.min() > 650 and counts.max() < 950          # 800 expected per mode
    # distance to own mean is Rayleigh(std): E = std sqrt(pi/2)
    assert abs(d.mean() - 0.05 * math.sqrt(math.pi / 2)) < 0.002


def test_sample_mean_log_prob_is_minus_entropy():
    # a narrow isotropic Gaussian mixture with well separated modes: H = log K + log(2 pi e s^2)
    m = toy2d.ring8()
    x = m.sample(20000, generator=torch.Generator().manual_seed(1))
    h = math.log(8) + math.log(2 * math.pi * math.e * 0.02**2)
    assert abs(-m.log_prob(x).mean() - h) < 0.03


def test_generators_reproducible_and_torch_input_accepted():
    m = toy2d.ring8()
    np.testing.assert_array_equal(m.sample(10, generator=3), m.sample(10, generator=3))
    np.testing.assert_array_equal(m.sample(10, np.random.default_rng(3)), m.sample(10, np.random.default_rng(3)))
    torch.manual_seed(5)
    a = m.sample(10)
    torch.manual_seed(5)
    np.testing.assert_array_equal(a, m.sample(10))
    x = m.sample(6, generator=0)
    np.testing.assert_allclose(m.log_prob(torch.from_numpy(x)), m.log_prob(x))


def test_curves():
    x = toy2d.two_moons(5000, noise=0.0, generator=0)
    # noiseless moons lie on the two unit half circles
    r_up = np.hypot(x[:, 0], x[:, 1])
    r_lo = np.hypot(x[:, 0] - 1, x[:, 1] - 0.5)
    assert np.all(np.minimum(abs(r_up - 1), abs(r_lo - 1)) < 1e-5)
    assert abs(np.mean(x[:, 1] > 0.25) - 0.5) < 0.05
    s = toy2d.spiral(1000, generator=0)
    assert s.shape == (1000, 2) and s.dtype == np.float32
    # noisy samples are denser under the true density than shuffled-away points
    sp = toy2d.Spiral()
    assert sp.log_prob(s).mean() > sp.log_prob(s + np.array([1.5, 0.0], dtype=np.float32)).mean() + 1.0


def test_bad_inputs():
    with pytest.raises(ValueError):
        toy2d.GaussianMixture2D([[0, 0]], std=-1.0)
    with pytest.raises(ValueError):
        toy2d.ring8().log_prob(np.zeros((3, 3)))
