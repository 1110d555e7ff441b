"""Realistic mistakes in the tiny language model, each of which must lose points on its test.

Each bug is a text replacement on solutions/06_tiny_lm/tiny_lm.py (the `old` text occurs
exactly once there).
"""
from tests.bugbank import Bug

F = "tiny_lm.py"

BUGS = [
    # ---- tokenizer -----------------------------------------------------------------
    Bug("unknown_maps_to_first_char", test="test_tokenizer_unknown", file=F,
        old="self.stoi.get(c, unk)", new="self.stoi.get(c, 0)",
        why="unknown characters silently become the first character of the vocabulary"),
    Bug("decode_drops_last_char", test="test_tokenizer_roundtrip", file=F,
        old='return "".join(self.itos[i] for i in ids)', new='return "".join(self.itos[i] for i in ids[:-1])',
        why="off-by-one slice in decode loses the last character"),
    # ---- bigram --------------------------------------------------------------------
    Bug("bigram_counts_transposed", test="test_bigram_entropy", file=F,
        old="ids[:-1] * V + ids[1:]", new="ids[1:] * V + ids[:-1]",
        why="counts N[next, previous] instead of N[previous, next]"),
    Bug("bigram_normalised_over_columns", test="test_bigram_entropy", file=F,
        old="row = counts.sum(dim=1, keepdim=True)", new="row = counts.sum(dim=0, keepdim=True)",
        why="normalises each column instead of each row: not a conditional distribution"),
    # ---- attention -----------------------------------------------------------------
    Bug("no_causal_mask", test="test_causality", file=F,
        old='scores = scores.masked_fill(future, float("-inf"))', new="scores = scores",
        why="forgot the causal mask: every position sees the future"),
    Bug("mask_off_by_one", test="test_causality", file=F,
        old=".triu(diagonal=1)", new=".triu(diagonal=2)",
        why="the mask lets position t see position t + 1, the token it predicts"),
    Bug("softmax_wrong_dim", test="test_attention_module", file=F,
        old="att = torch.softmax(scores, dim=-1)", new="att = torch.softmax(scores, dim=-2)",
        why="softmax over the queries instead of over the keys"),
    Bug("scale_by_embedding_size", test="test_attention_module", file=F,
        old="/ math.sqrt(hs)", new="/ math.sqrt(C)",
        why="scales scores by sqrt(n_embd) instead of sqrt(head size)"),
    Bug("no_scaling", test="test_attention_module", file=F,
        old="/ math.sqrt(hs)", new="",
        why="forgot the 1/sqrt(head size) scaling"),
    Bug("finite_mask_value", test="test_attention_module", file=F,
        old='scores.masked_fill(future, float("-inf"))', new="scores.masked_fill(future, -1e4)",
        why="masks with a finite value that large scores overcome"),
    Bug("heads_split_wrong", test="test_attention_module", file=F,
        old="z.view(B, T, self.n_head, hs).transpose(1, 2)", new="z.reshape(B, self.n_head, T, hs)",
        why="reshapes (B, T, C) straight into (B, H, T, hs), mixing positions across heads"),
    Bug("mask_on_cpu", test="test_device_parity", file=F,
        old="dtype=torch.bool, device=x.device)", new="dtype=torch.bool)",
        why="builds the mask on the CPU whatever the input's device"),
    # ---- the transformer -------------------------------------------------------------
    Bug("no_positional_embedding", test="test_learned_quality", file=F,
        old="x = self.tok_emb(idx) + self.pos_emb(pos)", new="x = self.tok_emb(idx)",
        why="no positional information: attention cannot tell 7 back from 3 back"),
    Bug("large_init", test="test_initial_loss", file=F,
        old="nn.init.normal_(m.weight, mean=0.0, std=0.02)", new="nn.init.normal_(m.weight, mean=0.0, std=1.0)",
        why="initial weights far too large: the untrained model is confidently wrong"),
    # ---- loss and data -------------------------------------------------------------
    Bug("loss_mean_over_vocab", test="test_loss", file=F,
        old="return F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))",
        new="return -(F.log_softmax(logits, dim=-1) * F.one_hot(targets, V)).mean()",
        why="averages over the vocabulary axis too, dividing the loss by V"),
    Bug("loss_sum_over_time", test="test_loss", file=F,
        old="return F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))",
        new="return F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T), reduction='sum') / B",
        why="sums over positions instead of averaging"),
    Bug("targets_not_shifted", test="test_batches", file=F,
        old="return windows[:, :-1], windows[:, 1:]", new="return windows[:, :-1], windows[:, :-1]",
        why="targets are the inputs themselves: the model learns to copy, not to predict"),
    # ---- generation ----------------------------------------------------------------
    Bug("temperature_after_sampling", test="test_generate_temperature", file=F,
        old="""            logits = logits / temperature
            if top_k""", new="""            if top_k""",
        why="temperature never reaches the distribution that is sampled"),
    Bug("top_k_keeps_k_plus_one", test="test_generate_top_k", file=F,
        old="min(top_k, logits.size(-1))", new="min(top_k + 1, logits.size(-1))",
        why="off by one: keeps the k + 1 most likely tokens"),
    Bug("top_k_keeps_least_likely", test="test_generate_top_k", file=F,
        old="""kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))""",
        new="""kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1, largest=False).values[:, -1:]
                logits = logits.masked_fill(logits > kth, float("-inf"))""",
        why="keeps the k least likely tokens"),
    Bug("ignores_generator", test="test_generate_reproducible", file=F,
        old="nxt = torch.multinomial(probs, 1, generator=generator)", new="nxt = torch.multinomial(probs, 1)",
        why="samples from the global RNG: the same seed does not give the same text"),
    Bug("greedy_divides_by_zero", test="test_generate_greedy", file=F,
        old="if temperature == 0:", new="if False:",
        why="temperature 0 divides by zero instead of taking the argmax"),
    Bug("no_context_crop", test="test_generate_greedy", file=F,
        old="logits = model(idx[:, -model.block_size:])[:, -1, :]", new="logits = model(idx)[:, -1, :]",
        why="feeds the whole history: fails once the text is longer than the context"),
]
