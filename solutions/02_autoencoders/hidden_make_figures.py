"""Figures for the handout, made from the reference solution on the *training* digits only
(the held-out split never appears in anything released). Never released (hidden_*).

    python solutions/02_autoencoders/hidden_make_figures.py
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
sys.path.insert(0, str(HERE.parent.parent / "autograder" / "suites" / "autoencoders"))

import autoencoders as ae                      # noqa: E402
import kitdata.digits                          # noqa: E402
import kitdata.toy2d                           # noqa: E402
from ref_autoencoders import bayes_denoiser, noisy_score   # noqa: E402

OUT = HERE / "figures"
DPI = 90


def grid(images, rows, cols):
    images = images.clamp(0, 1).reshape(-1, 8, 8).numpy()
    canvas = np.full((rows * 9 + 1, cols * 9 + 1), 0.35)
    for i, im in enumerate(images[: rows * cols]):
        r, c = divmod(i, cols)
        canvas[1 + r * 9: 9 + r * 9, 1 + c * 9: 9 + c * 9] = im
    return canvas


def save(fig, name):
    fig.savefig(OUT / name, dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def main():
    torch.set_num_threads(1)
    OUT.mkdir(exist_ok=True)
    x, y = (torch.from_numpy(a) for a in kitdata.digits.load_digits("train"))

    # 1. The linear AE reaches the sum of the trailing eigenvalues.
    xc = x.double() - x.double().mean(0)
    values = torch.linalg.eigvalsh(xc.T @ xc / len(x)).flip(0)
    ks = np.arange(1, 21)
    trailing = [float(values[k:].sum()) for k in ks]
    trained = []
    for k in (1, 2, 3, 5, 8, 12):
        torch.manual_seed(0)
        model = ae.LinearAutoencoder(64, k, mean=x.mean(0))
        ae.train(model, x, 600, batch_size=256, lr=3e-2)
        trained.append((k, float(ae.reconstruction_loss(ae.reconstruct(model, x), x).mean())))
    fig, ax = plt.subplots(figsize=(4.2, 2.8))
    ax.plot(ks, trailing, "-", color="tab:blue", label="PCA: sum of trailing eigenvalues")
    ax.plot(*zip(*trained), "o", color="tab:red", ms=4, label="linear AE trained with Adam")
    ax.set_xlabel("bottleneck size Z")
    ax.set_ylabel("squared error per digit")
    ax.legend(fontsize=7)
    ax.set_title("training digits: the linear AE finds PCA's error", fontsize=9)
    save(fig, "linear_ae_vs_pca.png")

    # 2. Denoising the digits (training images shown; sigma 0.4, 500 steps).
    torch.manual_seed(0)
    dae = ae.Autoencoder(64, 16, 128)
    ae.train(dae, x, 500, batch_size=64, lr=2e-3, corrupt=lambda b: ae.gaussian_noise(b, 0.4))
    shown = torch.stack([torch.nonzero(y == c)[0, 0] for c in range(10)])
    g = torch.Generator().manual_seed(1)
    noisy = ae.gaussian_noise(x[shown], 0.4, generator=g)
    masked = ae.masking_noise(x[shown], 0.5, generator=g)
    rows = torch.cat([x[shown], noisy, ae.reconstruct(dae, noisy)])
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.0))
    axes[0].imshow(grid(rows, 3, 10), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[0].set_title("clean / x + 0.4 eps / the DAE's output", fontsize=8)
    axes[1].imshow(grid(torch.cat([x[shown], masked]), 2, 10), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes[1].set_title("clean / masking noise, p = 0.5", fontsize=8)
    for a in axes:
        a.axis("off")
    save(fig, "denoising_digits.png")

    # 3. The residual field against sigma^2 grad log p_sigma on the ring of 8.
    mix, sigma = kitdata.toy2d.ring8(), 0.5
    torch.manual_seed(0)
    data = torch.from_numpy(mix.sample(4096))
    dae2 = ae.Autoencoder(2, 16, 64)
    ae.train(dae2, data, 500, batch_size=128, lr=3e-3, corrupt=lambda b: ae.gaussian_noise(b, sigma))
    axis = torch.linspace(-3.0, 3.0, 13, dtype=torch.float64)
    pts = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
    true = sigma ** 2 * noisy_score(mix, pts, sigma)
    learned = ae.reconstruct(dae2, pts.float()).double() - pts
    assert torch.allclose(bayes_denoiser(mix, pts, sigma) - pts, true)
    fig, ax = plt.subplots(figsize=(3.6, 3.6))
    ax.scatter(*ae.gaussian_noise(data[:600], sigma).T, s=1.5, c="0.75")
    ax.quiver(pts[:, 0], pts[:, 1], true[:, 0], true[:, 1], color="tab:blue", angles="xy", scale_units="xy",
              scale=2, width=0.004, label="E[x|x~] - x~ = sigma^2 grad log p_sigma (half length)")
    ax.quiver(pts[:, 0], pts[:, 1], learned[:, 0], learned[:, 1], color="tab:red", angles="xy", scale_units="xy",
              scale=2, width=0.003, label="the DAE's f(x~) - x~ (half length)")
    ax.set_aspect("equal")
    ax.set_xlim(-3.4, 3.4)
    ax.set_ylim(-3.4, 3.4)
    ax.legend(fontsize=6, loc="upper right")
    ax.set_title("ring of 8, sigma = 0.5", fontsize=9)
    save(fig, "residual_field.png")

    # 4. Decoding random latent vectors with a plain AE.
    torch.manual_seed(0)
    plain = ae.Autoencoder(64, 8, 128)
    ae.train(plain, x, 500, batch_size=64, lr=2e-3)
    plain.eval()
    with torch.no_grad():
        codes = plain.encode(x)
    g = torch.Generator().manual_seed(2)
    random = ae.sample_random_latents(plain, 30, generator=g)
    fitted = ae.sample_fitted_latents(plain, codes, 30, generator=g)
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 1.9))
    for a, s, t in zip(axes, (random, fitted), ("decode(z), z ~ N(0, I)", "decode(z), z ~ Gaussian fitted to codes")):
        a.imshow(grid(s, 3, 10), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        a.set_title(t, fontsize=8)
        a.axis("off")
    save(fig, "random_latents.png")
    for p in sorted(OUT.glob("*.png")):
        print(p.name, p.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
