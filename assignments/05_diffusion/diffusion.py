"""Assignment 5: a denoising diffusion model (DDPM), from the forward process to a sampler.

The forward process adds a little Gaussian noise at every step t = 1..T until nothing but
noise is left; a network eps_theta(x_t, t) learns to predict the noise that was added, and
generation runs the process backwards from pure noise x_T ~ N(0, I), one denoising step at
a time.

Conventions (the grader holds every function to them; see handout.md):

* **Indexing.** Time steps are t = 1..T. Every schedule tensor has T + 1 entries and is
  indexed by t itself: ``betas[t]`` is beta_t. Entry 0 stands for t = 0 (no noise yet):
  betas[0] = 0, alphas[0] = 1, alpha_bars[0] = 1, posterior_variance[0] = 0.
* ``t`` passed to a network or to ``q_sample`` is an int64 tensor (B,) with values in 1..T.
* Schedules are float64 tensors on the CPU; every other function returns tensors with the
  device and dtype of its data input (``x0``, ``x_t``, or the model's parameters). Compute
  every coefficient from the schedule in float64 and cast the coefficient last
  (``(1 - alpha_bars[t]).sqrt().to(x0.dtype)``): in float32, 1 - alpha_bar_1 can round to 0.
  The caller puts the schedule on the data's device. The grader runs your functions on float64 inputs and on
  PyTorch's ``meta`` device.
* Reductions: the loss is the mean over the batch *and* the data dimensions.
* Samplers return x_0 exactly as the last step gives it: no clipping.
* ``diffusion_loss``, ``train``, ``sample`` and ``ddim_sample`` talk to the network only
  through ``model(x_t, t)`` and ``model.parameters()`` (the grader also hands them models
  of its own, among them the exact noise predictor of a Gaussian mixture).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


# --------------------------------------------------------------------------- schedules


def linear_betas(T: int, beta_1: float = 1e-3, beta_T: float = 0.2) -> torch.Tensor:
    """The linear schedule: beta_t rises linearly from beta_1 (t = 1) to beta_T (t = T).

        beta_t = beta_1 + (t - 1) / (T - 1) * (beta_T - beta_1),   t = 1..T,   beta_0 = 0

    (For T = 1, beta_1 alone.) The defaults are DDPM's 1e-4 .. 0.02 for T = 1000, scaled by
    1000 / T for T = 100.

    Returns:
        float64 (T + 1,): [0, beta_1, ..., beta_T].
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def cosine_betas(T: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """The cosine schedule (Nichol & Dhariwal, 2021), defined through alpha_bar:

        f(t) = cos( (t / T + s) / (1 + s) * pi / 2 ) ** 2,     alpha_bar_t = f(t) / f(0)
        beta_t = min( 1 - alpha_bar_t / alpha_bar_{t-1},  max_beta ),   t = 1..T,   beta_0 = 0

    Without the clipping beta_T = 1 (f(T) = 0), and the reverse step divides by zero.

    Returns:
        float64 (T + 1,): [0, beta_1, ..., beta_T].
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def make_schedule(betas: torch.Tensor) -> dict[str, torch.Tensor]:
    """Everything the forward and reverse processes need, from [0, beta_1, ..., beta_T]:

        alphas[t]             = 1 - beta_t
        alpha_bars[t]         = alpha_1 * alpha_2 * ... * alpha_t          (alpha_bars[0] = 1)
        posterior_variance[t] = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t
                                (beta-tilde_t; posterior_variance[1] = 0, [0] = 0)

    Args:
        betas: float64 (T + 1,) with betas[0] = 0.
    Returns:
        {"betas", "alphas", "alpha_bars", "posterior_variance"}: each (T + 1,), dtype of betas.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


# --------------------------------------------------------------------------- forward process


def q_sample(x0: torch.Tensor, t: torch.Tensor, alpha_bars: torch.Tensor,
             noise: torch.Tensor | None = None) -> torch.Tensor:
    """A draw of x_t ~ q(x_t | x_0) = N( sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I ):

        x_t = sqrt(alpha_bar_t) * x0 + sqrt(1 - alpha_bar_t) * noise,   noise ~ N(0, I)

    Args:
        x0: (B, D) clean data; t: int64 (B,) steps in 1..T, one per row;
        alpha_bars: (T + 1,) from ``make_schedule``;
        noise: (B, D), or None to draw fresh standard normal noise.
    Returns:
        x_t: (B, D), device and dtype of x0.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


# --------------------------------------------------------------------------- the network


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the step (the Transformer's position encoding, used by DDPM):

        freq_k = 10000 ** (-k / (dim / 2)),   k = 0 .. dim/2 - 1
        emb(t) = [ sin(t freq_0), ..., sin(t freq_{dim/2-1}), cos(t freq_0), ..., cos(t freq_{dim/2-1}) ]

    Args:
        t: int64 (B,); dim: even embedding size.
    Returns:
        float32 (B, dim) on t's device.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


class EpsModel(nn.Module):
    """The noise predictor eps_theta(x_t, t): an MLP on [x_t, time_embedding(t)].

    Any small MLP that sees both x_t and the step works; two hidden layers of ``hidden``
    units with ReLU (or SiLU) activations are plenty for 2-D data and 8x8 digits.
    """

    def __init__(self, dim: int = 2, hidden: int = 128, emb_dim: int = 32):
        super().__init__()
        self.dim = dim
        self.emb_dim = emb_dim
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Args: x: (B, dim) noisy data; t: int64 (B,) in 1..T.
        Returns: the predicted noise (B, dim), device and dtype of x."""
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


# --------------------------------------------------------------------------- training


def diffusion_loss(model, x0: torch.Tensor, alpha_bars: torch.Tensor,
                   t: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
    """DDPM's simple loss on one batch:

        t ~ Uniform{1, ..., T} (one per row),  noise ~ N(0, I),  x_t = q_sample(x0, t, alpha_bars, noise)
        loss = mean over rows and dimensions of ( noise - model(x_t, t) ) ** 2

    T = len(alpha_bars) - 1. The noise the model is asked to predict is the noise that made x_t.

    Args:
        model: ``model(x_t, t) -> (B, D)``; x0: (B, D); alpha_bars: (T + 1,);
        t: int64 (B,) or None (draw it); noise: (B, D) or None (draw it).
    Returns:
        a scalar tensor (differentiable).
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def train(model, data: torch.Tensor, alpha_bars: torch.Tensor, steps: int,
          batch_size: int = 128, lr: float = 1e-3) -> list[float]:
    """Minimise ``diffusion_loss`` with Adam for exactly ``steps`` optimisation steps.

    Each step: a minibatch of ``batch_size`` rows of ``data`` drawn uniformly at random (with
    ``torch`` random functions, so the grader's seed fixes it), loss = diffusion_loss(model,
    batch, alpha_bars), zero_grad, backward, one Adam step with learning rate ``lr``.

    Args:
        model: the network; data: (N, D) on the model's device; alpha_bars: (T + 1,).
    Returns:
        the ``steps`` losses as Python floats (each before its step), in order.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


# --------------------------------------------------------------------------- reverse process


def reverse_step(x_t: torch.Tensor, t: int, eps_hat: torch.Tensor, schedule: dict,
                 z: torch.Tensor, variance: str = "posterior") -> torch.Tensor:
    """One ancestral step x_t -> x_{t-1} of the reverse process:

        mean  = ( x_t - beta_t / sqrt(1 - alpha_bar_t) * eps_hat ) / sqrt(alpha_t)
        sigma_t^2 = posterior_variance[t]  (beta-tilde_t, variance="posterior")
                  or betas[t]              (variance="beta")
        x_{t-1} = mean + sigma_t * z     for t > 1;     x_0 = mean  (no noise at the last step)

    Args:
        x_t: (B, D); t: int step in 1..T (the same for every row); eps_hat: (B, D) predicted
        noise; schedule: from ``make_schedule``; z: (B, D) standard normal noise;
        variance: "posterior" or "beta".
    Returns:
        x_{t-1}: (B, D), device and dtype of x_t.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


@torch.no_grad()
def sample(model, schedule: dict, n: int, dim: int, variance: str = "posterior") -> torch.Tensor:
    """Ancestral sampling: x_T ~ N(0, I), then ``reverse_step`` for t = T, T-1, ..., 1 with
    eps_hat = model(x_t, t) (t as an int64 (n,) tensor) and fresh z ~ N(0, I) at every step.

    Args:
        model: ``model(x_t, t)``; schedule: from ``make_schedule`` (T = len(betas) - 1);
        n: number of samples; dim: data dimension; variance: as in ``reverse_step``.
    Returns:
        x_0: (n, dim) on the device and with the dtype of the model's parameters; not clipped.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


@torch.no_grad()
def ddim_sample(model, schedule: dict, x_T: torch.Tensor, steps: int) -> torch.Tensor:
    """Deterministic DDIM sampling (Song et al., 2021, eta = 0) in ``steps`` steps from x_T.

    Visit the steps tau_i = (i * T) // steps for i = steps, steps - 1, ..., 0 (so tau_steps = T
    and tau_0 = 0, with alpha_bar_0 = 1). From t = tau_i to s = tau_{i-1}:

        eps    = model(x_t, t)
        x0_hat = ( x_t - sqrt(1 - alpha_bar_t) * eps ) / sqrt(alpha_bar_t)
        x_s    = sqrt(alpha_bar_s) * x0_hat + sqrt(1 - alpha_bar_s) * eps

    Args:
        model: ``model(x_t, t)``; schedule: from ``make_schedule``; x_T: (B, D) the start;
        steps: number of model calls, 1 <= steps <= T.
    Returns:
        x_0: (B, D), device and dtype of x_T; not clipped.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")
