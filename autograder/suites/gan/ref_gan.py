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


def ref_mlp_layers(params, d_in, hidden, d_out):
    """The candidate readings of a network's parameters (in `parameters()` order) as the
    handout's MLP: [(W1, b1), (W2, b2), (W3, b3)] with W of shape (fan_in, fan_out), float64.

    With d_in, hidden, d_out all different the shapes say which is which (a weight stored
    (out, in) as nn.Linear does, or (in, out)); the two hidden biases are tried in both orders.
    [] when the parameters cannot be the handout's MLP at all."""
    import itertools

    if len({d_in, hidden, d_out}) != 3 or len(params) != 6:
        return []
    mats = [p.double() for p in params if p.dim() == 2]
    vecs = [p.double() for p in params if p.dim() == 1]
    if len(mats) != 3 or len(vecs) != 3:
        return []

    def weights(fan_in, fan_out):
        found = []
        for m in mats:
            if tuple(m.shape) == (fan_out, fan_in):
                found.append(m.T)
            if tuple(m.shape) == (fan_in, fan_out) and fan_in != fan_out:
                found.append(m)
            elif tuple(m.shape) == (fan_in, fan_out):
                found.append(m)      # a square weight: both orientations
        return found

    w1, w2, w3 = weights(d_in, hidden), weights(hidden, hidden), weights(hidden, d_out)
    b3 = [v for v in vecs if v.shape == (d_out,)]
    bh = [v for v in vecs if v.shape == (hidden,)]
    if not (len(w1) == 1 and len(w3) == 1 and w2 and len(b3) == 1 and len(bh) == 2):
        return []
    return [[(w1[0], b1), (w2_, b2), (w3[0], b3[0])]
            for w2_ in w2 for b1, b2 in itertools.permutations(bh)]


def ref_mlp_forward(layers, x, sigmoid=False):
    """Linear -> LeakyReLU(0.2) -> Linear -> LeakyReLU(0.2) -> Linear (-> sigmoid), float64."""
    h = x.double()
    for k, (w, b) in enumerate(layers):
        h = h @ w + b
        if k < 2:
            h = torch.nn.functional.leaky_relu(h, 0.2)
    return torch.sigmoid(h) if sigmoid else h
