"""Hidden suite for tiny_lm: runs in the judge, never imports the student's code.

Every number a student's code is compared with is computed here, in float64, from the
inputs this file chooses. Thresholds come from grading.yml (calibration beside them).
"""
import math

import numpy as np
import pytest
import torch

import kitdata.text as kt
import ref_tiny_lm as ref
from autograder.grading.judge import (describe_value, expect_close, expect_finite, expect_learned, expect_meta, expect_same,
                              expect_tensor, fails, on_device, output_problems, parity_devices, plottable, tier)

LANG = kt.LANGUAGE
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




# ======================================================================== tokenizer
@pytest.mark.judges("CharTokenizer")
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

    # Any text, not only the synthetic language: punctuation, whitespace (at the ends too),
    # Windows line ends, non-ASCII; the tokenizer must not change the text in any way.
    text = " Hello, world!\r\n\tnaïve café: 3 × 4 = 12 ✓ — ok?\n "
    chars = sorted(set(text))
    pieces = [text, "".join(reversed(text)), "\n\n" + _random_text(chars, 200, g) + "\t ", " ", "\r\n"]
    out = worker.call("tokenizer", text, pieces)
    if not (out["vocab_size"] == len(chars) + 1):
        fails("CharTokenizer.vocab_size should be the number of distinct characters of the text plus one")
    for s, ids, dec in zip(pieces, out["ids"], out["decoded"]):
        _expect_ids(ids, name="CharTokenizer.encode", n=len(s), vocab_size=len(chars) + 1)
        if not (dec == s):
            fails("CharTokenizer.decode(encode(s)) != s for a text with whitespace at its ends, punctuation or "
                  "non-ASCII characters")

    # Two tokenizers alive at once, on texts with different vocabularies (ids differ between
    # them): each encodes and decodes with its own vocabulary, nothing is shared or cached.
    texts = [_random_text(LANG.alphabet, 300, g) + "".join(LANG.alphabet), "".join(chars) + LANG.alphabet.upper()]
    strings = [_random_text(LANG.alphabet.upper(), n, g) for n in (40, 40, 7)]
    outs = worker.call("tokenizers", texts, strings)
    if not (isinstance(outs, (list, tuple)) and len(outs) == 2 and all(isinstance(o, dict) for o in outs)):
        fails(f"CharTokenizer failed, got {describe_value(outs)}")
    for t, out in zip(texts, outs):
        V = len(set(t)) + 1
        if not (out["vocab_size"] == V):
            fails("CharTokenizer.vocab_size depends on another tokenizer built before it (keep the vocabulary "
                  "in the instance)")
        for s, ids, dec in zip(strings, out["ids"], out["decoded"]):
            _expect_ids(ids, name="CharTokenizer.encode", n=len(s), vocab_size=V)
            if not (dec == s):
                fails("CharTokenizer.decode(encode(s)) != s when two tokenizers with different vocabularies are "
                      "used one after the other (nothing may be shared between them or cached)")


@pytest.mark.judges("CharTokenizer")
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
@pytest.mark.judges("BigramLM")
def test_bigram_entropy(worker, seed):
    """alpha = 0: the bigram's cross-entropy on its own training text is the empirical
    conditional entropy H(X_{t+1} | X_t) of the pair counts, and a token never followed by
    anything (the unknown one, the text's unique last character) gets a uniform row.
    alpha = 1: every next-token distribution is (N[i, j] + 1) / (N[i] + V). forward returns
    log-probabilities: judged as they are, never re-normalised."""
    g = _rng(seed)
    # skewed counts, unseen pairs, and a last character that is never followed by anything
    text = LANG.sample(3000, seed=seed) + _random_text("abc", 300, g) + "!"
    chars, V = sorted(set(text)), len(set(text)) + 1
    counts, a, b = ref.ref_pair_counts(text, chars)
    # A first fit on other text of the same characters: fit must replace it, not add to it.
    first_fit = "".join(text[i] for i in torch.randperm(len(text), generator=g).tolist())
    for alpha, first in ((0.0, None), (1.0, first_fit)):
        out = worker.call("bigram", text, alpha, first)
        if not (out["vocab_size"] == V):
            fails("CharTokenizer.vocab_size is wrong (see the tokenizer tests)")
        logits = expect_tensor(out["logits"], name="BigramLM.forward", shape=(1, len(text) - 1, V))
        rows = expect_tensor(out["rows"], name="BigramLM.forward", shape=(1, V, V))
        if not (logits.is_floating_point() and rows.is_floating_point()):
            fails("BigramLM.forward should return float log-probabilities")
        logp, rows = logits[0].double(), rows[0].double()
        if not bool((torch.logsumexp(rows, dim=-1).abs() <= 1e-5).all()):
            fails(f"BigramLM.forward(alpha={alpha:g}) should return log-probabilities: the exponentials of each "
                  "row should sum to 1")
        char_ids = expect_tensor(out["char_ids"], name="CharTokenizer.encode", shape=(len(chars),)).long()
        if not (int(char_ids.min()) >= 0 and int(char_ids.max()) < V):
            fails("CharTokenizer.encode has ids outside [0, vocab_size)")
        nll = -logp.gather(1, char_ids[b][:, None])[:, 0]
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
            never_followed = torch.tensor([int(char_ids[chars.index("!")]), V - 1])
            expect_close(rows[never_followed].exp(), torch.full((2, V), 1.0 / V, dtype=torch.float64),
                         name="BigramLM.fit(alpha=0) on a token that is never followed (its row should be uniform)",
                         rtol=1e-4, atol=1e-6)
        else:
            expected = (counts + 1.0) / (counts.sum(1, keepdim=True) + V)        # (n, n) in judge order
            got = logp.exp()[:, char_ids]                                            # (N-1, n)
            expect_close(got, expected[a], name="BigramLM next-token probabilities (alpha=1, a model fitted a "
                         "second time: fit replaces what an earlier fit learned)", rtol=1e-4, atol=1e-6)


# ======================================================================== data and loss
def _window_starts(pairs, ids, B, T, name="get_batch"):
    """The start of every window of a list of get_batch results (x, y) on distinct-valued
    ids, after checking that each is a (B, T) window and its targets shifted by one (y None:
    that a next token exists)."""
    N = len(ids)
    position = torch.empty(N, dtype=torch.long)
    position[ids] = torch.arange(N)
    if not isinstance(pairs, (list, tuple)):
        fails(f"{name} should return (x, y), got {describe_value(pairs)}")
    starts = []
    for pair in pairs:
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
            fails(f"{name} should return a pair (x, y), got {describe_value(pair)}")
        x = expect_tensor(pair[0], name=f"{name} x", shape=(B, T), dtype=torch.long)
        y = x if pair[1] is None else expect_tensor(pair[1], name=f"{name} y", shape=(B, T), dtype=torch.long)
        if not (int(x.min()) >= 0 and int(x.max()) < N and int(y.min()) >= 0 and int(y.max()) < N):
            fails(f"{name} returns values that are not in ids")
        px, py = position[x], (position[x] + 1 if pair[1] is None else position[y])
        if not (bool((px[:, 1:] == px[:, :-1] + 1).all())):
            fails(f"{name}: each row of x should be a contiguous window of ids")
        if not (bool((py == px + 1).all()) and int(py.max()) < N):
            fails(f"{name}: y should be x shifted by one (y[b, t] is the token after x[b, t])")
        starts.append(px[:, 0])
    return torch.cat(starts) if starts else torch.zeros(0, dtype=torch.long)


@pytest.mark.judges("get_batch")
def test_batches(worker, seed):
    """Contiguous windows, targets shifted by one, every start in [0, N - block_size - 1]
    drawn (the last window too), the rows of a batch drawn independently (not one run of
    neighbouring windows), and the generator passed in decides the draws; with
    generator=None, torch's global generator does (torch.manual_seed makes it repeatable)."""
    g = _rng(seed)
    N, B, T, n = 400, 16, 9, 20
    ids = torch.randperm(N, generator=g)          # distinct values: a window's origin is identifiable
    s = int(torch.randint(0, 2**31, (1,), generator=g))
    runs = worker.call("batches", ids, B, T, n, [s, s, s + 1], [s + 2, s + 2, s + 3])
    if not (isinstance(runs, (list, tuple)) and len(runs) == 6):
        fails("get_batch failed")
    first, again, other, global_a, global_b, global_c = (_window_starts(run, ids, B, T) for run in runs)
    if not (first.numel() == n * B and first.unique().numel() > len(first) // 4):
        fails("get_batch: the windows should start at random positions")
    if not torch.equal(first, again):
        fails("get_batch: the same generator seed should give the same batches (draw with the generator passed in)")
    if torch.equal(first, other):
        fails("get_batch: different generator seeds give the same batches")
    # Rows drawn independently: a batch whose starts move by one fixed step from row to row
    # (neighbouring or back-to-back windows) has probability ~0 under independent draws.
    strides = first.view(n, B).diff(dim=1)
    if int((strides == strides[:, :1]).all(dim=1).sum()) > n // 4:
        fails("get_batch: the rows of a batch should start at independent random positions, not at "
              "consecutive or evenly spaced ones")
    if not torch.equal(global_a, global_b):
        fails("get_batch(generator=None) should draw from torch's global generator: after the same "
              "torch.manual_seed it should give the same batches")
    if torch.equal(global_a, global_c):
        fails("get_batch(generator=None) gives the same batches after different torch.manual_seed calls: "
              "draw from torch's global generator")
    # A text only three windows long, with another block_size: every window, the last one
    # included, must be drawn (and nothing from the first call's block_size may be reused).
    T2 = 5
    short = torch.randperm(T2 + 3, generator=g)
    starts = _window_starts(worker.call("batches", short, B, T2, n, [s])[0], short, B, T2)
    if not (set(starts.tolist()) == {0, 1, 2}):
        fails("get_batch should draw every start in [0, N - block_size - 1], the last window included")


@pytest.mark.judges("train")
@pytest.mark.upstream("test_batches")   # lm_loss: the grader's (probes.UNDER_TRAIN)
def test_train_loop(worker, seed):
    """train() on a grader-owned model (logits = W[idx], W float64 from zero): exactly `steps`
    steps, each on a fresh (batch_size, block_size) batch of windows of ids drawn with the
    generator passed in; the losses it returns are lm_loss on those batches; each update is
    AdamW's at the given lr."""
    g = _rng(seed)
    N, B, T, steps, lr = 60, 3, 5, 4, 0.02         # every size distinct; lr not a default
    ids = torch.randperm(N, generator=g)
    position = torch.empty(N, dtype=torch.long)
    position[ids] = torch.arange(N)
    s = int(torch.randint(0, 2**31, (1,), generator=g))
    runs = worker.call("train_loop", ids, N, T, steps, B, lr, [s, s, s + 1])
    if not (isinstance(runs, (list, tuple)) and len(runs) == 3 and all(isinstance(r, dict) for r in runs)):
        fails(f"train failed, got {describe_value(runs)}")
    run = runs[0]
    inputs, weights = run["inputs"], run["weights"]
    if not (isinstance(inputs, (list, tuple)) and len(inputs) == steps):
        fails(f"train(steps={steps}) should run exactly {steps} training steps (one forward pass each)")
    losses = run["losses"]
    if not (isinstance(losses, (list, tuple)) and len(losses) == steps):
        fails(f"train(steps={steps}) should return a list of {steps} losses, got {describe_value(losses)}")
    for value in losses:
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.reshape(())
        if not (isinstance(value, (int, float)) or (isinstance(value, torch.Tensor) and value.dim() == 0)):
            fails(f"train should return the losses as numbers, got {describe_value(value)}")
    for x in inputs:
        expect_tensor(x, name="the batches train() feeds the model", shape=(B, T), dtype=torch.long)
    _window_starts([(x, None) for x in inputs], ids, B, T, name="train's batches")
    if any(torch.equal(inputs[k], inputs[k + 1]) for k in range(steps - 1)):
        fails("train should draw a fresh batch at every step")
    for other, same in ((runs[1], True), (runs[2], False)):
        again = other.get("inputs")
        equal = isinstance(again, (list, tuple)) and len(again) == steps and all(
            isinstance(a, torch.Tensor) and a.shape == x.shape and torch.equal(a, x) for a, x in zip(again, inputs))
        if equal != same:
            fails("train: the generator passed in should decide the batches (same seed, same batches; "
                  "another seed, other batches)")
    targets = [ids[position[x] + 1] for x in inputs]
    weights = [expect_tensor(w, name="the model's weights during train()", shape=(N, N), dtype=torch.float64)
               for w in list(weights) + [run["final"]]]
    measured = [ref.ref_table_loss_and_grad(w, x, y) for w, x, y in zip(weights, inputs, targets)]
    expect_close(torch.tensor([float(v) for v in losses], dtype=torch.float64),
                 torch.tensor([m[0] for m in measured], dtype=torch.float64),
                 name="train's returned losses (lm_loss of each step's batch, before its update)", rtol=1e-6, atol=1e-9)
    updates = ref.ref_adam_updates([m[1] for m in measured], lr)
    for k, update in enumerate(updates):
        # AdamW's weight decay (0 or PyTorch's 0.01) moves W by at most lr * 0.01 * |W| here
        expect_close(weights[k + 1] - weights[k], update, name=f"train's update at step {k + 1} "
                     f"(AdamW at the lr passed in, each step's gradient of that step's loss)", rtol=0.0, atol=0.05 * lr)


@pytest.mark.judges("lm_loss")
@pytest.mark.parametrize("case", ["float32", "float64", "large_logits", "extreme_float64"])
def test_loss(worker, seed, case):
    """lm_loss against the float64 reference, its dtype kept, its inputs left unchanged.
    large_logits: a target 200 below the largest logit (log(softmax) underflows in float32);
    extreme_float64: logits of 1e3..1e4 (it underflows in float64 too)."""
    g = _rng(seed)
    B, T, V = 3, 5, 7
    logits = torch.randn(B, T, V, generator=g, dtype=torch.float64) * 2
    targets = torch.randint(0, V, (B, T), generator=g)
    if case == "large_logits":
        logits[0, 0] = 0.0
        logits[0, 0, (targets[0, 0] + 1) % V] = 200.0
    elif case == "extreme_float64":
        logits = logits * 10 ** (3 + torch.rand(B, T, 1, generator=g, dtype=torch.float64))
    if case in ("float32", "large_logits"):
        logits = logits.float()
    out = worker.call("loss", logits.clone(), targets.clone())
    if not isinstance(out, dict):
        fails(f"lm_loss failed, got {describe_value(out)}")
    value = expect_tensor(out["loss"], name="lm_loss", shape=(), dtype=logits.dtype)
    expect_finite(value, name="lm_loss")
    tol = 1e-5 if logits.dtype == torch.float32 else 1e-10
    expect_close(value, ref.ref_loss(logits, targets), name="lm_loss", rtol=tol, atol=tol)
    expect_same(out["logits"], logits, name="the logits after lm_loss (it should not change its inputs)")
    expect_same(out["targets"], targets, name="the targets after lm_loss (it should not change its inputs)")


@pytest.mark.judges("TinyGPT")
@pytest.mark.upstream("test_logits_shapes")
def test_initial_loss(worker, seed, thresholds):
    """An untrained model should predict nearly uniformly: loss ~ ln V on random tokens."""
    g = _rng(seed)
    V, T = V_CORPUS, 32
    idx = torch.randint(0, V, (16, T), generator=g)
    targets = torch.randint(0, V, (16, T), generator=g)
    logits = expect_tensor(worker.call("initial_logits", V, T, idx), name="TinyGPT.forward", shape=(16, T, V))
    expect_finite(logits, name="TinyGPT.forward")
    ce = float(ref.ref_loss(logits, targets))
    if not (abs(ce - math.log(V)) <= thresholds["init_loss_tolerance"]):
        fails(f"a freshly initialised TinyGPT should have loss close to ln(V) = {math.log(V):.3f} on random "
            f"tokens, got {ce:.3f}: initialise its weights small (e.g. normal with std 0.02)")


# ======================================================================== the transformer
@pytest.mark.judges("TinyGPT")
def test_logits_shapes(worker, seed, credit):
    """Logits of every shape (a batch of one, a sequence of one, a full block), and the same
    logits in train() and in eval() mode: nothing in the handout's model depends on the mode.
    Then (60% of the points) the model's logits against the handout's TinyGPT rebuilt in
    float64 from the model's own parameters, every parameter redrawn at random so that each
    part (position embedding, the residuals, every LayerNorm, ln_f, the head) changes them:
    parts that learned quality hardly shows."""
    g = _rng(seed)
    V, block = 11, 16
    shapes = [(1, 1), (2, 7), (5, 16), (3, 16)]
    idx = torch.randint(0, V, (4, 13), generator=g)
    reply = worker.call("logits_shapes", V, block, shapes, idx)
    out = reply.get("shapes") if isinstance(reply, dict) else None
    if not (isinstance(out, (list, tuple)) and len(out) == len(shapes)):
        fails("TinyGPT.forward should return logits")
    for (b, t), logits in zip(shapes, out):
        logits = expect_tensor(logits, name=f"TinyGPT.forward on a ({b}, {t}) batch", shape=(b, t, V),
                               dtype=torch.float32)
        expect_finite(logits, name="TinyGPT.forward")
    evaluated = expect_tensor(reply["eval"], name="TinyGPT.forward in eval() mode", shape=(4, 13, V))
    trained_mode = expect_tensor(reply["train"], name="TinyGPT.forward in train() mode", shape=(4, 13, V))
    expect_close(trained_mode, evaluated, name="TinyGPT.forward in train() mode vs eval() mode (the handout's "
                 "model has no dropout nor anything else that depends on the mode)", rtol=1e-5, atol=1e-6)
    try:
        _check_forward_parts(worker, g, V, block)
    except AssertionError as error:
        credit(0.4, f"{error}; shapes and modes right: 40% kept")


def _check_forward_parts(worker, g, V, block, n_layer=2, n_head=4, n_embd=32):
    """The probe's model (n_layer 2, n_head 4, n_embd 32) with parameters ~ N(0, 0.3^2): its
    logits on a sequence shorter than block_size against ref_gpt_forward on its parameters."""
    idx = torch.randint(0, V, (3, block - 3), generator=g)
    out = worker.call("forward_parts", V, block, idx, 0.3)
    if not (isinstance(out, dict) and isinstance(out.get("params"), dict)):
        fails(f"TinyGPT.forward failed, got {describe_value(out)}")
    params = {}
    for key, shape in ref.gpt_parameter_shapes(V, block, n_layer, n_embd).items():
        if key not in out["params"]:
            fails(f"TinyGPT should keep the handout's modules (tok_emb, pos_emb, blocks, ln_f, head): {key} is missing")
        params[key] = expect_tensor(out["params"][key], name=f"TinyGPT parameter {key}", shape=shape)
    logits = expect_tensor(out["logits"], name="TinyGPT.forward", shape=(*idx.shape, V))
    expected = ref.ref_gpt_forward(params, idx, n_layer, n_head)
    scale = float(expected.abs().max())
    if not bool(((logits.double() - expected).abs() <= 1e-3 * scale).all()):
        fails("TinyGPT.forward is not the handout's model on its own parameters: tok_emb + pos_emb, pre-norm blocks "
              "x + attn(ln1(x)) then x + mlp(ln2(x)), the final LayerNorm ln_f, then the head")


@pytest.mark.judges("CausalSelfAttention")
@pytest.mark.parametrize("gain", [1.0, 300.0], ids=["ordinary_scores", "large_scores"])
def test_attention_module(worker, seed, gain):
    """CausalSelfAttention against softmax(q k^T / sqrt(hs) + M) v with its own weights,
    every size distinct (B 2, T 7, C 24, H 4, hs 6), after a first call on one token of one
    sequence (no state kept from call to call). large_scores multiplies the q/k/v weights so
    that scores reach ~1e4..1e5: a mask with a finite value is overcome there, -inf is not."""
    g = _rng(seed)
    C, H, B, T = 24, 4, 2, 7
    x = torch.randn(B, T, C, generator=g, dtype=torch.float64)
    xs = [x[:1, :1].clone(), x]
    out = worker.call("attention_module", C, H, xs, gain)
    if not (isinstance(out, dict) and isinstance(out.get("ys"), list) and len(out["ys"]) == len(xs)):
        fails(f"CausalSelfAttention failed, got {describe_value(out)}")
    for key, shape in (("qkv_w", (3 * C, C)), ("qkv_b", (3 * C,)), ("proj_w", (C, C)), ("proj_b", (C,))):
        expect_tensor(out[key], name=f"CausalSelfAttention.{key.replace('_w', '.weight').replace('_b', '.bias')}",
                      shape=shape)
    for x, y, att in zip(xs, out["ys"], out["atts"]):
        b, t = x.shape[:2]
        where = f" on a ({b}, {t}, {C}) input"
        y = expect_tensor(y, name="CausalSelfAttention output" + where, shape=(b, t, C), dtype=torch.float64)
        expect_finite(y, name="CausalSelfAttention output" + where)
        ref_y, ref_att = ref.ref_attention(x, out["qkv_w"], out["qkv_b"], out["proj_w"], out["proj_b"], H)
        if att is None:
            fails("CausalSelfAttention.forward should return (y, attention weights)")
        att = expect_tensor(att, name="CausalSelfAttention attention weights" + where, shape=(b, H, t, t))
        expect_finite(att, name="CausalSelfAttention attention weights" + where)
        if not (bool((att.double().sum(-1) - 1).abs().max() < 1e-6)):
            fails("CausalSelfAttention: each query's attention weights should sum to 1 over the keys")
        if not (float(att.double().triu(1).abs().max()) == 0.0):
            fails("CausalSelfAttention: attention weights above the diagonal (the future) should be exactly 0")
        expect_close(att, ref_att, name="CausalSelfAttention attention weights" + where, rtol=1e-6, atol=1e-8)
        expect_close(y, ref_y, name="CausalSelfAttention output" + where, rtol=1e-6, atol=1e-8)


@pytest.mark.judges("TinyGPT")
@pytest.mark.upstream("test_attention_module")
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
    # The logits of a prefix are the first logits of the whole text: a position is counted
    # from the first token, whatever the length of the input.
    prefixes = out.get("prefixes")
    if not (isinstance(prefixes, (list, tuple)) and len(prefixes) == block - 1):
        fails("TinyGPT.forward failed on a sequence shorter than block_size")
    wrong = []
    for t, logits in enumerate(prefixes, start=1):
        logits = expect_tensor(logits, name=f"TinyGPT.forward on a sequence of {t} tokens", shape=(B, t, V))
        if not float((logits.double() - base[:, :t].double()).abs().max()) <= 1e-5 * scale + 1e-6:
            wrong.append(t)
    if wrong:
        fails(f"TinyGPT.forward on the first {wrong[0]} tokens of a sequence should give the first {wrong[0]} "
              f"logits of the whole sequence (positions count from the first token; {len(wrong)} of "
              f"{block - 1} prefix lengths differ)")
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
            expect_close(loss, ref.ref_loss(cpu, targets), name=f"lm_loss on {device}", rtol=1e-4, atol=1e-5)
        # One training step there: get_batch on ids on that device, forward, lm_loss, backward.
        step = worker.call("device_train_step", device, V, block, B, 50)
        where = f" on {device}"
        problems = (output_problems(step, {"get_batch": [(B, block), (B, block)]}, on_device(device, torch.long, where=where))
                    + output_problems(step, {"lm_loss": ()}, on_device(device, torch.float32, where=where)))
        if problems:
            fails(f"a training step{where}: {problems[0]}")
        if step["grads_missing"] != 0:
            fails(f"a training step{where}: lm_loss.backward() leaves parameters of TinyGPT without a gradient")
    out = worker.call("device_forward", "float64", V, block, idx, targets)
    logits = expect_tensor(out["logits"], name="TinyGPT.forward after model.double()", shape=(B, T, V),
                           dtype=torch.float64)
    loss = expect_tensor(out["loss"], name="lm_loss on float64 logits", shape=(), dtype=torch.float64)
    expect_close(loss, ref.ref_loss(logits, targets), name="lm_loss on float64 logits", rtol=1e-10, atol=1e-12)


# ======================================================================== learned quality
def _plot_feedback(artifacts, result, lang, block, ce, bigram_ce):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    losses = plottable(result["losses"]) if isinstance(result["losses"], (list, tuple)) else []
    if len(losses):
        ax.plot(range(1, len(losses) + 1), losses, lw=1, label="TinyGPT training loss")
    ax.axhline(lang.unigram_entropy(), color="grey", ls=":", label="best guess ignoring the past")
    ax.axhline(bigram_ce, color="tab:orange", ls="--", label=f"bigram, held out ({bigram_ce:.3f})")
    ax.axhline(ce, color="tab:blue", ls="--", label=f"TinyGPT, held out ({ce:.3f})")
    ax.axhline(lang.window_entropy(block), color="tab:green", ls="-.", lw=1,
               label=f"best possible on {block}-token windows")
    ax.axhline(lang.entropy_rate(), color="k", lw=1, label="entropy rate")
    ax.set_xlabel("training step")
    ax.set_ylabel("nats per token")
    ax.set_ylim(0.5, 3.0)
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
        fig.suptitle("Attention on a held-out window", fontsize=9)
        artifacts.figure("attention.png", fig)


def _heldout_ce(logits, targets, scored):
    """Mean float64 NLL of the targets with a full lag of context; inf for logits that are
    not finite (a model that ignores its weights can be anything)."""
    if not bool(torch.isfinite(logits).all()):
        return math.inf
    return float(ref.ref_nll(logits, targets)[:, scored].mean())


def _quality_credit(ce, gap, lang, th):
    """The tiers' credit for a held-out cross-entropy: none below the floor (it sees its
    target), none unless clearly better than the best bigram, else by the gap."""
    if not math.isfinite(ce) or gap < th["below_floor"] or ce > lang.bigram_entropy() - th["min_gain_over_bigram"]:
        return 0.0
    return tier(gap, th["gap_tiers"], higher_is_better=False)


@pytest.mark.upstream("test_batches", "test_train_loop", "test_logits_shapes", "test_attention_module",
                      "test_causality", "test_initial_loss")   # lm_loss under train: the grader's
def test_learned_quality(worker, seed, secret_rng, thresholds, credit, artifacts):
    """Trained with the student's own loop for a fixed number of steps on text of a language
    drawn for this grading (its fresh-letter law, echo lag, echo and case-switch rates come
    from the grading's secret: kitdata.text.draw_language), the held-out cross-entropy (on
    tokens with a full lag of context) must come close to the true process's NLL on the same
    tokens, and clearly below what a bigram can reach; the same model with its weights
    shuffled must not (the quality comes from what was learned)."""
    th = thresholds
    block, n_windows = th["block_size"], th["heldout_windows"]
    # The language, the training text and the held-out text are drawn here, from the
    # grading's secret: knowing the kit's own language (kitdata.text.LANGUAGE) is worth nothing.
    lang = kt.draw_language(secret_rng)
    train_text = lang.sample(th["train_characters"], seed=int(secret_rng.integers(2**62)))
    held = lang.sample(n_windows * (block + 1), seed=int(secret_rng.integers(2**62)))
    result = worker.call("train_and_evaluate", train_text, lang.alphabet, th["train_steps"], th["batch_size"], block,
                         3, th["sample_length"], seed)
    if not isinstance(result, dict):
        fails(f"training did not return its results, got {describe_value(result)}")
    outputs = worker.call("heldout_outputs", held, n_windows, block, seed)  # only once training is over
    result = {**result, **(outputs if isinstance(outputs, dict) else {})}
    ids = expect_tensor(result.get("alphabet_ids"), name="CharTokenizer.encode", shape=(len(lang.alphabet),)).long()
    if not (ids.unique().numel() == len(lang.alphabet)):
        fails("CharTokenizer.encode gives two characters the same id")
    logits = expect_tensor(result.get("logits"), name="TinyGPT.forward on held-out windows", shape=(n_windows, block, None))
    V = logits.shape[-1]
    if not (int(ids.min()) >= 0 and int(ids.max()) < V):
        fails("CharTokenizer ids do not fit the model's vocabulary")
    expect_finite(logits, name="TinyGPT.forward on held-out windows")
    shuffled = expect_tensor(result.get("shuffled_logits"), name="TinyGPT.forward with its weights shuffled",
                             shape=(n_windows, block, V))
    bigram_logits = expect_tensor(result.get("bigram_logits"), name="BigramLM.forward", shape=(n_windows, block, V))

    codes = torch.from_numpy(lang.encode(held)).view(n_windows, block + 1)
    targets = ids[codes[:, 1:]]
    floor = np.stack([lang.token_nll(held[i * (block + 1): (i + 1) * (block + 1)])[1:] for i in range(n_windows)])
    scored = slice(lang.lag - 1, None)          # targets with a full lag of context in the window
    ce = _heldout_ce(logits, targets, scored)
    bigram_ce = float(ref.ref_nll(bigram_logits, targets)[:, scored].mean())
    gap = kt.cross_entropy_gap(ce, floor[:, scored], language=lang)
    shuffled_ce = _heldout_ce(shuffled, targets, scored)
    shuffled_gap = kt.cross_entropy_gap(shuffled_ce, floor[:, scored], language=lang)
    artifacts.note(f"held-out cross-entropy: TinyGPT {ce:.4f}, bigram {bigram_ce:.4f} nats/token; "
                   f"TinyGPT is {gap:+.4f} nats/token from the best achievable (on a language drawn for this grading)")
    try:
        _plot_feedback(artifacts, result, lang, block, ce if math.isfinite(ce) else 3.0,
                       bigram_ce if math.isfinite(bigram_ce) else 3.0)
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
    expect_learned(logits, shuffled, _quality_credit(shuffled_ce, shuffled_gap, lang, th),
                   name="TinyGPT.forward on held-out text")
    if not (ce <= lang.bigram_entropy() - th["min_gain_over_bigram"]):
        fails(f"after training, TinyGPT ({ce:.3f} nats/token held out) is not clearly better than the best "
            f"bigram: it is not using the context (attention, positions, training loop)")
    fraction = tier(gap, th["gap_tiers"], higher_is_better=False)
    if fraction == 0:
        fails(f"TinyGPT is {gap:.3f} nats/token above the best achievable after training: too far")
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


@pytest.mark.judges("generate")
def test_generate_reproducible(worker, seed):
    """The generator passed in decides the draws: same seed, same text; another seed, another
    text. For a batch of several prompts and for a batch of one prompt of one token. With
    generator=None, torch's global generator decides them (torch.manual_seed)."""
    g = _rng(seed)
    V, block = 12, 8
    table = _table(g, V, 0.5)
    for prompt in (torch.randint(0, V, (4, 3), generator=g), torch.randint(0, V, (1, 1), generator=g)):
        outs = worker.call("generate", table, block, prompt, 20, 1.0, None, [seed % 1000, seed % 1000, seed % 1000 + 1])
        if not (isinstance(outs, (list, tuple)) and len(outs) == 3):
            fails("generate failed")
        name = f"generate on a batch of {prompt.shape[0]} prompt(s)"
        a, b, c = (_check_generated(o, prompt, 20, V, name=name) for o in outs)
        if not (bool((a == b).all())):
            fails(f"{name}: the same generator seed should give the same text")
        if not (not bool((a == c).all())):
            fails(f"{name}: different generator seeds give the same text (is it sampling?)")
    prompt = torch.randint(0, V, (4, 3), generator=g)
    s = int(torch.randint(0, 2**31, (1,), generator=g))
    outs = worker.call("generate_global", table, block, prompt, 20, [s, s, s + 1])
    if not (isinstance(outs, (list, tuple)) and len(outs) == 3):
        fails("generate(generator=None) failed")
    a, b, c = (_check_generated(o, prompt, 20, V, name="generate(generator=None)") for o in outs)
    if not (bool((a == b).all())):
        fails("generate(generator=None) should draw from torch's global generator: after the same "
              "torch.manual_seed it should give the same text")
    if bool((a == c).all()):
        fails("generate(generator=None) gives the same text after different torch.manual_seed calls: draw from "
              "torch's global generator")


@pytest.mark.judges("generate")
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
    reply = worker.call("generate", table, block, prompt, n_new, temperature, None, [1], record=True)
    if not (isinstance(reply, dict) and isinstance(reply.get("outs"), list) and reply["outs"]):
        fails(f"generate failed, got {describe_value(reply)}")
    out = _check_generated(reply["outs"][0], prompt, n_new, V)
    expected = prompt.clone()
    for _ in range(n_new):
        expected = torch.cat([expected, top[expected[:, -1]][:, None]], dim=1)
    if not (bool((out == expected).all())):
        fails(f"generate(temperature={temperature:g}) should always pick the most likely next token")
    # What the model was given at each step: the last min(length, block_size) tokens so far.
    contexts, T0 = reply["contexts"], prompt.shape[1]
    wanted = [expected[:, max(0, L - block): L] for L in range(T0, T0 + n_new)]
    if not (isinstance(contexts, list) and len(contexts) == n_new and all(
            isinstance(c, torch.Tensor) and c.shape == w.shape and torch.equal(c, w) for c, w in zip(contexts, wanted))):
        fails("generate should feed the model, at each step, the last block_size tokens of the text so far "
              "(all of it while it is shorter)")


@pytest.mark.judges("generate")
@pytest.mark.parametrize("k", [1, 3, 17])
def test_generate_top_k(worker, seed, k):
    """Only the k most likely tokens, in proportion to their probabilities; a top_k at least
    the vocabulary's size (17 > V = 12) restricts nothing."""
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
    kept = min(k, V)
    if kept > 1:
        probs = torch.softmax(table.double(), 1)
        topk = probs.topk(kept, dim=1).values
        expected = (topk / topk.sum(1, keepdim=True))[prev].mean(0)          # expected share of each rank
        observed = torch.bincount(rank, minlength=kept).double() / len(rank)
        if not (float((observed - expected).abs().max()) < 0.05):
            fails(f"generate(top_k={k}) should sample the {kept} most likely tokens in proportion to their probabilities")
        if k >= V and not bool((observed > 0).all()):
            # every rank is expected ~100 times or more in these draws
            fails(f"generate(top_k={k}) with top_k at least the vocabulary size should keep every token")


@pytest.mark.judges("generate")
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
