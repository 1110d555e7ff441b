"""The judge's own float64 maths for the autoencoders suite: the grader's models' weights,
the exact optimum of the linear autoencoder (PCA on the training covariance), and the
Bayes-optimal denoiser of a Gaussian mixture with its score (Tweedie's formula). Never
imports student code; test_autoencoders.py imports it. None of this is in kitdata, which
the worker can read.
"""

from __future__ import annotations

import math

import numpy as np
import torch

F64 = torch.float64


# --------------------------------------------------------------------------- the grader's models


def mlp_weights(seed: int, *, x_dim: int, hidden: int) -> dict[str, torch.Tensor]:
    """Weights of probes.RecordingAE: f(x) = tanh(x W1 + b1) W2 + b2, float64."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=F64)

    return {"w1": r(x_dim, hidden) * 0.6, "b1": r(hidden) * 0.3, "w2": r(hidden, x_dim) * 0.6, "b2": r(x_dim) * 0.3}


def ref_mlp(w, x):
    return torch.tanh(x @ w["w1"] + w["b1"]) @ w["w2"] + w["b2"]


def ref_recon(x_hat, x):
    """sum_d (x_hat - x)^2 per example, float64."""
    return (x_hat.double() - x.double()).pow(2).sum(-1)


def ref_train_loss(w, x_in, x_clean):
    """The training loss: batch mean of the squared error of f(x_in) against the clean x."""
    return ref_recon(ref_mlp(w, x_in), x_clean).mean()


def grader_corrupt(x):
    """The grader's corruption in the mechanics test (deterministic, not in place)."""
    return 0.5 * x.flip(-1) + 0.25


def adam_first_step(w, x_in, x_clean, lr: float) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Adam's first update of every weight (any betas: -lr * g / (|g| + eps)) and g."""
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in w.items()}
    ref_train_loss(leaves, x_in, x_clean).backward()
    return {k: (-lr * v.grad / (v.grad.abs() + 1e-8), v.grad) for k, v in leaves.items()}


# --------------------------------------------------------------------------- linear AE = PCA


def pca_optimum(x_train: torch.Tensor, x_held: torch.Tensor, k: int) -> dict[str, float]:
    """The exact optimum of a rank-k linear autoencoder on centred training data.

    "train_error": the sum of the trailing eigenvalues of the training covariance (1/N),
    i.e. the least mean squared error per example any rank-k projection reaches on the
    training data; "heldout_error": the held-out mean squared error (summed over pixels)
    of that best projection, x_hat = m + U U^T (x - m), U the top-k eigenvectors."""
    x = x_train.double()
    m = x.mean(0)
    c = (x - m).T @ (x - m) / x.shape[0]
    values, vectors = torch.linalg.eigh(c)                 # ascending
    u = vectors[:, -k:]
    d = x_held.double() - m
    held = float(((d - d @ u @ u.T) ** 2).sum(-1).mean())
    return {"train_error": float(values[:-k].sum()), "heldout_error": held}


# --------------------------------------------------------------------------- Bayes-optimal denoiser


def _mixture(mixture):
    means = torch.from_numpy(np.asarray(mixture.means, dtype=np.float64))
    s2 = torch.from_numpy(np.broadcast_to(np.asarray(mixture.std, dtype=np.float64), (len(means),)).copy()) ** 2
    return means, s2, torch.from_numpy(np.asarray(mixture.weights, dtype=np.float64))


def bayes_denoiser(mixture, x_noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """E[x | x_tilde] for x ~ sum_k w_k N(mu_k, s_k^2 I) and x_tilde = x + sigma eps.

    The posterior is a mixture: responsibilities r_k(x_tilde) proportional to
    w_k N(x_tilde; mu_k, (s_k^2 + sigma^2) I), and within component k,
    E[x | x_tilde, k] = mu_k + s_k^2 / (s_k^2 + sigma^2) (x_tilde - mu_k)."""
    means, s2, weights = _mixture(mixture)
    x = x_noisy.double()
    v = s2 + sigma ** 2                                                       # (K,)
    d2 = ((x[:, None, :] - means[None]) ** 2).sum(-1)                         # (n, K)
    r = torch.softmax(torch.log(weights) - d2 / (2 * v) - torch.log(v), dim=1)
    within = means[None] + (s2 / v)[None, :, None] * (x[:, None, :] - means[None])
    return (r[..., None] * within).sum(1)


def noisy_score(mixture, x_noisy: torch.Tensor, sigma: float) -> torch.Tensor:
    """grad log p_sigma(x_tilde), p_sigma = sum_k w_k N(mu_k, (s_k^2 + sigma^2) I)."""
    means, s2, weights = _mixture(mixture)
    x = x_noisy.double()
    v = s2 + sigma ** 2
    d2 = ((x[:, None, :] - means[None]) ** 2).sum(-1)
    r = torch.softmax(torch.log(weights) - d2 / (2 * v) - torch.log(v), dim=1)
    return (r[..., None] * (means[None] - x[:, None, :]) / v[None, :, None]).sum(1)


def tweedie_gap(mixture, x_noisy, sigma) -> float:
    """max |E[x|x_tilde] - x_tilde - sigma^2 score|: zero up to round-off (a self-check)."""
    return float((bayes_denoiser(mixture, x_noisy, sigma) - x_noisy.double()
                  - sigma ** 2 * noisy_score(mixture, x_noisy, sigma)).abs().max())


# --------------------------------------------------------------------------- data and statistics


def heldout_digits() -> tuple[torch.Tensor, torch.Tensor]:
    import kitdata.digits

    x, y = kitdata.digits.load_digits("heldout")
    return torch.from_numpy(x), torch.from_numpy(y)


def train_digits() -> torch.Tensor:
    import kitdata.digits

    return torch.from_numpy(kitdata.digits.load_digits("train")[0])


def normal_tests(values: torch.Tensor, alpha: float) -> str | None:
    """Whether float64 draws look like N(0, 1): z-test of the mean, chi-square test of the
    variance, Kolmogorov-Smirnov test, each at level alpha. The failing test's name, or None."""
    from scipy import stats

    v = values.double().reshape(-1)
    n = v.numel()
    if abs(float(v.mean()) * math.sqrt(n)) > stats.norm.isf(alpha / 2):
        return "mean"
    chi2 = float(v.var() * (n - 1))
    if not stats.chi2.ppf(alpha / 2, n - 1) <= chi2 <= stats.chi2.isf(alpha / 2, n - 1):
        return "variance"
    if stats.kstest(v.numpy(), "norm").pvalue < alpha:
        return "shape"
    return None
