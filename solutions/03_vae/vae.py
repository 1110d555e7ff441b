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
        ### BEGIN SOLUTION
        self.encoder = nn.Sequential(nn.Linear(x_dim, hidden), nn.ReLU(), nn.Linear(hidden, 2 * z_dim))
        self.decoder = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, x_dim))
        ### END SOLUTION

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x).

        Args:
            x: (B, x_dim) pixels in [0, 1].
        Returns:
            mu: (B, z_dim) mean; logvar: (B, z_dim) log sigma^2 (any real number).
        """
        ### BEGIN SOLUTION
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar
        ### END SOLUTION

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of p(x|z).

        Args:
            z: (B, z_dim) latent vectors.
        Returns:
            logits: (B, x_dim); the pixel means are sigmoid(logits). No sigmoid here.
        """
        ### BEGIN SOLUTION
        return self.decoder(z)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, draw one z with ``reparameterize``, decode.

        Args:
            x: (B, x_dim).
        Returns:
            logits: (B, x_dim), mu: (B, z_dim), logvar: (B, z_dim).
        """
        ### BEGIN SOLUTION
        mu, logvar = self.encode(x)
        return self.decode(reparameterize(mu, logvar)), mu, logvar
        ### END SOLUTION


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """One sample z ~ N(mu, diag(sigma^2)) written as z = mu + sigma * eps, eps ~ N(0, I).

    sigma = exp(0.5 * logvar). The randomness lives in eps only, so gradients flow to mu
    and logvar.

    Args:
        mu, logvar: (..., z_dim), same shape.
    Returns:
        z: same shape, device and dtype as mu.
    """
    ### BEGIN SOLUTION
    std = torch.exp(0.5 * logvar)
    eps = torch.randn_like(std)
    return mu + std * eps
    ### END SOLUTION


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) in closed form, one value per example.

        KL = 0.5 * sum_j ( mu_j^2 + sigma_j^2 - 1 - log sigma_j^2 )      (sum over latent dims)

    Args:
        mu, logvar: (B, z_dim).
    Returns:
        kl: (B,), >= 0, zero exactly when mu = 0 and logvar = 0.
    """
    ### BEGIN SOLUTION
    # The general formula for two diagonal Gaussians, with the prior's parameters spelled out:
    # KL(N(m, v) || N(m0, v0)) = 0.5 * sum( log v0 - log v + (v + (m - m0)^2) / v0 - 1 ).
    prior_mu = torch.zeros_like(mu)
    prior_logvar = torch.zeros_like(logvar)  # the prior N(0, I) has variance 1, log-variance 0
    terms = prior_logvar - logvar + (logvar.exp() + (mu - prior_mu) ** 2) / prior_logvar.exp() - 1.0
    return 0.5 * terms.sum(dim=-1)
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    mu, logvar = model.encode(x)
    z = reparameterize(mu, logvar)
    recon = reconstruction_loss(model.decode(z), x)
    kl = kl_divergence(mu, logvar)
    return {"elbo": -(recon + kl), "recon": recon, "kl": kl}
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        index = torch.randint(0, data.shape[0], (batch_size,), device=data.device)
        loss = -elbo(model, data[index])["elbo"].mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses
    ### END SOLUTION


@torch.no_grad()
def sample(model, n: int) -> torch.Tensor:
    """Generate: z ~ N(0, I) from the prior, then the decoder's pixel means sigmoid(decode(z)).

    Args:
        model: has ``decode`` and ``z_dim``; n: number of samples.
    Returns:
        (n, x_dim) values in [0, 1], on the device and with the dtype of the model's parameters.
    """
    ### BEGIN SOLUTION
    weight = next(model.parameters())
    z = torch.randn(n, model.z_dim, device=weight.device, dtype=weight.dtype)
    return torch.sigmoid(model.decode(z))
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    mu, logvar = model.encode(x)                                     # (B, Z)
    eps = torch.randn((k,) + tuple(mu.shape), device=mu.device, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps                           # (k, B, Z)
    logits = model.decode(z.reshape(-1, mu.shape[-1])).reshape(k, x.shape[0], -1)
    log_px_z = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
    log_2pi = math.log(2 * math.pi)
    log_pz = -0.5 * (z ** 2 + log_2pi).sum(-1)
    log_qz = -0.5 * (eps ** 2 + logvar + log_2pi).sum(-1)
    return torch.logsumexp(log_px_z + log_pz - log_qz, dim=0) - math.log(k)   # (B,)
    ### END SOLUTION
