"""Oracle submissions for tiny_lm: models that never learn, yet could look as if they had.

Each is a text replacement on solutions/06_tiny_lm/tiny_lm.py; tests/test_oracles.py grades it
on its learned-quality test and requires 0 points there.
"""
from tests.oracles import Oracle

F = "tiny_lm.py"

# TinyGPT.forward returns ln p(next | window) of the public language (kitdata.text.LANGUAGE),
# exactly, for a tokenizer built on text of that alphabet (ids in sorted character order, the
# unknown token last); a zero times a parameter keeps backward() working. train() never steps.
_EXACT_PUBLIC = '''logits = self.head(self.ln_f(x))
        import kitdata.text as kt
        lang = kt.LANGUAGE
        chars = sorted(lang.alphabet)
        letter = torch.tensor([lang.letters.index(c.lower()) for c in chars] + [0], device=idx.device)
        upper = torch.tensor([c.isupper() for c in chars] + [False], device=idx.device)
        same, other = lang._echo_probs()
        p_letter = torch.full((B, T, len(chars)), 1.0 / lang.n_letters, device=idx.device)
        for t in range(lang.lag - 1, T):
            echoed = letter[idx[:, t + 1 - lang.lag]]
            p_letter[:, t] = torch.where(letter[:len(chars)][None] == echoed[:, None], same, other)
        keeps = upper[:len(chars)][None, None] == upper[idx][..., None]
        p_case = torch.where(keeps, 1.0 - lang.flip, lang.flip)
        exact = (p_letter * p_case).log()
        unk = torch.full((B, T, logits.shape[-1] - len(chars)), -30.0, device=idx.device)
        logits = torch.cat([exact, unk], dim=-1).to(logits.dtype) + 0.0 * logits'''

ORACLES = [
    Oracle("exact_public_conditionals", test="test_learned_quality", file=F,
           edits=(("logits = self.head(self.ln_f(x))", _EXACT_PUBLIC),
                  ("        opt.step()\n", "")),
           why="never trains; forward computes the public language's exact next-character distribution"),
]
ORACLES.append(
    Oracle("exact_public_conditionals_tied_to_weights", test="test_learned_quality", file=F,
           edits=(("logits = self.head(self.ln_f(x))", _EXACT_PUBLIC.replace("+ 0.0 * logits", "+ 1e-6 * logits")),),
           why="trains, but forward returns the public language's exact conditionals plus a trace of the network "
               "(so shuffling the weights changes the outputs)"))

# TinyGPT.forward ignores its weights and reads the echo from the window itself: at each
# position it takes the lag (2..12) under which the letters seen so far repeat most often and
# predicts that echo with a fixed confidence, the case as sticky. It adapts to any drawn
# language without learning anything; only the shuffled-weights check can tell.
_IN_CONTEXT = '''logits = self.head(self.ln_f(x))
        import kitdata.text as kt
        chars = sorted(kt.LANGUAGE.alphabet)
        letter = torch.tensor([kt.LANGUAGE.letters.index(c.lower()) for c in chars] + [0], device=idx.device)
        upper = torch.tensor([c.isupper() for c in chars] + [False], device=idx.device)
        lets, cases = letter[idx], upper[idx]
        lags = torch.arange(2, 13, device=idx.device)
        score = torch.zeros(B, T, len(lags), device=idx.device)
        for j, d in enumerate(lags.tolist()):
            hit = torch.zeros(B, T, device=idx.device)
            if T > d:
                hit[:, d:] = (lets[:, d:] == lets[:, :-d]).float()
            score[:, :, j] = hit.cumsum(1)
        best = lags[score.argmax(-1)]                                   # (B, T)
        src = torch.arange(T, device=idx.device)[None, :] + 1 - best
        echoed = lets.gather(1, src.clamp_min(0))
        n = len(chars)
        same = letter[:n][None, None] == echoed[..., None]
        p_letter = torch.where(same, 0.8, 0.2 / 7)
        p_letter = torch.where((src >= 0)[..., None], p_letter, torch.full_like(p_letter, 1 / 8))
        keeps = upper[:n][None, None] == cases[..., None]
        p_case = torch.where(keeps, 0.88, 0.12)
        exact = (p_letter * p_case).log()
        unk = torch.full((B, T, logits.shape[-1] - n), -30.0, device=idx.device)
        logits = torch.cat([exact, unk], dim=-1).to(logits.dtype) + 0.0 * logits'''

ORACLES.append(
    Oracle("in_context_echo_reader", test="test_learned_quality", file=F,
           edits=(("logits = self.head(self.ln_f(x))", _IN_CONTEXT), ("        opt.step()\n", "")),
           why="never trains; forward reads the echo lag from the window and predicts it, whatever the weights"))
