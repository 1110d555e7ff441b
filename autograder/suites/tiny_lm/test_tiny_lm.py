"""Hidden suite for tiny_lm: runs in the judge, never imports the student's code.

Every number a student's code is compared with is computed here, in float64, from the
inputs this file chooses. Thresholds come from grading.yml (calibration beside them).
"""
import math

import numpy as np
import pytest
import torch

import kitdata.text as kt
from autograder.judge import (describe_value, expect_close, expect_finite, expect_meta, expect_tensor, fails, parity_devices,
                              plottable, tier)

LANG = kt.LANGUAGE
HELDOUT_SALT = 0x51_7E_D5_A1_7C
V_CORPUS = len(LANG.alphabet) + 1          # the corpus's characters + the unknown token
UNK = "\ufffd"


def _rng(seed):
    return torch.Generator().manual_seed(seed)


def _random_text(alphabet, n, g):
    idx = torch.randint(0, len(alphabet), (n,), generator=g).tolist()
    return "".join(alphabet[i] for i in idx)


def _expect_ids(value, *, name, n, vocab_size):
    ids = expect_tensor(value, name=name, shape=(n,))
    if n:   # torch.tensor([]) is float: the empty string's dtype is not held against anyone
        if not (not ids.is_floating_point() and ids.dtype != torch.bool):
            fails(f"{name} should return integer token ids (a LongTensor), got {str(ids.dtype).removeprefix('torch.')}")
        if not (int(ids.min()) >= 0 and int(ids.max()) < vocab_size):
            fails(f"{name} has ids outside [0, vocab_size)")
    return ids


def _nll(logits, targets):
    """float64 -log softmax(logits)[targets] per position."""
    return -torch.log_softmax(logits.double(), dim=-1).gather(-1, targets[..., None])[..., 0]


# ======================================================================== tokenizer
def test_tokenizer_roundtrip(worker, seed):
    g = _rng(seed)
    corpus_strings = [""] + [_random_text(LANG.alphabet, n, g) for n in (1, 37, 500)]
    out = worker.call("tokenizer", None, corpus_strings)
    if not (out["vocab_size"] == V_CORPUS):
        fails("CharTokenizer.vocab_size should be the number of distinct characters of the text plus one unknown token")
    for s, ids, dec in zip(corpus_strings, out["ids"], out["decoded"]):
        _expect_ids(ids, name="CharTokenizer.encode", n=len(s), vocab_size=V_CORPUS)
        if not (isinstance(dec, str)):
            fails(f"CharTokenizer.decode should return a str, got {type(dec).__name__}")
        if not (dec == s):
            fails("CharTokenizer.decode(encode(s)) != s for a string of the language")
    # Same character -> same id, different characters -> different ids.
    s, ids = corpus_strings[-1], out["ids"][-1].tolist()
    seen = {}
    for c, i in zip(s, ids):
        if not (seen.setdefault(c, i) == i):
            fails("CharTokenizer.encode gives one character two different ids")
    if not (len(set(seen.values())) == len(seen)):
        fails("CharTokenizer.encode gives two characters the same id")

    # Any text, not only the synthetic language: punctuation, whitespace, non-ASCII.
    text = "Hello, world!\n\tnaïve café: 3 × 4 = 12 ✓ — ok?"
    chars = sorted(set(text))
    pieces = [text, "".join(reversed(text)), _random_text(chars, 200, g)]
    out = worker.call("tokenizer", text, pieces)
    if not (out["vocab_size"] == len(chars) + 1):
        fails("CharTokenizer.vocab_size should be the number of distinct characters of the text plus one")
    for s, ids, dec in zip(pieces, out["ids"], out["decoded"]):
        _expect_ids(ids, name="CharTokenizer.encode", n=len(s), vocab_size=len(chars) + 1)
        if not (dec == s):
            fails("CharTokenizer.decode(encode(s)) != s for a text with punctuation and non-ASCII characters")


def test_tokenizer_unknown(worker, seed):
    g = _rng(seed)
    known = _random_text(LANG.alphabet, 30, g)
    foreign = "xyz?!0 é"
    # Interleave known and foreign characters at positions the judge knows.
    s = "".join(k + (foreign[i % len(foreign)] if i % 3 == 0 else "") for i, k in enumerate(known))
    is_unknown = [c not in LANG.alphabet for c in s]
    out = worker.call("tokenizer", None, [s, known])
    unk = out["unk_id"]
    if not (isinstance(unk, int) and unk == out["vocab_size"] - 1):
        fails("CharTokenizer.unk_id should be vocab_size - 1")
    ids = _expect_ids(out["ids"][0], name="CharTokenizer.encode", n=len(s), vocab_size=V_CORPUS).tolist()
    known_ids = _expect_ids(out["ids"][1], name="CharTokenizer.encode", n=len(known), vocab_size=V_CORPUS).tolist()
    if not (unk not in known_ids):
        fails("CharTokenizer.encode gives a character of the text the unknown id")
    if not (all((i == unk) == u for i, u in zip(ids, is_unknown))):
        fails("CharTokenizer.encode should map exactly the characters missing from the vocabulary to unk_id")
    expected = "".join(UNK if u else c for c, u in zip(s, is_unknown))
    if not (out["decoded"][0] == expected):
        fails("CharTokenizer.decode should keep known characters and write unknown ones as U+FFFD")


# ======================================================================== bigram
def _pair_counts(text, chars):
    pos = {c: i for i, c in enumerate(chars)}
    a = torch.tensor([pos[c] for c in text[:-1]])
    b = torch.tensor([pos[c] for c in text[1:]])
    n = len(chars)
    return torch.zeros(n * n, dtype=torch.float64).index_add_(0, a * n + b, torch.ones(len(a), dtype=torch.float64)).view(n, n), a, b


def test_bigram_entropy(worker, seed):
    """alpha = 0: the bigram's cross-entropy on its own training text is the empirical
    conditional entropy H(X_{t+1} | X_t) of the pair counts. alpha = 1: every next-token
    distribution is (N[i, j] + 1) / (N[i] + V)."""
    g = _rng(seed)
    text = LANG.sample(3000, seed=seed) + _random_text("abc", 300, g)   # skewed counts, unseen pairs
    for alpha in (0.0, 1.0):
        out = worker.call("bigram", text, alpha)
        chars, V = sorted(set(text)), len(set(text)) + 1
        if not (out["vocab_size"] == V):
            fails("CharTokenizer.vocab_size is wrong (see the tokenizer tests)")
        logits = expect_tensor(out["logits"], name="BigramLM.forward", shape=(1, len(text) - 1, V))
        if not (logits.is_floating_point()):
            fails("BigramLM.forward should return float logits")
        char_ids = out["char_ids"].long()
        counts, a, b = _pair_counts(text, chars)
        # Student's logits re-indexed into the judge's character order.
        logp = torch.log_softmax(logits[0].double(), dim=-1)
        targets = char_ids[b]
        nll = -logp.gather(1, targets[:, None])[:, 0]
        if not (torch.isfinite(nll).all()):
            fails("BigramLM gives probability 0 to a pair that occurs in its training text")
        if alpha == 0.0:
            cond = counts / counts.sum(1, keepdim=True).clamp_min(1)
            mask = counts > 0
            h = float(-(counts[mask] * cond[mask].log()).sum() / counts.sum())
            ce = float(nll.mean())
            if not (abs(ce - h) <= 1e-4 * max(1.0, h)):
                fails("BigramLM.fit(alpha=0): its cross-entropy on the training text should equal the "
                    "empirical conditional entropy of the pair counts; it does not")
        else:
            expected = (counts + 1.0) / (counts.sum(1, keepdim=True) + V)        # (n, n) in judge order
            got = logp.exp()[:, char_ids]                                            # (N-1, n)
            expect_close(got, expected[a], name="BigramLM next-token probabilities (alpha=1)", rtol=1e-4, atol=1e-6)


# ======================================================================== data and loss
def test_batches(worker, seed):
    g = _rng(seed)
    N, B, T = 400, 16, 8
    ids = torch.randperm(N, generator=g)          # distinct values: a window's origin is identifiable
    position = torch.empty(N, dtype=torch.long)
    position[ids] = torch.arange(N)
    out = worker.call("batches", ids, B, T, 20)
    if not (isinstance(out, (list, tuple)) and len(out) == 20):
        fails("get_batch should return (x, y)")
    starts = []
    for pair in out:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            fails("get_batch should return a pair (x, y)")
        x = expect_tensor(pair[0], name="get_batch x", shape=(B, T), dtype=torch.long)
        y = expect_tensor(pair[1], name="get_batch y", shape=(B, T), dtype=torch.long)
        if not (int(x.min()) >= 0 and int(x.max()) < N and int(y.min()) >= 0 and int(y.max()) < N):
            fails("get_batch returns values that are not in ids")
        px, py = position[x], position[y]
        if not (bool((px[:, 1:] == px[:, :-1] + 1).all())):
            fails("get_batch: each row of x should be a contiguous window of ids")
        if not (bool((py == px + 1).all())):
            fails("get_batch: y should be x shifted by one (y[b, t] is the token after x[b, t])")
        starts.append(px[:, 0])
    starts = torch.cat(starts)
    if not (starts.unique().numel() > len(starts) // 4):
        fails("get_batch: the windows should start at random positions")


def _reference_loss(logits, targets):
    return _nll(logits, targets).mean()


@pytest.mark.parametrize("case", ["float32", "float64", "large_logits"])
def test_loss(worker, seed, case):
    g = _rng(seed)
    B, T, V = 3, 5, 7
    logits = torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2
    targets = torch.randint(0, V, (B, T), generator=g)
    if case == "large_logits":
        # A target logit 200 below the largest: log(softmax(.)) underflows to -inf; a stable
        # log-softmax does not.
        logits[0, 0] = 0.0
        logits[0, 0, (targets[0, 0] + 1) % V] = 200.0
        logits = logits.float()
    elif case == "float32":
        logits = logits.float()
    out = worker.call("loss", logits, targets)
    dtype = torch.float64 if case == "float64" else torch.float32
    value = expect_tensor(out, name="lm_loss", shape=(), dtype=dtype)
    expect_finite(value, name="lm_loss")
    tol = 1e-10 if case == "float64" else 1e-5
    expect_close(value, _reference_loss(logits, targets), name="lm_loss", rtol=tol, atol=tol)


def test_initial_loss(worker, seed, thresholds):
    """An untrained model should predict nearly uniformly: loss ~ ln V on random tokens."""
    g = _rng(seed)
    V, T = V_CORPUS, 32
    idx = torch.randint(0, V, (16, T), generator=g)
    targets = torch.randint(0, V, (16, T), generator=g)
    logits = expect_tensor(worker.call("initial_logits", V, T, idx), name="TinyGPT.forward", shape=(16, T, V))
    expect_finite(logits, name="TinyGPT.forward")
    ce = float(_reference_loss(logits, targets))
    if not (abs(ce - math.log(V)) <= thresholds["init_loss_tolerance"]):
        fails(f"a freshly initialised TinyGPT should have loss close to ln(V) = {math.log(V):.3f} on random "
            f"tokens, got {ce:.3f}: initialise its weights small (e.g. normal with std 0.02)")


# ======================================================================== the transformer
def test_logits_shapes(worker, seed):
    V, block = 11, 16
    shapes = [(1, 1), (2, 7), (5, 16), (3, 16)]
    out = worker.call("logits_shapes", V, block, shapes)
    if not (isinstance(out, (list, tuple)) and len(out) == len(shapes)):
        fails("TinyGPT.forward should return logits")
    for (b, t), logits in zip(shapes, out):
        logits = expect_tensor(logits, name=f"TinyGPT.forward on a ({b}, {t}) batch", shape=(b, t, V),
                               dtype=torch.float32)
        expect_finite(logits, name="TinyGPT.forward")


def _reference_attention(x, out, n_head):
    B, T, C = x.shape
    hs = C // n_head
    qkv = x @ out["qkv_w"].double().T + out["qkv_b"].double()
    q, k, v = (z.view(B, T, n_head, hs).transpose(1, 2) for z in qkv.split(C, dim=2))
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    att = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    y = (att @ v).transpose(1, 2).reshape(B, T, C) @ out["proj_w"].double().T + out["proj_b"].double()
    return y, att


@pytest.mark.parametrize("gain", [1.0, 300.0], ids=["ordinary_scores", "large_scores"])
def test_attention_module(worker, seed, gain):
    """CausalSelfAttention against softmax(q k^T / sqrt(hs) + M) v with its own weights.
    large_scores multiplies the q/k/v weights so that scores reach ~1e4..1e5: a mask
    with a finite value is overcome there, -inf is not."""
    g = _rng(seed)
    C, H, B, T = 16, 4, 2, 7
    x = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    out = worker.call("attention_module", C, H, x, gain)
    for key, shape in (("qkv_w", (3 * C, C)), ("qkv_b", (3 * C,)), ("proj_w", (C, C)), ("proj_b", (C,))):
        expect_tensor(out[key], name=f"CausalSelfAttention.{key.replace('_w', '.weight').replace('_b', '.bias')}",
                      shape=shape)
    y = expect_tensor(out["y"], name="CausalSelfAttention output", shape=(B, T, C), dtype=torch.float64)
    expect_finite(y, name="CausalSelfAttention output")
    ref_y, ref_att = _reference_attention(x, out, H)
    if out["att"] is not None:
        att = expect_tensor(out["att"], name="CausalSelfAttention attention weights", shape=(B, H, T, T))
        expect_finite(att, name="CausalSelfAttention attention weights")
        if not (bool((att.double().sum(-1) - 1).abs().max() < 1e-6)):
            fails("CausalSelfAttention: each query's attention weights should sum to 1 over the keys")
        if not (float(att.double().triu(1).abs().max()) == 0.0):
            fails("CausalSelfAttention: attention weights above the diagonal (the future) should be exactly 0")
        expect_close(att, ref_att, name="CausalSelfAttention attention weights", rtol=1e-6, atol=1e-8)
    else:
        raise AssertionError("CausalSelfAttention.forward should return (y, attention weights)")
    expect_close(y, ref_y, name="CausalSelfAttention output", rtol=1e-6, atol=1e-8)


def test_causality(worker, seed):
    """Changing tokens after position t leaves logits at positions <= t unchanged (every t),
    and changing the first token changes later logits (the model reads the past)."""
    g = _rng(seed)
    V, block, B = 13, 16, 2
    idx = torch.randint(0, V, (B, block), generator=g)
    repl = (idx + torch.randint(1, V, (B, block), generator=g)) % V          # differs everywhere
    out = worker.call("causality", V, block, idx, repl)
    base = expect_tensor(out["base"], name="TinyGPT.forward", shape=(B, block, V))
    expect_finite(base, name="TinyGPT.forward")
    scale = float(base.double().abs().max()) + 1e-12
    if not (isinstance(out["after"], (list, tuple)) and len(out["after"]) == block - 1):
        fails("TinyGPT.forward failed")
    leaks = []
    for t, logits in enumerate(out["after"]):
        logits = expect_tensor(logits, name="TinyGPT.forward", shape=(B, block, V))
        diff = float((logits[:, : t + 1].double() - base[:, : t + 1].double()).abs().max())
        if not diff <= 1e-5 * scale + 1e-6:
            leaks.append(t)
    if not (not leaks):
        fails(f"TinyGPT is not causal: changing the tokens after position {leaks[0]} changes the logits at "
            f"positions <= {leaks[0]} (affected for {len(leaks)} of {block - 1} positions t)")
    first = expect_tensor(out["first_changed"], name="TinyGPT.forward", shape=(B, block, V))
    if not (float((first[:, 0] - base[:, 0]).abs().max()) > 1e-3 * scale):
        fails("TinyGPT: changing the token at position 0 should change the logits at position 0")
    later = (first[:, 1:].double() - base[:, 1:].double()).abs().amax(dim=(0, 2))        # per position
    unchanged = int((later <= 1e-4 * scale).sum())
    if not (unchanged == 0):
        fails(f"TinyGPT does not use the past: changing the first token leaves the logits at {unchanged} "
            f"later positions unchanged")


def test_device_parity(worker, seed):
    """The forward pass and the loss on every accelerator (or the meta device) and in float64."""
    g = _rng(seed)
    V, block, B, T = 11, 16, 3, 12
    idx = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, V, (B, T), generator=g)
    for device in parity_devices(worker):
        out = worker.call("device_forward", device, V, block, idx, targets)
        if device == "meta":
            expect_meta(out["logits"], name="TinyGPT.forward on the meta device", shape=(B, T, V), dtype=torch.float32)
            expect_meta(out["loss"], name="lm_loss on the meta device", shape=(), dtype=torch.float32)
        else:
            cpu = expect_tensor(out["cpu_logits"], name="TinyGPT.forward (CPU)", shape=(B, T, V))
            expect_close(out["logits"], cpu, name=f"TinyGPT.forward on {device} vs CPU", rtol=1e-3, atol=1e-4)
            loss = expect_tensor(out["loss"], name=f"lm_loss on {device}", shape=())
            expect_close(loss, _reference_loss(cpu, targets), name=f"lm_loss on {device}", rtol=1e-4, atol=1e-5)
    out = worker.call("device_forward", "float64", V, block, idx, targets)
    logits = expect_tensor(out["logits"], name="TinyGPT.forward after model.double()", shape=(B, T, V),
                           dtype=torch.float64)
    loss = expect_tensor(out["loss"], name="lm_loss on float64 logits", shape=(), dtype=torch.float64)
    expect_close(loss, _reference_loss(logits, targets), name="lm_loss on float64 logits", rtol=1e-10, atol=1e-12)


# ======================================================================== learned quality
def _plot_feedback(artifacts, result, thresholds, ce, bigram_ce):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    block = thresholds["block_size"]
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    losses = plottable(result["losses"]) if isinstance(result["losses"], (list, tuple)) else []
    if len(losses):
        ax.plot(range(1, len(losses) + 1), losses, lw=1, label="TinyGPT training loss")
    ax.axhline(LANG.unigram_entropy(), color="grey", ls=":", label="uniform guess, ln 16")
    ax.axhline(bigram_ce, color="tab:orange", ls="--", label=f"bigram, held out ({bigram_ce:.3f})")
    ax.axhline(ce, color="tab:blue", ls="--", label=f"TinyGPT, held out ({ce:.3f})")
    ax.axhline(LANG.window_entropy(block), color="tab:green", ls="-.", lw=1,
               label=f"best possible on {block}-token windows ({LANG.window_entropy(block):.3f})")
    ax.axhline(LANG.entropy_rate(), color="k", lw=1, label=f"entropy rate ({LANG.entropy_rate():.3f})")
    ax.set_xlabel("training step")
    ax.set_ylabel("nats per token")
    ax.set_ylim(0.9, 3.0)
    ax.legend(fontsize=7)
    ax.set_title("Next-token cross-entropy against the entropy-rate floor")
    artifacts.figure("loss_curves.png", fig)

    att = result.get("attention")
    if isinstance(att, torch.Tensor) and att.dim() == 3:
        heads = att.shape[0]
        fig, axes = plt.subplots(1, heads, figsize=(2.6 * heads, 2.8))
        for h, axh in enumerate(np.atleast_1d(axes)):
            axh.imshow(att[h].double().numpy(), cmap="viridis", vmin=0, vmax=1)
            axh.set_title(f"layer 1, head {h + 1}", fontsize=8)
            axh.set_xlabel("key position", fontsize=7)
            axh.set_ylabel("query position", fontsize=7)
        fig.suptitle(f"Attention on a held-out window (the echo is {LANG.lag} back)", fontsize=9)
        artifacts.figure("attention.png", fig)


def test_learned_quality(worker, seed, thresholds, credit, artifacts):
    """Trained with the student's own loop for a fixed number of steps, the held-out
    cross-entropy (on tokens with a full lag of context) must come close to the true
    process's NLL on the same tokens, and clearly below what a bigram can reach."""
    th = thresholds
    block, n_windows = th["block_size"], th["heldout_windows"]
    # Fresh held-out text for every grading seed, from a seed the worker cannot derive (the
    # salt lives only in this hidden file): no file and no code the worker can read holds it.
    held = LANG.sample(n_windows * (block + 1), seed=(seed * 1_000_003 + HELDOUT_SALT) % 2**62)
    result = worker.call("train_and_evaluate", th["train_steps"], th["batch_size"], block, 3, th["sample_length"], seed)
    if not isinstance(result, dict):
        fails(f"training did not return its results, got {describe_value(result)}")
    outputs = worker.call("heldout_outputs", held, n_windows, block)  # only once training is over
    result = {**result, **(outputs if isinstance(outputs, dict) else {})}
    ids = expect_tensor(result.get("alphabet_ids"), name="CharTokenizer.encode", shape=(len(LANG.alphabet),)).long()
    if not (ids.unique().numel() == len(LANG.alphabet)):
        fails("CharTokenizer.encode gives two characters the same id")
    logits = expect_tensor(result.get("logits"), name="TinyGPT.forward on held-out windows", shape=(n_windows, block, None))
    V = logits.shape[-1]
    if not (int(ids.max()) < V):
        fails("CharTokenizer ids do not fit the model's vocabulary")
    expect_finite(logits, name="TinyGPT.forward on held-out windows")
    bigram_logits = expect_tensor(result.get("bigram_logits"), name="BigramLM.forward", shape=(n_windows, block, V))

    codes = torch.from_numpy(LANG.encode(held)).view(n_windows, block + 1)
    targets = ids[codes[:, 1:]]
    floor = np.stack([LANG.token_nll(held[i * (block + 1): (i + 1) * (block + 1)])[1:] for i in range(n_windows)])
    scored = slice(LANG.lag - 1, None)          # targets with a full lag of context in the window
    ce = float(_nll(logits, targets)[:, scored].mean())
    bigram_ce = float(_nll(bigram_logits, targets)[:, scored].mean())
    gap = kt.cross_entropy_gap(ce, floor[:, scored])
    artifacts.note(f"held-out cross-entropy: TinyGPT {ce:.4f}, bigram {bigram_ce:.4f} nats/token; "
                   f"entropy rate {LANG.entropy_rate():.4f}; TinyGPT is {gap:+.4f} nats/token from the best achievable")
    try:
        _plot_feedback(artifacts, result, th, ce if math.isfinite(ce) else 3.0, bigram_ce if math.isfinite(bigram_ce) else 3.0)
    except Exception:  # feedback pictures never cost points (nor raise a grader error)
        pass
    samples = result.get("samples")
    if isinstance(samples, (list, tuple)):
        for s in samples[:3]:
            if isinstance(s, str):
                artifacts.note("sample: " + s[:120])

    if not (math.isfinite(ce)):
        fails("TinyGPT's held-out cross-entropy is not finite")
    if not (gap >= th["below_floor"]):
        fails("TinyGPT's held-out cross-entropy is below the entropy rate, which no model can reach "
            "honestly: it sees the token it is asked to predict (check the causal mask and the targets)")
    bigram_limit = LANG.bigram_entropy()
    if not (ce <= bigram_limit - th["min_gain_over_bigram"]):
        fails(f"after training, TinyGPT ({ce:.3f} nats/token held out) is not clearly better than the best "
            f"bigram ({bigram_limit:.3f}): it is not using the context (attention, positions, training loop)")
    fraction = tier(gap, th["gap_tiers"], higher_is_better=False)
    if fraction == 0:
        raise AssertionError(f"TinyGPT is {gap:.3f} nats/token above the best achievable after training: too far")
    if fraction < 1:
        credit(fraction, f"TinyGPT is {gap:.3f} nats/token above the best achievable: partial credit")


# ======================================================================== generation
def _table(g, V, spread):
    return torch.randn(V, V, generator=g, dtype=torch.float64).mul(spread).float()


def _check_generated(out, prompt, n_new, V, name="generate"):
    B, T0 = prompt.shape
    out = expect_tensor(out, name=name, shape=(B, T0 + n_new))
    if not (not out.is_floating_point()):
        fails(f"{name} should return integer token ids")
    if not (bool((out[:, :T0] == prompt).all())):
        fails(f"{name} should return the prompt followed by the new tokens")
    if not (int(out.min()) >= 0 and int(out.max()) < V):
        fails(f"{name} produced ids outside the vocabulary")
    return out.long()


def test_generate_reproducible(worker, seed):
    g = _rng(seed)
    V, block = 12, 8
    table = _table(g, V, 0.5)
    prompt = torch.randint(0, V, (4, 3), generator=g)
    outs = worker.call("generate", table, block, prompt, 20, 1.0, None, [seed % 1000, seed % 1000, seed % 1000 + 1])
    if not (isinstance(outs, (list, tuple)) and len(outs) == 3):
        fails("generate failed")
    a, b, c = (_check_generated(o, prompt, 20, V) for o in outs)
    if not (bool((a == b).all())):
        fails("generate: the same generator seed should give the same text")
    if not (not bool((a == c).all())):
        fails("generate: different generator seeds give the same text (is it sampling?)")


@pytest.mark.parametrize("temperature", [0.0, 1e-3], ids=["zero", "tiny"])
def test_generate_greedy(worker, seed, temperature):
    """temperature 0 (and -> 0) follows the argmax path; texts longer than block_size are
    generated by cropping the context to the last block_size tokens."""
    g = _rng(seed)
    V, block, n_new = 12, 6, 20
    # Rows whose top two logits are at least 1 apart: at temperature 1e-3 the runner-up has
    # probability below e^-1000.
    table = _table(g, V, 1.0)
    top = table.argmax(1)
    table[torch.arange(V), top] = table.max(1).values + 1.0
    prompt = torch.randint(0, V, (5, 4), generator=g)
    outs = worker.call("generate", table, block, prompt, n_new, temperature, None, [1])
    out = _check_generated(outs[0], prompt, n_new, V)
    expected = prompt.clone()
    for _ in range(n_new):
        expected = torch.cat([expected, top[expected[:, -1]][:, None]], dim=1)
    if not (bool((out == expected).all())):
        fails(f"generate(temperature={temperature:g}) should always pick the most likely next token")


@pytest.mark.parametrize("k", [1, 3])
def test_generate_top_k(worker, seed, k):
    g = _rng(seed)
    V, block, n_new, B = 12, 8, 30, 128
    table = _table(g, V, 0.3)                    # nearly flat rows: the (k+1)-th token is common
    prompt = torch.randint(0, V, (B, 1), generator=g)
    outs = worker.call("generate", table, block, prompt, n_new, 1.0, k, [7])
    out = _check_generated(outs[0], prompt, n_new, V)
    prev, nxt = out[:, :-1].reshape(-1), out[:, 1:].reshape(-1)
    rank = (table[prev] > table[prev, nxt][:, None]).sum(1)        # 0 = most likely
    if not (int(rank.max()) < k):
        fails(f"generate(top_k={k}) emitted a token outside the {k} most likely")
    if k > 1:
        probs = torch.softmax(table.double(), 1)
        topk = probs.topk(k, dim=1).values
        expected = (topk / topk.sum(1, keepdim=True))[prev].mean(0)          # expected share of each rank
        observed = torch.bincount(rank, minlength=k).double() / len(rank)
        if not (float((observed - expected).abs().max()) < 0.05):
            fails(f"generate(top_k={k}) should sample the {k} most likely tokens in proportion to their probabilities")


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_generate_temperature(worker, seed, temperature):
    """One new token from a fixed context, 8000 times: its frequencies must follow
    softmax(logits / temperature)."""
    g = _rng(seed)
    V, block, B = 12, 8, 8000
    table = torch.linspace(-2.0, 2.0, V)[torch.randperm(V, generator=g)].repeat(V, 1)
    prompt = torch.full((B, 1), int(torch.randint(0, V, (1,), generator=g)))
    outs = worker.call("generate", table, block, prompt, 1, temperature, None, [seed % 1000])
    out = _check_generated(outs[0], prompt, 1, V)
    freq = torch.bincount(out[:, 1], minlength=V).double() / B
    expected = torch.softmax(table[0].double() / temperature, 0)
    tv = 0.5 * float((freq - expected).abs().sum())
    if not (tv < 0.05):
        fails(f"generate(temperature={temperature}) does not sample from softmax(logits / temperature) "
            f"(total variation {tv:.3f})")
