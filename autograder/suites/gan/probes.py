"""Probes for the gan suite: they run in the sandboxed worker and call the student's gan.py.

Every probe returns tensors and plain values only; all judging happens in test_gan.py.

The isolation probes (discriminator_step / generator_step / train_step) use two tiny
networks of our own instead of the student's, so that a bug in Generator/Discriminator
cannot hide or fake a bug in the training step, and so that the judge can recompute the
exact update in float64:
  * _ConstG ignores its noise (x = b for every z): the fakes are known whatever noise the
    student draws, and b is G's only parameter. It records every noise batch it is given
    (values, per call of the step), and the judge checks their shape, freshness and moments:
    a constant G alone would hide how many z were drawn, and from what;
  * _LinD is logistic regression, D(x) = x w + c, logits of shape (N,).

The loop's mechanics (train_mechanics) are recorded with PyTorch's global module-forward and
optimiser-step hooks, so they see the student's own G, D and optimisers however the code
builds and calls them.

Every probe that runs a student function downstream of the losses (the steps, train_step,
train) runs it :func:`substituted`: the grader's ``discriminator_loss`` and ``generator_loss``
(judged by test_discriminator_loss and test_generator_loss) are in the student's module for
the duration of the call, so the tests of the steps and of the loop judge those alone.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from autograder.sandbox.worker import readable_meta, shuffled_weights, student, substituted


def _gan():
    return student("gan")


# --- the grader's pieces ---------------------------------------------------------------------
# The handout's definitions, exactly (ref_gan.py holds the same maths in float64).


def _ref_discriminator_loss(real_logits, fake_logits):
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def _ref_generator_loss(fake_logits, saturating=False):
    if saturating:
        return -F.softplus(fake_logits).mean()
    return F.softplus(-fake_logits).mean()


# The losses the student's steps and loop call; never a step, train_step, train or a network
# (those are what the tests judge), nor sample_noise (no test of its own).
LOSSES = {"discriminator_loss": _ref_discriminator_loss, "generator_loss": _ref_generator_loss}


# --- networks --------------------------------------------------------------------------------

def generator_forward(z_dim, x_dim, hidden, output, n, device="cpu", dtype="float32"):
    """G(z) for a fixed z, the same weights on every device (built on the CPU, then moved)."""
    gan = _gan()
    G = gan.Generator(z_dim, x_dim, hidden, output)
    z = torch.randn(n, z_dim)
    if dtype == "float64":
        G, z = G.double(), z.double()
    G, z = G.to(device), z.to(device)
    with torch.no_grad():
        x = G(z)
        # a second, different noise batch: a generator that ignores z returns the same rows
        x2 = G(torch.randn(n, z_dim, dtype=z.dtype).to(device)) if device != "meta" else None
    return {"x": x, "x2": x2, "z_dim": getattr(G, "z_dim", None), "x_dim": getattr(G, "x_dim", None)}


def discriminator_one(x_dim, hidden):
    """D(x) for a batch of one sample."""
    gan = _gan()
    D = gan.Discriminator(x_dim, hidden)
    with torch.no_grad():
        return D(torch.randn(1, x_dim))


def discriminator_forward(x_dim, hidden, n, device="cpu", dtype="float32"):
    """D(x) on inputs at three scales (x ~ N(0, 1) times 1, 10, 1000)."""
    gan = _gan()
    D = gan.Discriminator(x_dim, hidden)
    x = torch.randn(n, x_dim)
    x = torch.cat([x, 10 * x, 1000 * x])
    if dtype == "float64":
        D, x = D.double(), x.double()
    D, x = D.to(device), x.to(device)
    with torch.no_grad():
        return D(x)


def network_outputs(which, dims, output, inputs):
    """A fresh Generator(*dims, output=output) or Discriminator(*dims): its parameters (in
    `parameters()` order) and its outputs on each of the judge's input batches (all of the same
    shape), first in train() mode, then in eval() mode, then in train() mode again."""
    gan = _gan()
    net = gan.Generator(*dims, output=output) if which == "G" else gan.Discriminator(*dims)
    out = {"params": [p.detach().clone() for p in net.parameters()]}
    with torch.no_grad():
        for key, mode in (("train", True), ("eval", False), ("train_again", True)):
            net.train(mode)
            out[key] = [net(x.clone()) for x in inputs]
    return out


# --- losses ----------------------------------------------------------------------------------

def discriminator_loss(real_logits, fake_logits, device="cpu", with_grad=True):
    """L_D and dL_D/d(logits) for the given logits, computed on `device`."""
    gan = _gan()
    real = real_logits.to(device).requires_grad_(with_grad)
    fake = fake_logits.to(device).requires_grad_(with_grad)
    loss = gan.discriminator_loss(real, fake)
    if not with_grad or device == "meta":
        return {"loss": loss}
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        return {"loss": loss, "grad_real": None, "grad_fake": None}
    g_real, g_fake = torch.autograd.grad(loss.sum(), [real, fake], allow_unused=True)
    return {"loss": loss.detach(), "grad_real": g_real, "grad_fake": g_fake}


def generator_loss(fake_logits, saturating, device="cpu", with_grad=True):
    """L_G and dL_G/d(logits) for the given logits, computed on `device`."""
    gan = _gan()
    fake = fake_logits.to(device).requires_grad_(with_grad)
    loss = gan.generator_loss(fake, saturating=saturating)
    if not with_grad or device == "meta":
        return {"loss": loss}
    if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
        return {"loss": loss, "grad": None}
    (g,) = torch.autograd.grad(loss.sum(), [fake], allow_unused=True)
    return {"loss": loss.detach(), "grad": g}


# --- the training step -----------------------------------------------------------------------

class _ConstG(nn.Module):
    def __init__(self, z_dim, x_dim):
        super().__init__()
        self.z_dim, self.x_dim = z_dim, x_dim
        self.b = nn.Parameter(torch.randn(x_dim))
        self.noise = []

    def forward(self, z):
        self.noise.append(z.detach().clone())
        return self.b.expand(z.shape[0], -1)


class _LinD(nn.Module):
    def __init__(self, x_dim):
        super().__init__()
        self.lin = nn.Linear(x_dim, 1)

    def forward(self, x):
        return self.lin(x).squeeze(-1)


def _d_params(D):
    return {"w": D.lin.weight.detach().clone().squeeze(0), "c": D.lin.bias.detach().clone()}


def _stale(params):
    """Leave gradients in .grad, as the opponent's step would have."""
    for p in params:
        p.grad = torch.randn_like(p)


def _confident(D, logit):
    """A confident discriminator: weights near 0 and bias `logit`, so that every logit, real or
    fake, is close to `logit` (None: leave nn.Linear's initialisation)."""
    if logit is not None:
        with torch.no_grad():
            D.lin.weight.mul_(0.1)
            D.lin.bias.fill_(float(logit))


def discriminator_steps(x_dim, n, lr, momentum, calls, confident=None):
    """`calls` discriminator_step calls with SGD(lr, momentum) on D, stale D gradients before
    each; snapshots of both networks after each call."""
    gan = _gan()
    G, D = _ConstG(3, x_dim), _LinD(x_dim)
    _confident(D, confident)
    opt_d = torch.optim.SGD(D.parameters(), lr=lr, momentum=momentum)
    out = {"b": G.b.detach().clone(), "d0": _d_params(D), "reals": [], "after": [], "losses": [],
           "g_grad": [], "g_b": [], "noise": []}
    for _ in range(calls):
        real = torch.randn(n, x_dim) + 1.0
        given = real.clone()
        _stale(D.parameters())
        G.b.grad = None
        G.noise = []
        with substituted(gan, **LOSSES):
            loss = gan.discriminator_step(G, D, opt_d, given)
        out["noise"].append(G.noise)
        out["reals"].append(real)
        out.setdefault("reals_after", []).append(given)
        out["losses"].append(loss)
        out["after"].append(_d_params(D))
        out["g_grad"].append(None if G.b.grad is None else G.b.grad.detach().clone())
        out["g_b"].append(G.b.detach().clone())
    return out


def generator_steps(x_dim, n, lr, momentum, calls, saturating, confident=None):
    """`calls` generator_step calls with SGD(lr, momentum) on G, stale G gradients before each;
    snapshots of both networks after each call."""
    gan = _gan()
    G, D = _ConstG(3, x_dim), _LinD(x_dim)
    _confident(D, confident)
    opt_g = torch.optim.SGD(G.parameters(), lr=lr, momentum=momentum)
    out = {"b0": G.b.detach().clone(), "d0": _d_params(D), "b": [], "d": [], "losses": [], "noise": []}
    for _ in range(calls):
        _stale(G.parameters())
        G.noise = []
        with substituted(gan, **LOSSES):
            loss = gan.generator_step(G, D, opt_g, n, saturating=saturating)
        out["noise"].append(G.noise)
        out["losses"].append(loss)
        out["b"].append(G.b.detach().clone())
        out["d"].append(_d_params(D))
    return out


def train_step(x_dim, n, lr, saturating):
    """One train_step with plain SGD on both networks."""
    gan = _gan()
    G, D = _ConstG(3, x_dim), _LinD(x_dim)
    opt_g = torch.optim.SGD(G.parameters(), lr=lr)
    opt_d = torch.optim.SGD(D.parameters(), lr=lr)
    out = {"b0": G.b.detach().clone(), "d0": _d_params(D)}
    real = torch.randn(n, x_dim) + 1.0
    with substituted(gan, **LOSSES):
        losses = gan.train_step(G, D, opt_g, opt_d, real, saturating=saturating)
    out.update(real=real, losses=losses, b=G.b.detach().clone(), d=_d_params(D))
    return out


def optimizers(lr, betas):
    """Which parameters each optimiser from make_optimizers holds ('G' / 'D' / 'other')."""
    gan = _gan()
    G, D = _ConstG(3, 2), _LinD(2)
    owner = {id(p): "G" for p in G.parameters()}
    owner.update({id(p): "D" for p in D.parameters()})
    pair = gan.make_optimizers(G, D, lr=lr, betas=betas)
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        return {"pair": False}
    out = {"pair": True, "n_G": len(list(G.parameters())), "n_D": len(list(D.parameters()))}
    for name, opt in zip(("opt_g", "opt_d"), pair):
        if not isinstance(opt, torch.optim.Optimizer):
            out[name] = None
            continue
        groups = opt.param_groups
        out[name] = {
            "type": type(opt).__name__,
            "owners": [owner.get(id(p), "other") for g in groups for p in g["params"]],
            "lr": [float(g.get("lr", float("nan"))) for g in groups],
            "betas": [list(map(float, g["betas"])) if "betas" in g else None for g in groups],
        }
    return out


# --- the loop and sampling -----------------------------------------------------------------

def train_loop(steps, batch_size):
    """A very short train() on the digits: history lengths, output range, sample shapes."""
    import kitdata.digits

    gan = _gan()
    x = torch.from_numpy(kitdata.digits.load_digits("train")[0][:256])
    with substituted(gan, **LOSSES):
        G, D, history = gan.train(x, steps, z_dim=4, hidden=16, output="sigmoid", batch_size=batch_size, lr=1e-3)
    with torch.no_grad():
        xs = G(torch.randn(50, 4))
        logits = D(x[:10])
    return {"history": history, "x": xs, "logits": logits,
            "G_is_generator": isinstance(G, gan.Generator), "D_is_discriminator": isinstance(D, gan.Discriminator)}


def train_mechanics(x, steps, z_dim, hidden, batch_size, lr, saturating):
    """train() on x, every forward of the student's G and D and every optimiser step recorded
    in order by global hooks (whatever the student's code calls them): the judge recomputes
    each round's losses from D's logits and checks batches, step count and optimiser settings."""
    gan = _gan()
    nets = (gan.Generator, gan.Discriminator)
    events = []

    def on_forward(module, inputs, output):
        if isinstance(module, nets) and inputs and isinstance(inputs[0], torch.Tensor):
            events.append({"net": "G" if isinstance(module, gan.Generator) else "D", "id": id(module),
                           "grad": torch.is_grad_enabled(), "input": inputs[0].detach().clone(),
                           "output": output.detach().clone() if isinstance(output, torch.Tensor) else None,
                           "weights": [p.detach().clone() for p in module.parameters()]})

    def on_step(opt, args, kwargs):
        stepped = [p for g in opt.param_groups for p in g["params"]]
        events.append({"net": "step", "params": [id(p) for p in stepped],
                       "grads": {id(p): None if p.grad is None else p.grad.detach().clone() for p in stepped},
                       "lr": [float(g.get("lr", float("nan"))) for g in opt.param_groups],
                       "betas": [list(map(float, g["betas"])) if "betas" in g else None for g in opt.param_groups],
                       "type": type(opt).__name__})

    from torch.nn.modules.module import register_module_forward_hook
    from torch.optim.optimizer import register_optimizer_step_pre_hook
    hooks = [register_module_forward_hook(on_forward), register_optimizer_step_pre_hook(on_step)]
    try:
        with substituted(gan, **LOSSES):
            G, D, history = gan.train(x, steps, z_dim=z_dim, hidden=hidden, output="linear",
                                      batch_size=batch_size, lr=lr, saturating=saturating)
    finally:
        for h in hooks:
            h.remove()
    owner = {id(p): "G" for p in G.parameters()}
    owner.update({id(p): "D" for p in D.parameters()})
    order = {id(p): k for net in (G, D) for k, p in enumerate(net.parameters())}
    for e in events:
        if e["net"] == "step":
            # the gradients each step used, in its network's parameters() order
            grads = e.pop("grads")
            ids = sorted((i for i in e["params"] if i in order), key=order.get)
            e["grads"] = [grads[i] for i in ids]
            e["owners"] = sorted({owner.get(i, "other") for i in e.pop("params")})
        else:
            e["id"] = {id(G): "G", id(D): "D"}.get(e["id"], "other")
    return {"events": events, "history": history,
            "n_params": [sum(p.numel() for p in G.parameters()), sum(p.numel() for p in D.parameters())]}


def train_on_device(device, x_dim, z_dim, hidden, n, steps):
    """train(x, steps) for x on `device`, then sample(G, n): where the networks were built and
    what came out. On `meta` under ``readable_meta``: the rounds (forward, backward,
    optimiser steps) run on meta."""
    gan = _gan()
    x = torch.randn(6, x_dim).to(device)
    with readable_meta() if device == "meta" else contextlib.nullcontext():
        G, D, history = gan.train(x, steps, z_dim=z_dim, hidden=hidden, batch_size=4)
        samples = gan.sample(G, n)
    return {"devices": sorted({str(p.device.type) for net in (G, D) for p in net.parameters()}),
            "samples": samples}


class _IdentityG(nn.Module):
    """x = z: sample(G, n) returns the noise the student drew, in the dtype it drew it
    (the parameter only tells sample_noise G's device and dtype)."""

    def __init__(self, dim):
        super().__init__()
        self.z_dim = self.x_dim = dim
        self.w = nn.Parameter(torch.ones(dim))

    def forward(self, z):
        return z.clone()


def sampling_noise(n, dim, dtype="float32"):
    """sample(G, n) for G(z) = z, in float32 or float64, and sample(G, 1)."""
    gan = _gan()
    G = _IdentityG(dim)
    if dtype == "float64":
        G = G.double()
    return {"z": gan.sample(G, n), "one": gan.sample(G, 1)}


def sampling_seeded(n, dim, seeds):
    """sample(G, n) for G(z) = z right after torch.manual_seed(k), for each k of `seeds`: the
    noise must come from torch's global generator."""
    gan = _gan()
    G = _IdentityG(dim)
    out = []
    for k in seeds:
        torch.manual_seed(k)
        out.append(gan.sample(G, n))
    return out


def sampling(n, device="cpu"):
    """sample(G, n) twice, for a fixed G moved to `device`."""
    gan = _gan()
    G = gan.Generator(5, 3, 16, "linear").to(device)
    a = gan.sample(G, n)
    if device == "meta":
        return {"a": a}
    b = gan.sample(G, n)
    return {"a": a, "b": b, "requires_grad": bool(getattr(a, "requires_grad", False))}


# --- sample quality: the student's own loop, a fixed budget of steps ---------------------------

def _history(history):
    def floats(key):
        try:
            return torch.tensor([float(v) for v in history[key]], dtype=torch.float64)
        except Exception:
            return None
    if not isinstance(history, dict):
        return None, None
    return floats("d_loss"), floats("g_loss")


def _generate(gan, G, z, n_samples):
    """What the judge scores: G(z) from the judge's noise, the same through a copy of G with
    its weights shuffled (quality that survives the shuffle was not learned), and the
    handout's sample(G, n)."""
    with torch.no_grad():
        gz = G(z)
        twin = shuffled_weights(G, generator=torch.Generator().manual_seed(0))
        gz_shuffled = twin(z)
    return {"gz": gz, "gz_shuffled": gz_shuffled, "samples": gan.sample(G, n_samples)}


def train_mixture(x, steps, batch_size, lr, z_dim, hidden, z, n_samples):
    """Train on the judge's 2-D samples x (a hidden variant of a mixture); generate from z."""
    gan = _gan()
    with substituted(gan, **LOSSES):
        G, D, history = gan.train(x, steps, z_dim=z_dim, hidden=hidden, output="linear",
                                  batch_size=batch_size, lr=lr)
    d, g = _history(history)
    return {**_generate(gan, G, z, n_samples), "d_loss": d, "g_loss": g}


def train_digits(x, steps, batch_size, lr, z_dim, hidden, z, n_samples):
    """Train on the judge's digits x (N, 64) (the training digits, pixels permuted in secret)."""
    gan = _gan()
    with substituted(gan, **LOSSES):
        G, D, history = gan.train(x, steps, z_dim=z_dim, hidden=hidden, output="sigmoid",
                                  batch_size=batch_size, lr=lr)
    d, g = _history(history)
    return {**_generate(gan, G, z, n_samples), "d_loss": d, "g_loss": g}
