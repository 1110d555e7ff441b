"""Sample-quality metrics.

Digits (images (N, 64) in [0, 1]; numpy arrays or torch tensors, (N, 8, 8) and (N, 1, 8, 8) too):

* ``fid_lite``             Frechet distance between Gaussian fits of classifier features
* ``kid``                  unbiased squared MMD with the cubic polynomial kernel on the same features
* ``precision_recall``     k-NN manifold precision / recall (Kynkaanniemi et al. 2019)
* ``density_coverage``     k-NN density / coverage (Naeem et al. 2020)
* ``memorisation_fraction``  fraction of samples that are near-copies of training digits

"real" defaults to the 300 held-out digits (``kitdata.digits.load_digits("heldout")``), the
training set of ``memorisation_fraction`` to the 1,497 training digits. Features are those of
``kitdata.features.digit_features`` (32-d). Everything is computed in float64.

Known 2-D densities (``kitdata.toy2d``):

* ``mode_coverage``        (modes covered, fraction of high-quality samples)
* ``mean_log_density``     mean of the true log-density over the samples

See ``datasets/CALIBRATION.md`` for what these numbers look like on real, corrupted,
copied and noise samples, and at which sample size they are stable enough to grade.
"""
from __future__ import annotations

import functools

import numpy as np

from ._util import as_numpy
from .features import digit_features

# --- helpers ---------------------------------------------------------------------------


def _sqdist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (len(a), len(b)), float64, clipped at 0 (round-off)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(d, 0.0)


def _kth_nn_radius(a: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of a to its k-th nearest *other* row, float64 (len(a),)."""
    if not 1 <= k < len(a):
        raise ValueError(f"k must be in [1, {len(a) - 1}] for {len(a)} points, got {k}")
    d = _sqdist(a, a)
    np.fill_diagonal(d, np.inf)
    return np.sqrt(np.partition(d, k - 1, axis=1)[:, k - 1])


def _features(x) -> np.ndarray:
    f = digit_features(x)
    if not np.all(np.isfinite(f)):
        raise ValueError("samples contain NaN or inf")
    return f


@functools.lru_cache(maxsize=1)
def _heldout_features() -> np.ndarray:
    from .digits import load_digits

    f = digit_features(load_digits("heldout")[0])
    f.setflags(write=False)
    return f


def _real_features(real) -> np.ndarray:
    return _heldout_features() if real is None else _features(real)


def feature_stats(f) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian fit of features f (N, D): mean (D,) and unbiased covariance (D, D), float64."""
    f = as_numpy(f)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need at least 2 feature vectors of shape (N, D), got {f.shape}")
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


# --- Frechet distance / FID-lite -------------------------------------------------------------


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    """Symmetric PSD square root via eigendecomposition (negative round-off eigenvalues -> 0)."""
    w, v = np.linalg.eigh(s)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet (2-Wasserstein squared) distance between N(mu1, sigma1) and N(mu2, sigma2):

        d = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1^{1/2} S2 S1^{1/2})^{1/2})

    mu: (D,), sigma: (D, D) covariances. Computed in float64; both square roots are taken of
    symmetric PSD matrices by eigendecomposition, so it stays finite and >= 0 for singular
    covariances (e.g. fewer samples than dimensions), where the textbook
    tr(sqrtm(S1 S2)) with a general matrix square root can return complex or NaN values.
    tr((S1^{1/2} S2 S1^{1/2})^{1/2}) equals tr((S1 S2)^{1/2}) (same eigenvalues).
    """
    mu1, mu2 = as_numpy(mu1).ravel(), as_numpy(mu2).ravel()
    s1, s2 = np.atleast_2d(as_numpy(sigma1)), np.atleast_2d(as_numpy(sigma2))
    d = len(mu1)
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu1 {mu1.shape}, sigma1 {s1.shape}, mu2 {mu2.shape}, sigma2 {s2.shape}")
    if not all(np.all(np.isfinite(a)) for a in (mu1, mu2, s1, s2)):
        raise ValueError("statistics contain NaN or inf")
    s1, s2 = 0.5 * (s1 + s1.T), 0.5 * (s2 + s2.T)
    r1 = _psd_sqrt(s1)
    m = r1 @ s2 @ r1
    eig = np.linalg.eigvalsh(0.5 * (m + m.T))
    tr_covmean = np.sqrt(np.clip(eig, 0.0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean, 0.0))


@functools.lru_cache(maxsize=1)
def _heldout_stats():
    return feature_stats(_heldout_features())


def fid_lite(samples, real=None) -> float:
    """FID-lite = frechet_distance of the Gaussian fits of digit_features(samples) and
    digit_features(real).

    samples: (N, 64) in [0, 1], N >= 2 (use >= 1,000 for grading: see CALIBRATION.md);
    real: (M, 64), default the 300 held-out digits. Returns a float >= 0 (0 = same statistics).
    """
    mu1, s1 = feature_stats(_features(samples))
    mu2, s2 = _heldout_stats() if real is None else feature_stats(_features(real))
    return frechet_distance(mu1, s1, mu2, s2)


# --- KID -----------------------------------------------------------------------------------


def _poly_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def mmd2_unbiased(fx, fy) -> float:
    """Unbiased squared MMD with k(a, b) = (a.b / D + 1)^3 between features fx (n, D), fy (m, D):

        MMD^2_u = sum_{i != j} k(x_i, x_j) / (n (n-1)) + sum_{i != j} k(y_i, y_j) / (m (m-1))
                  - 2 sum_{i, j} k(x_i, y_j) / (n m)

    Can be slightly negative when the two distributions are equal (it is unbiased)."""
    fx, fy = as_numpy(fx), as_numpy(fy)
    n, m = len(fx), len(fy)
    if n < 2 or m < 2:
        raise ValueError("need at least 2 samples on each side")
    kxx, kyy, kxy = _poly_kernel(fx, fx), _poly_kernel(fy, fy), _poly_kernel(fx, fy)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
                 + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2.0 * kxy.mean())


def kid(samples, real=None) -> float:
    """Kernel Inception Distance, lite (Binkowski et al. 2018): ``mmd2_unbiased`` of
    digit_features(samples) (N, 32) and digit_features(real) (M, 32), over all pairs
    (the U-statistic itself rather than an average over random subsets: deterministic).
    real defaults to the 300 held-out digits. Unbiased, so ~0 (either sign) for a perfect sampler."""
    return mmd2_unbiased(_features(samples), _real_features(real))


# --- precision / recall, density / coverage ----------------------------------------------------


def precision_recall_features(fs, fr, k: int = 3) -> tuple[float, float]:
    """``precision_recall`` on given feature vectors (any space): fs (N, D) samples, fr (M, D) real."""
    fs, fr = as_numpy(fs), as_numpy(fr)
    rr, rs = _kth_nn_radius(fr, k), _kth_nn_radius(fs, k)
    d = np.sqrt(_sqdist(fs, fr))                                   # (N, M)
    precision = np.mean((d <= rr[None, :]).any(1))
    recall = np.mean((d <= rs[:, None]).any(0))
    return float(precision), float(recall)


def precision_recall(samples, real=None, k: int = 3) -> tuple[float, float]:
    """k-NN manifold precision and recall in feature space (Kynkaanniemi et al. 2019).

    Each point's ball has radius = distance to its k-th nearest neighbour in its own set.
        precision = fraction of samples inside at least one real ball   (are samples realistic?)
        recall    = fraction of real points inside at least one sample ball (is the data covered?)
    samples (N, 64), real (M, 64) (default held-out digits), k < min(N, M). Both in [0, 1]."""
    return precision_recall_features(_features(samples), _real_features(real), k)


def density_coverage_features(fs, fr, k: int = 5) -> tuple[float, float]:
    """``density_coverage`` on given feature vectors (any space): fs (N, D) samples, fr (M, D) real."""
    fs, fr = as_numpy(fs), as_numpy(fr)
    inside = np.sqrt(_sqdist(fs, fr)) <= _kth_nn_radius(fr, k)[None, :]   # (N, M)
    return float(inside.sum() / (k * len(fs))), float(inside.any(0).mean())


def density_coverage(samples, real=None, k: int = 5) -> tuple[float, float]:
    """k-NN density and coverage in feature space (Naeem et al. 2020); real balls only:
    B_i = ball around real point i with radius its k-th NN distance among the real points.
        density  = (1 / (k N)) sum_j #{i : sample j in B_i}   (~1 for a perfect sampler, may exceed 1)
        coverage = fraction of real points i whose ball contains at least one sample   (in [0, 1])
    samples (N, 64), real (M, 64) (default held-out digits)."""
    return density_coverage_features(_features(samples), _real_features(real), k)


# --- memorisation ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _train_pixels() -> tuple[np.ndarray, np.ndarray]:
    from .digits import load_digits

    x = load_digits("train")[0].astype(np.float64)
    return x, _kth_nn_radius(x, 1)


def nearest_train_distance(samples, train=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each sample: (index int64 (N,) of its nearest training image, pixel-space
    Euclidean distance d float64 (N,), that training image's own nearest-neighbour distance r
    among the other training images float64 (N,))."""
    if train is None:
        x, r = _train_pixels()
    else:
        x = as_numpy(train).reshape(len(train), -1)
        r = _kth_nn_radius(x, 1)
    s = as_numpy(samples).reshape(-1, x.shape[1])
    idx = np.empty(len(s), dtype=np.int64)
    dist = np.empty(len(s))
    for i in range(0, len(s), 1024):  # bounded memory for large sample sets
        d = _sqdist(s[i:i + 1024], x)
        idx[i:i + 1024] = d.argmin(1)
        dist[i:i + 1024] = np.sqrt(d[np.arange(len(d)), idx[i:i + 1024]])
    return idx, dist, r[idx]


def memorisation_fraction(samples, train=None, ratio: float = 0.5) -> float:
    """Fraction of samples that are near-copies of a training image, in pixel space.

    Sample s with nearest training image t is a near-copy when
        |s - t| <= ratio * |t - t'|,   t' = t's nearest other training image,
    i.e. s is much closer to t than any other real digit is. With ratio 0.5 none of the 300
    held-out digits is flagged (their smallest ratio is 0.51), while training copies with pixel
    noise up to std 0.05 are (97%). samples: (N, 64) (any shape with 64 values per sample);
    train: (M, 64), default the 1,497 training digits. Returns a float in [0, 1]."""
    _, d, r = nearest_train_distance(samples, train)
    return float(np.mean(d <= ratio * r))


# --- exact metrics for known 2-D densities --------------------------------------------------------


def mode_coverage(samples, mixture, n_std: float = 3.0) -> tuple[int, float]:
    """Mode coverage and sample quality against a ``kitdata.toy2d.GaussianMixture2D``
    (the VEEGAN / PacGAN / Unrolled-GAN protocol):

    * a sample is *high quality* if it lies within ``n_std`` (3) standard deviations of its
      nearest mode mean: |x - mu_k| <= 3 std_k, k = argmin_j |x - mu_j|;
    * a mode is *covered* if at least one high-quality sample is nearest to it.

    samples: (N, 2). Returns (modes_covered: int in [0, K], high_quality_fraction: float in [0, 1])."""
    x = as_numpy(samples)
    if len(x) == 0:
        return 0, 0.0
    k, d = mixture.nearest_mode(x)
    std = np.broadcast_to(np.asarray(mixture.std, dtype=np.float64), (mixture.n_modes,))
    hq = d <= n_std * std[k]
    return int(len(np.unique(k[hq]))), float(hq.mean())


def mean_log_density(samples, mixture) -> float:
    """(1/N) sum_i log p(x_i) under the true density (any object with ``log_prob``, e.g.
    ``toy2d.ring8()``, ``toy2d.TwoMoons()``). samples: (N, 2). Higher is better, but a sampler
    that puts every sample on the highest mode scores high too: pair it with mode_coverage.
    For a perfect sampler it estimates -H(p), the negative entropy of the source."""
    lp = mixture.log_prob(as_numpy(samples))
    return float(np.mean(lp))
