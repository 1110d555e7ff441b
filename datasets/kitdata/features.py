"""The feature extractor behind FID-lite: a small classifier trained on the digits.

An MLP 64 -> 128 -> 32 -> 10 (ELU) trained on the *train* split of ``kitdata.digits``;
its weights ship as ``kitdata/digit_features.npz`` (about 50 kB) and are rebuilt
reproducibly by ``python -m kitdata.build_features`` (see that module for the recipe).
The features are the 32 ELU activations of the second layer:

    h1 = elu(x W1 + b1)   (N, 128)
    h2 = elu(h1 W2 + b2)  (N, 32)
    f  = (h2 - m) / s     (N, 32)   <- digit_features(x)
    logits = h2 W3 + b3   (N, 10)

m and s are the per-unit mean and std of h2 over the training digits, so each feature has
mean 0 and variance 1 on them and FID-lite is measured in those units.

Inference is plain numpy in float64 (no torch needed): 2,000 images take well under 1 ms.
"""
from __future__ import annotations

import functools
import pathlib

import numpy as np

from ._util import flat_images

WEIGHTS = pathlib.Path(__file__).with_name("digit_features.npz")
FEATURE_DIM = 32


def _elu(z: np.ndarray) -> np.ndarray:
    return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))


class DigitClassifier:
    """The shipped classifier (or one loaded from another ``.npz`` written by build_features)."""

    def __init__(self, path=WEIGHTS):
        path = pathlib.Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"feature-extractor weights not found at {path}; rebuild them with "
                "`python -m kitdata.build_features`")
        with np.load(path) as z:
            self.w = {k: z[k].astype(np.float64) for k in z.files}

    def features(self, x) -> np.ndarray:
        """x: (N, 64) in [0, 1] (or (N, 8, 8), (N, 1, 8, 8); numpy or torch) -> float64 (N, 32).
        (A classifier built for other images, e.g. kitdata.mnist_features', takes (N, 784).)"""
        w = self.w
        h = _elu(flat_images(x, width=w["w1"].shape[0]) @ w["w1"] + w["b1"])
        return (_elu(h @ w["w2"] + w["b2"]) - w["feat_mean"]) / w["feat_std"]

    def logits(self, x) -> np.ndarray:
        """float64 (N, 10) class scores."""
        f = self.features(x) * self.w["feat_std"] + self.w["feat_mean"]
        return f @ self.w["w3"] + self.w["b3"]

    def predict(self, x) -> np.ndarray:
        """int64 (N,) predicted digit."""
        return self.logits(x).argmax(1).astype(np.int64)


@functools.lru_cache(maxsize=1)
def classifier() -> DigitClassifier:
    """The shipped classifier, loaded once."""
    return DigitClassifier()


def digit_features(x) -> np.ndarray:
    """Features of the shipped classifier: (N, 64) images in [0, 1] -> float64 (N, 32)."""
    return classifier().features(x)


def classify_digits(x) -> np.ndarray:
    """The shipped classifier's predicted labels, int64 (N,). Handy for class-balance checks
    of generated digits (e.g. a conditional generator asked for 3s should produce 3s)."""
    return classifier().predict(x)
