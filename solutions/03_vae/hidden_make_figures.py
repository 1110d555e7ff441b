"""Figures for the handout, made from the reference solution on the *training* digits only
(the held-out split never appears in anything released). Never released (hidden_*).
Deterministic (seed 0, one thread); about 20 s on one core.

    python solutions/03_vae/hidden_make_figures.py
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import kitdata.digits   # noqa: E402
import vae              # noqa: E402

OUT = HERE / "figures"
DPI = 90
STEPS = 2000


def grid(images, rows, cols):
    images = np.asarray(images, dtype=float).clip(0, 1).reshape(-1, 8, 8)
    canvas = np.full((rows * 9 + 1, cols * 9 + 1), 0.35)
    for i, im in enumerate(images[: rows * cols]):
        r, c = divmod(i, cols)
        canvas[1 + r * 9: 9 + r * 9, 1 + c * 9: 9 + c * 9] = im
    return canvas


def save(fig, name):
    fig.savefig(OUT / name, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def picture(canvas, title, name):
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    save(fig, name)


def main():
    torch.set_num_threads(1)
    OUT.mkdir(exist_ok=True)
    x, y = kitdata.digits.load_digits("train")
    order = np.concatenate([np.flatnonzero(y == c)[:6] for c in range(10)])
    picture(grid(x[order].reshape(10, 6, 64).transpose(1, 0, 2).reshape(-1, 64), 6, 10),
            "training digits (kitdata.digits, 8x8, grey levels in [0, 1])", "data.png")

    torch.manual_seed(0)
    model = vae.VAE(x_dim=64)
    losses = vae.train(model, torch.from_numpy(x), STEPS, batch_size=64, lr=2e-3)
    model.eval()
    with torch.no_grad():
        picture(grid(vae.sample(model, 60), 6, 10), f"samples from the prior after {STEPS} steps", "samples.png")

    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    steps = np.arange(1, STEPS + 1)
    ax.plot(steps, losses, lw=0.4, color="0.7", label="each minibatch")
    window = 50
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    ax.plot(steps[window - 1:], smooth, color="C0", label=f"mean of {window} steps")
    ax.set_xlabel("Adam step (batch 64, lr 2e-3)")
    ax.set_ylabel("-ELBO (nats per image)")
    ax.set_ylim(min(losses) - 2, 60)
    ax.legend(fontsize=8)
    ax.set_title("the training loss train() returns", fontsize=9)
    save(fig, "training_curve.png")


if __name__ == "__main__":
    main()
