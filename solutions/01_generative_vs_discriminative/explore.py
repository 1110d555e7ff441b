# The exploration cells of classifiers.ipynb, in the percent format (each `# %%` line starts a cell).
# autograder/authoring/notebook_build.py puts them after the graded cells; they are never graded and never
# released as a file. They use the names the graded cells define in the kernel (no import of classifiers).
# %%
# The two-class 2-D data (§2), in this notebook, with your own functions from the graded cells
# above: the Gaussian classifier (fitted in closed form) against logistic regression (trained
# with your train_classifier). Neither can beat the Bayes error; how close do they get?
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import display

import kitdata.labelled2d
import kitdata.planted
from kitdata.digits import load_digits

x2, y2 = (torch.from_numpy(a) for a in kitdata.labelled2d.sample(2000, generator=0))
params2 = fit_gaussian_classifier(x2, y2, 2)
torch.manual_seed(0)
logistic = LogisticRegression(2, 2)
losses = train_classifier(logistic, x2, y2, 300, 64, 5e-2)
with torch.no_grad():
    logistic_errors = (logistic(x2).argmax(1) != y2).float().mean().item()
gaussian_errors = (predict(params2, x2) != y2).float().mean().item()
print(f"training error: Gaussian classifier {gaussian_errors:.3f}, logistic regression {logistic_errors:.3f}, "
      f"Bayes error {kitdata.labelled2d.BAYES_ERROR:.3f}")

gx, gy = np.meshgrid(np.linspace(-4, 7, 200), np.linspace(-5, 6, 200))
grid = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1)).float()
with torch.no_grad():
    gaussian_field = (log_joint(params2, grid) @ torch.tensor([-1.0, 1.0])).reshape(gx.shape)
    logistic_field = (logistic(grid) @ torch.tensor([-1.0, 1.0])).reshape(gx.shape)
fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
axes[0].plot(losses, lw=0.6)
axes[0].set_xlabel("Adam step")
axes[0].set_ylabel("cross-entropy (logistic regression)")
axes[1].scatter(x2[:, 0], x2[:, 1], c=y2, cmap="coolwarm", s=3, alpha=0.5)
axes[1].contour(gx, gy, gaussian_field, levels=[0], colors="tab:green")
axes[1].contour(gx, gy, logistic_field, levels=[0], colors="tab:red")
axes[1].set_title("boundaries: Gaussian (green), logistic (red)", fontsize=9)
display(fig)
plt.close(fig)

# %%
# Generating (§3): the Gaussian classifier fitted to the training digits, then sample_class
# for each class. Top row: the class means; below: samples. Try a diagonal covariance.
x_digits, y_digits = (torch.from_numpy(a) for a in load_digits("train"))
params = fit_gaussian_classifier(x_digits.double(), y_digits, 10)
generator = torch.Generator().manual_seed(0)
samples = torch.stack([sample_class(params, c, 3, generator=generator) for c in range(10)], 1)   # (3, 10, 64)
fig, axes = plt.subplots(4, 10, figsize=(5, 2.2))
for c in range(10):
    for row, image in enumerate([params["means"][c], *samples[:, c]]):
        axes[row, c].imshow(image.clamp(0, 1).reshape(8, 8).numpy(), cmap="gray_r", vmin=0, vmax=1)
        axes[row, c].axis("off")
display(fig)
plt.close(fig)

# %%
# Class activation maps (§5): train your TinyCNN briefly on the planted-object images, then
# look where its CAM points (the box marks the planted pattern).
xp, yp, centres = (torch.from_numpy(a) for a in kitdata.planted.train_set())
torch.manual_seed(0)
cnn = TinyCNN()
cnn_losses = train_classifier(cnn, xp, yp, 300, 64, 1e-2)
cnn.eval()
with torch.no_grad():
    accuracy = (cnn(xp).argmax(1) == yp).float().mean().item()
    maps = class_activation_map(cnn, xp[:6], yp[:6])
print(f"TinyCNN: loss {cnn_losses[0]:.2f} -> {sum(cnn_losses[-30:]) / 30:.2f}, training accuracy {accuracy:.2f}")
fig, axes = plt.subplots(2, 6, figsize=(7, 2.5))
for i in range(6):
    r, c = centres[i].tolist()
    axes[0, i].imshow(xp[i, 0].numpy(), cmap="gray")
    axes[0, i].set_title(kitdata.planted.CLASSES[yp[i]], fontsize=7)
    axes[1, i].imshow(maps[i].numpy(), cmap="magma")
    for ax in axes[:, i]:
        ax.add_patch(plt.Rectangle((c - 1.5, r - 1.5), 3, 3, fill=False, ec="cyan", lw=0.8))
        ax.axis("off")
display(fig)
plt.close(fig)
