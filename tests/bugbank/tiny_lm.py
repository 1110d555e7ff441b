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
    # ---- bugs the suite was not written against (one per kind of weakness) ----
    Bug("bigram_rows_not_normalised", test="test_bigram_entropy", file=F, kind="repaired",
        old="probs = torch.where(row > 0, counts / row.clamp_min(1e-300), torch.full_like(counts, 1.0 / V))",
        new="probs = torch.where(row > 0, counts, torch.full_like(counts, 1.0 / V))",
        why="stores the log of the smoothed counts: rows are not log-probabilities (a log-softmax would repair them)"),
    Bug("bigram_unseen_row_nan", test="test_bigram_entropy", file=F, kind="edge_shape",
        old="probs = torch.where(row > 0, counts / row.clamp_min(1e-300), torch.full_like(counts, 1.0 / V))",
        new="probs = counts / row",
        why="a token never followed by anything (alpha = 0) gets 0/0 = NaN instead of a uniform row"),
    Bug("batch_last_window_unreachable", test="test_batches", file=F, kind="mechanics",
        old="starts = torch.randint(0, len(ids) - block_size, (batch_size,), generator=generator)",
        new="starts = torch.randint(0, len(ids) - block_size - 1, (batch_size,), generator=generator)",
        why="randint's high is exclusive already: the last window (and the last token as a target) is never drawn"),
    Bug("get_batch_ignores_generator", test="test_batches", file=F, kind="unused_argument",
        old="starts = torch.randint(0, len(ids) - block_size, (batch_size,), generator=generator)",
        new="starts = torch.randint(0, len(ids) - block_size, (batch_size,))",
        why="draws the starts from the global RNG: the generator passed in does not decide the batches"),
    Bug("train_ignores_lr", test="test_train_loop", file=F, kind="unused_argument",
        old="opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)",
        new="opt = torch.optim.AdamW(model.parameters(), weight_decay=0.0)",
        why="AdamW at its default lr (1e-3) whatever lr is passed; still learns at 250 steps"),
    Bug("train_no_zero_grad", test="test_train_loop", file=F, kind="mechanics",
        old="        opt.zero_grad(set_to_none=True)\n", new="",
        why="never clears the gradients: every step uses the sum of all gradients so far"),
    Bug("train_swaps_batch_and_block", test="test_train_loop", file=F, kind="dimension",
        old="x, y = get_batch(ids, batch_size, model.block_size, generator)",
        new="x, y = get_batch(ids, model.block_size, batch_size, generator)",
        why="batch_size and block_size swapped: invisible when both are 32"),
    Bug("train_one_batch", test="test_train_loop", file=F, kind="mechanics",
        old="""    losses = []
    for _ in range(steps):
        x, y = get_batch(ids, batch_size, model.block_size, generator)
""", new="""    losses = []
    x, y = get_batch(ids, batch_size, model.block_size, generator)
    for _ in range(steps):
""",
        why="draws one batch before the loop and trains on it for every step"),
    Bug("train_smoothed_losses", test="test_train_loop", file=F, kind="mechanics",
        old="losses.append(loss.item())",
        new="losses.append(loss.item() if not losses else 0.9 * losses[-1] + 0.1 * loss.item())",
        why="returns an exponential moving average of the losses, not each step's loss"),
    Bug("train_ignores_generator", test="test_train_loop", file=F, kind="unused_argument",
        old="x, y = get_batch(ids, batch_size, model.block_size, generator)",
        new="x, y = get_batch(ids, batch_size, model.block_size)",
        why="never passes the generator on: the batches come from the global RNG"),
    Bug("loss_log_softmax_in_double", test="test_loss", file=F, kind="extreme",
        old="return F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))",
        new="return F.nll_loss(torch.log(torch.softmax(logits.double(), -1)).to(logits.dtype).reshape(B * T, V), targets.reshape(B * T))",
        why="log(softmax) computed in float64 'to be safe': fine up to gaps of ~700, -inf beyond"),
    Bug("loss_shifts_logits_in_place", test="test_loss", file=F, kind="dimension",
        old="B, T, V = logits.shape\n    return F.cross_entropy(",
        new="B, T, V = logits.shape\n    logits -= logits.max(dim=-1, keepdim=True).values.detach()\n    return F.cross_entropy(",
        why="the max-subtraction trick done in place: the caller's logits are changed"),
    Bug("attention_scale_by_n_head", test="test_attention_module", file=F, kind="dimension",
        old="/ math.sqrt(hs)", new="/ math.sqrt(q.size(1))",
        why="scales by sqrt(size(1)) = sqrt(n_head) of the (B, H, T, hs) tensor: right only when H == hs"),
    Bug("attention_mask_cached", test="test_attention_module", file=F, kind="dimension",
        old="future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(diagonal=1)",
        new="""if getattr(self, "_future", None) is None:
            self._future = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(diagonal=1)
        future = self._future[:T, :T]""",
        why="builds the mask once, at the first call's length: a later, longer sequence is not masked"),
    Bug("generate_squeeze_batch", test="test_generate_reproducible", file=F, kind="edge_shape",
        old="nxt = torch.multinomial(probs, 1, generator=generator)",
        new="nxt = torch.multinomial(probs, 1, generator=generator).squeeze().unsqueeze(-1)",
        why="squeeze() drops the batch dimension of a batch of one"),
    Bug("generate_last_token_only", test="test_generate_greedy", file=F, kind="unused_argument",
        old="logits = model(idx[:, -model.block_size:])[:, -1, :]", new="logits = model(idx[:, -1:])[:, -1, :]",
        why="feeds only the last token (as for a bigram): a transformer never sees its context"),
    Bug("additive_mask_on_cpu", test="test_device_parity", file=F, kind="device",
        old='scores = scores.masked_fill(future, float("-inf"))',
        new="scores = scores + nn.Transformer.generate_square_subsequent_mask(T)",
        why="nn.Transformer's additive mask, made on the CPU (its default device) whatever x's device"),
    Bug("get_batch_rebuilt_on_cpu", test="test_device_parity", file=F, kind="device",
        old="windows = ids[(starts[:, None] + offsets).to(ids.device)]",
        new="windows = torch.tensor([ids[i:i + block_size + 1].tolist() for i in starts.tolist()])",
        why="rebuilds the windows from Python lists: the batch lands on the CPU, not on ids' device"),
    # ---- bugs of the classes no earlier test was written against --------------------------------
    # state kept between calls
    Bug("encode_memo_shared", test="test_tokenizer_roundtrip", file=F, kind="state",
        old="""        unk = self.unk_id
        return torch.tensor([self.stoi.get(c, unk) for c in text], dtype=torch.long)""",
        new="""        cache = globals().setdefault("_ENCODED", {})   # encode each string once
        if text not in cache:
            unk = self.unk_id
            cache[text] = torch.tensor([self.stoi.get(c, unk) for c in text], dtype=torch.long)
        return cache[text].clone()""",
        why="memoises encode by the string in a module-level dict: a second tokenizer gets the first one's ids"),
    Bug("vocabulary_grows_across_tokenizers", test="test_tokenizer_roundtrip", file=F, kind="state",
        old="        self.chars = sorted(set(text))\n",
        new="""        CharTokenizer.seen = getattr(CharTokenizer, "seen", set()) | set(text)
        self.chars = sorted(CharTokenizer.seen)
""",
        why="keeps the vocabulary in a class attribute that grows with every text seen"),
    Bug("bigram_counts_accumulate", test="test_bigram_entropy", file=F, kind="state",
        old="        counts = torch.zeros(V * V, dtype=torch.float64, device=ids.device)\n",
        new="""        if not hasattr(self, "counts"):
            self.counts = torch.zeros(V * V, dtype=torch.float64, device=ids.device)
        counts = self.counts
""",
        why="keeps the pair counts on the model: a second fit adds to the first one's counts"),
    Bug("positions_cached_first_length", test="test_causality", file=F, kind="state",
        old="        pos = torch.arange(T, device=idx.device)\n",
        new="""        if not hasattr(self, "_pos"):
            self._pos = torch.arange(T, device=idx.device)
        pos = self._pos
""",
        why="caches the position ids at the first call's length and reuses them for every length"),
    Bug("get_batch_offsets_cached", test="test_batches", file=F, kind="state",
        old="    offsets = torch.arange(block_size + 1)\n",
        new="    offsets = globals().setdefault(\"_OFFSETS\", torch.arange(block_size + 1))\n",
        why="caches the window offsets at the first call's block_size"),
    # text and sequence edges
    Bug("encode_strips_text", test="test_tokenizer_roundtrip", file=F, kind="sequence",
        old="for c in text], dtype=torch.long)", new="for c in text.strip()], dtype=torch.long)",
        why="strips whitespace at the ends of the text before encoding"),
    Bug("decode_strips_text", test="test_tokenizer_roundtrip", file=F, kind="sequence",
        old='return "".join(self.itos[i] for i in ids)', new='return "".join(self.itos[i] for i in ids).strip()',
        why="strips whitespace at the ends of the decoded text"),
    Bug("encode_normalises_newlines", test="test_tokenizer_roundtrip", file=F, kind="sequence",
        old="for c in text], dtype=torch.long)", new='for c in text.replace("\\r\\n", "\\n")], dtype=torch.long)',
        why="turns Windows line ends into \\n while encoding: the text changes length"),
    Bug("encode_drops_unknown", test="test_tokenizer_unknown", file=F, kind="sequence",
        old="[self.stoi.get(c, unk) for c in text]", new="[self.stoi[c] for c in text if c in self.stoi]",
        why="skips characters missing from the vocabulary instead of mapping them to unk_id"),
    Bug("bigram_drops_last_pair", test="test_bigram_entropy", file=F, kind="sequence",
        old="ids[:-1] * V + ids[1:], torch.ones(len(ids) - 1,", new="ids[:-2] * V + ids[1:-1], torch.ones(len(ids) - 2,",
        why="off by one at the end of the text: the last pair is never counted"),
    Bug("positions_from_the_end", test="test_causality", file=F, kind="sequence",
        old="pos = torch.arange(T, device=idx.device)",
        new="pos = torch.arange(self.block_size - T, self.block_size, device=idx.device)",
        why="takes the last T position embeddings: a short input is read as the end of a block"),
    Bug("positions_reversed", test="test_causality", file=F, kind="sequence",
        old="pos = torch.arange(T, device=idx.device)", new="pos = torch.arange(T - 1, -1, -1, device=idx.device)",
        why="counts positions back from the last token, so a token's position changes as the text grows"),
    Bug("generate_crops_from_the_start", test="test_generate_greedy", file=F, kind="sequence",
        old="logits = model(idx[:, -model.block_size:])[:, -1, :]", new="logits = model(idx[:, :model.block_size])[:, -1, :]",
        why="crops the context to the first block_size tokens instead of the last"),
    Bug("top_k_beyond_vocabulary_raises", test="test_generate_top_k", file=F, kind="sequence",
        old="min(top_k, logits.size(-1))", new="top_k",
        why="torch.topk with a k larger than the vocabulary raises"),
    Bug("top_k_capped_below_vocabulary", test="test_generate_top_k", file=F, kind="sequence",
        old="min(top_k, logits.size(-1))", new="min(top_k, logits.size(-1) - 1)",
        why="caps k at V - 1: a top_k of the vocabulary's size drops the least likely token"),
    # generator=None and torch's global seed
    Bug("generate_seeds_its_own_generator", test="test_generate_reproducible", file=F, kind="global_seed",
        old="""    for _ in range(max_new_tokens):
        logits = model(""", new="""    if generator is None:
        generator = torch.Generator().manual_seed(0)   # reproducible by default
    for _ in range(max_new_tokens):
        logits = model(""",
        why="generator=None draws from a private generator with a fixed seed, not torch's global one"),
    Bug("generate_fresh_generator", test="test_generate_reproducible", file=F, kind="global_seed",
        old="nxt = torch.multinomial(probs, 1, generator=generator)",
        new="nxt = torch.multinomial(probs, 1, generator=generator or torch.Generator())",
        why="generator=None uses a new torch.Generator (always the same default seed) at every step"),
    Bug("get_batch_private_generator", test="test_batches", file=F, kind="global_seed",
        old="starts = torch.randint(0, len(ids) - block_size, (batch_size,), generator=generator)",
        new="starts = torch.randint(0, len(ids) - block_size, (batch_size,), "
            "generator=generator or torch.Generator().manual_seed(1234))",
        why="generator=None falls back to a fixed-seed generator: every call without one gives the same batch"),
    # train() / eval() mode
    Bug("attention_dropout", test="test_logits_shapes", file=F, kind="mode",
        old="y = (att @ v).transpose(1, 2)", new="y = (F.dropout(att, p=0.1, training=self.training) @ v).transpose(1, 2)",
        why="dropout on the attention weights: forward differs between train() and eval()"),
    Bug("embedding_dropout", test="test_logits_shapes", file=F, kind="mode",
        old="x = self.tok_emb(idx) + self.pos_emb(pos)",
        new="x = F.dropout(self.tok_emb(idx) + self.pos_emb(pos), p=0.1, training=self.training)",
        why="dropout on the embeddings: forward differs between train() and eval()"),
    Bug("mask_only_in_training", test="test_logits_shapes", file=F, kind="mode",
        old='        scores = scores.masked_fill(future, float("-inf"))\n',
        new='        if self.training:\n            scores = scores.masked_fill(future, float("-inf"))\n',
        why="applies the causal mask only in training mode"),
    # training mechanics
    Bug("batch_consecutive_rows", test="test_batches", file=F, kind="mechanics",
        old="starts = torch.randint(0, len(ids) - block_size, (batch_size,), generator=generator)",
        new="starts = (torch.randint(0, max(1, len(ids) - block_size - batch_size + 1), (1,), generator=generator) "
            "+ torch.arange(batch_size)) % (len(ids) - block_size)",
        why="one random start and the batch_size windows after it: the rows of a batch are neighbours"),
    Bug("batch_back_to_back_windows", test="test_batches", file=F, kind="mechanics",
        old="starts = torch.randint(0, len(ids) - block_size, (batch_size,), generator=generator)",
        new="starts = torch.randint(0, max(1, len(ids) - block_size * batch_size), (1,), generator=generator) "
            "+ block_size * torch.arange(batch_size) % (len(ids) - block_size)",
        why="one random start and back-to-back windows after it, as a data loader over a contiguous chunk"),
    Bug("optimizer_in_loop", test="test_train_loop", file=F, kind="mechanics",
        old="""    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
""", new="""    losses = []
    for _ in range(steps):
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
""",
        why="creates the optimiser inside the loop: AdamW's moments restart at every step"),
    Bug("zero_grad_after_backward", test="test_train_loop", file=F, kind="mechanics",
        old="""        opt.zero_grad(set_to_none=True)
        loss.backward()
""", new="""        loss.backward()
        opt.zero_grad(set_to_none=True)
""",
        why="clears the gradients between backward() and step(): no step moves the weights"),
    # extreme inputs (float32; logits / temperature reach ~3e3 at temperature 1e-3 and logits of ~3;
    # logits of 200 in lm_loss)
    Bug("generate_manual_softmax", test="test_generate_greedy", file=F, kind="extreme",
        old="probs = torch.softmax(logits, dim=-1)",
        new="probs = logits.exp() / logits.exp().sum(dim=-1, keepdim=True)",
        why="softmax by hand without subtracting the max: exp overflows at a small temperature"),
    Bug("loss_manual_logsumexp", test="test_loss", file=F, kind="extreme",
        old="return F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))",
        new="return (logits.exp().sum(-1).log() - logits.gather(-1, targets[..., None])[..., 0]).mean()",
        why="log-sum-exp by hand without the max: overflows for logits above ~88 in float32"),
    # parts of the model the handout names that learned quality hardly shows (judged on the
    # model rebuilt in float64 from its own parameters)
    Bug("no_final_layernorm", test="test_logits_shapes", file=F, kind="structure",
        old="logits = self.head(self.ln_f(x))", new="logits = self.head(x)",
        why="forgets the final LayerNorm ln_f: the head reads the unnormalised residual stream"),
    Bug("mlp_without_residual", test="test_logits_shapes", file=F, kind="structure",
        old="x = x + self.mlp(self.ln2(x))", new="x = self.mlp(self.ln2(x))",
        why="the block's MLP replaces the residual stream instead of adding to it"),
    Bug("attention_without_projection", test="test_attention_module", file=F, kind="structure",
        old="return self.proj(y), att", new="return y, att",
        why="forgets the output projection proj after concatenating the heads"),
]
