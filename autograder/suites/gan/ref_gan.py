"""The gan suite's float64 reference maths (judge side): the two losses, and the closed forms
of the isolation probes' networks (a constant generator x = b, a logistic-regression
discriminator D(x) = x w + c, parameters theta = (w, c)) and of the optimisers they use."""
from __future__ import annotations

import torch


def ref_softplus(x):
    return torch.logaddexp(torch.zeros_like(x), x)


def ref_d_loss(real, fake):
    """L_D = mean softplus(-r) + mean softplus(f) (the sum of two means)."""
    return ref_softplus(-real).mean() + ref_softplus(fake).mean()


def ref_g_loss(fake, saturating):
    """L_G^sat = -mean softplus(f); L_G = mean softplus(-f)."""
    return -ref_softplus(fake).mean() if saturating else ref_softplus(-fake).mean()


def ref_theta(d):
    """The probe's discriminator parameters {"w", "c"} as one float64 vector (w, c)."""
    return torch.cat([d["w"].double().flatten(), d["c"].double().flatten()])


def ref_d_loss_at(theta, real, b, swapped=False, real_only=False):
    """L_D of D(x) = x w + c on `real` and the constant fake b (variants: labels swapped, no fakes)."""
    w, c = theta[:-1], theta[-1]
    r, f = real.double() @ w + c, (b.double() @ w + c).reshape(1)
    if swapped:
        r, f = -r, -f
    return ref_softplus(-r).mean() + (0.0 if real_only else ref_softplus(f).mean())


def ref_g_loss_at(b, theta, saturating):
    """L_G of the constant fake b under D(x) = x w + c."""
    w, c = theta[:-1], theta[-1]
    return ref_g_loss((b.double() @ w + c).reshape(1), saturating)


def ref_grad(fn, theta):
    theta = theta.clone().requires_grad_()
    (g,) = torch.autograd.grad(fn(theta), [theta])
    return g


def ref_sgd(theta, grads_fn, lr, momentum, calls):
    """PyTorch SGD with momentum (buf = g on the first step, then m * buf + g): theta after each call."""
    out, buf = [], None
    for k in range(calls):
        g = grads_fn(theta, k)
        buf = g if buf is None else momentum * buf + g
        theta = theta - lr * buf
        out.append(theta)
    return out


def ref_mlp_params(d_in, hidden, d_out):
    """Parameters of Linear(d_in, h) -> Linear(h, h) -> Linear(h, d_out), biases included."""
    return d_in * hidden + hidden + hidden * hidden + hidden + hidden * d_out + d_out
