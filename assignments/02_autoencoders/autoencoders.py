"""Assignment 2: the autoencoder and the denoising autoencoder, on the kit's 8x8 digits.

An autoencoder squeezes x through a small latent vector z = encode(x) and reconstructs
x_hat = decode(z). Because z has fewer numbers than x, the network cannot copy its input:
the encoder keeps what matters most and the decoder fills in the rest. A *denoising*
autoencoder is fed a corrupted x_tilde and must return the clean x, so it has to learn what
the data look like.

Conventions (the grader holds every function to them; see handout.md):

* ``x`` is a float tensor (B, D); D = 64 for the digits (pixels in [0, 1]), D = 2 for the
  2-D mixture. Latent vectors are (B, z_dim).
* Likelihood: Gaussian with a fixed variance, p(x|z) = N(x; decode(z), 1/2 I), so that
  -log p(x|z) = sum_d (x_hat_d - x_d)^2 + const. The decoder outputs x_hat itself: no
  sigmoid, no clamp.
* Reduction: ``reconstruction_loss`` sums over the pixels and returns one value per
  example, shape (B,). Only the training loss averages over the batch.
* Corruption happens only in training, only to the model's input; the target is always the
  clean x. Evaluation (``reconstruct``) never corrupts.
* Devices and dtypes: every tensor you create must be on the device, and have the dtype,
  of your inputs (``torch.randn_like``, ``device=x.device, dtype=x.dtype``). The grader
  runs your functions on float64 inputs and on PyTorch's ``meta`` device.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn


class Autoencoder(nn.Module):
    """A multilayer-perceptron autoencoder with a bottleneck of ``z_dim`` numbers.

    encoder: Linear(x_dim, hidden) -> ReLU -> Dropout(dropout) -> Linear(hidden, z_dim)
    decoder: Linear(z_dim, hidden) -> ReLU -> Linear(hidden, x_dim)

    No activation after either last layer: the code is any real vector and the decoder's
    output is the mean x_hat of the Gaussian likelihood (any real number).
    """

    def __init__(self, x_dim: int = 64, z_dim: int = 8, hidden: int = 128, dropout: float = 0.0):
        super().__init__()
        self.x_dim = x_dim
        self.z_dim = z_dim
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, x_dim) -> z (B, z_dim)."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim) -> x_hat (B, x_dim), no output activation."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x_hat = decode(encode(x)), (B, x_dim)."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


class LinearAutoencoder(nn.Module):
    """A linear autoencoder on centred data:

        z     = W_enc (x - mean)            encoder: nn.Linear(x_dim, z_dim, bias=False)
        x_hat = W_dec z + mean              decoder: nn.Linear(z_dim, x_dim, bias=False)

    ``mean`` (x_dim,) is the training data's mean, kept as a buffer (``register_buffer``)
    so that it follows ``.to(device, dtype)``; zeros when None. No activation anywhere.
    Trained to convergence with the squared error, it finds the best rank-z_dim projection
    of the centred data: PCA.
    """

    def __init__(self, x_dim: int = 64, z_dim: int = 8, mean: torch.Tensor | None = None):
        super().__init__()
        self.x_dim = x_dim
        self.z_dim = z_dim
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, x_dim) -> z = W_enc (x - mean), (B, z_dim)."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, z_dim) -> x_hat = W_dec z + mean, (B, x_dim)."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x_hat = decode(encode(x))."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) up to a constant for the Gaussian N(x; x_hat, 1/2 I): the squared error
    summed over the pixels, one value per example.

        loss_b = sum_d (x_hat_bd - x_bd)^2

    Args:
        x_hat: (B, D) reconstructions; x: (B, D) clean targets.
    Returns:
        (B,)
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def gaussian_noise(x: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Additive Gaussian corruption x_tilde = x + sigma * eps, eps ~ N(0, I), independent
    for every entry. ``sigma`` is a standard deviation (not a variance). Returns a new
    tensor; ``x`` is left as it is. ``generator`` (when given) decides the draws.

    Args:
        x: (B, D); sigma >= 0.
    Returns:
        (B, D), same device and dtype as x.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def masking_noise(x: torch.Tensor, p: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Masking corruption: each entry is set to 0 with probability p, independently, and
    kept exactly as it is otherwise (no rescaling). Returns a new tensor; ``x`` is left as
    it is. ``generator`` (when given) decides the draws.

    Args:
        x: (B, D); 0 <= p <= 1.
    Returns:
        (B, D), same device and dtype as x.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def train(model: nn.Module, data: torch.Tensor, steps: int, batch_size: int = 64, lr: float = 1e-3,
          corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None) -> list[float]:
    """Train ``model`` with Adam for exactly ``steps`` optimisation steps.

    Put the model in training mode, then at each step: draw a minibatch x of ``batch_size``
    rows of ``data`` uniformly at random (with ``torch`` random functions, so the grader's
    seed fixes it); the model's input is x_tilde = corrupt(x) (x itself when ``corrupt`` is
    None); the loss is the batch mean of reconstruction_loss(model(x_tilde), x) against the
    *clean* x; take one Adam step with learning rate ``lr``.

    Args:
        model: any module mapping (B, D) -> (B, D); data: (N, D) on the model's device.
        corrupt: a function (B, D) -> (B, D), e.g. ``lambda x: gaussian_noise(x, 0.5)``.
    Returns:
        the ``steps`` training losses (before each step) as Python floats, in order.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


@torch.no_grad()
def reconstruct(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Evaluation: put the model in evaluation mode (dropout off) and return model(x),
    without gradients and without any corruption. For a denoising autoencoder, x is the
    corrupted input and the output is the estimate of the clean x.

    Args:
        model: a trained autoencoder; x: (B, D).
    Returns:
        (B, D)
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


@torch.no_grad()
def sample_random_latents(model: nn.Module, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """"Generate" with a plain autoencoder: z ~ N(0, I) of size (n, model.z_dim), returned
    as decode(z). (The lecture's question: which latent vectors should we choose?)

    Returns:
        (n, x_dim), on the device and with the dtype of the model's parameters.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


@torch.no_grad()
def sample_fitted_latents(model: nn.Module, codes: torch.Tensor, n: int,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """A better guess: fit a Gaussian N(m, C) to the training codes (m their mean, C their
    covariance with the 1 / (N - 1) normalisation), draw z = m + L eps with C = L L^T
    (Cholesky) and eps ~ N(0, I), and return decode(z).

    Args:
        codes: (N, z_dim) the encoder's codes of the training data (N > z_dim).
    Returns:
        (n, x_dim), on the device and with the dtype of ``codes``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")
