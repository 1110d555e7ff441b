"""Figures for the diffusion handout, made from the reference solution (never released:
files named hidden* stay out of the student bundle).

    python solutions/05_diffusion/hidden_make_figures.py

Writes figures/forward_process.png, schedules.png, reverse_trajectory.png and
samples_vs_density.png (each < 100 KB). Reference training: EpsModel(dim=2) on 4,096 samples
of ring8(std=0.2), 1,500 Adam steps, batch 128, lr 1e-3, seed 0, one thread.
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
KIT = HERE.parent.parent
sys.path[:0] = [str(HERE), str(KIT / "datasets"), str(KIT / "autograder" / "suites" / "diffusion")]

import diffusion as D  # noqa: E402
import kitdata.digits  # noqa: E402
import kitdata.toy2d  # noqa: E402
from ref_diffusion import mixture_eps, mixture_log_prob  # noqa: E402

OUT = HERE / "figures"


class Exact(torch.nn.Module):
    def __init__(self, mix, abar, keep=400):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        self.mix, self.abar, self.keep, self.calls = mix, abar, keep, []

    def forward(self, x, t):
        self.calls.append(x[: self.keep].clone())
        return mixture_eps(self.mix, x, self.abar[int(t[0])])


def _contour(ax, mix):
    axis = torch.linspace(-3, 3, 150, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
    dens = mixture_log_prob(mix, grid).exp().reshape(150, 150).numpy()
    ax.contour(axis.numpy(), axis.numpy(), dens, levels=6, linewidths=0.5, colors="tab:blue")
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_xticks([])
    ax.set_yticks([])


def main() -> None:
    torch.set_num_threads(1)
    OUT.mkdir(exist_ok=True)
    sch = D.make_schedule(D.linear_betas(100))
    cos = D.make_schedule(D.cosine_betas(100))

    # Forward process on one digit.
    x = torch.from_numpy(kitdata.digits.load_digits("train")[0][:1]) * 2 - 1
    ts = torch.tensor([0, 1, 5, 10, 20, 30, 45, 60, 80, 100])
    torch.manual_seed(0)
    xt = D.q_sample(x.repeat(len(ts), 1), ts.clamp(min=1), sch["alpha_bars"])
    xt[0] = x[0]
    fig, axes = plt.subplots(1, len(ts), figsize=(7, 1.0))
    for ax, img, t in zip(axes, xt, ts):
        ax.imshow(((img + 1) / 2).clamp(0, 1).reshape(8, 8), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"t={int(t)}", fontsize=7)
        ax.axis("off")
    fig.savefig(OUT / "forward_process.png", dpi=90, bbox_inches="tight")
    plt.close(fig)

    # Schedules.
    fig, axes = plt.subplots(1, 2, figsize=(6, 2.2))
    t = np.arange(101)
    for name, s in (("linear", sch), ("cosine", cos)):
        axes[0].plot(t[1:], s["betas"][1:].numpy(), label=name)
        axes[1].plot(t, s["alpha_bars"].numpy(), label=name)
    axes[0].set_yscale("log")
    axes[0].set_title("β_t", fontsize=9)
    axes[1].set_title("ᾱ_t", fontsize=9)
    for ax in axes:
        ax.set_xlabel("t", fontsize=8)
        ax.legend(fontsize=7)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(OUT / "schedules.png", dpi=90)
    plt.close(fig)

    # Reverse trajectory with the exact denoiser of the ring of 8.
    ring = kitdata.toy2d.ring8(std=0.2)
    mix = {"means": torch.from_numpy(ring.means), "stds": torch.full((8,), 0.2, dtype=torch.float64),
           "weights": torch.full((8,), 1 / 8, dtype=torch.float64)}
    torch.manual_seed(0)
    exact = Exact(mix, sch["alpha_bars"])
    samples = D.sample(exact, sch, 2000, 2)
    shown = [(100, exact.calls[0]), (50, exact.calls[50]), (20, exact.calls[80]), (5, exact.calls[95]), (0, samples[:400])]
    fig, axes = plt.subplots(1, len(shown), figsize=(8, 1.9))
    for ax, (t, pts) in zip(axes, shown):
        _contour(ax, mix)
        ax.scatter(pts[:, 0], pts[:, 1], s=1, c="black", alpha=0.5, linewidths=0)
        ax.set_title(f"t = {t}", fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "reverse_trajectory.png", dpi=90)
    plt.close(fig)

    # A trained EpsModel's samples beside the true density.
    torch.manual_seed(0)
    data = torch.from_numpy(ring.sample(4096, 0))
    model = D.EpsModel(dim=2)
    D.train(model, data, sch["alpha_bars"], 1500, batch_size=128, lr=1e-3)
    torch.manual_seed(1)
    trained = D.sample(model.eval(), sch, 2000, 2)
    fig, axes = plt.subplots(1, 3, figsize=(6.3, 2.2))
    for ax, (title, pts) in zip(axes, [("data", data[:2000]), ("exact ε*", samples), ("trained ε_θ, 1,500 steps", trained)]):
        _contour(ax, mix)
        ax.scatter(pts[:, 0], pts[:, 1], s=1, c="black", alpha=0.4, linewidths=0)
        ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(OUT / "samples_vs_density.png", dpi=90)
    plt.close(fig)


if __name__ == "__main__":
    main()
