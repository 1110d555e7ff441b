"""Sample-quality metrics: formulas against independent references, and edge cases."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from kitdata import digits, features, metrics, toy2d


def _spd(rng, d, cond=10.0):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (q * np.linspace(1.0, cond, d)) @ q.T


def _textbook_fd(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


# --- Frechet distance -------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 16, 32])
def test_frechet_matches_textbook_sqrtm(d):
    rng = np.random.default_rng(d)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = _spd(rng, d), _spd(rng, d, cond=5.0)
    ours = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(_textbook_fd(mu1, s1, mu2, s2), rel=1e-6)
    assert ours == pytest.approx(metrics.frechet_distance(mu2, s2, mu1, s1), rel=1e-9)  # symmetric


def test_frechet_closed_form_for_commuting_covariances():
    # diagonal covariances: d = |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2, also when singular
    a = np.array([4.0, 1.0, 0.0, 0.0, 2.0])
    b = np.array([1.0, 0.0, 0.0, 9.0, 2.0])
    mu1, mu2 = np.arange(5.0), np.arange(5.0)[::-1]
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(want, rel=1e-12)


def test_frechet_finite_and_nonnegative_where_sqrtm_struggles():
    rng = np.random.default_rng(0)
    d = 32
    # fewer samples than dimensions: rank-deficient covariances
    x1, x2 = rng.standard_normal((10, d)), rng.standard_normal((12, d))
    mu1, s1 = metrics.feature_stats(x1)
    mu2, s2 = metrics.feature_stats(x2)
    assert np.linalg.matrix_rank(s1) < d
    fd = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert math.isfinite(fd) and fd >= 0
    # identical singular statistics: exactly the distance zero up to round-off, never negative
    for s in (s1, np.zeros((d, d)), np.outer(np.ones(d), np.ones(d))):
        v = metrics.frechet_distance(mu1, s, mu1, s)
        assert 0.0 <= v < 1e-8 * max(1.0, np.trace(s))
    # nearly singular and badly scaled: the textbook route's result may be complex or off,
    # ours stays finite, >= 0 and symmetric
    u = rng.standard_normal((d, 3))
    s3, s4 = u @ u.T * 1e6, np.diag(np.r_[1e-12 * np.ones(d - 1), 1.0])
    for a, b in ((s3, s4), (s4, s3), (s3, s3 + 1e-9 * np.eye(d))):
        v = metrics.frechet_distance(np.zeros(d), a, np.zeros(d), b)
        assert math.isfinite(v) and v >= 0
    assert metrics.frechet_distance(np.zeros(d), s3, np.zeros(d), s4) == pytest.approx(
        metrics.frechet_distance(np.zeros(d), s4, np.zeros(d), s3), rel=1e-6)


def test_frechet_rejects_bad_input():
    with pytest.raises(ValueError):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError):
        metrics.frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))


# --- FID-lite ------------------------------------------------------------------------


def test_fid_lite_is_features_then_frechet_and_accepts_tensors():
    x, _ = digits.load_digits("train")
    xh, _ = digits.load_digits("heldout")
    s = x[:400]
    f, fh = features.digit_features(s), features.digit_features(xh)
    want = metrics.frechet_distance(f.mean(0), np.cov(f.T), fh.mean(0), np.cov(fh.T))
    assert metrics.fid_lite(s) == pytest.approx(want, rel=1e-10)
    assert metrics.fid_lite(torch.from_numpy(s).view(-1, 1, 8, 8)) == pytest.approx(want, rel=1e-10)
    assert metrics.fid_lite(xh) == pytest.approx(0.0, abs=1e-9)
    assert metrics.fid_lite(s, real=s) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError):
        metrics.fid_lite(np.zeros((10, 63)))
    with pytest.raises(ValueError):
        metrics.fid_lite(np.full((10, 64), np.nan))


# --- KID -------------------------------------------------------------------------------


def test_mmd_matches_a_direct_double_sum():
    rng = np.random.default_rng(1)
    fx, fy = rng.standard_normal((7, 3)), rng.standard_normal((5, 3)) + 0.5
    k = lambda a, b: (a @ b / 3 + 1) ** 3
    xx = sum(k(fx[i], fx[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(fy[i], fy[j]) for i in range(5) for j in range(5) if i != j) / (5 * 4)
    xy = sum(k(a, b) for a in fx for b in fy) / 35
    assert metrics.mmd2_unbiased(fx, fy) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kid_is_unbiased_where_the_biased_estimate_is_not():
    rng = np.random.default_rng(2)
    vals, biased = [], []
    for _ in range(200):
        fx, fy = rng.standard_normal((20, 4)), rng.standard_normal((20, 4))
        vals.append(metrics.mmd2_unbiased(fx, fy))
        k = lambda a, b: (a @ b.T / 4 + 1) ** 3
        biased.append(k(fx, fx).mean() + k(fy, fy).mean() - 2 * k(fx, fy).mean())
    se = np.std(vals) / np.sqrt(len(vals))
    assert abs(np.mean(vals)) < 3 * se          # zero mean for equal distributions
    assert np.mean(biased) > 10 * se            # the V-statistic is biased upwards


# --- precision / recall, density / coverage ----------------------------------------------


def _brute_pr(fs, fr, k):
    def radius(a):
        return np.array([np.sort([np.linalg.norm(p - q) for j, q in enumerate(a) if j != i])[k - 1]
                         for i, p in enumerate(a)])
    rr, rs = radius(fr), radius(fs)
    prec = np.mean([any(np.linalg.norm(s - r) <= rr[i] for i, r in enumerate(fr)) for s in fs])
    rec = np.mean([any(np.linalg.norm(r - s) <= rs[j] for j, s in enumerate(fs)) for r in fr])
    dens = sum(np.linalg.norm(s - r) <= rr[i] for s in fs for i, r in enumerate(fr)) / (k * len(fs))
    cov = np.mean([any(np.linalg.norm(s - r) <= rr[i] for s in fs) for i, r in enumerate(fr)])
    return prec, rec, dens, cov


def test_knn_metrics_match_brute_force():
    rng = np.random.default_rng(3)
    fr = rng.standard_normal((25, 2))
    fs = np.r_[rng.standard_normal((15, 2)), rng.standard_normal((10, 2)) + 4.0]   # 10 off the data
    prec, rec, dens, cov = _brute_pr(fs, fr, 3)
    assert metrics.precision_recall_features(fs, fr, 3) == pytest.approx((prec, rec))
    _, _, dens5, cov5 = _brute_pr(fs, fr, 5)
    assert metrics.density_coverage_features(fs, fr, 5) == pytest.approx((dens5, cov5))
    assert prec <= 0.6 + 1e-9  # the 10 far samples are outside every real ball


def test_knn_metrics_separate_realistic_from_diverse():
    x, y = digits.load_digits("train")
    one_class = x[y == 3]
    p, r = metrics.precision_recall(one_class)
    d, c = metrics.density_coverage(one_class)
    assert p > 0.8 and r < 0.2 and c < 0.2          # realistic but not diverse
    p, r = metrics.precision_recall(np.random.default_rng(0).random((300, 64)))
    assert p < 0.1                                  # noise is not realistic


# --- memorisation ------------------------------------------------------------------------


def test_memorisation_flags_training_copies_not_new_digits():
    x, _ = digits.load_digits("train")
    xh, _ = digits.load_digits("heldout")
    assert metrics.memorisation_fraction(x[:500]) == 1.0
    assert metrics.memorisation_fraction(torch.from_numpy(x[:50]).view(-1, 8, 8)) == 1.0
    assert metrics.memorisation_fraction(xh) == 0.0
    half = np.r_[x[:100], xh[:100]]
    assert metrics.memorisation_fraction(half) == pytest.approx(0.5)
    # a "model" that replays training images scores like real data on FID-lite ...
    assert metrics.fid_lite(x[:1000]) < 0.5 * metrics.fid_lite(np.clip(x[:1000] + 0.1 * np.random.default_rng(0).standard_normal((1000, 64)), 0, 1))
    # ... and the memorisation check is what catches it
    idx, dist, _ = metrics.nearest_train_distance(x[10:20])
    np.testing.assert_array_equal(idx, np.arange(10, 20))
    np.testing.assert_array_equal(dist, 0.0)


def test_memorisation_with_custom_train_set():
    train = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    s = np.array([[0.1, 0.0], [5.0, 5.0], [10.0, 4.9], [0.0, 0.0]])
    # radii are all 10: flagged when within 5 of a training point
    assert metrics.memorisation_fraction(s, train) == pytest.approx(3 / 4)


# --- exact 2-D metrics ---------------------------------------------------------------------


def test_mode_coverage_by_hand():
    m = toy2d.GaussianMixture2D([[0, 0], [10, 0], [0, 10]], std=1.0)
    s = np.array([[0.5, 0.5], [2.9, 0.0], [3.1, 0.0], [10.0, 2.0], [5.0, 5.0]])
    # high quality: within 3: (0.5,0.5), (2.9,0), (10,2) -> modes 0 and 1 covered, 3 of 5 HQ
    assert metrics.mode_coverage(s, m) == (2, pytest.approx(3 / 5))
    assert metrics.mode_coverage(torch.tensor(s), m) == (2, pytest.approx(3 / 5))
    # per-component std: a looser mode 2
    m2 = toy2d.GaussianMixture2D(m.means, std=[1.0, 1.0, 3.0])
    assert metrics.mode_coverage(np.array([[0.0, 3.0 + 5.0]]), m2) == (1, 1.0)


def test_mode_coverage_and_log_density_on_samplers():
    ring = toy2d.ring8()
    perfect = ring.sample(2000, generator=0)
    assert metrics.mode_coverage(perfect, ring)[0] == 8
    one = toy2d.GaussianMixture2D(ring.means[:1], ring.std).sample(2000, generator=0)
    assert metrics.mode_coverage(one, ring)[0] == 1
    assert metrics.mean_log_density(perfect, ring) == pytest.approx(ring.log_prob(perfect).mean())
    blurry = toy2d.GaussianMixture2D(ring.means, 0.1).sample(2000, generator=0)
    assert metrics.mean_log_density(blurry, ring) < metrics.mean_log_density(perfect, ring) - 2
    assert metrics.mode_coverage(blurry, ring)[1] < 0.5
