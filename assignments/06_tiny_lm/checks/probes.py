"""Public checks' probes: they run your tiny_lm.py in the grader's worker process."""
import torch

import kitdata.text as kt
from autograder.sandbox.worker import student


def roundtrip(strings):
    tl = student("tiny_lm")
    tok = tl.CharTokenizer(kt.load_corpus("train"))
    return {"vocab_size": tok.vocab_size, "unk_id": tok.unk_id,
            "decoded": [tok.decode(tok.encode(s)) for s in strings]}


def forward(vocab_size, idx):
    tl = student("tiny_lm")
    model = tl.TinyGPT(tl.GPTConfig(vocab_size=vocab_size, block_size=16, n_embd=32))
    model.eval()
    with torch.no_grad():
        changed = idx.clone()
        changed[:, -1] = (changed[:, -1] + 1) % vocab_size
        return {"logits": model(idx), "changed_last": model(changed)}


def loss(logits, targets):
    return student("tiny_lm").lm_loss(logits, targets)


def batch(ids):
    return student("tiny_lm").get_batch(ids, 4, 8, torch.Generator().manual_seed(0))


def short_training(steps):
    tl = student("tiny_lm")
    text = kt.load_corpus("train")
    tok = tl.CharTokenizer(text)
    model = tl.TinyGPT(tl.GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_embd=32))
    return tl.train(model, tok.encode(text), steps=steps, batch_size=16,
                    generator=torch.Generator().manual_seed(0))


def sample(seed):
    tl = student("tiny_lm")
    model = tl.BigramLM(5).fit(torch.tensor([0, 1, 2, 3, 4] * 20))
    prompt = torch.zeros(2, 1, dtype=torch.long)
    return [tl.generate(model, prompt, 10, generator=torch.Generator().manual_seed(seed)) for _ in range(2)]


def bigram(ids, vocab_size):
    """A bigram model fitted on ids: its logits for ids[None]."""
    tl = student("tiny_lm")
    model = tl.BigramLM(vocab_size).fit(ids, alpha=1.0)
    return model(ids[None])


def attention(x, n_head):
    """One CausalSelfAttention on x: (y, att)."""
    tl = student("tiny_lm")
    layer = tl.CausalSelfAttention(x.shape[-1], n_head)
    with torch.no_grad():
        return tuple(layer(x))
