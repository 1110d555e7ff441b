"""Hidden probes for the autoencoders assignment: they run in the sandboxed worker and call
the student's ``autoencoders.py``. They measure nothing; the judge (test_autoencoders.py)
does. Models trained here are kept for a second call that receives the held-out inputs
from the judge once training is over.

The student's ``train`` runs :func:`substituted`: with the grader's ``reconstruction_loss``
and ``gaussian_noise`` (judged by test_reconstruction_loss and test_gaussian_noise) in the
student's module for the duration of the call, so the tests of training judge the loop (and
the model) alone.
"""

from __future__ import annotations


import torch
import torch.nn as nn

from autograder.sandbox.wire import Raised
from autograder.sandbox.worker import (attempt, attempt_detached, describe, detached, readable_meta, shuffled_weights,
                                        student, substituted)

X_DIM = 64


def _ae():
    return student("autoencoders")


def _gen(seed):
    return torch.Generator().manual_seed(int(seed))


# --------------------------------------------------------------------------- the grader's pieces
# The handout's definitions, exactly (ref_autoencoders.py holds the same maths in float64).


def _ref_reconstruction_loss(x_hat, x):
    return (x_hat - x).pow(2).sum(dim=-1)


def _ref_gaussian_noise(x, sigma, generator=None):
    return x + sigma * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


# What train (and the corruption the probes hand it) may call that another test judges; never
# train, reconstruct or a model class.
UNDER_TRAIN = {"reconstruction_loss": _ref_reconstruction_loss, "gaussian_noise": _ref_gaussian_noise}


# --------------------------------------------------------------------------- grader-owned models


class LatentReader(nn.Module):
    """decode(z) puts z into the first z_dim outputs and zeros elsewhere: the judge reads z back."""

    def __init__(self, z_dim: int, x_dim: int = X_DIM, dtype=torch.float64):
        super().__init__()
        self.z_dim, self.x_dim = z_dim, x_dim
        self.embed = nn.Parameter(torch.eye(z_dim, x_dim, dtype=dtype))

    def encode(self, x):
        return x[:, : self.z_dim]

    def decode(self, z):
        return z @ self.embed

    def forward(self, x):
        return self.decode(self.encode(x))


class ModeNet(nn.Module):
    """A model whose output tells its mode: 2x + 1 in eval mode, 2x + 1001 in train mode
    (like dropout, only louder); records whether gradients were on in each call."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0, dtype=torch.float64))
        self.grad_enabled: list[bool] = []

    def forward(self, x):
        self.grad_enabled.append(torch.is_grad_enabled())
        return self.scale * x + (1001.0 if self.training else 1.0)


class RecordingAE(nn.Module):
    """f(x) = tanh(x W1 + b1) W2 + b2 with the judge's weights, recording every input it sees
    grouped by the weights it was seen with (a new group after each optimiser step), and
    whether it was in training mode."""

    def __init__(self, weights: dict):
        super().__init__()
        self.names = sorted(weights)
        for name in self.names:
            setattr(self, name, nn.Parameter(weights[name].clone()))
        self.groups: list[dict] = []

    def weights(self) -> dict:
        return {name: getattr(self, name).detach().clone() for name in self.names}

    def forward(self, x):
        now = self.weights()
        last = self.groups[-1]["weights"] if self.groups else None
        if last is None or any(not torch.equal(now[k], last[k]) for k in now):
            self.groups.append({"weights": now, "batches": [], "training": []})
        self.groups[-1]["batches"].append(x.detach().clone())
        self.groups[-1]["training"].append(bool(self.training))
        return torch.tanh(x @ self.w1 + self.b1) @ self.w2 + self.b2


# --------------------------------------------------------------------------- shapes


def shapes(batch: int, z_dim: int, hidden: int, inputs: dict) -> dict:
    """Every function's output on the judge's inputs {x, z, x_hat, codes}; each call gets its
    own copies, and "inputs_after" says what each call left in them."""
    ae = _ae()
    model = ae.Autoencoder(x_dim=X_DIM, z_dim=z_dim, hidden=hidden)
    linear = ae.LinearAutoencoder(x_dim=X_DIM, z_dim=z_dim, mean=inputs["x"].mean(0))
    calls = {
        "Autoencoder.encode": (lambda x: model.encode(x), ["x"]),
        "Autoencoder.decode": (lambda z: model.decode(z), ["z"]),
        "Autoencoder.forward": (lambda x: model(x), ["x"]),
        "LinearAutoencoder.encode": (lambda x: linear.encode(x), ["x"]),
        "LinearAutoencoder.decode": (lambda z: linear.decode(z), ["z"]),
        "LinearAutoencoder.forward": (lambda x: linear(x), ["x"]),
        "reconstruction_loss": (lambda x_hat, x: ae.reconstruction_loss(x_hat, x), ["x_hat", "x"]),
        "gaussian_noise": (lambda x: ae.gaussian_noise(x, 0.3), ["x"]),
        "masking_noise": (lambda x: ae.masking_noise(x, 0.4), ["x"]),
        "reconstruct": (lambda x: ae.reconstruct(model, x), ["x"]),
        "sample_random_latents": (lambda: ae.sample_random_latents(model, batch), []),
        "sample_fitted_latents": (lambda codes: ae.sample_fitted_latents(model, codes, batch), ["codes"]),
    }
    out, after = {}, {}
    for name, (call, args) in calls.items():
        copies = [inputs[a].clone() for a in args]
        out[name] = attempt_detached(lambda: call(*copies))
        after[name] = dict(zip(args, copies))
    out["inputs_after"] = after
    return out


def architecture(x: torch.Tensor, z_big: torch.Tensor) -> dict:
    """What the handout's architecture implies: parameter counts for several (z_dim, hidden),
    dropout on in train mode and off in eval mode, an unbounded decoder output, and the
    linear autoencoder's parameters."""
    ae = _ae()
    out = {}
    out["counts"] = attempt_detached(lambda: [sum(p.numel() for p in ae.Autoencoder(x_dim=X_DIM, z_dim=z, hidden=h).parameters())
                                      for z, h in ((3, 20), (3, 41), (7, 20))])

    def dropout_calls():
        model = ae.Autoencoder(x_dim=X_DIM, z_dim=5, hidden=96, dropout=0.5)
        model.train()
        with torch.no_grad():
            train_pair = [model(x), model(x)]
            model.eval()
            eval_pair = [model(x), model(x)]
        plain = ae.Autoencoder(x_dim=X_DIM, z_dim=5, hidden=96)
        plain.train()
        with torch.no_grad():
            plain_pair = [plain(x), plain(x)]
        return {"train": train_pair, "eval": eval_pair, "no_dropout_train": plain_pair}

    out["dropout"] = attempt_detached(dropout_calls)

    def big_decode():
        model = ae.Autoencoder(x_dim=X_DIM, z_dim=z_big.shape[1], hidden=32)
        with torch.no_grad():
            return model.decode(z_big)

    out["decode_big"] = attempt_detached(big_decode)

    def structure():
        """What the layers imply: the code is any real vector (no activation after the encoder's
        last layer), both halves are nonlinear (a ReLU inside each), and the decoder has no
        dropout (decode is the same in train mode)."""
        torch.manual_seed(torch.initial_seed())
        model = ae.Autoencoder(x_dim=X_DIM, z_dim=24, hidden=40, dropout=0.5)
        xs = (x - 0.5) * 40.0
        zs = torch.linspace(-6.0, 6.0, 24 * 6).reshape(6, 24) * torch.linspace(1.0, -1.0, 24)
        with torch.no_grad():
            model.train()
            decode_train = [model.decode(zs), model.decode(zs)]
            model.eval()
            return {"codes": model.encode(xs), "codes_mid": model.encode(0.5 * (xs + xs.flip(0))),
                    "codes_ends": [model.encode(xs), model.encode(xs.flip(0))],
                    "decode_mid": model.decode(0.5 * (zs + zs.flip(0))),
                    "decode_ends": [model.decode(zs), model.decode(zs.flip(0))], "decode_train": decode_train}

    out["structure"] = attempt_detached(structure)

    def linear_params():
        model = ae.LinearAutoencoder(x_dim=X_DIM, z_dim=3)
        return {name: tuple(p.shape) for name, p in model.named_parameters()}

    out["linear_params"] = attempt_detached(lambda: {k: list(v) for k, v in linear_params().items()})
    return out


def linear_maps(mean: torch.Tensor, x: torch.Tensor, z: torch.Tensor, z_dim: int) -> dict:
    """The linear autoencoder (float64) on the judge's points: encode(x), encode(mean),
    decode(z), decode(0), forward(x), and its two weight matrices."""
    ae = _ae()
    model = ae.LinearAutoencoder(x_dim=X_DIM, z_dim=z_dim, mean=mean).double()
    with torch.no_grad():
        out = {
            "encode": attempt_detached(lambda: model.encode(x)),
            "encode_mean": attempt_detached(lambda: model.encode(mean.unsqueeze(0))),
            "decode": attempt_detached(lambda: model.decode(z)),
            "decode_zero": attempt_detached(lambda: model.decode(torch.zeros(1, z_dim, dtype=torch.float64))),
            "forward": attempt_detached(lambda: model(x)),
        }
        mats = [p.detach() for p in model.parameters() if p.dim() == 2]
        out["matrices"] = mats
    return out


# --------------------------------------------------------------------------- maths


def recon(x_hat, x):
    return student("autoencoders").reconstruction_loss(x_hat, x)


def noise(kind: str, x: torch.Tensor, level: float, seeds: list, global_seed: int | None = None) -> dict:
    """gaussian_noise / masking_noise on the judge's x: one call per generator seed in
    `seeds` (None: no generator), each on the same x; "after" is what the calls left in x;
    "global": two calls without a generator, each right after torch.manual_seed(global_seed)."""
    ae = _ae()
    fn = ae.gaussian_noise if kind == "gaussian" else ae.masking_noise
    outs, copy = [], x.clone()
    for s in seeds:
        outs.append(attempt_detached(lambda: fn(copy, level) if s is None else fn(copy, level, generator=_gen(s))))
    out = {"outputs": outs, "after": copy}
    if global_seed is not None:
        def seeded():
            torch.manual_seed(global_seed)
            return fn(x.clone(), level)
        out["global"] = [attempt_detached(seeded), attempt_detached(seeded)]
    return out


# --------------------------------------------------------------------------- devices


def parity(device: str, dtype_name: str, x: torch.Tensor) -> dict:
    """The functions on `device` in `dtype` (on 'meta' every output must stay a meta tensor)."""
    ae = _ae()
    dtype = getattr(torch, dtype_name)
    mean = x.mean(0)              # on the CPU, in float32: .to(device, dtype) must move it (a buffer)
    x = x.to(device=device, dtype=dtype)
    z = (x[:, :4] * 2 - 1).contiguous()
    codes = torch.cat([z, z.flip(0) * 0.5 + 0.1, z * z]).contiguous()
    out = {
        "reconstruction_loss": attempt_detached(lambda: ae.reconstruction_loss(x * 3 - 1, x)),
        "gaussian_noise": attempt_detached(lambda: ae.gaussian_noise(x, 0.5)),
        "masking_noise": attempt_detached(lambda: ae.masking_noise(x, 0.5)),
    }
    try:
        torch.manual_seed(torch.initial_seed())
        model = ae.Autoencoder(x_dim=X_DIM, z_dim=4, hidden=16).to(device=device, dtype=dtype)
        linear = ae.LinearAutoencoder(x_dim=X_DIM, z_dim=4, mean=mean).to(device=device, dtype=dtype)
    except Exception as error:  # noqa: BLE001
        for name in ("encode", "decode", "linear_forward", "reconstruct", "sample_random_latents",
                     "sample_fitted_latents"):
            out[name] = Raised(describe(error))
        return out
    with torch.no_grad():
        out["encode"] = attempt_detached(lambda: model.encode(x))
        out["decode"] = attempt_detached(lambda: model.decode(z))
        out["linear_forward"] = attempt_detached(lambda: linear(x))
    out["reconstruct"] = attempt_detached(lambda: ae.reconstruct(model, x))
    out["sample_random_latents"] = attempt_detached(lambda: ae.sample_random_latents(model, 5))
    if device != "meta":   # torch.cov, a correct way to fit C, has no meta kernel (aten::equal)
        out["sample_fitted_latents"] = attempt_detached(lambda: ae.sample_fitted_latents(model, codes, 5))
    return out


def train_on(device: str) -> object:
    """Two steps of the student's train (with a corruption) on the student's Autoencoder and
    data on `device` (on 'meta' under ``readable_meta``)."""
    ae = _ae()
    model = ae.Autoencoder(x_dim=X_DIM, z_dim=3, hidden=8).to(device)
    data = torch.rand(20, X_DIM).to(device)

    def go():
        return ae.train(model, data, 2, batch_size=5, lr=1e-3, corrupt=lambda x: ae.gaussian_noise(x, 0.1))

    if device != "meta":
        return attempt(go)
    with readable_meta():
        return attempt(go)


# --------------------------------------------------------------------------- training mechanics


def train_mechanics(weights, data, steps: int, batch_size: int, lr: float, corrupted: bool) -> dict:
    """The student's train on the grader's RecordingAE and the judge's data, with the
    grader's corruption 0.5 * flip(x) + 0.25 (or none): the returned losses as they are,
    what the model saw at every step, the clean batches the corruption was given, and the
    final weights."""
    model = RecordingAE(weights)
    model.eval()                   # train() must switch it to training mode
    given: list = []

    def corrupt(x):
        given.append(x.detach().clone())
        return 0.5 * x.flip(-1) + 0.25

    ae = _ae()
    with substituted(ae, **UNDER_TRAIN):
        losses = attempt_detached(lambda: ae.train(model, data, steps, batch_size=batch_size, lr=lr,
                                                   corrupt=corrupt if corrupted else None))
    return {"losses": losses, "groups": model.groups[: steps + 2], "steps_seen": len(model.groups),
            "final": model.weights(), "given": given[: steps + 2], "calls": len(given)}


def reconstruct_mode(x: torch.Tensor) -> dict:
    """reconstruct on the grader's ModeNet left in training mode, twice."""
    model = ModeNet()
    model.train()
    ae = _ae()
    first = attempt_detached(lambda: ae.reconstruct(model, x.clone()))
    second = attempt_detached(lambda: ae.reconstruct(model, x.clone()))
    return {"first": first, "second": second, "grad_enabled": list(model.grad_enabled)}


# --------------------------------------------------------------------------- learned quality
#
# The training data arrive as arguments: the judge draws them from this grading's hidden
# variant (permuted digits, a transformed mixture). After training, the judge's inputs go
# through the trained model and through a copy with its weights shuffled, so that the judge
# can tell quality that comes from the weights from quality that comes from elsewhere.

_KEPT: dict = {}


def _both(model, run) -> dict:
    """run(model) on the trained model and on its shuffled twin (a fixed shuffle)."""
    trained = attempt_detached(lambda: run(model))
    return {"trained": trained,
            "shuffled": attempt_detached(lambda: run(shuffled_weights(model, generator=_gen(12345))))}


def train_linear(seed: int, z_dim: int, steps: int, batch_size: int, lr: float, x: torch.Tensor) -> list:
    """LinearAutoencoder(64, z_dim, mean=the data's mean) trained by the student's train on the
    judge's training digits x; the model is kept for :func:`linear_heldout`."""
    ae = _ae()
    torch.manual_seed(seed)
    model = ae.LinearAutoencoder(x_dim=X_DIM, z_dim=z_dim, mean=x.mean(0))
    with substituted(ae, **UNDER_TRAIN):
        losses = detached(ae.train(model, x, steps, batch_size=batch_size, lr=lr))
    _KEPT["linear"] = model
    return losses


def linear_heldout(x_held: torch.Tensor) -> dict:
    """The kept linear autoencoder's reconstructions of the judge's held-out digits (trained and
    shuffled)."""
    def run(model):
        model.eval()
        with torch.no_grad():
            return model(x_held.clone())
    return _both(_KEPT["linear"], run)


def train_dae(seed: int, sigma: float, steps: int, batch_size: int, lr: float, z_dim: int, hidden: int,
              x: torch.Tensor) -> list:
    """The student's Autoencoder trained as a denoiser by the student's train, with
    gaussian_noise(x, sigma) as the corruption (the grader's, as is reconstruction_loss, for
    the duration of the call), on the judge's data x. Kept for :func:`dae_outputs`."""
    ae = _ae()
    torch.manual_seed(seed)
    model = ae.Autoencoder(x_dim=x.shape[1], z_dim=z_dim, hidden=hidden)
    with substituted(ae, **UNDER_TRAIN):
        losses = detached(ae.train(model, x, steps, batch_size=batch_size, lr=lr,
                                   corrupt=lambda b: ae.gaussian_noise(b, sigma)))
    _KEPT["dae"] = model
    return losses


def dae_outputs(inputs: list) -> dict:
    """reconstruct(kept DAE, x) for each of the judge's inputs, in order, with the trained model
    and with its shuffled twin."""
    ae = _ae()
    out = _both(_KEPT["dae"], lambda model: [attempt_detached(lambda: ae.reconstruct(model, x.clone())) for x in inputs])
    return {key: value if isinstance(value, list) else [value] * len(inputs) for key, value in out.items()}


# --------------------------------------------------------------------------- generation


def latent_draws(z_dim: int, n: int, codes: torch.Tensor, seed_a: int, seed_b: int,
                 other_codes: list, global_seed: int) -> dict:
    """sample_random_latents / sample_fitted_latents on the grader's LatentReader (z is read
    back from the first z_dim outputs): with no generator, twice with one seed, once with
    another, and again with no generator; then with no generator after torch.manual_seed
    (twice: the global generator decides those draws); the fitted one also on each of
    other_codes (same or other shapes)."""
    ae = _ae()
    model = LatentReader(z_dim)
    codes_copy = codes.clone()
    out = {}

    def seeded(fn):
        torch.manual_seed(global_seed)
        return fn(None)

    for name, fn in (("random", lambda g: ae.sample_random_latents(model, n, generator=g)),
                     ("fitted", lambda g: ae.sample_fitted_latents(model, codes_copy, n, generator=g))):
        out[name] = [attempt_detached(lambda: fn(None)), attempt_detached(lambda: fn(_gen(seed_a))),
                     attempt_detached(lambda: fn(_gen(seed_a))), attempt_detached(lambda: fn(_gen(seed_b))),
                     attempt_detached(lambda: fn(None))]
        out[name + "_global"] = [attempt_detached(lambda: seeded(fn)), attempt_detached(lambda: seeded(fn))]
    out["codes_after"] = codes_copy
    out["other"] = []
    for other in other_codes:
        reader = LatentReader(other.shape[1], dtype=other.dtype)
        out["other"].append(attempt_detached(
            lambda: ae.sample_fitted_latents(reader, other.clone(), n, generator=_gen(seed_b))))
    return out


def generate_with_ae(seed: int, steps: int, n: int, z_dim: int, x: torch.Tensor) -> dict:
    """A plain Autoencoder trained by the student's train on the judge's training digits x,
    then n decodes of random latents (N(0, I)) and of latents from the Gaussian fitted to the
    training codes, by the trained model and by its shuffled twin (the same codes and the
    same generator seed), and the codes' first two coordinates (for the feedback's picture)."""
    ae = _ae()
    torch.manual_seed(seed)
    model = ae.Autoencoder(x_dim=X_DIM, z_dim=z_dim, hidden=128)
    with substituted(ae, **UNDER_TRAIN):
        ae.train(model, x, steps, batch_size=64, lr=2e-3)
    model.eval()
    with torch.no_grad():
        codes = model.encode(x)
    random = _both(model, lambda m: ae.sample_random_latents(m, n, generator=_gen(seed + 1)))
    fitted = _both(model, lambda m: ae.sample_fitted_latents(m, codes.clone(), n, generator=_gen(seed + 2)))
    return {"random": random, "fitted": fitted, "codes": codes.detach()}
