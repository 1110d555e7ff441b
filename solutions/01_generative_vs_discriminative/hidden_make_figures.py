"""Figures for handout.md, generated from the reference solution (never released: the name
starts with `hidden`). Run from this folder:  python hidden_make_figures.py   (about 30 s)."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import classifiers as C  # noqa: E402
import kitdata.labelled2d as L  # noqa: E402
import kitdata.planted as P  # noqa: E402
from kitdata.digits import load_digits  # noqa: E402

OUT = pathlib.Path(__file__).with_name("figures")
OUT.mkdir(exist_ok=True)
torch.set_num_threads(1)


def save(fig, name):
    fig.savefig(OUT / name, dpi=80, bbox_inches="tight")
    plt.close(fig)


def mixture_figure():
    mix = L.two_class()
    x, y = mix.sample(1000, 1)
    X, Y = torch.from_numpy(x).double(), torch.from_numpy(y)
    params = C.fit_gaussian_classifier(X, Y, 2)
    torch.manual_seed(0)
    model = C.LogisticRegression(2, 2).double()
    C.train_classifier(model, X, Y, 300, 64, 5e-2)
    g = np.linspace(-4, 8, 300)
    gx, gy = np.meshgrid(g, np.linspace(-5, 7, 300))
    grid = np.stack([gx.ravel(), gy.ravel()], 1)
    bayes = np.diff(mix.log_joint(grid), axis=1).reshape(gx.shape)
    lj = C.log_joint(params, torch.from_numpy(grid)).numpy()
    gda = (lj[:, 1] - lj[:, 0]).reshape(gx.shape)
    with torch.no_grad():
        lo = model(torch.from_numpy(grid)).numpy()
    lr = (lo[:, 1] - lo[:, 0]).reshape(gx.shape)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.scatter(x[:, 0], x[:, 1], c=np.where(y == 1, "tab:orange", "tab:blue"), s=4, alpha=0.5)
    for field, colour, name in ((bayes, "k", "Bayes (exact)"), (gda, "tab:green", "Gaussian classifier"),
                                (lr, "tab:red", "logistic regression")):
        ax.contour(gx, gy, field, levels=[0], colors=colour, linewidths=1.2)
        ax.plot([], [], color=colour, label=name)
    ax.set_title("labelled2d.two_class(): 1,000 draws and three decision boundaries", fontsize=8)
    ax.legend(fontsize=7, loc="upper left")
    save(fig, "mixture_boundaries.png")


def curves():
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "autograder" / "suites" / "classifiers"))
    from ref_classifiers import linear_error

    mix = L.two_class()
    sizes = [8, 16, 32, 64, 128, 256, 512, 1024, 2048]
    gda, lr = [], []
    for n in sizes:
        eg, el = [], []
        for r in range(5):
            x, y = mix.sample(n, 100 * n + r)
            y[:2] = [0, 1]
            X, Y = torch.from_numpy(x).double(), torch.from_numpy(y)
            p = C.fit_gaussian_classifier(X, Y, 2)
            prec = torch.linalg.inv(p["cov"])
            w = prec @ (p["means"][1] - p["means"][0])
            b = -0.5 * (p["means"][1] @ prec @ p["means"][1] - p["means"][0] @ prec @ p["means"][0]) \
                + p["log_prior"][1] - p["log_prior"][0]
            eg.append(linear_error(w.numpy(), float(b)))
            torch.manual_seed(r)
            m = C.LogisticRegression(2, 2).double()
            C.train_classifier(m, X, Y, 300, 64, 5e-2)
            W, B = m.linear.weight.detach(), m.linear.bias.detach()
            el.append(linear_error((W[1] - W[0]).numpy(), float(B[1] - B[0])))
        gda.append(np.mean(eg))
        lr.append(np.mean(el))
        print(n, gda[-1], lr[-1])
    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    ax.plot(sizes, gda, "o-", label="Gaussian classifier (generative)")
    ax.plot(sizes, lr, "s-", label="logistic regression (discriminative)")
    ax.axhline(L.BAYES_ERROR, color="k", ls="--", lw=0.8, label=f"Bayes error {L.BAYES_ERROR:.4f}")
    ax.set_xscale("log")
    ax.set_xlabel("training examples")
    ax.set_ylabel("exact test error (mean of 5 sets)")
    ax.legend(fontsize=7)
    ax.set_title("learning curves on the 2-D data", fontsize=9)
    save(fig, "learning_curves.png")
    return sizes, gda, lr


def digit_samples():
    x, y = (torch.from_numpy(a) for a in load_digits("train"))
    params = C.fit_gaussian_classifier(x.double(), y, 10)
    g = torch.Generator().manual_seed(0)
    s = torch.stack([C.sample_class(params, c, 6, generator=g) for c in range(10)], 1)   # (6, 10, 64)
    fig, axes = plt.subplots(7, 10, figsize=(5, 3.6))
    for c in range(10):
        axes[0, c].imshow(params["means"][c].reshape(8, 8), cmap="gray", vmin=0, vmax=1)
        for r in range(6):
            axes[r + 1, c].imshow(s[r, c].clamp(0, 1).reshape(8, 8), cmap="gray", vmin=0, vmax=1)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle("top: class means mu_c; below: samples mu_c + L eps", fontsize=8)
    save(fig, "digit_samples.png")


def cams():
    xi, yi, _ = (torch.from_numpy(a) for a in P.train_set())
    torch.manual_seed(0)
    model = C.TinyCNN()
    C.train_classifier(model, xi, yi, 1000, 64, 1e-2)
    model.eval()
    x, y, centres = P.make(6, 7)
    X = torch.from_numpy(x)
    with torch.no_grad():
        maps = C.class_activation_map(model, X, torch.from_numpy(y))
    import matplotlib.patches as patches
    fig, axes = plt.subplots(2, 6, figsize=(7, 2.6))
    for i in range(6):
        r, c = centres[i]
        axes[0, i].imshow(x[i, 0], cmap="gray")
        axes[0, i].set_title(P.CLASSES[y[i]], fontsize=7)
        axes[1, i].imshow(maps[i].numpy(), cmap="magma")
        for ax in axes[:, i]:
            ax.add_patch(patches.Rectangle((c - 1.5, r - 1.5), 3, 3, fill=False, ec="cyan", lw=0.8))
            ax.axis("off")
    fig.suptitle("planted-object images (top) and the CAM of their class (bottom)", fontsize=8)
    save(fig, "cams.png")


if __name__ == "__main__":
    mixture_figure()
    curves()
    digit_samples()
    cams()
    for f in sorted(OUT.glob("*.png")):
        print(f.name, f.stat().st_size)
