"""The judge's own float64 maths for the classifiers suite: the grader's models' weights
and the exact references the tests compare the student's outputs with, the exact error of
a linear rule on the 2-D data, and the planted images of a grading's secret patterns.
Never imports student code; test_classifiers.py imports it (the suite folder is on the
judge's path).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

F64 = torch.float64


# --------------------------------------------------------------------------- Gaussian classifier


def ref_fit(x, y, n_classes, var_floor):
    x = x.double()
    n, d = x.shape
    onehot = F.one_hot(y, n_classes).double()
    counts = onehot.sum(0)
    means = onehot.T @ x / counts[:, None]
    centred = x - means[y]
    cov = centred.T @ centred / n + var_floor * torch.eye(d, dtype=F64)
    return {"log_prior": torch.log(counts / n), "means": means, "cov": cov}


def ref_log_joint(params, x):
    means, cov = params["means"].double(), params["cov"].double()
    chol = torch.linalg.cholesky(cov)
    d = means.shape[1]
    diff = x.double()[:, None, :] - means[None]                                       # (B, C, D)
    z = torch.linalg.solve_triangular(chol, diff.reshape(-1, d).T, upper=False)
    maha = (z ** 2).sum(0).reshape(diff.shape[:2])
    log_det = 2 * torch.log(torch.diagonal(chol)).sum()
    return params["log_prior"].double() - 0.5 * (maha + d * math.log(2 * math.pi) + log_det)


def ref_posterior(params, x):
    lj = ref_log_joint(params, x)
    return torch.exp(lj - torch.logsumexp(lj, 1, keepdim=True))


def grader_params(seed: int, n_classes: int, dim: int, spread: float = 3.0) -> dict:
    """Parameters of the grader's own Gaussian classifier: unequal priors, a covariance with
    eigenvalues from 0.15 to ~4 in random directions (so Sigma, L and I all differ)."""
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=F64))
    eig = torch.logspace(math.log10(0.15), math.log10(4.0), dim, dtype=F64)
    cov = q @ torch.diag(eig) @ q.T
    prior = torch.rand(n_classes, generator=g, dtype=F64) + 0.1
    prior[0] *= 6                                             # one class clearly more probable
    return {"log_prior": torch.log(prior / prior.sum()),
            "means": torch.randn(n_classes, dim, generator=g, dtype=F64) * spread,
            "cov": cov}


# --------------------------------------------------------------------------- losses


def ref_ce(logits, y):
    logits = logits.double()
    return (torch.logsumexp(logits, 1) - logits.gather(1, y[:, None])[:, 0]).mean()


def ref_ce_grad(logits, y):
    p = torch.softmax(logits.double(), 1)
    return (p - F.one_hot(y, logits.shape[1]).double()) / logits.shape[0]


# --------------------------------------------------------------------------- the grader's CNN


def cnn_weights(seed: int, hidden: int, channels: int, n_classes: int) -> dict:
    """Weights for TinyCNN's conv1, conv2, fc (float64), with biases that make some
    pre-activations negative (so the ReLUs matter)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=F64) * scale

    return {"conv1.weight": r(hidden, 1, 3, 3, scale=0.6), "conv1.bias": r(hidden, scale=0.3),
            "conv2.weight": r(channels, hidden, 3, 3, scale=0.4), "conv2.bias": r(channels, scale=0.3) - 0.2,
            "fc.weight": r(n_classes, channels), "fc.bias": r(n_classes)}


def ref_features(w, x):
    h = F.max_pool2d(F.relu(F.conv2d(x.double(), w["conv1.weight"], w["conv1.bias"], padding=1)), 2)
    return F.relu(F.conv2d(h, w["conv2.weight"], w["conv2.bias"], padding=1))


def ref_logits(w, x):
    return ref_features(w, x).mean((2, 3)) @ w["fc.weight"].T + w["fc.bias"]


def cam_from(features, fc_weight, classes, size):
    """CAM from raw feature maps (B, K, h, w) and the fc weights (C, K), upsampled to size."""
    cam = torch.einsum("bk,bkij->bij", fc_weight.double()[classes], features.double())
    return F.interpolate(cam[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]


def ref_cam(w, x, classes):
    return cam_from(ref_features(w, x), w["fc.weight"], classes, x.shape[-2:])


# --------------------------------------------------------------------------- held-out data


def planted_sets(rng: np.random.Generator, n_train: int, n_held: int):
    """A grading's planted-object task: patterns drawn from ``rng`` (the judge's secret), a
    training set and a held-out set of them, as tensors (images, labels, centres)."""
    import kitdata.planted as planted

    patterns = planted.variant_patterns(rng)
    return tuple(tuple(torch.from_numpy(a) for a in planted.make(n, rng, patterns=patterns)) for n in (n_train, n_held))


def linear_error(weight: np.ndarray, bias: float, mix) -> float:
    """Exact error on the two-class labelled mixture ``mix`` of the rule 'class 1 when w . x + b > 0'."""
    return mix.linear_rule_error(weight, bias)


def affine_fit(x, logits):
    """Least-squares fit logits ~ x A + a; returns (A (D, C), a (C,), largest residual)."""
    design = torch.cat([x.double(), torch.ones(len(x), 1, dtype=F64)], 1)
    sol = torch.linalg.lstsq(design, logits.double()).solution
    residual = float((design @ sol - logits.double()).abs().max())
    return sol[:-1], sol[-1], residual
