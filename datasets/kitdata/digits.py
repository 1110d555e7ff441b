"""scikit-learn's bundled 8x8 handwritten digits with the kit's fixed train / held-out split.

The 1,797 images (17 grey levels, 0..16) ship inside scikit-learn's wheel, so nothing is
downloaded. The split is fixed and does not depend on any random number generator:

* within each class, images are ordered by the key ``(i * 2654435761) mod 2**32``
  (Knuth's multiplicative hash of the image's index ``i`` in ``sklearn.datasets.load_digits``),
* the first ``HELDOUT_PER_CLASS = 30`` of each class are held out (300 images, 30 per class),
  the other 1,497 are the training split.

Both splits are returned in ascending index order. Pixels are scaled to [0, 1] by
dividing the grey level by 16, so the 17 levels are {0, 1/16, ..., 1}.
"""
from __future__ import annotations

import functools

import numpy as np

IMAGE_SHAPE = (8, 8)
N_CLASSES = 10
GREY_LEVELS = 16          # pixel = grey level / GREY_LEVELS
HELDOUT_PER_CLASS = 30
SPLITS = ("train", "heldout")


@functools.lru_cache(maxsize=1)
def _all() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as _sk_load_digits

    d = _sk_load_digits()
    x = (d.data / GREY_LEVELS).astype(np.float32)
    y = d.target.astype(np.int64)
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@functools.lru_cache(maxsize=1)
def split_indices() -> dict[str, np.ndarray]:
    """{"train": idx, "heldout": idx}: indices into sklearn's 1,797 images (sorted, disjoint)."""
    _, y = _all()
    idx = np.arange(len(y), dtype=np.int64)
    key = (idx.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(2**32)
    held = []
    for c in range(N_CLASSES):
        members = idx[y == c]
        held.append(members[np.argsort(key[members], kind="stable")][:HELDOUT_PER_CLASS])
    heldout = np.sort(np.concatenate(held))
    train = np.setdiff1d(idx, heldout)
    return {"train": train, "heldout": heldout}


def load_digits(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """One split of the digits.

    Args:
        split: "train" (1,497 images) or "heldout" (300 images, 30 per class).
    Returns:
        x: float32 (N, 64) in [0, 1], row-major 8x8 images (``x.reshape(-1, *IMAGE_SHAPE)``);
        y: int64 (N,) class labels 0..9.
    Fresh writable copies are returned on each call.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    x, y = _all()
    i = split_indices()[split]
    return x[i].copy(), y[i].copy()
