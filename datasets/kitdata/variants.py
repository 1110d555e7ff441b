"""Hidden variants of the kit's data: the same task, a distribution no student can know.

Every data set of the kit ships with it, so a submission can sample the public ring exactly,
compute the public language's conditionals, or replay the shipped digits, and never learn
anything. A learned-quality test therefore trains and judges on a *variant* drawn in the
judge from the grading's secret (the ``secret_rng`` fixture of ``autograder.grading.judge.plugin``):

* ``mixture(base, rng)``: a 2-D Gaussian mixture rotated, scaled, shifted and reweighted;
  exact metrics (mode coverage, log-density, Bayes rules) are computed on the variant.
* ``PixelPermutation(rng)``: one fixed permutation of the 64 pixels of an 8x8 digit. A
  fully connected network learns permuted digits exactly as well as the originals (its first
  layer is equivariant to a permutation of its inputs), while a digit copied or blended from
  the shipped data lands on the wrong pixels; the judge undoes the permutation before
  FID-lite, KID and the memorisation check, which then see digits in their usual layout.
* ``DigitSymmetry(rng)``: one of the 8 symmetries of the square, for networks that see the
  image as an image (convolutions), where a pixel permutation would change the task.

The code is public; only the draw is secret. Each function takes a ``numpy.random.Generator``.
"""
from __future__ import annotations

import math

import numpy as np

from .toy2d import GaussianMixture2D


def mixture(base: GaussianMixture2D, rng: np.random.Generator, *, scale=(0.8, 1.25), shift: float = 0.5,
            weights=(0.6, 1.4)) -> GaussianMixture2D:
    """``base`` under a random similarity transform, with reweighted components.

    x -> s R(theta) x + b with theta ~ U[0, 2 pi), s ~ U[scale], b ~ U[-shift, shift]^2 (each
    component's std is scaled by s too, so the modes keep their separation in std units),
    and weights w_k proportional to U[weights] draws times the base weights."""
    theta = rng.uniform(0.0, 2.0 * math.pi)
    s = rng.uniform(*scale)
    b = rng.uniform(-shift, shift, size=2)
    rotation = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    means = s * base.means @ rotation.T + b
    std = s * np.asarray(base.std, dtype=np.float64)
    w = base.weights * rng.uniform(*weights, size=base.n_modes)
    return GaussianMixture2D(means, std if std.ndim else float(std), w / w.sum())


def _index(x, order: np.ndarray):
    """x[..., order] for a numpy array or a torch tensor (the last axis holds the pixels)."""
    if isinstance(x, np.ndarray):
        return x[..., order]
    import torch

    return x[..., torch.as_tensor(order, device=x.device)]


class PixelPermutation:
    """One fixed permutation of ``size`` pixels: ``apply`` scrambles, ``undo`` restores.

    Works on numpy arrays and torch tensors of shape (..., size)."""

    def __init__(self, rng: np.random.Generator, size: int = 64):
        self.order = rng.permutation(size)
        self.inverse = np.argsort(self.order)

    def apply(self, x):
        return _index(x, self.order)

    def undo(self, x):
        return _index(x, self.inverse)


class DigitSymmetry:
    """One of the 8 symmetries of the square (rotations by multiples of 90 degrees, with or
    without a transpose), on images flattened to (..., side * side)."""

    def __init__(self, rng: np.random.Generator, side: int = 8):
        grid = np.arange(side * side).reshape(side, side)
        self.k, self.transpose = int(rng.integers(4)), bool(rng.integers(2))
        moved = np.rot90(grid.T if self.transpose else grid, self.k)
        self.order = moved.reshape(-1)          # new pixel j shows old pixel order[j]
        self.inverse = np.argsort(self.order)

    def apply(self, x):
        return _index(x, self.order)

    def undo(self, x):
        return _index(x, self.inverse)
