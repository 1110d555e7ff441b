"""Assignment 1: a generative and a discriminative classifier, and class activation maps.

A *discriminative* model learns p(y|x): it can only label. A *generative* model learns
p(x, y) = p(x|y) p(y): it labels through Bayes' rule,

    p(y = c | x) = p(x|c) p(c) / sum_c' p(x|c') p(c'),

*and* it can generate new x by sampling from p(x|y). You write both, train the
discriminative ones by gradient descent on the cross-entropy, and look inside a small
convolutional network with class activation maps (CAM).

Conventions (the grader holds every function to them; see handout.md):

* ``x`` is a float tensor (N, D) of features (D = 64 pixels for the digits, 2 for the 2-D
  data); images for the CNN are (N, 1, H, W). Labels ``y`` are int64 (N,) in 0..C-1.
* The generative classifier is Gaussian discriminant analysis with a *shared* covariance:
  p(x|c) = N(x; mu_c, Sigma), fitted by maximum likelihood (1/N_c and 1/N, never 1/(N-1))
  plus ``var_floor`` on the diagonal of Sigma.
* Every tensor you create must be on the device, and have the dtype, of your inputs; the
  grader runs your functions on float64 inputs and on PyTorch's ``meta`` device. Leave
  your inputs unchanged.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# --------------------------------------------------------------------------- generative


def fit_gaussian_classifier(x: torch.Tensor, y: torch.Tensor, n_classes: int,
                            var_floor: float = 1e-2) -> dict[str, torch.Tensor]:
    """Maximum-likelihood fit of p(y) and p(x|y) = N(mu_y, Sigma) (Sigma shared by the classes).

        N_c      = number of examples of class c               (every class has at least one)
        log_prior[c] = log(N_c / N)
        means[c]     = (1 / N_c) sum_{i: y_i = c} x_i
        cov          = (1 / N) sum_i (x_i - means[y_i]) (x_i - means[y_i])^T  +  var_floor * I

    Args:
        x: (N, D) features; y: (N,) int64 labels in 0..n_classes-1; var_floor: >= 0.
    Returns:
        {"log_prior": (C,), "means": (C, D), "cov": (D, D)}, dtype and device of x.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def log_joint(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """log p(x, y = c) = log p(c) + log N(x; mu_c, Sigma) for every example and class.

        log N(x; mu, Sigma) = -1/2 [ (x - mu)^T Sigma^{-1} (x - mu) + D log(2 pi) + log det Sigma ]

    With the Cholesky factor Sigma = L L^T: log det Sigma = 2 sum_j log L_jj and
    (x - mu)^T Sigma^{-1} (x - mu) = |L^{-1} (x - mu)|^2 (a triangular solve, never an inverse).

    Args:
        params: as returned by ``fit_gaussian_classifier``; x: (B, D).
    Returns:
        (B, C) log-joint densities, dtype and device of x.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def posterior(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """p(y = c | x) by Bayes' rule, computed with log-sum-exp:

        p(c | x) = exp( log p(x, c) - logsumexp_c' log p(x, c') )

    Stable for inputs far from every class (where every p(x, c) underflows to 0).

    Args:
        params: the fitted parameters; x: (B, D).
    Returns:
        (B, C) probabilities; each row sums to one.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def predict(params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The most probable class argmax_c p(c | x) (= argmax_c log p(x, c)), int64 (B,)."""
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def sample_class(params: dict[str, torch.Tensor], c: int, n: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Generate: n new x from p(x | y = c) = N(mu_c, Sigma).

        x = mu_c + L eps,   eps ~ N(0, I_D),   L = cholesky(Sigma)   (so Cov[x] = L L^T = Sigma)

    Draw eps with ``torch.randn(..., generator=generator)`` (None: torch's global generator).

    Args:
        params: the fitted parameters; c: the class; n: how many samples.
    Returns:
        (n, D), dtype and device of the parameters.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


# --------------------------------------------------------------------------- discriminative


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the labels under softmax(logits):

        loss = (1 / B) sum_b [ logsumexp_c logits[b, c] - logits[b, y_b] ]

    from the logits (no softmax first), stable for logits of any size.

    Args:
        logits: (B, C); y: (B,) int64.
    Returns:
        a scalar tensor (shape ()), differentiable.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


class LogisticRegression(nn.Module):
    """Multinomial logistic regression: logits = x W^T + b, p(y|x) = softmax(logits).

    Hold the weights in one ``nn.Linear(n_features, n_classes)`` named ``linear`` (the
    grader reads nothing else, but the handout's maths is stated for it).
    """

    def __init__(self, n_features: int, n_classes: int):
        super().__init__()
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, n_features) -> logits (B, n_classes)."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


class TinyCNN(nn.Module):
    """A small CNN that ends in global average pooling and one linear layer (what CAM needs).

        conv1: nn.Conv2d(1, hidden, 3, padding=1) -> ReLU -> max-pool 2x2 (stride 2)
        conv2: nn.Conv2d(hidden, channels, 3, padding=1) -> ReLU           = features f (B, K, H/2, W/2)
        global average pooling over the positions                          -> (B, K)
        fc:    nn.Linear(channels, n_classes)                              -> logits (B, C)

    Use these three attribute names (``conv1``, ``conv2``, ``fc``): the grader loads its
    own weights into them.
    """

    def __init__(self, n_classes: int = 3, hidden: int = 8, channels: int = 16):
        super().__init__()
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, H, W), H and W even -> the last feature maps f (B, K, H/2, W/2), after the ReLU."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 1, H, W) -> logits (B, n_classes) = fc(mean of the features over positions)."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


def train_classifier(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int,
                     batch_size: int = 64, lr: float = 1e-2) -> list[float]:
    """Minimise the cross-entropy with Adam for exactly ``steps`` optimisation steps.

    Each step: draw ``batch_size`` row indices uniformly at random (with replacement, with
    ``torch`` random functions on x's device, so the grader's seed fixes them), compute
    loss = cross_entropy(model(x[idx]), y[idx]), and take one step of
    ``torch.optim.Adam(model.parameters(), lr=lr)`` (default betas and eps; zero the
    gradients first).

    Args:
        model: any module mapping x to logits; x: (N, ...) inputs; y: (N,) labels.
    Returns:
        the ``steps`` losses (before each step) as Python floats, in order.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


# --------------------------------------------------------------------------- class activation maps


def class_activation_map(model: nn.Module, x: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """CAM (Zhou et al., 2016) of each image for its class ``classes[b]``:

        M_c(i, j) = sum_k w_{c,k} f_k(i, j)     f = model.features(x) (B, K, h, w), w = model.fc.weight (C, K)

    (no bias), then upsampled to the input's H x W with
    ``F.interpolate(..., size=(H, W), mode="bilinear", align_corners=False)``.

    Args:
        model: has ``features`` and ``fc`` as in ``TinyCNN``; x: (B, 1, H, W);
        classes: (B,) int64, the class whose map to draw for each image.
    Returns:
        (B, H, W) maps, dtype and device of x.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")
