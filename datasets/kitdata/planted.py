"""Planted-object images: noise in which the class is decided only by a small pattern at a
random, recorded place. Ground truth for class activation maps (CAM): a network that
classifies these images right must have found the pattern, and a CAM that says where it
looked must point at the recorded place.

Each image is SIZE x SIZE (12 x 12) pixels of N(0, NOISE^2) noise (NOISE = 0.3); one 3 x 3
pattern, the class's own, scaled by AMPLITUDE (1.0), is added with its centre at a position
drawn uniformly from the 10 x 10 places where it fits whole:

    class 0 "plus"     class 1 "cross"    class 2 "ring"
      . # .              # . #              # # #
      # # #              . # .              # . #
      . # .              # . #              # # #

Every class's pattern has 5 or 8 bright pixels, so the class is not readable from the
image's total brightness alone; it is readable only from the shape at the recorded place.

``make(n, generator)`` returns
    images  float32 (n, 1, SIZE, SIZE),
    labels  int64 (n,), uniform over the 3 classes,
    centres int64 (n, 2), the (row, column) of each pattern's centre pixel.

``train_set()`` is the fixed training set (TRAIN_N images from TRAIN_SEED).
``variant_patterns(rng)`` draws three other 3 x 3 patterns like the public ones (symmetric under a
half turn, 4 to 8 bright pixels, any two differing in at least 4 pixels under every shift by
one pixel), for ``make(..., patterns=...)``: graders train and score on images of such
patterns, drawn from a secret of their own, so a network built by hand for the public
patterns, or trained on the shipped images, finds nothing there.
``pointing_hits(maps, centres, radius=2)`` says, per image, whether the maximum of a map
(n, SIZE, SIZE) lies within ``radius`` pixels (Chebyshev distance) of the pattern's centre:
radius 2 is the pattern or the one-pixel border around it (a CAM is computed at half the
image's resolution and upsampled, so it cannot be sharper). The pointing game of Zhang et
al. (2016); a map that points at random hits about 1 time in 6.
"""
from __future__ import annotations

import numpy as np

SIZE = 12
NOISE = 0.3
AMPLITUDE = 1.0
TRAIN_N = 3000
TRAIN_SEED = 20260101
CLASSES = ("plus", "cross", "ring")
PATTERNS = np.array([
    [[0, 1, 0], [1, 1, 1], [0, 1, 0]],
    [[1, 0, 1], [0, 1, 0], [1, 0, 1]],
    [[1, 1, 1], [1, 0, 1], [1, 1, 1]],
], dtype=np.float64)


def _rng(generator) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    if generator is None:
        import torch

        generator = int(torch.randint(0, 2**62, (1,)))
    elif not isinstance(generator, (int, np.integer)):     # a torch.Generator
        import torch

        generator = int(torch.randint(0, 2**62, (1,), generator=generator))
    return np.random.default_rng(int(generator))


def make(n: int, generator=None, *, size: int = SIZE, noise: float = NOISE,
         amplitude: float = AMPLITUDE, patterns=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n planted-object images: (images float32 (n, 1, size, size), labels int64 (n,),
    centres int64 (n, 2)). ``generator``: an int seed, a numpy or torch Generator, or None
    (torch's global generator). ``patterns``: (C, 3, 3), PATTERNS when None."""
    patterns = PATTERNS if patterns is None else np.asarray(patterns, dtype=np.float64)
    rng = _rng(generator)
    labels = rng.integers(0, len(patterns), n)
    centres = rng.integers(1, size - 1, (n, 2))
    images = noise * rng.standard_normal((n, size, size))
    for i in range(n):
        r, c = centres[i]
        images[i, r - 1:r + 2, c - 1:c + 2] += amplitude * patterns[labels[i]]
    return images[:, None].astype(np.float32), labels.astype(np.int64), centres.astype(np.int64)


def train_set() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed training set: ``make(TRAIN_N, TRAIN_SEED)``."""
    return make(TRAIN_N, TRAIN_SEED)


def _shifted_distance(a: np.ndarray, b: np.ndarray) -> int:
    """The fewest pixels in which 3 x 3 patterns a and b differ, b shifted by up to one pixel."""
    canvas_a = np.zeros((5, 5))
    canvas_a[1:4, 1:4] = a
    best = 9 * 2
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            canvas_b = np.zeros((5, 5))
            canvas_b[1 + dr:4 + dr, 1 + dc:4 + dc] = b
            best = min(best, int(np.abs(canvas_a - canvas_b).sum()))
    return best


_HALF_TURN_PAIRS = ((4,), (0, 8), (2, 6), (1, 7), (3, 5))   # cells of a 3 x 3 pattern (row-major) a half turn swaps


def variant_patterns(rng: np.random.Generator, n_classes: int = 3, min_distance: int = 4) -> np.ndarray:
    """n_classes 3 x 3 binary patterns (float64 (C, 3, 3)) like the public ones: unchanged by a
    half turn (so the pattern's centre is its centre of mass, where a CAM peaks), 4 to 8 bright
    pixels, every row and column lit, any two differing in at least ``min_distance`` pixels
    under every shift by one pixel (the public PATTERNS: 4), and each as far from the public
    pattern of its own class: a network trained on the public images must not name the drawn
    ones right (one drawn pattern close to its public namesake gave such a network 61% held-out
    accuracy, half the points). 202 ordered sets of three to draw from."""
    while True:
        drawn = []
        for _ in range(n_classes):
            cells = np.zeros(9)
            for pair in _HALF_TURN_PAIRS:
                if rng.integers(2):
                    cells[list(pair)] = 1
            drawn.append(cells.reshape(3, 3))
        if not all(4 <= p.sum() <= 8 and p.any(0).all() and p.any(1).all() for p in drawn):
            continue
        def apart(a, b):
            return min(_shifted_distance(a, b), _shifted_distance(b, a)) >= min_distance

        if all(apart(drawn[i], drawn[j]) for i in range(n_classes) for j in range(i + 1, n_classes)) and \
                all(apart(drawn[i], PATTERNS[i]) for i in range(min(n_classes, len(PATTERNS)))):
            return np.stack(drawn)


def pointing_hits(maps, centres, radius: int = 2) -> np.ndarray:
    """bool (n,): the argmax of each map (n, H, W) within ``radius`` (Chebyshev) of its centre.
    A map that is not finite everywhere never hits."""
    from ._util import as_numpy

    m = as_numpy(maps)
    n, h, w = m.shape
    flat = m.reshape(n, -1)
    finite = np.isfinite(flat).all(1)
    arg = np.argmax(np.where(np.isfinite(flat), flat, -np.inf), 1)
    rows, cols = arg // w, arg % w
    centres = np.asarray(centres)
    near = np.maximum(np.abs(rows - centres[:, 0]), np.abs(cols - centres[:, 1])) <= radius
    return near & finite
