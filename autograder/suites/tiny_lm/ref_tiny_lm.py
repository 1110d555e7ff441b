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


def ref_layer_norm(x, weight, bias, eps=1e-5):
    """nn.LayerNorm over the last dimension (biased variance, eps 1e-5), in float64."""
    x = x.double()
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * weight.double() + bias.double()


def ref_gpt_forward(params, idx, n_layer, n_head):
    """The handout's TinyGPT in float64 from its parameters (state_dict names of the given
    modules): tok_emb + pos_emb, n_layer pre-norm blocks x + attn(ln1(x)), x + mlp(ln2(x))
    with mlp = Linear -> exact GELU -> Linear, then ln_f and the head."""
    p = {k: v.double() for k, v in params.items()}
    T = idx.shape[1]
    x = p["tok_emb.weight"][idx] + p["pos_emb.weight"][:T]
    for layer in range(n_layer):
        b = f"blocks.{layer}."
        h = ref_layer_norm(x, p[b + "ln1.weight"], p[b + "ln1.bias"])
        a, _ = ref_attention(h, p[b + "attn.qkv.weight"], p[b + "attn.qkv.bias"],
                             p[b + "attn.proj.weight"], p[b + "attn.proj.bias"], n_head)
        x = x + a
        h = ref_layer_norm(x, p[b + "ln2.weight"], p[b + "ln2.bias"])
        h = torch.nn.functional.gelu(h @ p[b + "mlp.0.weight"].T + p[b + "mlp.0.bias"])
        x = x + h @ p[b + "mlp.2.weight"].T + p[b + "mlp.2.bias"]
    x = ref_layer_norm(x, p["ln_f.weight"], p["ln_f.bias"])
    return x @ p["head.weight"].T + p["head.bias"]


# The parameters of the handout's TinyGPT (their modules are given in the skeleton).
def gpt_parameter_shapes(vocab_size, block_size, n_layer, n_embd):
    C = n_embd
    shapes = {"tok_emb.weight": (vocab_size, C), "pos_emb.weight": (block_size, C),
              "ln_f.weight": (C,), "ln_f.bias": (C,), "head.weight": (vocab_size, C), "head.bias": (vocab_size,)}
    for layer in range(n_layer):
        b = f"blocks.{layer}."
        shapes.update({b + "ln1.weight": (C,), b + "ln1.bias": (C,), b + "ln2.weight": (C,), b + "ln2.bias": (C,),
                       b + "attn.qkv.weight": (3 * C, C), b + "attn.qkv.bias": (3 * C,),
                       b + "attn.proj.weight": (C, C), b + "attn.proj.bias": (C,),
                       b + "mlp.0.weight": (4 * C, C), b + "mlp.0.bias": (4 * C,),
                       b + "mlp.2.weight": (C, 4 * C), b + "mlp.2.bias": (C,)})
    return shapes
