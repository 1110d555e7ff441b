"""A labelled 2-D data set whose class-conditional densities are known exactly.

``two_class()`` is the data-generating distribution of the ``classifiers`` assignment:

    p(y = 0) = p(y = 1) = 1/2
    p(x | y = 0) = 0.75 N((-1, 0), 0.7^2 I) + 0.25 N((-1.5, -2.5), 0.5^2 I)
    p(x | y = 1) = 0.80 N(( 1, 0), 0.7^2 I) + 0.20 N(( 5.0,  4.0), 0.6^2 I)

Each class is a mixture of two isotropic Gaussians (``toy2d.GaussianMixture2D``), so a
Gaussian class-conditional model (one Gaussian per class, shared covariance) is
*misspecified*: its decision boundary is a line fitted to the wrong shape, and the far
minor components drag it away from the best line. The Bayes-optimal classifier
argmax_c p(y = c) p(x | y = c) is not linear either, but the best linear rule is close to it.

Exact quantities:

* ``log_joint(x)``: log p(x, y = c), float64 (n, 2), in closed form (log-sum-exp).
* ``BAYES_ERROR``: the Bayes error  integral min_c p(c) p(x|c) dx  by the midpoint rule on
  [-8, 12]^2 (outside it the densities hold less than 1e-20 of the mass); ``BAYES_ERROR_BOUND``
  bounds the quadrature's error (step h = 0.005 against h = 0.01 differ by less; the
  integrand is smooth except across the Bayes boundary, where the rule is O(h^2)).
  ``bayes_error(h)`` recomputes it.

``sample(n, generator)`` draws (x float32 (n, 2), y int64 (n,)) exactly; ``generator`` is a
``torch.Generator``, a ``numpy.random.Generator``, an int seed or None, as in ``toy2d``.
There is no fixed split: draw a training set from a seed of your own.

``variant(rng)`` is the same task under a change no one can predict without ``rng``: both
classes moved by one similarity transform (turned by 60 to 300 degrees, scaled, shifted), each
class's components and the priors reweighted. Graders train and judge on such a variant, drawn from a
secret of their own, with its exact Bayes error (``bayes_error``) and the exact error of any
linear rule (``linear_rule_error``), so that nothing computed from the public ``two_class()``
scores there.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from .toy2d import GaussianMixture2D, _as_points, _logsumexp, _uniform

BAYES_ERROR = 0.059355            # two_class(): midpoint rule, h = 0.005 gives 0.0593554, h = 0.01 0.0593571
BAYES_ERROR_BOUND = 2e-6          # |BAYES_ERROR - exact|: Richardson puts the h = 0.005 error at 6e-7


class LabelledMixture2D:
    """Classes c = 0..C-1 with priors ``priors`` (C,) and class-conditionals ``classes[c]``
    (each a ``toy2d.GaussianMixture2D``)."""

    def __init__(self, classes, priors):
        self.classes = list(classes)
        p = np.asarray(priors, dtype=np.float64)
        if p.shape != (len(self.classes),) or np.any(p <= 0):
            raise ValueError("priors must be positive, one per class")
        self.priors = p / p.sum()

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def sample(self, n: int, generator=None) -> tuple[np.ndarray, np.ndarray]:
        """n exact draws: x float32 (n, 2), y int64 (n,) with y ~ p(y), x ~ p(x | y)."""
        u = _uniform((n,), generator)
        y = np.minimum(np.searchsorted(np.cumsum(self.priors), u, side="right"), self.n_classes - 1)
        x = np.empty((n, 2), dtype=np.float32)
        for c, dist in enumerate(self.classes):
            idx = np.flatnonzero(y == c)
            if len(idx):
                x[idx] = dist.sample(len(idx), generator)
        return x, y.astype(np.int64)

    def log_class_density(self, x) -> np.ndarray:
        """log p(x | y = c), float64 (n, C)."""
        x = _as_points(x)
        return np.stack([d.log_prob(x) for d in self.classes], 1)

    def log_joint(self, x) -> np.ndarray:
        """log p(x, y = c) = log p(c) + log p(x | c), float64 (n, C)."""
        return self.log_class_density(x) + np.log(self.priors)

    def posterior(self, x) -> np.ndarray:
        """p(y = c | x), float64 (n, C) (rows sum to one)."""
        lj = self.log_joint(x)
        return np.exp(lj - _logsumexp(lj, axis=1)[:, None])

    def box(self, n_std: float = 10.0) -> tuple[float, float]:
        """(lo, hi): the square [lo, hi]^2 holds every component's mean +- n_std standard deviations
        (outside it each density holds less than exp(-n_std^2 / 2) of its mass; 2e-22 at 10)."""
        lows, highs = [], []
        for dist in self.classes:
            s = dist._std_vec()[:, None]
            lows.append((dist.means - n_std * s).min())
            highs.append((dist.means + n_std * s).max())
        return float(min(lows)), float(max(highs))

    def bayes_error(self, h: float = 0.005, box=None, chunk: int = 1 << 20) -> float:
        """The Bayes error, 1 - integral max_c p(c) p(x|c) dx, by the midpoint rule with step h on box^2
        (``box()`` when None; float64; a few seconds at h = 0.005, a fraction of one at h = 0.02, whose
        error on two_class() is below 3e-5)."""
        lo, hi = self.box() if box is None else box
        g = np.arange(lo, hi, h) + h / 2
        total, max_total = 0.0, 0.0
        for i in range(0, len(g), max(1, chunk // len(g))):
            xs, ys = np.meshgrid(g, g[i:i + max(1, chunk // len(g))])
            lj = self.log_joint(np.stack([xs.ravel(), ys.ravel()], 1))
            total += float(np.exp(lj).sum())
            max_total += float(np.exp(lj.max(1)).sum())
        return (total - max_total) * h * h


    def linear_rule_error(self, weight, bias: float) -> float:
        """Exact error of the two-class rule 'class 1 when w . x + b > 0': w . x of a component
        N(mu, s^2 I) is N(w . mu, s^2 |w|^2), so P(w . x + b > 0) = Phi((w . mu + b) / (s |w|))."""
        from math import erf, sqrt

        if self.n_classes != 2:
            raise ValueError("a linear rule separates two classes")
        w = np.asarray(weight, dtype=np.float64).reshape(2)
        norm_w = float(np.linalg.norm(w))
        err = 0.0
        for c, dist in enumerate(self.classes):
            stds = dist._std_vec()
            for k in range(dist.n_modes):
                score = float(w @ dist.means[k] + bias)
                p1 = (1.0 if score > 0 else 0.0) if norm_w == 0 else 0.5 * (1 + erf(score / (stds[k] * norm_w * sqrt(2))))
                err += self.priors[c] * dist.weights[k] * (p1 if c == 0 else 1 - p1)
        return err


@functools.lru_cache(maxsize=1)
def two_class() -> LabelledMixture2D:
    """The assignment's two-class distribution (see the module docstring)."""
    c0 = GaussianMixture2D([[-1.0, 0.0], [-1.5, -2.5]], [0.7, 0.5], [0.75, 0.25])
    c1 = GaussianMixture2D([[1.0, 0.0], [5.0, 4.0]], [0.7, 0.6], [0.8, 0.2])
    return LabelledMixture2D([c0, c1], [0.5, 0.5])


def sample(n: int, generator=None) -> tuple[np.ndarray, np.ndarray]:
    """n draws (x, y) from ``two_class()``."""
    return two_class().sample(n, generator)


def variant(rng: np.random.Generator, base: LabelledMixture2D | None = None, *, turn=(math.pi / 3, 5 * math.pi / 3),
            scale=(0.8, 1.25), shift: float = 0.5, priors=(0.75, 1.25), weights=(0.6, 1.4)) -> LabelledMixture2D:
    """``base`` (``two_class()`` when None) moved by one similarity transform x -> s R(theta) x + b
    for both classes (so they keep their overlap; each std scaled by s), theta ~ U[turn],
    s ~ U[scale], b ~ U[-shift, shift]^2, each class's component weights multiplied by U[weights]
    draws and the priors by U[priors] draws. The turn is at least 60 degrees either way, so the
    base's Bayes rule (or any rule fitted to the base) is far from the variant's; otherwise as
    ``kitdata.variants.mixture`` moves one mixture."""
    base = two_class() if base is None else base
    theta, s, b = rng.uniform(*turn), rng.uniform(*scale), rng.uniform(-shift, shift, size=2)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    classes = []
    for dist in base.classes:
        w = dist.weights * rng.uniform(*weights, size=dist.n_modes)
        classes.append(GaussianMixture2D(s * dist.means @ rotation.T + b, s * dist._std_vec(), w / w.sum()))
    return LabelledMixture2D(classes, base.priors * rng.uniform(*priors, size=base.n_classes))
