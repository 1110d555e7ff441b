"""Small helpers shared by the kit's data modules (not part of the public API)."""
from __future__ import annotations

import numpy as np


def as_numpy(x, dtype=np.float64) -> np.ndarray:
    """Torch tensor (any device, with or without grad) or array-like -> numpy array of `dtype`."""
    if hasattr(x, "detach"):  # torch.Tensor without importing torch here
        x = x.detach().to("cpu").numpy()
    return np.asarray(x, dtype=dtype)


def flat_images(x, width: int = 64) -> np.ndarray:
    """Samples as float64 (N, width): accepts (N, width), (N, 8, 8) or (N, 1, 8, 8)."""
    a = as_numpy(x)
    if a.ndim == 1 and a.size == width:
        a = a[None]
    if a.ndim < 2 or int(np.prod(a.shape[1:])) != width:
        raise ValueError(f"expected samples of shape (N, {width}) (or (N, 8, 8) / (N, 1, 8, 8)), got {tuple(a.shape)}")
    return a.reshape(a.shape[0], width)
