"""Public checks: quick signs that each part works. Passing them is not full marks:
the grader's own tests are stricter (see the handout, section 5)."""
import math

import pytest
import torch

import kitdata.text as kt
from autograder.grading.judge import expect_close, expect_finite, expect_tensor


@pytest.mark.judges("CharTokenizer")
def test_tokenizer_roundtrip(worker):
    strings = ["", "abcABC", kt.LANGUAGE.sample(200, seed=1)]
    out = worker.call("roundtrip", strings + ["a?b"])
    assert out["vocab_size"] == 17, "the corpus has 16 characters: vocab_size should be 16 + 1 (unknown)"
    for s, d in zip(strings, out["decoded"]):
        assert d == s, "decode(encode(s)) should give s back"
    assert out["decoded"][-1] == "a\ufffdb", "an unknown character should decode to U+FFFD"


@pytest.mark.judges("TinyGPT")
def test_logits_and_causality(worker):
    V = 11
    idx = torch.randint(0, V, (2, 16), generator=torch.Generator().manual_seed(0))
    out = worker.call("forward", V, idx)
    logits = expect_tensor(out["logits"], name="TinyGPT.forward", shape=(2, 16, V), dtype=torch.float32)
    expect_finite(logits, name="TinyGPT.forward")
    changed = expect_tensor(out["changed_last"], name="TinyGPT.forward", shape=(2, 16, V))
    assert torch.allclose(changed[:, :-1], logits[:, :-1], atol=1e-5), (
        "changing the last token changed earlier positions' logits: check the causal mask")


@pytest.mark.judges("lm_loss")
def test_loss_formula(worker):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, generator=g)
    targets = torch.randint(0, 5, (2, 3), generator=g)
    value = expect_tensor(worker.call("loss", logits, targets), name="lm_loss", shape=())
    by_hand = -torch.log_softmax(logits.double(), -1).gather(-1, targets[..., None]).mean()
    expect_close(value, by_hand, name="lm_loss", rtol=1e-5, atol=1e-6)
    uniform = expect_tensor(worker.call("loss", torch.zeros(2, 3, 5), targets), name="lm_loss", shape=())
    assert abs(float(uniform) - math.log(5)) < 1e-5, "lm_loss of uniform logits over 5 tokens should be ln 5"


@pytest.mark.judges("BigramLM")
def test_bigram_shapes(worker):
    ids = torch.tensor([0, 1, 2, 1, 0, 2, 2, 1])
    logits = expect_tensor(worker.call("bigram", ids, 3), name="BigramLM.forward", shape=(1, 8, 3), dtype=torch.float32)
    rows = logits.exp().sum(-1)
    assert bool(((rows - 1).abs() < 1e-4).all()), "BigramLM.forward should return log-probabilities (rows of exp sum to 1)"


@pytest.mark.judges("CausalSelfAttention")
def test_attention_shapes(worker):
    x = torch.randn(2, 5, 12, generator=torch.Generator().manual_seed(0))
    out = worker.call("attention", x, 3)
    assert isinstance(out, (tuple, list)) and len(out) == 2, "CausalSelfAttention.forward should return (y, att)"
    expect_tensor(out[0], name="CausalSelfAttention y", shape=(2, 5, 12), dtype=torch.float32)
    att = expect_tensor(out[1], name="CausalSelfAttention att", shape=(2, 3, 5, 5), dtype=torch.float32)
    assert float(att.triu(1).abs().max()) == 0.0, "att should be 0 above the diagonal: a position never sees its future"


@pytest.mark.judges("get_batch")
def test_batch_shifted(worker):
    ids = torch.arange(100) * 10
    x, y = worker.call("batch", ids)
    x = expect_tensor(x, name="get_batch x", shape=(4, 8), dtype=torch.long)
    y = expect_tensor(y, name="get_batch y", shape=(4, 8), dtype=torch.long)
    assert bool((x[:, 1:] - x[:, :-1] == 10).all()), "each row of x should be a contiguous window"
    assert bool((y == x + 10).all()), "y should be x shifted by one position"


@pytest.mark.judges("train")
@pytest.mark.upstream("test_logits_and_causality", "test_loss_formula", "test_batch_shifted", "test_attention_shapes")
def test_training_lowers_the_loss(worker, artifacts):
    losses = worker.call("short_training", 60)
    assert isinstance(losses, (list, tuple)) and len(losses) == 60, "train should return one loss per step"
    training_curve(artifacts, losses)
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < first - 0.2, "60 training steps barely lowered the loss: check train() and the optimiser"


@pytest.mark.judges("generate")
@pytest.mark.upstream("test_logits_and_causality")
def test_generate_reproducible(worker):
    a, b = worker.call("sample", 3)
    a = expect_tensor(a, name="generate", shape=(2, 11))
    assert bool((a == b).all()), "the same generator seed should give the same tokens"


def training_curve(artifacts, losses):
    """Your training curve, in feedback/ (60 steps of a small model: a start, not the grader's run)."""
    import matplotlib.pyplot as plt

    from autograder.grading.judge import plottable

    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    ax.plot(range(1, len(losses) + 1), plottable(losses), lw=0.8)
    ax.set_xlabel("AdamW step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title("your train(): the losses it returned", fontsize=9)
    artifacts.figure("training_curve.png", fig)
