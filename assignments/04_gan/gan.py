"""Assignment 4: Generative Adversarial Networks (GAN).

Two networks play a zero-sum game. The generator G maps noise z ~ N(0, I) to a sample
x = G(z); the discriminator D maps a sample to one *logit* l = D(x), whose sigmoid
sigma(l) is D's probability that x is real (drawn from the data-generating distribution)
rather than fake (drawn from G). The game (Goodfellow et al., 2014):

    min_G max_D  V(D, G) = E_x~p_data[ log sigma(D(x)) ] + E_z~N(0,I)[ log(1 - sigma(D(G(z)))) ]

Everything is written with logits, never with probabilities, because
    -log sigma(l)     = softplus(-l)        -log(1 - sigma(l)) = softplus(l)
are finite for every float l, while log(sigmoid(l)) is log(0) = -inf once sigmoid(l)
rounds to 0 (l < -104 in float32) or to 1 (l > 17).

Shapes: N is the batch size, z_dim the noise dimension, x_dim the data dimension
(2 for the 2-D sources, 64 for the 8x8 digits, flattened row by row).
Every function must work on whatever device and dtype its inputs are on: create new
tensors with `device=` (and `dtype=`) taken from an input or a parameter, never a fixed one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# --- the two networks ----------------------------------------------------------------------

class Generator(nn.Module):
    """G: noise z of shape (N, z_dim) -> samples x of shape (N, x_dim), same dtype as z.

    An MLP: Linear(z_dim, hidden) -> LeakyReLU(0.2) -> Linear(hidden, hidden) ->
    LeakyReLU(0.2) -> Linear(hidden, x_dim) -> output map, where the output map matches
    the range of the data:
        output="linear":  none (the 2-D sources live on the whole plane),
        output="sigmoid": sigmoid, so every value is in (0, 1) like the digits' pixels.
    Different z must give different x: the noise is G's only source of variety.
    Keep nn.Linear's default initialisation (the grader's training budgets assume it).

    Attributes: z_dim, x_dim (ints), as given.
    """

    def __init__(self, z_dim: int, x_dim: int, hidden: int = 128, output: str = "linear"):
        super().__init__()
        if output not in ("linear", "sigmoid"):
            raise ValueError(f"output must be 'linear' or 'sigmoid', got {output!r}")
        self.z_dim, self.x_dim, self.output = z_dim, x_dim, output
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


class Discriminator(nn.Module):
    """D: samples x of shape (N, x_dim) -> logits of shape (N,) (one per sample, not (N, 1)).

    An MLP: Linear(x_dim, hidden) -> LeakyReLU(0.2) -> Linear(hidden, hidden) ->
    LeakyReLU(0.2) -> Linear(hidden, 1), then drop the last axis only (a batch of one sample
    gives logits of shape (1,)). No sigmoid at the end:
    D returns a logit l in (-inf, inf); sigma(l) = P(real | x).
    """

    def __init__(self, x_dim: int, hidden: int = 128):
        super().__init__()
        self.x_dim = x_dim
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # YOUR CODE HERE
        raise NotImplementedError("your code goes here (see the handout)")


# --- the two losses ------------------------------------------------------------------------

def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """D's loss: minus V(D, G), i.e. binary cross-entropy with label 1 for real, 0 for fake.

        L_D = mean_i softplus(-real_logits[i]) + mean_j softplus(fake_logits[j])
            = -mean_i log sigma(D(x_i)) - mean_j log(1 - sigma(D(G(z_j))))

    Args:
        real_logits: (N_real,) D's logits on real samples.
        fake_logits: (N_fake,) D's logits on generated samples (N_fake may differ from N_real).
    Returns:
        a scalar tensor (shape ()), the *sum* of the two means, in the logits' dtype and
        device. Finite for every finite logit (+-1e4 included).
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def generator_loss(fake_logits: torch.Tensor, saturating: bool = False) -> torch.Tensor:
    """G's loss on D's logits for generated samples, shape (N,) -> scalar tensor (shape ()).

    saturating=True, the minimax loss, G minimises V's second term:
        L_G = mean_j log(1 - sigma(l_j)) = -mean_j softplus(l_j)
    Its gradient dL_G/dl_j = -sigma(l_j) / N vanishes when D confidently rejects the fakes
    (l_j -> -inf), which is exactly where G starts out: G learns almost nothing.

    saturating=False (the default), the non-saturating loss, G maximises log D(G(z)) instead:
        L_G = -mean_j log sigma(l_j) = mean_j softplus(-l_j)
    Same fixed point, but the gradient (sigma(l_j) - 1) / N is largest where G is worst.

    Returned in the logits' dtype and device; finite for every finite logit.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


# --- one round of the game -----------------------------------------------------------------

def sample_noise(G: Generator, n: int) -> torch.Tensor:
    """z ~ N(0, I), shape (n, G.z_dim), on the device and dtype of G's parameters."""
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def discriminator_step(G: nn.Module, D: nn.Module, opt_d: torch.optim.Optimizer,
                       real: torch.Tensor) -> float:
    """One optimiser step of D on L_D; G must not change and must receive no gradient.

    Draw N = real.shape[0] fresh noise vectors, make fakes G(z), and take one step of `opt_d` on
    discriminator_loss(D(real), D(fakes)). The fakes are constants for this step (detach
    them, or make them under torch.no_grad()), so no gradient reaches G's parameters.
    Reset D's gradients before backward: when this is called, D's .grad may still hold
    what the generator's step left there.

    G is anything with a `z_dim` attribute mapping (N, z_dim) -> (N, x_dim) (use
    sample_noise); D maps (N, x_dim) -> (N,) logits; opt_d holds exactly D's parameters.
    Leave `real` as it is (no in-place change of the caller's batch).
    Returns L_D (before the step) as a Python float.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def generator_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer, n: int,
                   saturating: bool = False) -> float:
    """One optimiser step of G on L_G; D's parameters must not change.

    Draw n noise vectors, and take one step of `opt_g` on generator_loss(D(G(z)), saturating).
    The gradient must flow *through* D into G, so the fakes are not detached here; D's
    parameters receive gradients on the way (harmless: only opt_g steps). Reset G's
    gradients before backward: G's .grad may hold stale values when this is called.
    Returns L_G (before the step) as a Python float.
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def train_step(G: nn.Module, D: nn.Module, opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer, real: torch.Tensor,
               saturating: bool = False) -> dict:
    """One round of the game: discriminator_step on `real`, then generator_step with
    n = real.shape[0]. Returns {"d_loss": float, "g_loss": float}."""
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


def make_optimizers(G: nn.Module, D: nn.Module, lr: float = 1e-3,
                    betas: tuple = (0.5, 0.999)) -> tuple:
    """(opt_g, opt_d): two Adam optimisers with this lr and betas; opt_g holds exactly G's
    parameters and opt_d exactly D's, so that each player only ever moves its own network.
    (beta1 = 0.5 rather than 0.9: momentum carried over from an opponent who has since
    moved makes the game oscillate; Radford et al., 2016.)"""
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


# --- training and sampling -----------------------------------------------------------------

def train(x: torch.Tensor, steps: int, *, z_dim: int = 8, hidden: int = 128,
          output: str = "linear", batch_size: int = 128, lr: float = 1e-3,
          saturating: bool = False) -> tuple:
    """Train a GAN on the rows of x for exactly `steps` rounds of train_step.

    Args:
        x: (M, x_dim) training samples (on the device to train on).
        steps: number of rounds (one discriminator step + one generator step each).
        z_dim, hidden, output: passed to Generator(z_dim, x_dim, hidden, output) and
            Discriminator(x_dim, hidden); both built on x's device.
        batch_size: real samples per round, drawn afresh at every round, uniformly with
            replacement from all of x's rows.
        lr: for make_optimizers(G, D, lr) (default betas).
        saturating: which generator loss to use (passed to train_step).
    Returns:
        (G, D, history) where history = {"d_loss": [...], "g_loss": [...]}: the floats each
        round's train_step returned (lists of length `steps`; steps=0 gives empty lists).
    The randomness comes from torch's global generator (the grader seeds it).
    """
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")


@torch.no_grad()
def sample(G: nn.Module, n: int) -> torch.Tensor:
    """n samples G(z), z ~ N(0, I) (sample_noise): shape (n, G.x_dim), no autograd graph, in G's
    dtype and on G's device."""
    # YOUR CODE HERE
    raise NotImplementedError("your code goes here (see the handout)")
