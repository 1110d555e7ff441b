"""scikit-learn's bundled 8x8 handwritten digits with the kit's fixed train / held-out split.

The 1,797 images (17 grey levels, 0..16) ship inside scikit-learn's wheel, so nothing is
downloaded. The split is fixed and does not depend on any random number generator:

* within each class, images are ordered by the key ``(i * 2654435761) mod 2**32``
  (Knuth's multiplicative hash of the image's index ``i`` in ``sklearn.datasets.load_digits``),
* the first ``HELDOUT_PER_CLASS = 30`` of each class are held out (300 images, 30 per class),
  the other 1,497 are the training split.

Both splits are returned in ascending index order. Pixels are scaled to [0, 1] by
dividing the grey level by 16, so the 17 levels are {0, 1/16, ..., 1}.

The training split also ships on its own (``digits_train.npz``, rebuilt by
``python -m kitdata.digits``), so that a grader's worker can train on it without being able
to read scikit-learn's file, which holds the held-out images too (``heldout_sources``).
"""
from __future__ import annotations

import functools
import importlib.util
import os
from pathlib import Path

import numpy as np

IMAGE_SHAPE = (8, 8)
N_CLASSES = 10
GREY_LEVELS = 16          # pixel = grey level / GREY_LEVELS
HELDOUT_PER_CLASS = 30
SPLITS = ("train", "heldout")
TRAIN_FILE = Path(__file__).with_name("digits_train.npz")
# Written only into the student package (autograder release --student-bundle): no held-out split there.
STUDENT_BUILD = Path(__file__).with_name("STUDENT_BUILD")


def heldout_sources() -> list[str]:
    """Files and folders from which the held-out images can be read: scikit-learn's data."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data")]


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
    if split != "train" and STUDENT_BUILD.exists():
        raise ValueError("the held-out digits are the grader's: the students' kitdata has the training split "
                         "only (pass real=load_digits('train')[0] to a metric, or hold out part of it yourself)")
    if split == "train":
        with np.load(TRAIN_FILE) as shipped:
            return (shipped["grey"] / GREY_LEVELS).astype(np.float32), shipped["label"].astype(np.int64)
    x, y = _all()
    i = split_indices()[split]
    return x[i].copy(), y[i].copy()


def every_real_image() -> np.ndarray:
    """All 1,797 images, training and held out: (N, 64) float32. What a memorisation check
    compares samples with (a copy of a held-out digit is a copy too)."""
    if STUDENT_BUILD.exists():
        raise ValueError("every real digit includes the held-out ones, which are the grader's: the students' "
                         "kitdata has the training split only")
    return _all()[0].copy()


def write_train_file(path: Path = TRAIN_FILE) -> None:
    """Write the training split (grey levels 0..16 as uint8, labels, indices) from sklearn's file."""
    x, y = _all()
    i = split_indices()["train"]
    grey = np.rint(x[i] * GREY_LEVELS).astype(np.uint8)
    np.savez_compressed(path, grey=grey, label=y[i].astype(np.uint8), index=i.astype(np.int32))


if __name__ == "__main__":
    write_train_file()
    print(f"wrote {TRAIN_FILE}")
