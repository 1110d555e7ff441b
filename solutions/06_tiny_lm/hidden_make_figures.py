"""Figures for the handout, made from the reference solution on the training corpus only
(kitdata.text, split "train"). Never released (hidden_*). Deterministic (seed 0, one
thread); about 15 s on one core.

    python solutions/06_tiny_lm/hidden_make_figures.py
"""
from __future__ import annotations

import math
import sys
import textwrap
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import kitdata.text as kt   # noqa: E402
import tiny_lm as tl        # noqa: E402

OUT = HERE / "figures"
DPI = 90
STEPS = 250


def save(fig, name):
    fig.savefig(OUT / name, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def text_picture(title, lines, name):
    fig, ax = plt.subplots(figsize=(6.4, 0.3 + 0.22 * len(lines)))
    ax.axis("off")
    ax.set_title(title, fontsize=9, loc="left")
    for i, line in enumerate(lines):
        ax.text(0, 1 - (i + 0.5) / len(lines), line, family="monospace", fontsize=8, va="center",
                transform=ax.transAxes)
    save(fig, name)


def main():
    torch.set_num_threads(1)
    OUT.mkdir(exist_ok=True)
    text = kt.load_corpus("train")
    text_picture("the start of the training corpus (kitdata.text.load_corpus('train'))",
                 textwrap.wrap(text[:560].replace("\n", " "), 80)[:7], "data.png")

    tok = tl.CharTokenizer(text)
    ids = tok.encode(text)
    bigram = tl.BigramLM(tok.vocab_size).fit(ids)
    with torch.no_grad():
        bigram_ce = float(tl.lm_loss(bigram(ids[None, :-1]), ids[None, 1:]))
    torch.manual_seed(0)
    model = tl.TinyGPT(tl.GPTConfig(vocab_size=tok.vocab_size))
    losses = tl.train(model, ids, steps=STEPS, batch_size=32, generator=torch.Generator().manual_seed(0))
    model.eval()

    fig, ax = plt.subplots(figsize=(4.8, 2.8))
    ax.plot(np.arange(1, STEPS + 1), losses, color="C0", lw=1, label="TinyGPT, each step")
    ax.axhline(math.log(tok.vocab_size), color="0.5", ls=":", lw=0.8, label=f"ln V (uniform), V = {tok.vocab_size}")
    ax.axhline(bigram_ce, color="C1", ls="--", lw=0.8, label="the bigram baseline (training text)")
    ax.axhline(kt.entropy_rate(), color="C2", ls="-.", lw=0.8, label="entropy rate of the language")
    ax.set_xlabel("AdamW step (batch 32, 32-token windows)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.legend(fontsize=7)
    ax.set_title("the training loss train() returns", fontsize=9)
    save(fig, "training_curve.png")

    prompt = text[:24]
    with torch.no_grad():
        _, attentions = model(tok.encode(prompt)[None], return_attention=True)
    fig, axes = plt.subplots(len(attentions), attentions[0].shape[1], figsize=(7.2, 3.8))
    for layer, att in enumerate(attentions):
        for head in range(att.shape[1]):
            ax = axes[layer, head]
            ax.imshow(att[0, head].numpy(), cmap="Blues", vmin=0, vmax=1)
            ax.set_xticks(range(len(prompt)))
            ax.set_xticklabels(list(prompt), fontsize=4, family="monospace")
            ax.set_yticks(range(len(prompt)))
            ax.set_yticklabels(list(prompt), fontsize=4, family="monospace")
            ax.tick_params(length=0, pad=1)
            ax.set_title(f"layer {layer + 1}, head {head + 1}", fontsize=7)
    fig.suptitle("attention weights: row t = query position, column s <= t = key (future masked)", fontsize=8)
    save(fig, "attention.png")

    generator = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(3):
        out = tl.generate(model, tok.encode(prompt[:8])[None], 64, generator=generator)
        samples.append(repr(tok.decode(out[0].tolist()))[1:-1])
    text_picture(f"three samples after {STEPS} steps (prompt: the first 8 characters above)", samples, "samples.png")


if __name__ == "__main__":
    main()
