# The exploration cells of gan.ipynb, in the percent format (each `# %%` line starts a cell).
# autograder/authoring/notebook_build.py puts them after the graded cells; they are never graded and never
# released as a file. They use the names the graded cells define in the kernel (no import of gan).
# %%
# Play the game on the ring of 8 Gaussians for a few seconds, in this notebook, with your own
# train() from the graded cells above. The dashed lines are the losses at D = 1/2 (a
# discriminator that cannot tell real from fake): watch the two players pull against each other.
import math

import matplotlib.pyplot as plt
import torch
from IPython.display import display

import kitdata.toy2d

ring = kitdata.toy2d.ring8()
real = torch.from_numpy(ring.sample(4096, generator=0)).float()   # (4096, 2)
torch.manual_seed(0)
G, D, history = train(real, 600, batch_size=128, lr=1e-3)
print(f"last 100 rounds: L_D {sum(history['d_loss'][-100:]) / 100:.3f} (2 ln 2 = {2 * math.log(2):.3f}), "
      f"L_G {sum(history['g_loss'][-100:]) / 100:.3f} (ln 2 = {math.log(2):.3f})")

fig, ax = plt.subplots(figsize=(4.5, 2.6))
ax.plot(history["d_loss"], lw=0.5, label="d_loss")
ax.plot(history["g_loss"], lw=0.5, label="g_loss")
ax.axhline(2 * math.log(2), color="0.5", ls="--", lw=0.8)
ax.axhline(math.log(2), color="0.5", ls="--", lw=0.8)
ax.set_xlabel("round (one D step, one G step)")
ax.legend(fontsize=8)
display(fig)
plt.close(fig)

# %%
# The generator's samples beside the data. After 600 rounds it has found the ring but not yet
# its 8 tight modes: try 2,000 rounds, another seed, saturating=True, and watch for mode collapse (§5).
fake = sample(G, 1000)
fig, axes = plt.subplots(1, 2, figsize=(6, 3), sharex=True, sharey=True)
for ax, points, title in ((axes[0], real[:1000], "data (ring8)"), (axes[1], fake, "your generator")):
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.4)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
axes[0].set_xlim(-3, 3)
axes[0].set_ylim(-3, 3)
display(fig)
plt.close(fig)
