"""The shipped feature extractor: accuracy, format, reproducible rebuild."""
import numpy as np
import pytest
import torch

from kitdata import build_features, digits, features


def test_shipped_extractor_heldout_accuracy():
    x, y = digits.load_digits("heldout")
    acc = np.mean(features.classify_digits(x) == y)
    assert acc >= 0.95, f"held-out accuracy {acc:.3f} < 0.95: rebuild with python -m kitdata.build_features"


def test_weights_are_small_and_features_standardised():
    assert features.WEIGHTS.stat().st_size < 200_000
    x, _ = digits.load_digits("train")
    f = features.digit_features(x)
    assert f.shape == (len(x), features.FEATURE_DIM) and f.dtype == np.float64
    np.testing.assert_allclose(f.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(f.std(0), 1.0, atol=1e-4)
    # no dead feature: the covariance of real digits has full rank (FID stays well-posed)
    assert np.linalg.matrix_rank(np.cov(f.T)) == features.FEATURE_DIM


def test_input_formats_agree():
    x, _ = digits.load_digits("heldout")
    f = features.digit_features(x)
    np.testing.assert_allclose(features.digit_features(torch.from_numpy(x).view(-1, 1, 8, 8)), f)
    np.testing.assert_allclose(features.digit_features(x.reshape(-1, 8, 8).astype(np.float64)), f)
    with pytest.raises(ValueError):
        features.digit_features(np.zeros((3, 28 * 28)))


def test_rebuild_is_deterministic_and_loadable(tmp_path):
    a = build_features.train(steps=15, verbose=False)
    b = build_features.train(steps=15, verbose=False)
    assert a.keys() == b.keys() >= {"w1", "b1", "w2", "b2", "w3", "b3", "feat_mean", "feat_std"}
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    np.savez(tmp_path / "w.npz", **a)
    clf = features.DigitClassifier(tmp_path / "w.npz")
    assert clf.features(np.zeros((2, 64))).shape == (2, 32)
    with pytest.raises(FileNotFoundError, match="build_features"):
        features.DigitClassifier(tmp_path / "missing.npz")
