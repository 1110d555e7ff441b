"""Assignment 3: a variational autoencoder (VAE) on the kit's 8x8 digits.

A plain autoencoder maps each image to one point z; nothing tells us which points the
decoder understands, so a random z decodes to rubbish. A VAE's encoder instead returns a
distribution q(z|x) = N(mu(x), diag(sigma^2(x))), the decoder reconstructs from a *sample*
of it, and training maximises the ELBO

    ELBO(x) = E_{q(z|x)}[ log p(x|z) ]  -  KL( q(z|x) || p(z) ),   p(z) = N(0, I),

whose KL term keeps every q(z|x) close to the prior, so that z ~ N(0, I) decodes to a digit.

Conventions (the grader holds every function to them; see handout.md):

* ``x`` is a float tensor (B, D) of pixel intensities in [0, 1]; D = 64 for the digits.
* Likelihood: Bernoulli. The decoder returns *logits* l (B, D), p(x|z) has means
  sigmoid(l), and  log p(x|z) = sum_d [ x_d log sigmoid(l_d) + (1 - x_d) log(1 - sigmoid(l_d)) ].
* Reduction: every per-example quantity is summed over its dimensions (pixels, latent
  dimensions) and returned per example, shape (B,). Only the training loss averages over
  the batch:  loss = -mean_b ELBO(x_b).
* Devices and dtypes: every tensor you create must be on the device, and have the dtype,
  of your inputs (``torch.randn_like``, ``device=mu.device, dtype=mu.dtype``). The grader
  runs your functions on float64 inputs and on PyTorch's ``meta`` device.
* ``elbo``, ``sample`` and ``iwae_bound`` talk to the model only through ``model.encode``,
  ``model.decode`` and ``model.z_dim`` (the grader also hands them models of its own).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class VAE(nn.Module):
    """Encoder q(z|x) = N(mu, diag(exp(logvar))) and decoder p(x|z) = Bernoulli(sigmoid(logits)).

    Use two small MLPs (one hidden layer of ``hidden`` units with a ReLU is plenty for the
    digits). The encoder's last layer outputs 2 * z_dim numbers: mu and logvar.
    """

    def __init__(self, x_dim: int = 64, z_dim: int = 8, hidden: int = 128):
        super().__init__()
        self.x_dim = x_dim
        self.z_dim = z_dim
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x).

        Args:
            x: (B, x_dim) pixels in [0, 1].
        Returns:
            mu: (B, z_dim) mean; logvar: (B, z_dim) log sigma^2 (any real number).
        """
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of p(x|z).

        Args:
            z: (B, z_dim) latent vectors.
        Returns:
            logits: (B, x_dim); the pixel means are sigmoid(logits). No sigmoid here.
        """
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, draw one z with ``reparameterize``, decode.

        Args:
            x: (B, x_dim).
        Returns:
            logits: (B, x_dim), mu: (B, z_dim), logvar: (B, z_dim).
        """
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """One sample z ~ N(mu, diag(sigma^2)) written as z = mu + sigma * eps, eps ~ N(0, I).

    sigma = exp(0.5 * logvar). The randomness lives in eps only, so gradients flow to mu
    and logvar.

    Args:
        mu, logvar: (..., z_dim), same shape.
    Returns:
        z: same shape, device and dtype as mu.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) in closed form, one value per example.

        KL = 0.5 * sum_j ( mu_j^2 + sigma_j^2 - 1 - log sigma_j^2 )      (sum over latent dims)

    Args:
        mu, logvar: (B, z_dim).
    Returns:
        kl: (B,), >= 0, zero exactly when mu = 0 and logvar = 0.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) under the Bernoulli likelihood, summed over pixels.

        -log p(x|z) = -sum_d [ x_d log sigmoid(l_d) + (1 - x_d) log(1 - sigmoid(l_d)) ]

    Compute it from the logits in a numerically stable way
    (``F.binary_cross_entropy_with_logits``), never as log(sigmoid(...)).

    Args:
        logits: (B, D) decoder outputs; x: (B, D) targets in [0, 1].
    Returns:
        (B,) nats per example.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def elbo(model, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Single-sample estimate of the ELBO and its two terms, per example.

        recon = -log p(x|z) with z = reparameterize(mu, logvar), (mu, logvar) = model.encode(x)
        kl    = KL( q(z|x) || N(0, I) )                      (closed form)
        elbo  = -(recon + kl)

    Args:
        model: anything with ``encode`` and ``decode`` as in ``VAE``.
        x: (B, D) pixels in [0, 1].
    Returns:
        {"elbo": (B,), "recon": (B,), "kl": (B,)}, differentiable (used for training).
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def train(model: VAE, data: torch.Tensor, steps: int, batch_size: int = 64, lr: float = 2e-3) -> list[float]:
    """Maximise the ELBO with Adam for exactly ``steps`` optimisation steps.

    Each step: draw a minibatch of ``batch_size`` rows of ``data`` uniformly at random
    (with ``torch`` random functions, so the grader's seed fixes it), compute
    loss = -mean over the batch of ``elbo(model, x)["elbo"]``, and take one Adam step
    with learning rate ``lr``.

    Args:
        model: a ``VAE``; data: (N, D) training images on the model's device.
    Returns:
        the ``steps`` training losses as Python floats, in order.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


@torch.no_grad()
def sample(model, n: int) -> torch.Tensor:
    """Generate: z ~ N(0, I) from the prior, then the decoder's pixel means sigmoid(decode(z)).

    Args:
        model: has ``decode`` and ``z_dim``; n: number of samples.
    Returns:
        (n, x_dim) values in [0, 1], on the device and with the dtype of the model's parameters.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def iwae_bound(model, x: torch.Tensor, k: int) -> torch.Tensor:
    """Importance-weighted estimate of log p(x) with k samples (Burda et al., 2016).

        z_1..z_k ~ q(z|x) independently,   w_i = p(x|z_i) p(z_i) / q(z_i|x),
        IWAE_k(x) = log( (1/k) sum_i w_i )          (use torch.logsumexp, never exp then log)

    with log p(z) and log q(z|x) the full Gaussian log-densities (constants included).
    E[IWAE_1] = ELBO, E[IWAE_k] grows with k, and tends to log p(x) as k -> infinity.

    Args:
        model: has ``encode`` and ``decode``; x: (B, D); k: number of samples per example.
    Returns:
        (B,) one estimate per example.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")
