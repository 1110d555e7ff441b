"""Hidden probes for the VAE assignment: they run in the sandboxed worker and call the
student's ``vae.py``. They measure nothing; the judge (test_vae.py) does.

A probe that runs a student function downstream of others (``train``, ``elbo``) runs it
:func:`substituted`: the upstream maths helpers that other tests judge (``kl_divergence``,
``reconstruction_loss``, ``reparameterize``, and under ``train`` also ``elbo``) are the
grader's own correct ones for the duration of the call, so each test judges only its own
function (the student's code looks them up in its module at call time).

Several probes hand the student's functions ``FixedVAE``, a model of the grader's own with
weights chosen by the judge, so the judge can compute exact float64 references for the
ELBO, the prior samples and the IWAE bound without trusting the student's network.
"""

from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.sandbox.wire import Raised
from autograder.sandbox.worker import (attempt, attempt_detached, describe, detached, readable_meta, shuffled_weights,
                                        student, substituted)

X_DIM = 64
TRAIN_BATCH = 64
TRAIN_LR = 2e-3


class FixedVAE(nn.Module):
    """Linear Gaussian encoder, MLP (or linear) Bernoulli decoder, weights from the judge.

    weights: enc_mu_w (D, Z), enc_mu_b (Z,), enc_lv_w (D, Z), enc_lv_b (Z,),
             [dec_w1 (Z, H), dec_b1 (H,)]  (absent: a linear decoder), dec_w2 (H or Z, D), dec_b2 (D,).
    """

    def __init__(self, weights: dict, cast_latents: bool = False):
        super().__init__()
        self.cast_latents = cast_latents
        self.names = sorted(weights)
        for name in self.names:
            setattr(self, name, nn.Parameter(weights[name].clone()))
        self.z_dim = weights["enc_mu_w"].shape[1]
        self.x_dim = weights["dec_w2"].shape[1]

    def encode(self, x):
        return x @ self.enc_mu_w + self.enc_mu_b, x @ self.enc_lv_w + self.enc_lv_b

    def decode(self, z):
        if self.cast_latents:  # a float32 z is judged by test_device_parity, not here
            z = z.to(self.dec_w2.dtype)
        h = torch.tanh(z @ self.dec_w1 + self.dec_b1) if "dec_w1" in self.names else z
        return h @ self.dec_w2 + self.dec_b2

    def forward(self, x):  # for students whose elbo calls model(x)
        mu, logvar = self.encode(x)
        return self.decode(student("vae").reparameterize(mu, logvar)), mu, logvar


# --------------------------------------------------------------------------- the grader's pieces
# The handout's definitions, exactly (the judge's ref_vae.py holds the same maths in float64).


def _ref_reparameterize(mu, logvar):
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def _ref_kl_divergence(mu, logvar):
    return 0.5 * (mu ** 2 + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def _ref_reconstruction_loss(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=-1)


def _ref_elbo(model, x):
    mu, logvar = model.encode(x)
    recon = _ref_reconstruction_loss(model.decode(_ref_reparameterize(mu, logvar)), x)
    kl = _ref_kl_divergence(mu, logvar)
    return {"elbo": -(recon + kl), "recon": recon, "kl": kl}


# What the student's elbo may call (judged by test_reparameterize_*, test_kl_divergence,
# test_elbo_terms), and what train may call (elbo too: judged by test_elbo_terms and
# test_elbo_uses_sample). Never train, sample or the VAE class: those are what tests judge.
UNDER_ELBO = {"reparameterize": _ref_reparameterize, "kl_divergence": _ref_kl_divergence,
              "reconstruction_loss": _ref_reconstruction_loss}
UNDER_TRAIN = {**UNDER_ELBO, "elbo": _ref_elbo}


def _fixed(weights, device="cpu", cast_latents=False):
    return FixedVAE(weights, cast_latents).to(device)


# --------------------------------------------------------------------------- shapes


def shapes(batch: int, z_dim: int, k: int, inputs: dict) -> dict:
    """Every function's output on the student's own VAE(z_dim=z_dim) and the judge's inputs
    {x, mu, logvar, z, logits}; each call gets its own copy of them, and "inputs_after" says
    what each call left in its copy (a function must not change its inputs)."""
    vae = student("vae")
    model = vae.VAE(x_dim=X_DIM, z_dim=z_dim)
    calls = {
        "encode": (lambda x: model.encode(x), ["x"]),
        "decode": (lambda z: model.decode(z), ["z"]),
        "forward": (lambda x: model(x), ["x"]),
        "reparameterize": (lambda mu, logvar: vae.reparameterize(mu, logvar), ["mu", "logvar"]),
        "kl_divergence": (lambda mu, logvar: vae.kl_divergence(mu, logvar), ["mu", "logvar"]),
        "reconstruction_loss": (lambda logits, x: vae.reconstruction_loss(logits, x), ["logits", "x"]),
        "elbo": (lambda x: vae.elbo(model, x), ["x"]),
        "sample": (lambda: vae.sample(model, batch), []),
        "iwae_bound": (lambda x: vae.iwae_bound(model, x, k), ["x"]),
    }
    out, after = {}, {}
    for name, (call, args) in calls.items():
        copies = [inputs[a].clone() for a in args]
        out[name] = attempt_detached(lambda: call(*copies))
        after[name] = dict(zip(args, copies))
    out["inputs_after"] = after
    out["structure"] = attempt_detached(lambda: _structure(model, inputs["x"]))
    return out


def _structure(model, x) -> dict:
    """What forward and encode give on the same x: forward's (mu, logvar) and logits in
    train() and eval() mode, encode's (mu, logvar) and decode(mu)."""
    mu, logvar = model.encode(x)
    model.train()
    train = model(x)
    model.eval()
    evaluation = model(x)
    model.train()
    return {"encode": [mu, logvar], "decode_mu": model.decode(mu), "forward_train": train, "forward_eval": evaluation}


# --------------------------------------------------------------------------- maths


def kl(mu, logvar):
    return student("vae").kl_divergence(mu, logvar)


def reparam_gradients(mu, logvar, w) -> dict:
    """z = reparameterize(mu, logvar); back-propagate sum(w * z) to mu and logvar."""
    vae = student("vae")
    mu = mu.clone().requires_grad_(True)
    logvar = logvar.clone().requires_grad_(True)
    z = vae.reparameterize(mu, logvar)
    if isinstance(z, torch.Tensor) and z.requires_grad:
        (w * z).sum().backward()
    return {"z": z.detach() if isinstance(z, torch.Tensor) else z, "mu_grad": mu.grad, "logvar_grad": logvar.grad}


def reparam_draws(mu, logvar, n: int) -> list:
    """Two calls, each n draws for one (mu, logvar) row (reparameterize on n copies of it)."""
    vae = student("vae")
    return [attempt_detached(lambda: vae.reparameterize(mu.repeat(n, 1), logvar.repeat(n, 1))) for _ in range(2)]


def recon(logits, x):
    return student("vae").reconstruction_loss(logits, x)


def elbo_terms(weights, x) -> dict:
    """The student's elbo on the grader's model, with the grader's kl_divergence (judged by
    test_kl_divergence; reconstruction_loss is judged here, so it stays the student's)."""
    vae = student("vae")
    with torch.no_grad(), substituted(vae, kl_divergence=_ref_kl_divergence):
        return vae.elbo(_fixed(weights), x)


def elbo_replicas(weights, x, replicas: int) -> dict:
    """elbo on `replicas` copies of each row of x (row-major: x[0], x[1], ..., x[0], ...),
    with the grader's reparameterize, kl_divergence and reconstruction_loss."""
    vae = student("vae")
    with torch.no_grad(), substituted(vae, **UNDER_ELBO):
        return vae.elbo(_fixed(weights), x.repeat(replicas, 1))


def prior_samples(weights, n: int, z_dim: int, reseed: int) -> dict:
    """sample(model, n) on the grader's linear decoder, called four times: twice in a row,
    then twice right after torch.manual_seed(reseed). Each call's first 200 rows, and the
    first z_dim columns of all n (where the decoder wrote z), to keep the reply small."""
    vae = student("vae")
    model = _fixed(weights, cast_latents=True)

    def draw():
        out = vae.sample(model, n)
        if isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[0] == n and out.shape[1] >= z_dim:
            return {"shape": list(out.shape), "head": out[:200], "latent": out[:, :z_dim]}
        return out

    calls = [attempt_detached(draw), attempt_detached(draw)]
    for _ in range(2):
        torch.manual_seed(reseed)
        calls.append(attempt_detached(draw))
    return {"calls": calls}


# Rows times k per call of iwae_bound: its (rows, k, pixels) tensors stay near 10 MB each.
IWAE_DRAWS_PER_CALL = 20_000


def iwae(weights, x, replicas: int, ks: list) -> dict:
    """{"k": estimates (replicas * B,)} for each k, on `replicas` copies of x, in calls of at
    most IWAE_DRAWS_PER_CALL / k rows (each estimate is its own row's: the split changes no
    law, only the memory); a call that returns no tensor is returned as it is."""
    vae = student("vae")
    model = _fixed(weights)
    xs = x.repeat(replicas, 1)
    out = {}
    with torch.no_grad():
        for k in ks:
            parts = [vae.iwae_bound(model, rows, int(k)) for rows in xs.split(max(1, IWAE_DRAWS_PER_CALL // int(k)))]
            tensors = all(isinstance(p, torch.Tensor) and p.dim() == 1 for p in parts)
            out[str(k)] = torch.cat(parts) if tensors else parts[0]
    return out


def iwae_calls(weights, x, k: int, calls: int) -> list:
    """`calls` separate calls iwae_bound(model, x, k) on the same x."""
    vae = student("vae")
    model = _fixed(weights)
    with torch.no_grad():
        return [attempt_detached(lambda: vae.iwae_bound(model, x, k)) for _ in range(calls)]


# --------------------------------------------------------------------------- devices


def parity(device: str, dtype_name: str, weights, x) -> dict:
    """The same computations on `device` in `dtype`; deterministic ones are comparable
    across devices, and on 'meta' every output must stay a meta tensor."""
    vae = student("vae")
    if device == "meta":
        # torch.distributions validates its arguments with .item(), which meta tensors
        # cannot do: a correct solution built on torch.distributions must not fail for that.
        validate = torch.distributions.Distribution._validate_args
        torch.distributions.Distribution.set_default_validate_args(False)
        try:
            return _parity(vae, device, dtype_name, weights, x)
        finally:
            torch.distributions.Distribution.set_default_validate_args(validate)
    return _parity(vae, device, dtype_name, weights, x)


def _parity(vae, device, dtype_name, weights, x) -> dict:
    dtype = getattr(torch, dtype_name)
    x = x.to(device=device, dtype=dtype)
    mu = (x[:, :4] * 2 - 1).contiguous()
    logvar = (x[:, 4:8] - 0.5).contiguous()
    fixed = _fixed({k: v.to(dtype) for k, v in weights.items()}, device)
    torch.manual_seed(torch.initial_seed())  # the same initial weights on every device (the test's seed)
    with torch.no_grad():
        out = {
            "kl_divergence": attempt_detached(lambda: vae.kl_divergence(mu, logvar)),
            "reparameterize": attempt_detached(lambda: vae.reparameterize(mu, logvar)),
            "reconstruction_loss": attempt_detached(lambda: vae.reconstruction_loss(x * 4 - 2, x)),
            "elbo": attempt_detached(lambda: vae.elbo(fixed, x)),
            "sample": attempt_detached(lambda: vae.sample(fixed, 5)),
            "iwae_bound": attempt_detached(lambda: vae.iwae_bound(fixed, x, 4)),
        }
        try:
            model = vae.VAE(x_dim=X_DIM, z_dim=4).to(device=device, dtype=dtype)
        except Exception as error:  # noqa: BLE001
            out["encode"] = out["decode"] = Raised(describe(error))
        else:
            out["encode"] = attempt_detached(lambda: model.encode(x))
            out["decode"] = attempt_detached(lambda: model.decode(mu))
    return out


# --------------------------------------------------------------------------- training

class RecordingVAE(FixedVAE):
    """The grader's model, recording what the student's ``train`` shows it: every batch
    ``encode`` sees, grouped by the weights it was seen with (a new group each time the
    weights have changed, i.e. after each optimiser step)."""

    def __init__(self, weights: dict):
        super().__init__(weights)
        self.groups: list[dict] = []

    def weights(self) -> dict:
        return {name: getattr(self, name).detach().clone() for name in self.names}

    def encode(self, x):
        now = self.weights()
        last = self.groups[-1]["weights"] if self.groups else None
        if last is None or any(not torch.equal(now[k], last[k]) for k in now):
            self.groups.append({"weights": now, "batches": []})
        self.groups[-1]["batches"].append(x.detach().clone())
        return super().encode(x)


def train_mechanics(weights, data, steps: int, batch_size: int, lr: float, reseed: int) -> dict:
    """The student's train (with the grader's elbo and its pieces) on the grader's model (tiny
    encoder sigma: a deterministic loss) and the judge's data: its returned losses as they are, the batches and weights of every
    step, and the final weights. Then twice more right after torch.manual_seed(reseed), with
    Python's and NumPy's generators seeded differently each time: the batches of those runs
    ("rerun_batches"), which only torch's generator may decide."""
    import random

    import numpy as np

    vae = student("vae")
    model = RecordingVAE(weights)
    with substituted(vae, **UNDER_TRAIN):
        losses = attempt_detached(lambda: vae.train(model, data, steps, batch_size=batch_size, lr=lr))
    out = {"losses": losses, "groups": model.groups[: steps + 2], "steps_seen": len(model.groups),
           "final": model.weights()}
    reruns = []
    for other in (1, 2):
        torch.manual_seed(reseed)
        random.seed(other)
        np.random.seed(other)
        again = RecordingVAE(weights)
        with substituted(vae, **UNDER_TRAIN):
            attempt(lambda: vae.train(again, data, steps, batch_size=batch_size, lr=lr))
        reruns.append([group["batches"][0] for group in again.groups[:steps]])
    out["rerun_batches"] = reruns
    return out


def train_on(device: str) -> object:
    """Two steps of the student's train on the student's VAE and data on `device` (on 'meta'
    under ``readable_meta``: anything the loop does must stay on the device it was given)."""
    vae = student("vae")
    model = vae.VAE(x_dim=X_DIM, z_dim=3).to(device)
    data = torch.rand(20, X_DIM).to(device)
    if device != "meta":
        return attempt(lambda: vae.train(model, data, 2, batch_size=5, lr=1e-3))
    with readable_meta():
        return attempt(lambda: vae.train(model, data, 2, batch_size=5, lr=1e-3))


_TRAINED: dict = {}


def train_and_sample(x_train: torch.Tensor, steps: int, z: torch.Tensor) -> dict:
    """Train the student's VAE with the student's `train` (the grader's elbo and its pieces
    under it) for `steps` steps on the judge's
    training digits (a variant drawn for this grading), then decode the judge's latent
    vectors z (n, 64, cut to the model's Z) with the trained decoder and with a copy whose
    weights are shuffled. Returns the raw logits and the losses; the models are kept for
    :func:`heldout_report`, which gets the held-out digits once training is over."""
    vae = student("vae")
    model = vae.VAE(x_dim=X_DIM)
    with substituted(vae, **UNDER_TRAIN):   # the grader's loss pieces: the student's train must learn
        losses = detached(vae.train(model, x_train, steps, batch_size=TRAIN_BATCH, lr=TRAIN_LR))
    model.eval()
    twin = shuffled_weights(model)
    twin.eval()
    _TRAINED.update(model=model, twin=twin)
    with torch.no_grad():
        latent = z[:, : int(model.z_dim)]
        logits = attempt_detached(lambda: model.decode(latent))
        shuffled = attempt_detached(lambda: twin.decode(latent))
    return {"prior_logits": logits, "shuffled_prior_logits": shuffled, "losses": losses}


def _report(model, x_held, eps) -> dict:
    """The encoder's (mu, logvar) on the held-out digits and the decoder's logits at
    z = mu + sigma * eps for the judge's noise eps (draws, N, 64), cut to the model's Z."""
    mu, logvar = model.encode(x_held)
    eps = eps[..., : mu.shape[-1]].to(mu.dtype)  # the judge sends noise for up to 64 latent dims
    z = mu.unsqueeze(0) + torch.exp(0.5 * logvar).unsqueeze(0) * eps
    logits = model.decode(z.reshape(-1, z.shape[-1])).reshape(eps.shape[0], x_held.shape[0], -1)
    return {"mu": mu, "logvar": logvar, "logits": logits}


def heldout_report(x_held: torch.Tensor, y_held: torch.Tensor, eps: torch.Tensor) -> dict:
    """Raw outputs of the trained model (and of its shuffled copy) on the held-out digits,
    from which the judge computes the -ELBO; also reconstructions of one held-out digit of
    each class and a walk through latent space, for the model the last train_and_sample
    trained. The digits come in the grading's variant; the judge undoes it for pictures."""
    model, twin = _TRAINED["model"], _TRAINED["twin"]
    with torch.no_grad():
        out = _report(model, x_held, eps)
        shuffled = attempt_detached(lambda: _report(twin, x_held, eps))
        shown = torch.stack([x_held[y_held == c][0] for c in range(10)])     # one of each digit
        centres, _ = model.encode(shown)
        recon = torch.sigmoid(model.decode(centres))
        t = torch.linspace(0, 1, 8, dtype=centres.dtype).unsqueeze(1)
        walks = [torch.sigmoid(model.decode((1 - t) * centres[a] + t * centres[b]))
                 for a, b in [(0, 1), (3, 8), (4, 7)]]
    return {
        **out, "shuffled": shuffled,
        "inputs": shown,
        "reconstructions": recon,
        "walk": torch.cat(walks),
    }
