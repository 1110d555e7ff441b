"""MNIST and Fashion-MNIST through torchvision, for courses that have them.

Optional: nothing in the kit's grading requires them. They are read from local files only,
unless you pass ``download=True`` yourself (never done by the kit or its tests).

Where the files are looked for (first hit wins): the ``root`` argument, the environment
variable ``KITDATA_ROOT``, then ``~/.cache/kitdata``. torchvision's layout is used as is:

    <root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte
    <root>/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte

(the four files uncompressed; ``.gz`` files found there without their uncompressed twin are
unpacked next to them on first use). When they are absent a ``DatasetNotAvailable`` error
(a ``FileNotFoundError``) says exactly which files are missing and how to get them.
"""
from __future__ import annotations

import gzip
import os
import pathlib
import shutil

import numpy as np

IMAGE_SHAPE = (28, 28)
SPLITS = ("train", "test")
_FOLDERS = {"mnist": "MNIST", "fashion": "FashionMNIST"}
_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class DatasetNotAvailable(FileNotFoundError):
    """The data set's files are not present locally."""


def default_root(root=None) -> pathlib.Path:
    """The folder holding ``MNIST/`` and ``FashionMNIST/``: root, $KITDATA_ROOT, ~/.cache/kitdata."""
    if root is not None:
        return pathlib.Path(root).expanduser()
    env = os.environ.get("KITDATA_ROOT")
    return pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".cache" / "kitdata"


def _raw(name: str, root) -> pathlib.Path:
    if name not in _FOLDERS:
        raise ValueError(f"name must be one of {tuple(_FOLDERS)}, got {name!r}")
    return default_root(root) / _FOLDERS[name] / "raw"


def _gunzip_missing(raw: pathlib.Path) -> None:
    for f in _FILES:
        gz = raw / (f + ".gz")
        if not (raw / f).exists() and gz.exists():
            with gzip.open(gz, "rb") as src, open(raw / f, "wb") as dst:
                shutil.copyfileobj(src, dst)


def available(name: str = "mnist", root=None) -> bool:
    """True when all four raw files of `name` ("mnist" or "fashion") are present (or their .gz)."""
    raw = _raw(name, root)
    return all((raw / f).exists() or (raw / (f + ".gz")).exists() for f in _FILES)


def load(name: str = "mnist", split: str = "train", root=None, download: bool = False):
    """Load MNIST (name="mnist") or Fashion-MNIST (name="fashion") with torchvision.

    Args:
        split: "train" (60,000 images) or "test" (10,000, the held-out split).
        root: folder holding ``MNIST/raw`` / ``FashionMNIST/raw`` (see module docstring).
        download: let torchvision download the files (needs network; the kit never does).
    Returns:
        x: float32 (N, 784) in [0, 1] (grey level / 255, row-major 28x28), y: int64 (N,).
    Raises:
        DatasetNotAvailable when the files are absent and download is False.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    raw = _raw(name, root)
    if not download:
        if not available(name, root):
            missing = [f for f in _FILES if not (raw / f).exists() and not (raw / (f + ".gz")).exists()]
            raise DatasetNotAvailable(
                f"{_FOLDERS[name]} is not available locally: missing {', '.join(missing)} in {raw}. "
                f"Copy the four IDX files there (or set KITDATA_ROOT / pass root=), or run once, "
                f"with network: python -c \"import kitdata.mnist as m; m.load({name!r}, download=True)\". "
                "The kit's own data (kitdata.digits) needs none of this.")
        _gunzip_missing(raw)
    from torchvision import datasets

    cls = datasets.MNIST if name == "mnist" else datasets.FashionMNIST
    ds = cls(str(default_root(root)), train=(split == "train"), download=download)
    x = ds.data.reshape(len(ds.data), -1).numpy().astype(np.float32) / 255.0
    return x, ds.targets.numpy().astype(np.int64)


def load_mnist(split: str = "train", root=None, download: bool = False):
    """``load("mnist", split, root, download)``: float32 (N, 784) in [0, 1], int64 (N,)."""
    return load("mnist", split, root, download)


def load_fashion_mnist(split: str = "train", root=None, download: bool = False):
    """``load("fashion", split, root, download)``: float32 (N, 784) in [0, 1], int64 (N,)."""
    return load("fashion", split, root, download)
