"""The tiny_lm suite's own float64 maths: what every student number is compared with.

Imported by test_tiny_lm.py in the judge (never by the worker).
"""
import math

import torch


def ref_nll(logits, targets):
    """float64 -log softmax(logits)[targets] per position."""
    return -torch.log_softmax(logits.double(), dim=-1).gather(-1, targets[..., None])[..., 0]


def ref_loss(logits, targets):
    """The mean next-token NLL over every position."""
    return ref_nll(logits, targets).mean()


def ref_pair_counts(text, chars):
    """N[i, j] (float64, in the order of chars), and the (previous, next) index of every pair."""
    pos = {c: i for i, c in enumerate(chars)}
    a = torch.tensor([pos[c] for c in text[:-1]])
    b = torch.tensor([pos[c] for c in text[1:]])
    n = len(chars)
    counts = torch.zeros(n * n, dtype=torch.float64).index_add_(0, a * n + b, torch.ones(len(a), dtype=torch.float64))
    return counts.view(n, n), a, b


def ref_attention(x, qkv_w, qkv_b, proj_w, proj_b, n_head):
    """Multi-head causal self-attention with the given weights: (y, att)."""
    B, T, C = x.shape
    hs = C // n_head
    qkv = x.double() @ qkv_w.double().T + qkv_b.double()
    q, k, v = (z.view(B, T, n_head, hs).transpose(1, 2) for z in qkv.split(C, dim=2))
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    att = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    y = (att @ v).transpose(1, 2).reshape(B, T, C) @ proj_w.double().T + proj_b.double()
    return y, att


def ref_table_loss_and_grad(W, x, y):
    """Loss and gradient of the stand-in model logits[b, t] = W[x[b, t]] at W."""
    W = W.double().clone().requires_grad_(True)
    loss = ref_loss(W[x], y)
    loss.backward()
    return float(loss), W.grad


def ref_adam_updates(grads, lr, betas=(0.9, 0.999), eps=1e-8):
    """The update AdamW (without weight decay) makes at each step, given each step's gradient."""
    m = v = 0
    updates = []
    for k, g in enumerate(grads, start=1):
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** k), v / (1 - betas[1] ** k)
        updates.append(-lr * m_hat / (v_hat.sqrt() + eps))
    return updates
