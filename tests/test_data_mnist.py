"""MNIST / Fashion-MNIST loading path, tested offline on tiny IDX files the test writes itself."""
import gzip
import struct

import numpy as np
import pytest

from kitdata import mnist


def _write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    # IDX: magic = 0x00 0x00 <dtype 0x08 = ubyte> <ndim>, then big-endian int32 sizes, then data
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def _fake(root, folder, n_train=7, n_test=3, gz=False, seed=0):
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        img = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        lab = rng.integers(0, 10, size=n, dtype=np.uint8)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", img, gz)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", lab, gz)
        out[prefix] = (img, lab)
    return out


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion", "FashionMNIST")])
def test_loads_idx_files_offline(tmp_path, name, folder):
    truth = _fake(tmp_path, folder)
    assert mnist.available(name, tmp_path)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x, y = mnist.load(name, split, root=tmp_path)
        img, lab = truth[prefix]
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape == (len(img), 784) and y.shape == (len(img),)
        np.testing.assert_array_equal(x, img.reshape(len(img), -1).astype(np.float32) / 255.0)
        np.testing.assert_array_equal(y, lab)
        assert 0.0 <= x.min() and x.max() <= 1.0


def test_gz_files_are_unpacked_and_env_root_is_used(tmp_path, monkeypatch):
    truth = _fake(tmp_path, "MNIST", gz=True, seed=1)
    monkeypatch.setenv("KITDATA_ROOT", str(tmp_path))
    x, y = mnist.load_mnist("test")
    np.testing.assert_array_equal(y, truth["t10k"][1])
    np.testing.assert_array_equal(x[0].reshape(28, 28) * 255, truth["t10k"][0][0])


def test_absent_files_give_a_clear_message(tmp_path):
    assert not mnist.available("fashion", tmp_path)
    with pytest.raises(mnist.DatasetNotAvailable) as e:
        mnist.load_fashion_mnist("train", root=tmp_path)
    msg = str(e.value)
    assert "FashionMNIST" in msg and "train-images-idx3-ubyte" in msg and "download=True" in msg
    assert isinstance(e.value, FileNotFoundError)
    # nothing was created or fetched
    assert not (tmp_path / "FashionMNIST").exists()


def test_partial_files_name_what_is_missing(tmp_path):
    _fake(tmp_path, "MNIST")
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(mnist.DatasetNotAvailable, match="t10k-labels-idx1-ubyte"):
        mnist.load_mnist("test", root=tmp_path)


def test_bad_split_rejected(tmp_path):
    with pytest.raises(ValueError):
        mnist.load_mnist("validation", root=tmp_path)


def test_mnist_fid_lite_offline(tmp_path):
    """The MNIST FID-lite path end to end on tiny IDX files: build, features, FID."""
    from kitdata import mnist_features

    _fake(tmp_path, "MNIST", n_train=64, n_test=40)
    with pytest.raises(mnist.DatasetNotAvailable, match="python -m kitdata.mnist_features"):
        mnist_features.extractor("mnist", str(tmp_path))
    path = mnist_features.build("mnist", str(tmp_path), steps=5, verbose=False)
    assert path == mnist_features.weights_path("mnist", str(tmp_path)) and path.exists()
    mnist_features.extractor.cache_clear()
    test_x, _ = mnist.load("mnist", "test", root=tmp_path)
    f = mnist_features.mnist_features(test_x.reshape(-1, 28, 28), root=str(tmp_path))
    assert f.shape == (40, 32) and np.isfinite(f).all()
    same = mnist_features.fid_lite_mnist(test_x, root=str(tmp_path))
    noise = mnist_features.fid_lite_mnist(np.zeros_like(test_x), root=str(tmp_path))
    assert abs(same) < 1e-6 and noise > same
