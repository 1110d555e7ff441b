"""The digits loader: shapes, scaling, and the fixed, documented split."""
import hashlib

import numpy as np
import pytest

from kitdata import digits


def test_shapes_dtypes_range():
    for split, n in (("train", 1497), ("heldout", 300)):
        x, y = digits.load_digits(split)
        assert x.shape == (n, 64) and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int64
        assert x.min() == 0.0 and x.max() == 1.0
        # 17 grey levels scaled by 1/16
        np.testing.assert_array_equal(x * 16, np.round(x * 16))
    assert digits.IMAGE_SHAPE == (8, 8)


def test_split_is_stratified_disjoint_and_complete():
    _, yh = digits.load_digits("heldout")
    assert np.all(np.bincount(yh, minlength=10) == digits.HELDOUT_PER_CLASS)
    idx = digits.split_indices()
    assert len(np.intersect1d(idx["train"], idx["heldout"])) == 0
    assert len(idx["train"]) + len(idx["heldout"]) == 1797
    # the split is the documented hash rule, not an RNG draw: pin it
    digest = hashlib.sha256(idx["heldout"].astype("<i8").tobytes()).hexdigest()[:16]
    assert digest == _heldout_digest()


def _heldout_digest():
    """Recompute the documented rule independently of the module's code."""
    from sklearn.datasets import load_digits

    y = load_digits().target
    held = []
    for c in range(10):
        members = [i for i in range(len(y)) if y[i] == c]
        members.sort(key=lambda i: ((i * 2654435761) % 2**32, i))
        held += members[:30]
    return hashlib.sha256(np.sort(np.array(held, dtype="<i8")).tobytes()).hexdigest()[:16]


def test_matches_sklearn_pixels():
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = digits.load_digits("heldout")
    i = digits.split_indices()["heldout"]
    np.testing.assert_array_equal(x, (d.data[i] / 16).astype(np.float32))
    np.testing.assert_array_equal(y, d.target[i])


def test_returns_fresh_copies_and_rejects_unknown_split():
    x, _ = digits.load_digits()
    x[:] = -1
    assert digits.load_digits()[0].min() == 0.0
    with pytest.raises(ValueError):
        digits.load_digits("test")
