# The exploration cells of autoencoders.ipynb, in the percent format (each `# %%` line starts a cell).
# autograder/authoring/notebook_build.py puts them after the graded cells; they are never graded and never
# released as a file. They use the names the graded cells define in the kernel (no import of autoencoders).
# %%
# Train a denoising autoencoder on the training digits for a few seconds, in this notebook,
# with your own Autoencoder, gaussian_noise and train() from the graded cells above. The
# loss (squared error summed over 64 pixels, against the clean digit) should fall.
import matplotlib.pyplot as plt
import torch
from IPython.display import display

import kitdata.digits

x_train, _ = kitdata.digits.load_digits("train")
data = torch.from_numpy(x_train)            # (N, 64), grey levels in [0, 1]
torch.manual_seed(0)
model = Autoencoder(64, 16, 128)
losses = train(model, data, 500, batch_size=64, lr=2e-3, corrupt=lambda x: gaussian_noise(x, 0.4))
print(f"loss: {losses[0]:.2f} at the first step, {sum(losses[-50:]) / 50:.2f} over the last 50")

fig, ax = plt.subplots(figsize=(4.5, 2.6))
ax.plot(losses, lw=0.6)
ax.set_xlabel("Adam step")
ax.set_ylabel("reconstruction loss")
display(fig)
plt.close(fig)

# %%
# Rows: clean digits, the noisy input (sigma = 0.4), your reconstruction, then two ways to
# "generate" (§5): decoding z ~ N(0, I), and decoding draws from a Gaussian fitted to the
# training codes. Try masking_noise(x, 0.5) as the corruption, and the handout's §8.
torch.manual_seed(1)
clean = data[:10]
noisy = gaussian_noise(clean, 0.4)
denoised = reconstruct(model, noisy)
with torch.no_grad():
    codes = model.encode(data)
rows = {"clean": clean, "noisy": noisy, "reconstructed": denoised,
        "z ~ N(0, I)": sample_random_latents(model, 10), "fitted Gaussian": sample_fitted_latents(model, codes, 10)}
fig, axes = plt.subplots(len(rows), 10, figsize=(6, 4.2), gridspec_kw={"hspace": 0.5})
for (title, images), row in zip(rows.items(), axes):
    row[0].set_title(title, fontsize=8, loc="left")
    for ax, image in zip(row, images):
        ax.imshow(image.detach().reshape(8, 8).numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax.axis("off")
display(fig)
plt.close(fig)
