"""Rebuild the shipped feature extractor: ``python -m kitdata.build_features``.

Trains the small digit classifier of ``kitdata.features`` on the *train* split of
``kitdata.digits`` and writes its weights to ``kitdata/digit_features.npz`` (or ``--out``).

Reproducible: fixed seed, one thread, full-batch training in float64 (no data-order
randomness, no non-deterministic kernels), so two runs on the same machine give identical
bytes and different machines agree to float32 rounding. Takes a few seconds on one core.

Recipe (why each choice):
* MLP 64 -> 128 -> 32 -> 10 with ELU: the 32 ELU units are the features. ELU rather than
  ReLU so that no feature unit is dead on real digits (a dead unit makes the feature
  covariance singular);
* inputs augmented with light Gaussian pixel noise (std 0.1) and one-pixel shifts each
  step, so the features vary smoothly for inputs a little off the data (generated samples)
  instead of saturating on them;
* Adam, lr 3e-3, 1,500 full-batch steps, weight decay 1e-4, label smoothing 0.05.
"""
from __future__ import annotations

import argparse
import hashlib
import pathlib

import numpy as np

DEFAULT_OUT = pathlib.Path(__file__).with_name("digit_features.npz")
SEED = 0
HIDDEN, FEATURES = 128, 32
STEPS, LR, WEIGHT_DECAY, LABEL_SMOOTHING, AUG_NOISE = 1500, 3e-3, 1e-4, 0.05, 0.1


def _shift(x, dx: int, dy: int):
    """Shift (N, 8, 8) images by whole pixels with zero fill."""
    import torch

    out = torch.roll(x, shifts=(dy, dx), dims=(1, 2))
    if dy > 0:
        out[:, :dy] = 0
    elif dy < 0:
        out[:, dy:] = 0
    if dx > 0:
        out[:, :, :dx] = 0
    elif dx < 0:
        out[:, :, dx:] = 0
    return out


def train(steps: int = STEPS, seed: int = SEED, verbose: bool = True) -> dict[str, np.ndarray]:
    """Train the classifier; return its weights as float32 numpy arrays (see kitdata.features)."""
    import torch
    from torch import nn

    from .digits import load_digits

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x_np, y_np = load_digits("train")
    x = torch.from_numpy(x_np).double()
    y = torch.from_numpy(y_np)
    net = nn.Sequential(
        nn.Linear(64, HIDDEN), nn.ELU(), nn.Linear(HIDDEN, FEATURES), nn.ELU(), nn.Linear(FEATURES, 10)
    ).double()
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    for step in range(steps):
        # one random shift in {-1, 0, 1}^2 per step for the whole batch, plus pixel noise
        dx, dy = (torch.randint(-1, 2, (2,), generator=g) * (step % 2)).tolist()
        xb = _shift(x.view(-1, 8, 8), dx, dy).reshape(-1, 64)
        xb = xb + AUG_NOISE * torch.randn(xb.shape, generator=g, dtype=xb.dtype)
        loss = loss_fn(net(xb), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if verbose and (step % 500 == 0 or step == steps - 1):
            print(f"step {step:5d}  loss {loss.item():.4f}")
    return weights_of(net, x)


def weights_of(net, x, std_floor: float = 0.0) -> dict[str, np.ndarray]:
    """The arrays kitdata.features.DigitClassifier loads, from a trained
    Sequential(Linear, ELU, Linear, ELU, Linear) and its training inputs x."""
    import torch

    l1, _, l2, _, l3 = net
    w = {"w1": l1.weight.T, "b1": l1.bias, "w2": l2.weight.T, "b2": l2.bias, "w3": l3.weight.T, "b3": l3.bias}
    w = {k: v.detach().numpy().astype(np.float32) for k, v in w.items()}
    # Standardise the features with the training split's per-unit mean and std, so FID-lite and
    # KID are in units of "one feature's spread on real images" (the kernel's scale then fits).
    with torch.no_grad():
        f = net[:4](x).numpy()
    w["feat_mean"], w["feat_std"] = f.mean(0).astype(np.float32), (f.std(0) + std_floor).astype(np.float32)
    return w


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=pathlib.Path, default=DEFAULT_OUT)
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--seed", type=int, default=SEED)
    a = p.parse_args(argv)
    weights = train(a.steps, a.seed)
    np.savez(a.out, **weights)
    from .digits import load_digits
    from .features import DigitClassifier

    clf = DigitClassifier(a.out)
    for split in ("train", "heldout"):
        x, y = load_digits(split)
        print(f"{split:8s} accuracy {np.mean(clf.predict(x) == y):.4f}")
    print(f"wrote {a.out} sha256 {hashlib.sha256(a.out.read_bytes()).hexdigest()[:16]}")


if __name__ == "__main__":
    main()
