# The exploration cells of vae.ipynb, in the percent format (each `# %%` line starts a cell).
# autograder/authoring/notebook_build.py puts them after the graded cells; they are never graded and never
# released as a file. They use the names the graded cells define in the kernel (no import of vae).
# %%
# Train your VAE on the training digits for a few seconds, in this notebook, with your own
# VAE and train() from the graded cells above. The -ELBO (nats per image) should fall.
import matplotlib.pyplot as plt
import torch
from IPython.display import display

import kitdata.digits

x_train, _ = kitdata.digits.load_digits("train")
data = torch.from_numpy(x_train)            # (N, 64), grey levels in [0, 1]
torch.manual_seed(0)
model = VAE(x_dim=64)
losses = train(model, data, steps=400, batch_size=64, lr=2e-3)
print(f"-ELBO: {losses[0]:.1f} at the first step, {sum(losses[-50:]) / 50:.1f} over the last 50")

fig, ax = plt.subplots(figsize=(4.5, 2.6))
ax.plot(losses, lw=0.6)
ax.set_xlabel("Adam step")
ax.set_ylabel("-ELBO (nats per image)")
display(fig)
plt.close(fig)

# %%
# Samples from the prior (top) and reconstructions of training digits (bottom: data, then
# the decoder's mean of their codes). 400 steps give blurry digits; try 2000, or beta != 1
# (the handout's "Things to try").
model.eval()
with torch.no_grad():
    samples = sample(model, 10)
    mu, _ = model.encode(data[:10])
    recon = torch.sigmoid(model.decode(mu))
fig, axes = plt.subplots(3, 10, figsize=(6, 2))
for row, images in enumerate((samples, data[:10], recon)):
    for ax, image in zip(axes[row], images):
        ax.imshow(image.reshape(8, 8).numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.axis("off")
display(fig)
plt.close(fig)
