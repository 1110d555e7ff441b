"""Small helpers shared by the kit's data modules (not part of the public API)."""
from __future__ import annotations

import numpy as np


def as_numpy(x, dtype=np.float64) -> np.ndarray:
    """Torch tensor (any device, with or without grad) or array-like -> numpy array of `dtype`."""
    if hasattr(x, "detach"):  # torch.Tensor without importing torch here
        x = x.detach().to("cpu").numpy()
    return np.asarray(x, dtype=dtype)


def flat_images(x, width: int = 64) -> np.ndarray:
    """Samples as float64 (N, width): accepts (N, width), (N, side, side) or (N, 1, side, side)."""
    a = as_numpy(x)
    if a.ndim == 1 and a.size == width:
        a = a[None]
    if a.ndim < 2 or int(np.prod(a.shape[1:])) != width:
        side = int(round(width ** 0.5))
        raise ValueError(f"expected samples of shape (N, {width}) (or (N, {side}, {side}) / (N, 1, {side}, {side})), "
                         f"got {tuple(a.shape)}")
    return a.reshape(a.shape[0], width)
