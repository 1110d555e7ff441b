"""Figures for the handout, made from the reference solution on training data only (exact
draws of the ring, the training digits). Never released (hidden_*). Deterministic (seed 0,
one thread); about 40 s on one core.

    python solutions/04_gan/hidden_make_figures.py
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

import gan              # noqa: E402
import kitdata.digits   # noqa: E402
import kitdata.toy2d    # noqa: E402

OUT = HERE / "figures"
DPI = 90
RING_STEPS, DIGIT_STEPS = 2000, 1500


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


def scatter(ax, points, title, color):
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4, color=color, rasterized=True)
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)


def main():
    torch.set_num_threads(1)
    OUT.mkdir(exist_ok=True)
    ring = kitdata.toy2d.ring8()
    generator = np.random.default_rng(0)
    real = ring.sample(2000, generator=generator)
    digits = kitdata.digits.load_digits("train")[0]

    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.0))
    scatter(axes[0], real, "ring of 8 Gaussians (kitdata.toy2d.ring8)", "C0")
    axes[1].imshow(grid(digits[:48], 6, 8), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    axes[1].set_title("training digits (kitdata.digits)", fontsize=9)
    axes[1].axis("off")
    save(fig, "data.png")

    torch.manual_seed(0)
    x_ring = torch.from_numpy(ring.sample(8192, generator=generator)).float()
    G, _, ring_history = gan.train(x_ring, RING_STEPS, batch_size=256, lr=5e-4)
    torch.manual_seed(0)
    G_digits, _, digit_history = gan.train(torch.from_numpy(digits), DIGIT_STEPS, output="sigmoid",
                                           batch_size=128, lr=1e-3)
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.0))
    scatter(axes[0], gan.sample(G, 2000).numpy(), f"generator on the ring, {RING_STEPS} rounds", "C1")
    axes[1].imshow(grid(gan.sample(G_digits, 48).numpy(), 6, 8), cmap="gray_r", vmin=0, vmax=1,
                   interpolation="nearest")
    axes[1].set_title(f"generator on the digits, {DIGIT_STEPS} rounds", fontsize=9)
    axes[1].axis("off")
    save(fig, "samples.png")

    fig, ax = plt.subplots(figsize=(4.8, 2.8))
    window = 25
    for key, color in (("d_loss", "C0"), ("g_loss", "C3")):
        values = np.asarray(ring_history[key])
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, len(values) + 1), smooth, color=color, label=f"{key} (mean of {window})")
    ax.axhline(2 * np.log(2), color="0.5", ls="--", lw=0.8, label="L_D at D = 1/2: 2 ln 2")
    ax.axhline(np.log(2), color="0.5", ls=":", lw=0.8, label="L_G at D = 1/2: ln 2")
    ax.set_xlabel("round (one D step, one G step) on the ring")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    ax.set_title("the history train() returns", fontsize=9)
    save(fig, "training_curve.png")


if __name__ == "__main__":
    main()
