# The exploration cells of tiny_lm.ipynb, in the percent format (each `# %%` line starts a cell).
# autograder/authoring/notebook_build.py puts them after the graded cells; they are never graded and never
# released as a file. They use the names the graded cells define in the kernel (no import of tiny_lm).
# %%
# Train a small TinyGPT on the kit's language for a few seconds, in this notebook, with your
# own classes and train() from the graded cells above, and compare it with your bigram.
# The bigram cannot go below 2.405 nats/char (§2); attention that learns to look 7 back can.
import matplotlib.pyplot as plt
import torch
from IPython.display import display

import kitdata.text as kt

text = kt.load_corpus("train")
tok = CharTokenizer(text)
ids = tok.encode(text)
bigram = BigramLM(tok.vocab_size).fit(ids)
bigram_loss = lm_loss(bigram(ids[None, :-1]), ids[None, 1:]).item()
torch.manual_seed(0)
model = TinyGPT(GPTConfig(vocab_size=tok.vocab_size))
losses = train(model, ids, steps=200, batch_size=32, generator=torch.Generator().manual_seed(0))
print(f"bigram {bigram_loss:.3f} nats/char; TinyGPT {losses[0]:.3f} at the first step, "
      f"{sum(losses[-20:]) / 20:.3f} over the last 20; entropy rate {kt.entropy_rate():.3f}")

fig, ax = plt.subplots(figsize=(4.5, 2.6))
ax.plot(losses, lw=0.6, label="TinyGPT, train()")
ax.axhline(bigram_loss, color="C1", ls="--", lw=0.8, label="your bigram")
ax.axhline(kt.entropy_rate(), color="C2", ls="-.", lw=0.8, label="entropy rate")
ax.set_xlabel("AdamW step")
ax.set_ylabel("cross-entropy (nats/char)")
ax.legend(fontsize=8)
display(fig)
plt.close(fig)

# %%
# What your model writes, from the corpus's first 8 characters. Does a letter come back 7
# places later? Try temperature=0.5 or top_k=3, and more training steps.
prompt = tok.encode(text[:8])[None]
for temperature in (1.0, 0.5):
    out = generate(model, prompt, 64, temperature=temperature, generator=torch.Generator().manual_seed(0))
    print(f"temperature {temperature}: {tok.decode(out[0].tolist())}")
