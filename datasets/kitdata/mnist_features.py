"""FID-lite on MNIST / Fashion-MNIST, for courses that have those files.

The digits' extractor ships with the kit; MNIST's cannot (the kit ships no MNIST), so it
is built once from the local files, reproducibly, and cached beside them:

    python -m kitdata.mnist_features [--name fashion] [--root DIR]

writes ``<root>/kitdata-features-<name>.npz``: an MLP 784 -> 256 -> 32 -> 10 (ELU), the
same recipe and the same feature definition as ``kitdata.features`` (32 standardised ELU
units), so every metric of ``kitdata.metrics`` works on its features unchanged:

    fid_lite_mnist(samples) = frechet_distance(fit(features(samples)), fit(features(test split)))

Deterministic: fixed seed, one thread, a seeded minibatch order.
"""
from __future__ import annotations

import argparse
import functools
import pathlib

import numpy as np

from .build_features import weights_of
from .features import DigitClassifier
from .metrics import feature_stats, frechet_distance
from .mnist import DatasetNotAvailable, default_root, load

HIDDEN, FEATURES = 256, 32
STEPS, BATCH, LR, WEIGHT_DECAY, SEED = 1500, 256, 1e-3, 1e-4, 0


def weights_path(name: str = "mnist", root=None) -> pathlib.Path:
    return default_root(root) / f"kitdata-features-{name}.npz"


def build(name: str = "mnist", root=None, steps: int = STEPS, out=None, verbose: bool = True) -> pathlib.Path:
    """Train the extractor on the train split of ``name`` and write its weights; return the path."""
    import torch
    from torch import nn

    x_np, y_np = load(name, "train", root)
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    net = nn.Sequential(nn.Linear(784, HIDDEN), nn.ELU(), nn.Linear(HIDDEN, FEATURES), nn.ELU(),
                        nn.Linear(FEATURES, 10))
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    for step in range(steps):
        batch = torch.randint(len(x), (min(BATCH, len(x)),), generator=g)
        loss = nn.functional.cross_entropy(net(x[batch]), y[batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if verbose and (step % 500 == 0 or step == steps - 1):
            print(f"step {step:5d}  loss {loss.item():.4f}")
    w = weights_of(net, x, std_floor=1e-6)  # a unit that never fires on real MNIST must not divide by 0
    out = pathlib.Path(out) if out else weights_path(name, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **w)
    return out


@functools.lru_cache(maxsize=4)
def extractor(name: str = "mnist", root=None) -> DigitClassifier:
    path = weights_path(name, root)
    if not path.exists():
        raise DatasetNotAvailable(
            f"no {name} feature extractor at {path}: build it once from the local files with "
            f"`python -m kitdata.mnist_features --name {name}`")
    return DigitClassifier(path)


def mnist_features(x, name: str = "mnist", root=None) -> np.ndarray:
    """(N, 784) images in [0, 1] (or (N, 28, 28), (N, 1, 28, 28)) -> float64 (N, 32)."""
    return extractor(name, root).features(x)


def fid_lite_mnist(samples, real=None, name: str = "mnist", root=None) -> float:
    """FID-lite on MNIST features; ``real`` defaults to the test (held-out) split."""
    if real is None:
        real, _ = load(name, "test", root)
    fs, fr = mnist_features(samples, name, root), mnist_features(real, name, root)
    if not (np.isfinite(fs).all() and np.isfinite(fr).all()):
        raise ValueError("samples contain NaN or inf")
    return frechet_distance(*feature_stats(fs), *feature_stats(fr))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", choices=("mnist", "fashion"), default="mnist")
    parser.add_argument("--root", default=None)
    parser.add_argument("--steps", type=int, default=STEPS)
    args = parser.parse_args(argv)
    path = build(args.name, args.root, args.steps)
    x, y = load(args.name, "test", args.root)
    accuracy = np.mean(DigitClassifier(path).predict(x) == y)
    print(f"wrote {path}; held-out accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
