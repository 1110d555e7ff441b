"""A tiny language model: tokens, next-token prediction, causal attention, generation.

A language model is a generative model of text. By the chain rule of probability

    p(x_1, ..., x_n) = p(x_1) p(x_2 | x_1) ... p(x_n | x_1, ..., x_{n-1}),

so learning the density of whole texts is the same as learning to predict the next token
from the ones before it. Everything here is shaped by that one identity:

* ``CharTokenizer`` turns text into integer tokens and back (losslessly).
* ``BigramLM`` predicts the next token from the previous one only (by counting).
* ``TinyGPT`` predicts it from up to ``block_size`` previous tokens with causal attention.
* ``lm_loss`` is the average ``-ln p(x_{t+1} | x_1..x_t)``: the negative log-likelihood.
* ``get_batch`` / ``train`` fit a model by minimising that loss.
* ``generate`` samples text one token at a time, each conditioned on what came before.

Shapes: B = batch size, T = sequence length (<= block_size), V = vocabulary size,
C = n_embd (embedding size), H = n_head, hs = C // H (head size).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

UNK_CHAR = "\ufffd"   # what decode() writes for the unknown token (U+FFFD REPLACEMENT CHARACTER)


# --------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------
class CharTokenizer:
    """Character-level tokenizer with one extra token for unknown characters.

    The vocabulary is the distinct characters of ``text`` followed by one unknown token,
    so ``vocab_size == len(set(text)) + 1`` and ``unk_id == vocab_size - 1``.

    * ``encode(s)`` maps each character of ``s`` to its id; a character that is not in
      the vocabulary maps to ``unk_id``. Returns a LongTensor of shape (len(s),).
    * ``decode(ids)`` maps ids back to characters (``unk_id`` -> ``UNK_CHAR``).
      For any string ``s`` made of vocabulary characters, ``decode(encode(s)) == s``.
    """

    def __init__(self, text: str):
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    @property
    def vocab_size(self) -> int:
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    @property
    def unk_id(self) -> int:
        return self.vocab_size - 1

    def encode(self, text: str) -> torch.Tensor:
        """str of length n -> LongTensor (n,) of ids in [0, vocab_size)."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def decode(self, ids) -> str:
        """LongTensor (n,) or list of ints -> str of length n."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


# --------------------------------------------------------------------------------------
# The baseline: a count-based bigram model
# --------------------------------------------------------------------------------------
class BigramLM(nn.Module):
    """p(x_{t+1} = j | x_t = i) estimated by counting pairs (i, j) in the training tokens.

    ``fit(ids, alpha)`` sets ``p(j | i) = (N[i, j] + alpha) / (sum_j' N[i, j'] + alpha V)``
    where ``N[i, j]`` is the number of times token ``i`` is followed by token ``j`` in
    ``ids``. A row with no counts and ``alpha == 0`` is uniform.
    ``forward(idx)`` returns next-token log-probabilities, which are valid logits:
    ``logits[b, t] = ln p(. | idx[b, t])``.
    """

    block_size = 1   # it only ever looks at the last token (used by generate)

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.register_buffer("log_probs", torch.full((vocab_size, vocab_size), -math.log(vocab_size)))

    @torch.no_grad()
    def fit(self, ids: torch.Tensor, alpha: float = 1.0) -> "BigramLM":
        """ids: LongTensor (N,). Returns self."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: LongTensor (B, T) -> logits (B, T, V)."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


# --------------------------------------------------------------------------------------
# The transformer
# --------------------------------------------------------------------------------------
@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 32    # the longest context the model can read
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention.

    Layout (the tests rely on it): ``self.qkv = nn.Linear(C, 3C)``, whose output splits
    along the last dimension into q, k, v (in that order, C channels each); head h uses
    channels ``h*hs : (h+1)*hs`` of each. ``self.proj = nn.Linear(C, C)`` is applied to
    the heads' outputs concatenated in head order.

    For each head, with q, k, v of shape (B, T, hs):

        att = softmax_over_s( q k^T / sqrt(hs) + M ),  M[t, s] = 0 if s <= t else -inf
        out = att v

    so position t attends only to positions s <= t (itself and the past).

    forward(x): x (B, T, C) -> (y (B, T, C), att (B, H, T, T)), the attention weights.
    """

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        assert n_embd % n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd)
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln2 = nn.LayerNorm(n_embd)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.GELU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, att = self.attn(self.ln1(x))
        x = x + a
        x = x + self.mlp(self.ln2(x))
        return x, att


class TinyGPT(nn.Module):
    """Token + position embeddings, n_layer blocks, a final LayerNorm and a linear head.

    forward(idx, return_attention=False):
        idx: LongTensor (B, T) with T <= block_size.
        returns logits (B, T, V): logits[b, t] scores the token that follows idx[b, :t+1];
        with return_attention=True, also a list (one per layer) of (B, H, T, T) weights.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.block_size = config.block_size
        C = config.n_embd
        self.tok_emb = nn.Embedding(config.vocab_size, C)
        self.pos_emb = nn.Embedding(config.block_size, C)
        self.blocks = nn.ModuleList(Block(C, config.n_head) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(C)
        self.head = nn.Linear(C, config.vocab_size)
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def forward(self, idx: torch.Tensor, return_attention: bool = False):
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


# --------------------------------------------------------------------------------------
# The loss and training
# --------------------------------------------------------------------------------------
def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token negative log-likelihood, in nats.

    logits: (B, T, V); targets: LongTensor (B, T), targets[b, t] is the token that follows
    position t. Returns a scalar: (1 / (B T)) sum_{b,t} -ln softmax(logits[b, t])[targets[b, t]].
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def get_batch(ids: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random training windows: inputs and their next-token targets.

    ids: LongTensor (N,). Picks batch_size start positions i uniformly from
    [0, N - block_size - 1] and returns x[b] = ids[i : i + block_size] and
    y[b] = ids[i + 1 : i + block_size + 1] (the same window shifted by one), both
    LongTensor (batch_size, block_size) on ids' device.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def train(model: nn.Module, ids: torch.Tensor, *, steps: int, batch_size: int = 32,
          lr: float = 3e-3, generator: torch.Generator | None = None) -> list[float]:
    """Minimise lm_loss on random windows of ids with AdamW for exactly `steps` steps.

    Windows have model.block_size tokens. Returns the training loss of every step
    (a list of `steps` floats).
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


# --------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------
@torch.no_grad()
def generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, *,
             temperature: float = 1.0, top_k: int | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample max_new_tokens tokens, one at a time, each conditioned on all before it.

    idx: LongTensor (B, T0), the prompt. At each step the model reads the last
    model.block_size tokens, and the next token is drawn from
    softmax(logits[:, -1] / temperature), restricted to the top_k largest logits when
    top_k is given (the others get probability 0). temperature == 0 means greedy: the
    argmax. Draws use `generator`, so the same generator seed gives the same text.
    Returns LongTensor (B, T0 + max_new_tokens), the prompt followed by the new tokens.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")
