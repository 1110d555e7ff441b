"""2-D data sources whose generating density is known exactly.

Every source has ``.sample(n, generator=None) -> float32 (n, 2)`` and
``.log_prob(x) -> float64 (n,)`` (x: (n, 2) numpy array or torch tensor). Outputs are numpy
arrays (``torch.from_numpy(x)`` gives a tensor without copying).

``generator`` may be a ``torch.Generator``, a ``numpy.random.Generator``, an int seed
(used as ``torch.Generator().manual_seed(seed)``) or None (torch's global RNG, so
``torch.manual_seed`` makes sampling reproducible).

Sources (constants chosen to match the GAN mode-collapse literature):

* ``ring8()``: 8 equally weighted Gaussians, means at radius 2 and angles 2*pi*k/8,
  std 0.02 (Metz et al. 2017, *Unrolled GANs*; Srivastava et al. 2017, *VEEGAN*).
* ``grid25()``: 25 equally weighted Gaussians, means on the grid {-4, -2, 0, 2, 4}^2
  (spacing 2), std 0.05 (VEEGAN; Lin et al. 2018, *PacGAN*).
* ``TwoMoons`` / ``two_moons(n)``: two interleaved half circles (as in
  ``sklearn.datasets.make_moons``) plus isotropic Gaussian noise; non-Gaussian.
* ``Spiral`` / ``spiral(n)``: one Archimedean spiral arm plus Gaussian noise; non-Gaussian.

For the curve sources x = c(t) + noise * N(0, I) with t ~ Uniform[0, 1], so
p(x) = integral_0^1 N(x; c(t), noise^2 I) dt; ``log_prob`` evaluates the integral with the
midpoint rule on ``quadrature`` nodes spaced at most noise / 8 apart along the curve: for
a Gaussian integrand that is accurate to round-off away from the curve's two ends and to
about 1e-3 relative near them (cost: n x ~1,000-2,500 kernel evaluations).
"""
from __future__ import annotations

import math

import numpy as np

from ._util import as_numpy

LOG_2PI = math.log(2.0 * math.pi)


# --- randomness: one code path for torch / numpy generators -----------------------------

def _draw(shape, generator, *, normal: bool) -> np.ndarray:
    """Standard normal (or uniform [0, 1)) float64 draws from a numpy Generator, a torch
    Generator, an int seed, or None (torch's global generator)."""
    if isinstance(generator, np.random.Generator):
        return generator.standard_normal(shape) if normal else generator.random(shape)
    import torch

    if isinstance(generator, (int, np.integer)):
        generator = torch.Generator().manual_seed(int(generator))
    draw = torch.randn if normal else torch.rand
    return draw(*shape, generator=generator, dtype=torch.float64).numpy()


def _normal(shape, generator) -> np.ndarray:
    return _draw(shape, generator, normal=True)


def _uniform(shape, generator) -> np.ndarray:
    return _draw(shape, generator, normal=False)


def _as_points(x) -> np.ndarray:
    a = as_numpy(x)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"expected points of shape (n, 2), got {tuple(a.shape)}")
    return a


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


# --- Gaussian mixtures ---------------------------------------------------------------

class GaussianMixture2D:
    """Mixture of K isotropic 2-D Gaussians.

    p(x) = sum_k w_k N(x; mu_k, std_k^2 I),   log N(x; mu, s^2 I) = -|x - mu|^2 / (2 s^2) - log(2 pi s^2).

    Attributes:
        means: float64 (K, 2);  std: float (shared) or float64 (K,) per component;
        weights: float64 (K,), sums to 1 (uniform when None).
    """

    def __init__(self, means, std, weights=None):
        self.means = np.array(means, dtype=np.float64).reshape(-1, 2)
        k = len(self.means)
        std_arr = np.asarray(std, dtype=np.float64)
        if std_arr.ndim == 0:
            self.std = float(std_arr)
        else:
            if std_arr.shape != (k,):
                raise ValueError(f"std must be a scalar or shape ({k},), got {std_arr.shape}")
            self.std = std_arr.copy()
        if np.any(std_arr <= 0):
            raise ValueError("std must be positive")
        w = np.full(k, 1.0 / k) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.shape != (k,) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError(f"weights must be non-negative with shape ({k},)")
        self.weights = w / w.sum()

    @property
    def n_modes(self) -> int:
        return len(self.means)

    def _std_vec(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.std, dtype=np.float64), (self.n_modes,))

    def sample(self, n: int, generator=None) -> np.ndarray:
        """n exact samples, float32 (n, 2)."""
        u = _uniform((n,), generator)
        comp = np.minimum(np.searchsorted(np.cumsum(self.weights), u, side="right"), self.n_modes - 1)
        eps = _normal((n, 2), generator)
        return (self.means[comp] + self._std_vec()[comp, None] * eps).astype(np.float32)

    def log_prob(self, x) -> np.ndarray:
        """Exact log-density, float64 (n,), for x of shape (n, 2)."""
        x = _as_points(x)
        s = self._std_vec()
        d2 = ((x[:, None, :] - self.means[None]) ** 2).sum(-1)                       # (n, K)
        log_comp = -0.5 * d2 / s**2 - np.log(s**2) - LOG_2PI + np.log(self.weights)  # (n, K)
        return _logsumexp(log_comp, axis=1)

    def nearest_mode(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(index int64 (n,), Euclidean distance float64 (n,)) of each point's nearest mean."""
        x = _as_points(x)
        d = np.sqrt(((x[:, None, :] - self.means[None]) ** 2).sum(-1))
        k = d.argmin(1)
        return k, d[np.arange(len(x)), k]

    def __repr__(self) -> str:
        return f"GaussianMixture2D(K={self.n_modes}, std={self.std})"


def ring8(radius: float = 2.0, std: float = 0.02) -> GaussianMixture2D:
    """8 equally weighted Gaussians on a circle: means radius*(cos, sin)(2 pi k / 8), std 0.02."""
    a = 2.0 * np.pi * np.arange(8) / 8
    return GaussianMixture2D(radius * np.stack([np.cos(a), np.sin(a)], 1), std)


def grid25(spacing: float = 2.0, std: float = 0.05) -> GaussianMixture2D:
    """25 equally weighted Gaussians with means on {-2, -1, 0, 1, 2}^2 * spacing (default
    {-4, -2, 0, 2, 4}^2) and std 0.05."""
    g = spacing * np.arange(-2, 3, dtype=np.float64)
    xx, yy = np.meshgrid(g, g, indexing="ij")
    return GaussianMixture2D(np.stack([xx.ravel(), yy.ravel()], 1), std)


# --- curves plus noise (non-Gaussian) ----------------------------------------------------

class _NoisyCurve:
    """x = c(t) + noise * N(0, I), t ~ Uniform[0, 1]; subclasses define c(t) -> (len(t), 2)."""

    noise: float

    max_speed: float  # max over t of |dc/dt|

    def curve(self, t: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, n: int, generator=None) -> np.ndarray:
        """n exact samples, float32 (n, 2)."""
        t = _uniform((n,), generator)
        eps = _normal((n, 2), generator)
        return (self.curve(t) + self.noise * eps).astype(np.float32)

    @property
    def quadrature(self) -> int:
        """Midpoint-rule nodes: spacing along the curve <= noise / 8 at the curve's fastest point."""
        return int(min(max(np.ceil(8.0 * self.max_speed / self.noise), 256), 1 << 16))

    def log_prob(self, x, chunk: int = 512) -> np.ndarray:
        """log p(x), float64 (n,): midpoint rule for integral_0^1 N(x; c(t), noise^2 I) dt."""
        if self.noise <= 0:
            raise ValueError("log_prob needs noise > 0 (the noiseless curve has no density)")
        x = _as_points(x)
        m = self.quadrature
        c = self.curve((np.arange(m) + 0.5) / m)                                     # (m, 2)
        out = np.empty(len(x))
        for i in range(0, len(x), chunk):
            d2 = ((x[i:i + chunk, None, :] - c[None]) ** 2).sum(-1)                  # (b, m)
            out[i:i + chunk] = _logsumexp(-0.5 * d2 / self.noise**2, axis=1)
        return out - math.log(m) - 2.0 * math.log(self.noise) - LOG_2PI


class TwoMoons(_NoisyCurve):
    """sklearn's two moons: with prob. 1/2 the upper arc (cos pi s, sin pi s), else the lower
    arc (1 - cos pi s, 1/2 - sin pi s), s ~ U[0, 1]; then Gaussian noise of std ``noise``.
    Parametrised as one curve: t < 1/2 -> upper arc at s = 2t, else lower arc at s = 2t - 1."""

    max_speed = 2.0 * np.pi  # each half circle (length pi) is traversed in dt = 1/2

    def __init__(self, noise: float = 0.05):
        self.noise = float(noise)

    def curve(self, t):
        t = np.asarray(t, dtype=np.float64)
        upper = t < 0.5
        s = np.pi * np.where(upper, 2 * t, 2 * t - 1)
        return np.where(upper[:, None],
                        np.stack([np.cos(s), np.sin(s)], 1),
                        np.stack([1 - np.cos(s), 0.5 - np.sin(s)], 1))

    def __repr__(self):
        return f"TwoMoons(noise={self.noise})"


class Spiral(_NoisyCurve):
    """One Archimedean spiral arm: angle 2 pi turns t, radius r0 + (r1 - r0) t, t ~ U[0, 1],
    plus Gaussian noise of std ``noise``. Default: 1.5 turns from radius 0.5 to 3."""

    def __init__(self, noise: float = 0.1, turns: float = 1.5, r0: float = 0.5, r1: float = 3.0):
        self.noise, self.turns, self.r0, self.r1 = float(noise), float(turns), float(r0), float(r1)
        # |dc/dt|^2 = (2 pi turns r(t))^2 + (r1 - r0)^2, largest at the outer end
        self.max_speed = float(np.hypot(2 * np.pi * self.turns * max(abs(self.r0), abs(self.r1)), self.r1 - self.r0))

    def curve(self, t):
        t = np.asarray(t, dtype=np.float64)
        a, r = 2 * np.pi * self.turns * t, self.r0 + (self.r1 - self.r0) * t
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)

    def __repr__(self):
        return f"Spiral(noise={self.noise}, turns={self.turns}, r0={self.r0}, r1={self.r1})"


def two_moons(n: int, noise: float = 0.05, generator=None) -> np.ndarray:
    """n samples from ``TwoMoons(noise)``, float32 (n, 2)."""
    return TwoMoons(noise).sample(n, generator)


def spiral(n: int, noise: float = 0.1, turns: float = 1.5, generator=None) -> np.ndarray:
    """n samples from ``Spiral(noise, turns)``, float32 (n, 2)."""
    return Spiral(noise, turns).sample(n, generator)
