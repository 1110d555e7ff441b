"""Probes for the tiny_lm suite: they run in the worker and call the student's tiny_lm.py.

Every probe returns raw results (tensors, strings, numbers); all judging happens in
test_tiny_lm.py. The worker seeds torch/random/numpy with the test's seed before a call.

The student's ``train`` runs :func:`substituted`: with the grader's ``lm_loss`` (judged by
test_loss) in the student's module for the duration of the call, so the tests of training
judge the loop and the model alone. (``get_batch`` stays the student's: the handout leaves
how its windows are drawn from the generator open, so no version of the grader's could stand
in for it draw for draw.)
"""

import torch
import torch.nn.functional as F

import kitdata.text as kt
from autograder.sandbox.worker import shuffled_weights, student, substituted


def _tl():
    return student("tiny_lm")


def _ref_lm_loss(logits, targets):
    """The handout's mean next-token NLL (ref_tiny_lm.py holds it in float64)."""
    V = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))


# What train may call that another test judges; never train, get_batch (above) or a model class.
UNDER_TRAIN = {"lm_loss": _ref_lm_loss}


class TableLM(torch.nn.Module):
    """A stand-in language model with known logits: logits[b, t] = table[idx[b, t]].

    Used to judge generate() on its own, whatever the student's transformer does. It
    refuses contexts longer than block_size, as a transformer with position embeddings must.
    """

    def __init__(self, table: torch.Tensor, block_size: int):
        super().__init__()
        self.register_buffer("table", table)
        self.block_size = block_size
        self.contexts = []          # every idx it was given, in order (the judge checks the crop)

    def forward(self, idx):
        if idx.dim() != 2:
            raise ValueError(f"the model expects a (B, T) tensor of token ids, got shape {tuple(idx.shape)}")
        if idx.shape[1] > self.block_size:
            raise ValueError(f"the model was given {idx.shape[1]} tokens of context, more than its block_size {self.block_size}")
        self.contexts.append(idx.detach().clone())
        return self.table[idx]


class RecordingLM(torch.nn.Module):
    """A trainable stand-in with known maths: logits[b, t] = W[idx[b, t]], W (V, V) float64,
    starting at zero. It records every batch it is trained on and W before each training
    forward, so the judge can recompute each step's loss and AdamW update."""

    def __init__(self, vocab_size: int, block_size: int):
        super().__init__()
        self.W = torch.nn.Parameter(torch.zeros(vocab_size, vocab_size, dtype=torch.float64))
        self.block_size = block_size
        self.inputs, self.weights = [], []

    def forward(self, idx):
        if torch.is_grad_enabled():
            self.inputs.append(idx.detach().clone())
            self.weights.append(self.W.detach().clone())
        return self.W[idx]


def _model(vocab_size, block_size, n_layer=2, n_head=4, n_embd=32):
    tl = _tl()
    return tl.TinyGPT(tl.GPTConfig(vocab_size=vocab_size, block_size=block_size,
                                   n_layer=n_layer, n_head=n_head, n_embd=n_embd))


# ---------------------------------------------------------------------------------- tokens
def tokenizer(train_text, strings):
    """Build a tokenizer on train_text (or the kit's corpus if None); encode and decode strings."""
    tl = _tl()
    if train_text is None:
        train_text = kt.load_corpus("train")
    tok = tl.CharTokenizer(train_text)
    out = {"vocab_size": tok.vocab_size, "unk_id": tok.unk_id, "ids": [], "decoded": []}
    for s in strings:
        ids = tok.encode(s)
        out["ids"].append(ids)
        out["decoded"].append(tok.decode(ids))
    return out


def tokenizers(texts, strings):
    """One tokenizer per text, all built before any is used; each encodes and decodes every
    string of ``strings`` (a second tokenizer must not inherit the first one's vocabulary)."""
    tl = _tl()
    toks = [tl.CharTokenizer(t) for t in texts]
    out = []
    for tok in toks:
        ids = [tok.encode(s) for s in strings]
        out.append({"vocab_size": tok.vocab_size, "ids": ids, "decoded": [tok.decode(i) for i in ids]})
    return out


# ---------------------------------------------------------------------------------- bigram
def bigram(text, alpha, first_fit=None):
    """Fit the student's bigram on text (after a first fit of the same model on first_fit,
    text made of the same characters, when given); return its logits at every position, its
    rows for every id (the unknown token's included) and the char->id map."""
    tl = _tl()
    tok = tl.CharTokenizer(text)
    ids = tok.encode(text)
    model = tl.BigramLM(tok.vocab_size)
    if first_fit is not None:
        model.fit(tok.encode(first_fit), alpha=alpha)
    model = model.fit(ids, alpha=alpha)
    with torch.no_grad():
        logits = model(ids[None, :-1])
        rows = model(torch.arange(tok.vocab_size)[None, :])
    chars = sorted(set(text))
    return {"logits": logits, "rows": rows, "char_ids": tok.encode("".join(chars)), "chars": "".join(chars),
            "vocab_size": tok.vocab_size}


# ---------------------------------------------------------------------------------- data and loss
def batches(ids, batch_size, block_size, n_batches, generator_seeds, global_seeds=()):
    """n_batches calls of get_batch per generator seed, each with a fresh generator (the
    global RNG moves on between them); then, per global seed, n_batches calls with
    generator=None after torch.manual_seed(that seed)."""
    tl = _tl()
    runs = []
    for s in generator_seeds:
        g = torch.Generator().manual_seed(s)
        runs.append([tl.get_batch(ids, batch_size, block_size, g) for _ in range(n_batches)])
        torch.rand(7)
    for s in global_seeds:
        torch.manual_seed(s)
        runs.append([tl.get_batch(ids, batch_size, block_size) for _ in range(n_batches)])
    return runs


def loss(logits, targets):
    """The loss, and the inputs as they are after the call (they must be unchanged)."""
    value = _tl().lm_loss(logits, targets)
    return {"loss": value, "logits": logits, "targets": targets}


def train_loop(ids, vocab_size, block_size, steps, batch_size, lr, generator_seeds):
    """The student's train() on a RecordingLM, once per generator seed: the losses it
    returns, the batches it trained on, W before every step and W at the end."""
    tl = _tl()
    runs = []
    for s in generator_seeds:
        model = RecordingLM(vocab_size, block_size)
        with substituted(tl, **UNDER_TRAIN):
            losses = tl.train(model, ids.clone(), steps=steps, batch_size=batch_size, lr=lr,
                              generator=torch.Generator().manual_seed(s))
        runs.append({"losses": losses, "inputs": model.inputs, "weights": model.weights,
                     "final": model.W.detach().clone()})
        torch.rand(7)
    return runs


def initial_logits(vocab_size, block_size, idx):
    model = _tl().TinyGPT(_tl().GPTConfig(vocab_size=vocab_size, block_size=block_size))
    model.eval()
    with torch.no_grad():
        return model(idx)


# ---------------------------------------------------------------------------------- the transformer
def logits_shapes(vocab_size, block_size, shapes, idx=None):
    """Logits for random inputs of each shape (eval mode); with idx, also the logits of idx
    in eval() and in train() mode."""
    model = _model(vocab_size, block_size)
    model.eval()
    out = []
    with torch.no_grad():
        for b, t in shapes:
            out.append(model(torch.randint(0, vocab_size, (b, t))))
        if idx is None:
            return out
        evaluated = model(idx)
        model.train()
        trained_mode = model(idx)
    return {"shapes": out, "eval": evaluated, "train": trained_mode}


def forward_parts(vocab_size, block_size, idx, std):
    """A TinyGPT with every parameter redrawn from N(0, std^2) (layer norms' and biases
    included, so that each part changes the logits), its parameters by name and its logits
    on idx (eval mode)."""
    model = _model(vocab_size, block_size)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)
    model.eval()
    with torch.no_grad():
        logits = model(idx)
    return {"params": {k: v.detach().clone() for k, v in model.state_dict().items()}, "logits": logits}


def attention_module(n_embd, n_head, xs, gain):
    """Run one student CausalSelfAttention in float64 on each x of xs in turn (a short
    sequence first); return its outputs, its weights and its parameters."""
    attn = _tl().CausalSelfAttention(n_embd, n_head).double()
    ys, atts = [], []
    with torch.no_grad():
        attn.qkv.weight.mul_(gain)
        attn.qkv.bias.mul_(gain)
        for x in xs:
            result = attn(x)
            pair = isinstance(result, (tuple, list)) and len(result) == 2
            ys.append(result[0] if pair else result)
            atts.append(result[1] if pair else None)
    return {"ys": ys, "atts": atts,
            "qkv_w": attn.qkv.weight.detach(), "qkv_b": attn.qkv.bias.detach(),
            "proj_w": attn.proj.weight.detach(), "proj_b": attn.proj.bias.detach()}


def causality(vocab_size, block_size, idx, replacements):
    """Logits of a randomly re-initialised model on idx and on idx with later tokens replaced.

    Every parameter is redrawn from N(0, 0.5^2) (layout-independent) so that attention is
    sharp and any leak or any use of the past is large, not hidden by a tiny initialisation.
    variants[t] replaces every token after position t; the last entry replaces token 0 only.
    """
    model = _model(vocab_size, block_size)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    model.eval()
    T = idx.shape[1]
    with torch.no_grad():
        base = model(idx)
        prefixes = [model(idx[:, :t]) for t in range(1, T)]
        after = []
        for t in range(T - 1):
            changed = idx.clone()
            changed[:, t + 1:] = replacements[:, t + 1:]
            after.append(model(changed))
        first = idx.clone()
        first[:, 0] = replacements[:, 0]
        first_changed = model(first)
    return {"base": base, "after": after, "first_changed": first_changed, "prefixes": prefixes}


def device_forward(device, vocab_size, block_size, idx, targets):
    """Forward pass and loss of the student's model on `device` (meta: shapes only)."""
    tl = _tl()
    model = _model(vocab_size, block_size)
    model.eval()
    if device == "float64":
        model = model.double()
        with torch.no_grad():
            logits = model(idx)
            return {"logits": logits, "loss": tl.lm_loss(logits, targets)}
    with torch.no_grad():
        cpu_logits = model(idx) if device != "meta" else None
        model = model.to(device)
        logits = model(idx.to(device))
        loss = tl.lm_loss(logits, targets.to(device))
    return {"cpu_logits": cpu_logits, "logits": logits, "loss": loss}


def device_train_step(device, vocab_size, block_size, batch_size, n_ids):
    """One training step's forward and backward on `device` (the meta device when there is
    no accelerator): the student's get_batch on ids there, TinyGPT, lm_loss, backward."""
    tl = _tl()
    model = _model(vocab_size, block_size).to(device)
    ids = torch.randint(0, vocab_size, (n_ids,)).to(device)
    x, y = tl.get_batch(ids, batch_size, block_size, torch.Generator().manual_seed(0))
    loss = tl.lm_loss(model(x), y)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    return {"get_batch": (x, y), "lm_loss": loss.detach(), "grads_missing": sum(g is None for g in grads)}


# ---------------------------------------------------------------------------------- learned quality
_TRAINED: dict = {}


def train_and_evaluate(train_text, alphabet, steps, batch_size, block_size, n_samples, sample_len, seed):
    """Train the student's TinyGPT with the student's loop on ``train_text``, which the judge
    drew from a language of its own choosing (never the kit's corpus).

    Returns the training losses, the ids of ``alphabet`` and (for feedback only, None if they
    fail) a few generated samples; the model, the tokenizer and the bigram are kept for
    :func:`heldout_outputs`, which gets the held-out text from the judge once training is
    over (no training step can see it).
    """
    tl = _tl()
    tok = tl.CharTokenizer(train_text)
    train_ids = tok.encode(train_text)
    model = tl.TinyGPT(tl.GPTConfig(vocab_size=tok.vocab_size, block_size=block_size))
    with substituted(tl, **UNDER_TRAIN):   # the grader's loss: the student's train must learn
        losses = tl.train(model, train_ids, steps=steps, batch_size=batch_size,
                          generator=torch.Generator().manual_seed(seed))
    model.eval()
    _TRAINED.update(model=model, tok=tok, train_ids=train_ids)
    result = {"losses": losses, "alphabet_ids": tok.encode(alphabet), "samples": None}
    try:
        prompt = train_ids[: n_samples * 8].view(n_samples, 8)
        out = tl.generate(model, prompt, sample_len, temperature=1.0,
                          generator=torch.Generator().manual_seed(0))
        result["samples"] = [tok.decode(row) for row in out]
    except Exception:  # feedback only: a failure here is judged by the generation tests
        pass
    return result


def heldout_outputs(held_text, n_windows, block_size, shuffle_seed):
    """The trained model's, a copy's with its weights shuffled (``shuffled_weights``) and the
    student's bigram's raw logits on ``n_windows`` held-out windows of ``block_size + 1``
    characters (the judge scores them), and the first layer's attention map on one window
    (feedback only)."""
    tl = _tl()
    model, tok = _TRAINED["model"], _TRAINED["tok"]
    windows = tok.encode(held_text[: n_windows * (block_size + 1)]).view(n_windows, block_size + 1)
    twin = shuffled_weights(model, generator=torch.Generator().manual_seed(shuffle_seed))
    with torch.no_grad():
        logits = model(windows[:, :-1])
        shuffled_logits = twin(windows[:, :-1])
        bigram = tl.BigramLM(tok.vocab_size).fit(_TRAINED["train_ids"])
        bigram_logits = bigram(windows[:, :-1])
    result = {"logits": logits, "shuffled_logits": shuffled_logits, "bigram_logits": bigram_logits,
              "attention": None}
    try:
        with torch.no_grad():
            _, attention = model(windows[:1, :-1], return_attention=True)
        result["attention"] = attention[0][0]
    except Exception:
        pass
    return result


# ---------------------------------------------------------------------------------- generation
def generate_global(table, block_size, prompt, max_new_tokens, global_seeds):
    """The student's generate() with generator=None on a TableLM, after
    torch.manual_seed(s) for each s of global_seeds."""
    tl = _tl()
    outs = []
    for s in global_seeds:
        torch.manual_seed(s)
        outs.append(tl.generate(TableLM(table, block_size), prompt.clone(), max_new_tokens, temperature=1.0))
    return outs


def generate(table, block_size, prompt, max_new_tokens, temperature, top_k, seeds, record=False):
    """The student's generate() on a TableLM, once per generator seed in `seeds`; with
    record, also the contexts the model was given (for the last seed)."""
    tl = _tl()
    outs = []
    for s in seeds:
        model = TableLM(table, block_size)
        g = torch.Generator().manual_seed(s)
        outs.append(tl.generate(model, prompt.clone(), max_new_tokens, temperature=temperature,
                                top_k=top_k, generator=g))
    return {"outs": outs, "contexts": model.contexts} if record else outs
