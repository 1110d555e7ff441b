# The exploration cells of diffusion.ipynb, in the percent format (each `# %%` line starts a cell).
# autograder/authoring/notebook_build.py puts them after the graded cells; they are never graded and never
# released as a file. They use the names the graded cells define in the kernel (no import of diffusion).
# %%
# Train your noise predictor on the ring of 8 Gaussians for a few seconds, in this notebook,
# with your own schedule, EpsModel and train() from the graded cells above. The loss is
# noisy (each step draws fresh t and noise), but its running mean falls.
import matplotlib.pyplot as plt
import torch
from IPython.display import display

import kitdata.toy2d

schedule = make_schedule(linear_betas(100))
data = torch.from_numpy(kitdata.toy2d.ring8(std=0.2).sample(4096, generator=0)).float()   # (4096, 2)
torch.manual_seed(0)
model = EpsModel(dim=2)
losses = train(model, data, schedule["alpha_bars"], 1500, batch_size=512, lr=3e-3)
window = 100
running = [sum(losses[i - window:i]) / window for i in range(window, len(losses) + 1)]
print(f"loss: mean of the first {window} steps {running[0]:.3f}, of the last {window} {running[-1]:.3f}")

fig, ax = plt.subplots(figsize=(4.5, 2.6))
ax.plot(losses, lw=0.4, color="0.7", label="each step")
ax.plot(range(window - 1, len(losses)), running, label=f"mean of {window}")
ax.set_xlabel("Adam step")
ax.set_ylabel("diffusion loss")
ax.legend(fontsize=8)
display(fig)
plt.close(fig)

# %%
# Ancestral samples (your sample(), T = 100 reverse steps) and DDIM in 10 steps, beside the
# data. 1,500 steps give the 8 modes, a little blurred; try DDIM with 5 or 20 steps, the cosine
# schedule, more training (handout §9).
model.eval()
with torch.no_grad():
    ancestral = sample(model, schedule, 1000, 2)
    ddim = ddim_sample(model, schedule, torch.randn(1000, 2), 10)
fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.6), sharex=True, sharey=True)
for ax, points, title in ((axes[0], data[:1000], "data"), (axes[1], ancestral, "sample(), T = 100"),
                          (axes[2], ddim, "ddim_sample(), 10 steps")):
    ax.scatter(points[:, 0], points[:, 1], s=1, alpha=0.4)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
axes[0].set_xlim(-3, 3)
axes[0].set_ylim(-3, 3)
display(fig)
plt.close(fig)
