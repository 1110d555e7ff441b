"""Hidden probes for the VAE assignment: they run in the sandboxed worker and call the
student's ``vae.py``. They measure nothing; the judge (test_vae.py) does.

Several probes hand the student's functions ``FixedVAE``, a model of the grader's own with
weights chosen by the judge, so the judge can compute exact float64 references for the
ELBO, the prior samples and the IWAE bound without trusting the student's network.
"""

from __future__ import annotations


import torch
import torch.nn as nn

from autograder.wire import Raised
from autograder.worker import attempt, describe, student

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


def _fixed(weights, device="cpu", cast_latents=False):
    return FixedVAE(weights, cast_latents).to(device)


def _attempt(fn):
    """Run one student call (``attempt``: an exception comes back as ``Raised``), detached."""
    return _detach(attempt(fn))


def _detach(out):
    if isinstance(out, torch.Tensor):
        return out.detach()
    if isinstance(out, dict):
        return {k: _detach(v) for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return type(out)(_detach(v) for v in out)
    return out


# --------------------------------------------------------------------------- shapes


def shapes(batch: int, z_dim: int) -> dict:
    """Every function's output on the student's own VAE(z_dim=z_dim) and a batch of digits."""
    vae = student("vae")
    x = torch.rand(batch, X_DIM)
    model = vae.VAE(x_dim=X_DIM, z_dim=z_dim)
    mu = torch.randn(batch, z_dim)
    logvar = torch.randn(batch, z_dim)
    return {
        "encode": _attempt(lambda: model.encode(x)),
        "decode": _attempt(lambda: model.decode(torch.randn(batch, z_dim))),
        "forward": _attempt(lambda: model(x)),
        "reparameterize": _attempt(lambda: vae.reparameterize(mu, logvar)),
        "kl_divergence": _attempt(lambda: vae.kl_divergence(mu, logvar)),
        "reconstruction_loss": _attempt(lambda: vae.reconstruction_loss(torch.randn(batch, X_DIM), x)),
        "elbo": _attempt(lambda: vae.elbo(model, x)),
        "sample": _attempt(lambda: vae.sample(model, batch)),
        "iwae_bound": _attempt(lambda: vae.iwae_bound(model, x, 3)),
    }


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


def reparam_draws(mu, logvar, n: int):
    """n independent draws for one (mu, logvar) row: reparameterize on n copies of it."""
    return student("vae").reparameterize(mu.repeat(n, 1), logvar.repeat(n, 1))


def elbo_terms(weights, x) -> dict:
    with torch.no_grad():
        return student("vae").elbo(_fixed(weights), x)


def elbo_replicas(weights, x, replicas: int) -> dict:
    """elbo on `replicas` copies of each row of x (row-major: x[0], x[1], ..., x[0], ...)."""
    with torch.no_grad():
        return student("vae").elbo(_fixed(weights), x.repeat(replicas, 1))


def prior_samples(weights, n: int):
    return student("vae").sample(_fixed(weights, cast_latents=True), n)


def iwae(weights, x, replicas: int, ks: list) -> dict:
    """{"k": estimates (replicas * B,)} for each k, on `replicas` copies of x."""
    vae = student("vae")
    model = _fixed(weights)
    xs = x.repeat(replicas, 1)
    with torch.no_grad():
        return {str(k): vae.iwae_bound(model, xs, int(k)) for k in ks}


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
    torch.manual_seed(0)  # the student's VAE gets the same initial weights on every device
    with torch.no_grad():
        out = {
            "kl_divergence": _attempt(lambda: vae.kl_divergence(mu, logvar)),
            "reparameterize": _attempt(lambda: vae.reparameterize(mu, logvar)),
            "reconstruction_loss": _attempt(lambda: vae.reconstruction_loss(x * 4 - 2, x)),
            "elbo": _attempt(lambda: vae.elbo(fixed, x)),
            "sample": _attempt(lambda: vae.sample(fixed, 5)),
            "iwae_bound": _attempt(lambda: vae.iwae_bound(fixed, x, 4)),
        }
        try:
            model = vae.VAE(x_dim=X_DIM, z_dim=4).to(device=device, dtype=dtype)
        except Exception as error:  # noqa: BLE001
            out["encode"] = out["decode"] = Raised(describe(error))
        else:
            out["encode"] = _attempt(lambda: model.encode(x))
            out["decode"] = _attempt(lambda: model.decode(mu))
    return out


# --------------------------------------------------------------------------- training

_TRAINED: dict = {}


def train_and_sample(seed: int, steps: int, n_samples: int) -> dict:
    """Train the student's VAE with the student's `train` for `steps` steps on the training
    digits, then generate. Returns samples and losses; the model is kept for
    :func:`heldout_report`, which gets the held-out digits from the judge once training is
    over (the worker cannot read them from any file)."""
    import kitdata.digits

    vae = student("vae")
    torch.manual_seed(seed)
    x_train = torch.from_numpy(kitdata.digits.load_digits("train")[0])
    model = vae.VAE(x_dim=X_DIM)
    losses = vae.train(model, x_train, steps, batch_size=TRAIN_BATCH, lr=TRAIN_LR)
    if isinstance(losses, torch.Tensor):
        losses = losses.detach().reshape(-1).tolist()
    model.eval()
    torch.manual_seed(seed + 1)
    samples = _attempt(lambda: vae.sample(model, n_samples))
    _TRAINED.update(model=model)
    return {"samples": samples, "losses": list(losses) if isinstance(losses, (list, tuple)) else losses}


def heldout_report(x_held: torch.Tensor, y_held: torch.Tensor, eps: torch.Tensor) -> dict:
    """Raw outputs of the trained model on the held-out digits, from which the judge computes
    the -ELBO: the encoder's (mu, logvar) and the decoder's logits at z = mu + sigma * eps for
    the judge's noise eps (draws, N, 64), cut to the model's Z. Also reconstructions of one held-out digit of each
    class and a walk through latent space, for the model the last train_and_sample trained."""
    model = _TRAINED["model"]
    with torch.no_grad():
        mu, logvar = model.encode(x_held)
        eps = eps[..., : mu.shape[-1]].to(mu.dtype)  # the judge sends noise for up to 64 latent dims
        z = mu.unsqueeze(0) + torch.exp(0.5 * logvar).unsqueeze(0) * eps
        logits = model.decode(z.reshape(-1, z.shape[-1])).reshape(eps.shape[0], x_held.shape[0], -1)
        shown = torch.stack([x_held[y_held == c][0] for c in range(10)])     # one of each digit
        centres, _ = model.encode(shown)
        recon = torch.sigmoid(model.decode(centres))
        t = torch.linspace(0, 1, 8, dtype=centres.dtype).unsqueeze(1)
        walks = [torch.sigmoid(model.decode((1 - t) * centres[a] + t * centres[b]))
                 for a, b in [(0, 1), (3, 8), (4, 7)]]
    return {
        "mu": mu, "logvar": logvar, "logits": logits,
        "inputs": shown,
        "reconstructions": recon,
        "walk": torch.cat(walks),
    }
