"""The judge's own float64 maths for the VAE suite: the grader's model (probes.FixedVAE)
and the exact references the tests compare the student's outputs with. Never imports
student code; test_vae.py imports it (the suite folder is on the judge's path).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

X_DIM = 64
F64 = torch.float64


# --------------------------------------------------------------------------- the grader's model


def fixed_weights(seed: int, *, z_dim: int, hidden: int = 16, logvar_bias: float = 0.0,
                  linear: bool = False, confidence: float = 1.0) -> dict[str, torch.Tensor]:
    """Weights of probes.FixedVAE: linear encoder, tanh-MLP (or linear) decoder, float64.
    ``confidence`` scales the decoder's output layer: large values give logits of tens and a
    log p(x|z) of about -1000 nats on real digits (where exp(log w) underflows)."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=F64)

    w = {"enc_mu_w": r(X_DIM, z_dim) * 0.15, "enc_mu_b": r(z_dim) * 0.3,
         "enc_lv_w": r(X_DIM, z_dim) * 0.03, "enc_lv_b": torch.full((z_dim,), float(logvar_bias), dtype=F64)}
    if linear:  # logits[:, :z_dim] = z, the other pixels' logits 0: z is readable from a sample
        w["dec_w2"] = torch.eye(z_dim, X_DIM, dtype=F64)
        w["dec_b2"] = torch.zeros(X_DIM, dtype=F64)
    else:
        w.update(dec_w1=r(z_dim, hidden), dec_b1=r(hidden) * 0.5,
                 dec_w2=r(hidden, X_DIM) * 0.5 * confidence, dec_b2=r(X_DIM) * 0.5 * confidence)
    return w


def ref_encode(w, x):
    return x @ w["enc_mu_w"] + w["enc_mu_b"], x @ w["enc_lv_w"] + w["enc_lv_b"]


def ref_decode(w, z):
    h = torch.tanh(z @ w["dec_w1"] + w["dec_b1"]) if "dec_w1" in w else z
    return h @ w["dec_w2"] + w["dec_b2"]


# --------------------------------------------------------------------------- exact maths


def ref_recon(logits, x):
    """-log p(x|z), Bernoulli on logits, summed over pixels (float64, stable at any logit)."""
    return F.binary_cross_entropy_with_logits(logits.double(), x.double().expand_as(logits), reduction="none").sum(-1)


def ref_log_px_z(w, x, z):
    """log p(x|z), Bernoulli on logits, summed over pixels; z (..., Z), x broadcastable."""
    return -ref_recon(ref_decode(w, z), x)


def ref_kl(mu, logvar):
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch.distributions.kl_divergence(q, p).sum(-1)


def ref_kl_closed(mu, logvar):
    """The closed form, for logvar where exp(logvar / 2) under- or overflows (the
    torch.distributions reference needs sigma itself)."""
    return 0.5 * (mu ** 2 + torch.expm1(logvar) - logvar).sum(-1)


def ref_expected_recon(w, x, nodes: int = 48):
    """E_q[-log p(x|z)] for a 2-d latent by Gauss-Hermite quadrature (exact to ~1e-10)."""
    mu, logvar = ref_encode(w, x)
    if mu.shape[-1] != 2:
        raise ValueError("ref_expected_recon needs a 2-d latent")   # a grader error, never the student's
    t, wt = np.polynomial.hermite.hermgauss(nodes)
    t, wt = torch.from_numpy(t), torch.from_numpy(wt)
    grid = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 2)     # (n^2, 2)
    weight = (wt[:, None] * wt[None, :]).reshape(-1) / math.pi                     # sums to 1
    z = mu[:, None, :] + math.sqrt(2.0) * torch.exp(0.5 * logvar)[:, None, :] * grid  # (B, n^2, 2)
    return -(ref_log_px_z(w, x[:, None, :], z) * weight).sum(-1)


def ref_log_px(w, x, half_width: float = 6.0, step: float = 0.05):
    """log p(x) = log of the integral of p(x|z) N(z; 0, I) over a 2-d grid (Riemann sum)."""
    axis = torch.arange(-half_width, half_width + step / 2, step, dtype=F64)
    z = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    log_prior = -0.5 * (z ** 2).sum(-1) - math.log(2 * math.pi)
    out = []
    for row in x:   # the grid in parts: (points, D) logits of ~10 MB at a time
        log_joint = torch.cat([ref_log_px_z(w, row, part) for part in z.split(20_000)]) + log_prior
        out.append(torch.logsumexp(log_joint, 0) + 2 * math.log(step))
    return torch.stack(out)


def ref_iwae(w, x, k: int, replicas: int, generator) -> torch.Tensor:
    """The judge's own IWAE_k draws, float64: (B, replicas)."""
    mu, logvar = ref_encode(w, x)
    eps = torch.randn(replicas, k, *mu.shape, generator=generator, dtype=F64)   # (R, k, B, Z)
    out = []
    for part in eps.split(max(1, 20_000 // (k * len(x)))):                     # the decoder's (r, k, B, D) ~10 MB
        z = mu + torch.exp(0.5 * logvar) * part
        log_prior = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(-1)
        log_q = -0.5 * (part ** 2 + logvar + math.log(2 * math.pi)).sum(-1)
        log_w = ref_log_px_z(w, x, z) + log_prior - log_q                         # (r, k, B)
        out.append(torch.logsumexp(log_w, 1) - math.log(k))
    return torch.cat(out).T


def ref_train_loss(w, x):
    """The training loss -mean_b ELBO(x_b) of a grader's model whose encoder's sigma is so
    small (logvar ~ -30) that z = mu up to ~1e-6: deterministic to ~1e-5 nats. ``w`` may
    require grad (the judge differentiates it to predict Adam's first step)."""
    mu, logvar = ref_encode(w, x)
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)
    return (ref_recon(ref_decode(w, mu), x) + kl).mean()


def adam_first_step(w, x, lr: float) -> dict[str, torch.Tensor]:
    """Adam's first update of every weight (any betas: m_hat = g, v_hat = g^2), and the
    gradient g it follows: {name: (delta, g)}."""
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in w.items()}
    ref_train_loss(leaves, x).backward()
    return {k: (-lr * v.grad / (v.grad.abs() + 1e-8), v.grad) for k, v in leaves.items()}


def adam_step_errors(weights: list[dict], batches: list[torch.Tensor], lr: float,
                     betas=(0.9, 0.999), eps: float = 1e-8) -> list[float]:
    """How far each recorded step is from Adam's (PyTorch's defaults, learning rate lr): the
    gradient of each step recomputed at that step's recorded weights on its recorded batch,
    the moments carried from step to step, and the largest |recorded - predicted| update of
    the weights whose gradient moments are not tiny, in units of lr. ``weights`` holds the
    weights before each step and after the last one."""
    m = {k: torch.zeros_like(v) for k, v in weights[0].items()}
    v2 = {k: torch.zeros_like(v) for k, v in weights[0].items()}
    errors = []
    for t, x in enumerate(batches):
        leaves = {k: w.detach().clone().double().requires_grad_(True) for k, w in weights[t].items()}
        ref_train_loss(leaves, x.double()).backward()
        worst = 0.0
        for k, leaf in leaves.items():
            g = leaf.grad
            m[k] = betas[0] * m[k] + (1 - betas[0]) * g
            v2[k] = betas[1] * v2[k] + (1 - betas[1]) * g * g
            denom = (v2[k] / (1 - betas[1] ** (t + 1))).sqrt()
            predicted = -lr * (m[k] / (1 - betas[0] ** (t + 1))) / (denom + eps)
            moved = weights[t + 1][k].double() - weights[t][k].double()
            sure = denom > 1e-3
            if bool(sure.any()):
                worst = max(worst, float((moved - predicted)[sure].abs().max()) / lr)
        errors.append(worst)
    return errors


# --------------------------------------------------------------------------- data and statistics


def heldout_digits(n: int, offset: int = 0, stride: int = 30) -> torch.Tensor:
    import kitdata.digits

    x = torch.from_numpy(kitdata.digits.load_digits("heldout")[0]).to(F64)
    return x[offset::stride][:n].contiguous()     # a few held-out digits, fixed


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    return float(values.mean()), float(values.std() / math.sqrt(values.numel()))


def per_example(values: torch.Tensor, batch: int) -> torch.Tensor:
    """(R * B,) estimates on replicated rows x[0..B-1], x[0..B-1], ... -> (B, R)."""
    return values.reshape(-1, batch).T
