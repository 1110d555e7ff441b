"""Hidden suite for the VAE assignment (runs in the judge; never imports student code).

Conventions judged (handout.md): Bernoulli likelihood on logits; every per-example
quantity summed over its dimensions and returned as (B,); training loss = -mean ELBO.

Statistical checks. Every check on random draws compares an average over R draws with an
exact float64 reference and fails only beyond Z_CRIT = 5 standard errors (the standard
error estimated from the same draws): a false alarm rate below 6e-7 per comparison, below
1e-5 for the whole suite (fewer than 20 such comparisons). The draws come from the worker's
seeded RNG, so a given grader seed always gives the same verdict.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from autograder.judge import (Raised, describe_value, digit_grid, expect_close, expect_finite, expect_meta,
                              expect_tensor, fails, parity_devices, plottable, tier)

X_DIM = 64
Z_CRIT = 5.0
F64 = torch.float64


# --------------------------------------------------------------------------- references
# The grader's own model (probes.FixedVAE) and its exact float64 maths, judge side.


def fixed_weights(seed: int, *, z_dim: int, hidden: int = 16, logvar_bias: float = 0.0,
                  linear: bool = False) -> dict[str, torch.Tensor]:
    """Weights of probes.FixedVAE: linear encoder, tanh-MLP (or linear) decoder, float64."""
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
                 dec_w2=r(hidden, X_DIM) * 0.5, dec_b2=r(X_DIM) * 0.5)
    return w


def ref_encode(w, x):
    return x @ w["enc_mu_w"] + w["enc_mu_b"], x @ w["enc_lv_w"] + w["enc_lv_b"]


def ref_decode(w, z):
    h = torch.tanh(z @ w["dec_w1"] + w["dec_b1"]) if "dec_w1" in w else z
    return h @ w["dec_w2"] + w["dec_b2"]


def ref_log_px_z(w, x, z):
    """log p(x|z), Bernoulli on logits, summed over pixels; z (..., Z), x broadcastable."""
    logits = ref_decode(w, z)
    return -torch.nn.functional.binary_cross_entropy_with_logits(
        logits, x.expand_as(logits), reduction="none").sum(-1)


def ref_kl(mu, logvar):
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch.distributions.kl_divergence(q, p).sum(-1)


def ref_expected_recon(w, x, nodes: int = 48):
    """E_q[-log p(x|z)] for a 2-d latent by Gauss-Hermite quadrature (exact to ~1e-10)."""
    mu, logvar = ref_encode(w, x)
    if not (mu.shape[-1] == 2):
        fails('a check of the grader failed')
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
    for row in x:
        out.append(torch.logsumexp(ref_log_px_z(w, row, z) + log_prior, 0) + 2 * math.log(step))
    return torch.stack(out)


def heldout_digits(n: int, offset: int = 0) -> torch.Tensor:
    import kitdata.digits

    x = torch.from_numpy(kitdata.digits.load_digits("heldout")[0]).to(F64)
    return x[offset::30][:n].contiguous()     # a few held-out digits, fixed


def mean_and_se(values: torch.Tensor) -> tuple[float, float]:
    return float(values.mean()), float(values.std() / math.sqrt(values.numel()))


def per_example(values: torch.Tensor, batch: int) -> torch.Tensor:
    """(R * B,) estimates on replicated rows x[0..B-1], x[0..B-1], ... -> (B, R)."""
    return values.reshape(-1, batch).T


# --------------------------------------------------------------------------- shapes


SHAPE_CASES = [(1, 2), (7, 8), (32, 16)]


@pytest.mark.parametrize("batch,z_dim", SHAPE_CASES)
def test_shapes(worker, credit, batch, z_dim):
    """Every function returns what the handout says, for several batch and latent sizes."""
    out = worker.call("shapes", batch, z_dim)
    f32 = torch.float32
    expected = {
        "encode": [(batch, z_dim), (batch, z_dim)],
        "decode": (batch, X_DIM),
        "forward": [(batch, X_DIM), (batch, z_dim), (batch, z_dim)],
        "reparameterize": (batch, z_dim),
        "kl_divergence": (batch,),
        "reconstruction_loss": (batch,),
        "elbo": {"elbo": (batch,), "recon": (batch,), "kl": (batch,)},
        "sample": (batch, X_DIM),
        "iwae_bound": (batch,),
    }
    problems = []
    for name, shape in expected.items():
        value = out.get(name) if isinstance(out, dict) else None
        try:
            if isinstance(value, Raised):
                fails(f"{name} raised {value}")
            if isinstance(shape, list):
                if not isinstance(value, (tuple, list)) or len(value) != len(shape):
                    fails(f"{name} should return a tuple of {len(shape)} tensors, got {describe_value(value)}")
                for i, (v, s) in enumerate(zip(value, shape)):
                    expect_tensor(v, name=f"{name}(...)[{i}]", shape=s, dtype=f32)
            elif isinstance(shape, dict):
                if not isinstance(value, dict) or set(shape) - set(value):
                    fails(f"{name} should return a dict with keys 'elbo', 'recon', 'kl', got {describe_value(value)}")
                for key, s in shape.items():
                    expect_tensor(value[key], name=f"{name}(...)['{key}']", shape=s, dtype=f32)
            else:
                expect_tensor(value, name=name, shape=shape, dtype=f32)
        except AssertionError as error:
            problems.append(str(error))
    ok = len(expected) - len(problems)
    if ok == 0:
        fails(f"batch {batch}, z_dim {z_dim}: " + problems[0])
    if problems:
        credit(ok / len(expected), f"batch {batch}, z_dim {z_dim}: {len(problems)} of {len(expected)} "
                                   f"functions wrong, e.g. {problems[0]}")


# --------------------------------------------------------------------------- KL


def test_kl_divergence(worker, seed):
    """Closed-form KL(N(mu, sigma^2) || N(0, I)) against torch.distributions in float64,
    with tiny and huge variances, and its reduction (summed over latent dims)."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.cat([torch.zeros(1, 5, dtype=F64), torch.randn(5, 5, generator=g, dtype=F64) * 2.5])
    logvar = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0],        # the prior itself: KL = 0
                           [-20.0, -8.0, -1.0, 0.5, 3.0],    # sigma from 4.5e-5 ...
                           [12.0, 6.0, 0.0, -3.0, -0.2],     # ... to 403
                           [1.0, 1.0, 1.0, 1.0, 1.0]], dtype=F64)
    logvar = torch.cat([logvar, torch.rand(2, 5, generator=g, dtype=F64) * 8 - 4])
    got = expect_tensor(worker.call("kl", mu, logvar), name="kl_divergence", shape=(6,), dtype=F64)
    expect_close(got, ref_kl(mu, logvar), name="kl_divergence (float64 inputs)", rtol=1e-9, atol=1e-9)
    got32 = worker.call("kl", mu.float(), logvar.float())
    expect_tensor(got32, name="kl_divergence on float32 inputs", shape=(6,), dtype=torch.float32)
    expect_close(got32, ref_kl(mu, logvar), name="kl_divergence (float32 inputs)", rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- reparameterisation


def test_reparameterize_gradients(worker, seed):
    """z = mu + sigma * eps: dz/dmu = 1 and dz/dlogvar = (z - mu) / 2, checked through backward."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(16, 4, generator=g, dtype=F64)
    logvar = torch.randn(16, 4, generator=g, dtype=F64)
    w = torch.randn(16, 4, generator=g, dtype=F64)
    out = worker.call("reparam_gradients", mu, logvar, w)
    z = expect_tensor(out["z"], name="reparameterize", shape=(16, 4), dtype=F64)
    if out["mu_grad"] is None:
        fails("no gradient reaches mu through reparameterize (is mu detached, or z sampled with torch.normal?)")
    if out["logvar_grad"] is None:
        fails("no gradient reaches logvar through reparameterize (is sigma detached, or z sampled with torch.normal?)")
    expect_close(out["mu_grad"], w, name="the gradient of reparameterize with respect to mu", rtol=1e-9, atol=1e-12)
    if float((z - mu).abs().max()) < 1e-6:
        fails("reparameterize returns mu: it must add sigma * eps with eps ~ N(0, I)")
    # d/dlogvar [mu + exp(logvar / 2) * eps] = exp(logvar / 2) * eps / 2 = (z - mu) / 2
    expect_close(out["logvar_grad"], w * (z - mu) / 2, rtol=1e-7, atol=1e-10,
                 name="the gradient of reparameterize with respect to logvar (sigma = exp(logvar / 2))")


def test_reparameterize_statistics(worker):
    """Draws of reparameterize(mu, logvar) have mean mu, variance exp(logvar) and are Gaussian.

    n = 20,000 draws per dimension, 4 dimensions, 3 tests each (z-test of the mean,
    chi-square test of the variance, Kolmogorov-Smirnov test of normality), each at
    alpha = 1e-7: a correct solution fails with probability below 1.2e-6.
    """
    n, alpha = 20_000, 1e-7
    mu = torch.tensor([[0.0, 1.5, -2.0, 0.3]], dtype=F64)
    logvar = torch.tensor([[0.0, 2.0, -3.0, 1.0]], dtype=F64)     # variances 1, 7.4, 0.05, 2.7
    z = expect_tensor(worker.call("reparam_draws", mu, logvar, n), name="reparameterize", shape=(n, 4))
    expect_finite(z, name="reparameterize")
    z = z.double()
    sigma = torch.exp(0.5 * logvar[0])
    for j in range(4):
        zj = z[:, j]
        # Variance first: the mean's test is in units of the true sigma.
        chi2 = float(zj.var() * (n - 1) / sigma[j] ** 2)
        if not stats.chi2.ppf(alpha / 2, n - 1) <= chi2 <= stats.chi2.isf(alpha / 2, n - 1):
            ratio = float(zj.var() / sigma[j] ** 2)
            fails(f"reparameterize: the draws' variance is {ratio:.3g} times exp(logvar) (latent dim {j}); "
                  "z = mu + sigma * eps needs sigma = exp(logvar / 2) and eps ~ N(0, 1)")
        mean_z = float((zj.mean() - mu[0, j]) / (sigma[j] / math.sqrt(n)))
        if abs(mean_z) > stats.norm.isf(alpha / 2):
            fails(f"reparameterize: the draws' mean is not mu (latent dim {j}, {abs(mean_z):.0f} standard errors off)")
        p = stats.kstest(((zj - mu[0, j]) / sigma[j]).numpy(), "norm").pvalue
        if p < alpha:
            fails(f"reparameterize: the draws are not Gaussian (latent dim {j}); eps must be standard normal")


# --------------------------------------------------------------------------- ELBO


def test_elbo_terms(worker, seed):
    """ELBO, reconstruction and KL per example on the grader's model in float64.

    The grader's encoder has sigma = exp(-15) ~ 3e-7, so z = mu up to ~1e-6 and the
    reconstruction term is deterministic to ~1e-5 nats: each term is compared with the
    float64 reference.
    """
    w = fixed_weights(seed, z_dim=3, logvar_bias=-30.0)
    x = heldout_digits(5)
    out = worker.call("elbo_terms", w, x)
    if not isinstance(out, dict) or {"elbo", "recon", "kl"} - set(out):
        fails(f"elbo should return a dict with keys 'elbo', 'recon', 'kl', got {describe_value(out)}")
    terms = {k: expect_tensor(out[k], name=f"elbo(...)['{k}']", shape=(5,), dtype=F64) for k in ("elbo", "recon", "kl")}
    mu, logvar = ref_encode(w, x)
    kl = ref_kl(mu, logvar)
    recon = -ref_log_px_z(w, x, mu)
    expect_close(terms["kl"], kl, name="elbo(...)['kl']", rtol=1e-9, atol=1e-8)
    expect_close(terms["recon"], recon, name="elbo(...)['recon'] (-log p(x|z), Bernoulli on logits, summed over pixels)",
                 rtol=1e-7, atol=1e-4)
    expect_close(terms["elbo"], -(recon + kl), name="elbo(...)['elbo'] (= -(recon + kl))", rtol=1e-7, atol=1e-4)


def test_elbo_uses_sample(worker, seed):
    """recon is -log p(x|z) at a *sample* z ~ q(z|x): its average over many calls is the
    expectation E_q[-log p(x|z)] (computed by quadrature), not -log p(x|mu)."""
    w = fixed_weights(seed, z_dim=2, logvar_bias=0.0)
    x, replicas = heldout_digits(3), 4000
    out = worker.call("elbo_replicas", w, x, replicas)
    if not isinstance(out, dict) or "recon" not in out:
        fails(f"elbo should return a dict with keys 'elbo', 'recon', 'kl', got {describe_value(out)}")
    recon = expect_tensor(out["recon"], name="elbo(...)['recon']", shape=(replicas * 3,), dtype=F64)
    expect_finite(recon, name="elbo(...)['recon']")
    expected = ref_expected_recon(w, x)
    for b, draws in enumerate(per_example(recon, 3)):
        if float(draws.std()) < 1e-9:
            fails("elbo's reconstruction term is the same on every call: decode a sample "
                  "z = reparameterize(mu, logvar), not mu")
        mean, se = mean_and_se(draws)
        if abs(mean - float(expected[b])) > Z_CRIT * se:
            fails(f"elbo's reconstruction term does not average to E_q[-log p(x|z)] "
                  f"({abs(mean - float(expected[b])) / se:.0f} standard errors off)")


# --------------------------------------------------------------------------- devices


PARITY_SHAPES = {"kl_divergence": (6,), "reparameterize": (6, 4), "reconstruction_loss": (6,),
                 "elbo": {"elbo": (6,), "recon": (6,), "kl": (6,)}, "sample": (5, X_DIM), "iwae_bound": (6,),
                 "encode": [(6, 4), (6, 4)], "decode": (6, X_DIM)}


def _parity_checks(out: dict, check) -> list[str]:
    """Run `check(name, value, shape)` on every output of probes.parity: one verdict per
    function (len(PARITY_SHAPES) of them); return the problems found."""
    problems = []
    for name, shape in PARITY_SHAPES.items():
        value = out.get(name) if isinstance(out, dict) else None
        try:
            if isinstance(value, Raised):
                fails(f"{name} raised {value}")
            if isinstance(shape, dict):
                if not isinstance(value, dict) or set(shape) - set(value):
                    fails(f"{name} should return a dict with keys 'elbo', 'recon', 'kl', got {describe_value(value)}")
                for key, s in shape.items():
                    check(f"{name}(...)['{key}']", value[key], s)
            elif isinstance(shape, list):
                if not isinstance(value, (tuple, list)) or len(value) != 2:
                    fails(f"{name} should return a tuple of 2 tensors, got {describe_value(value)}")
                for i, s in enumerate(shape):
                    check(f"{name}(...)[{i}]", value[i], s)
            else:
                check(name, value, shape)
        except AssertionError as error:
            problems.append(str(error))
    return problems


def test_device_parity(worker, seed, credit):
    """Same results on every device and dtype: on an accelerator (CUDA, MPS) the
    deterministic outputs match the CPU's; without one, every function must keep PyTorch's
    `meta` device (no tensor created on the CPU inside) and float64 inputs must give
    float64 outputs. Credit: the fraction of (function, device or dtype) checks passed."""
    w = fixed_weights(seed, z_dim=4, logvar_bias=-1.0)
    x = heldout_digits(6).float()
    per_pass = len(PARITY_SHAPES)

    def keeps_float64(name, value, shape):
        expect_tensor(value, name=f"{name} on float64 inputs", shape=shape, dtype=F64)

    problems = _parity_checks(worker.call("parity", "cpu", "float64", w, x), keeps_float64)
    total = per_pass
    cpu32 = worker.call("parity", "cpu", "float32", w, x)
    for device in parity_devices(worker):
        out = worker.call("parity", device, "float32", w, x)
        if device == "meta":
            def on_meta(name, value, shape):
                expect_meta(value, name=name, shape=shape, dtype=torch.float32)
            problems += _parity_checks(out, on_meta)
            total += per_pass
            continue

        def on_device(name, value, shape, _device=device):
            expect_tensor(value, name=f"{name} on {_device}", shape=shape, dtype=torch.float32)
        problems += _parity_checks(out, on_device)
        total += per_pass
        # Deterministic outputs must agree with the CPU's (same inputs, same initial weights).
        for name in ("kl_divergence", "reconstruction_loss", "decode"):
            total += 1
            try:
                expect_close(out.get(name), expect_tensor(cpu32.get(name), name=f"{name} on the CPU"),
                             name=f"{name} on {device} vs CPU", rtol=1e-4, atol=1e-4)
            except AssertionError as error:
                problems.append(str(error))
    if len(problems) >= total:
        fails(problems[0])
    if problems:
        credit(1 - len(problems) / total, f"{len(problems)} of {total} device/dtype checks failed, e.g. {problems[0]}")


# --------------------------------------------------------------------------- generation


def test_sample_from_prior(worker, seed):
    """sample() decodes z ~ N(0, I) and returns sigmoid(logits). The grader's decoder puts
    z into the first logits, so the judge reads z back and tests it (alpha = 1e-7 per test);
    the grader's encoder is far from N(0, I), so sampling from it is caught too."""
    z_dim, n, alpha = 4, 4000, 1e-7
    w = fixed_weights(seed, z_dim=z_dim, linear=True)
    w["enc_mu_b"] = torch.full((z_dim,), 3.0, dtype=F64)
    # dtype is judged by test_device_parity; here the grader's decoder accepts any float z.
    out = expect_tensor(worker.call("prior_samples", w, n), name="sample", shape=(n, X_DIM))
    expect_finite(out, name="sample")
    out = out.double()
    if float(out.min()) < 0 or float(out.max()) > 1:
        fails("sample should return pixel means sigmoid(decode(z)) in [0, 1], not logits")
    p = out[:, :z_dim].clamp(1e-300, 1 - 1e-16)
    z = torch.log(p) - torch.log1p(-p)
    for j in range(z_dim):
        mean_z = float(z[:, j].mean() * math.sqrt(n))
        chi2 = float(z[:, j].var() * (n - 1))
        ks = stats.kstest(z[:, j].numpy(), "norm").pvalue
        if (abs(mean_z) > stats.norm.isf(alpha / 2) or ks < alpha
                or not stats.chi2.ppf(alpha / 2, n - 1) <= chi2 <= stats.chi2.isf(alpha / 2, n - 1)):
            fails("sample: the latent vectors decoded are not drawn from the prior N(0, I)")
    if float(out[:, z_dim:].sub(0.5).abs().max()) > 1e-6:
        fails("sample should return the decoder's pixel means sigmoid(decode(z)), not a draw from them")


def _trained(worker, seed, thresholds):
    """One run of probes.train_and_sample (each learned-quality test trains its own model,
    with its own seed)."""
    import kitdata.digits

    x_held, y_held = (torch.from_numpy(a) for a in kitdata.digits.load_digits("heldout"))
    trained = worker.call("train_and_sample", seed, int(thresholds["train_steps"]), int(thresholds["n_samples"]))
    if not isinstance(trained, dict):
        return trained
    held = worker.call("heldout_report", x_held, y_held, _heldout_noise(seed, len(x_held)))
    return {**trained, **held, "heldout_neg_elbo": _heldout_neg_elbo(held, x_held)}


HELDOUT_DRAWS = 8


def _heldout_noise(seed: int, n: int) -> torch.Tensor:
    """The judge's noise for the -ELBO's reconstruction term: (draws, N, 64) from the test's
    seed; the probe uses the first Z of the 64 (no latent space is wider than the image)."""
    generator = torch.Generator().manual_seed(seed + 2)
    return torch.randn(HELDOUT_DRAWS, n, X_DIM, generator=generator)


def _heldout_neg_elbo(held: dict, x_held: torch.Tensor) -> float:
    """-ELBO in nats per image, computed here from the model's raw outputs (never a number the
    worker computed): KL(q(z|x) || N(0, I)) + the Bernoulli reconstruction loss averaged over
    the judge's draws of z. NaN when the outputs are not what the handout defines."""
    n, draws = x_held.shape[0], HELDOUT_DRAWS
    try:
        mu = expect_tensor(held.get("mu"), name="encode (mu)", shape=(n, None)).double()
        logvar = expect_tensor(held.get("logvar"), name="encode (logvar)", shape=tuple(mu.shape)).double()
        logits = expect_tensor(held.get("logits"), name="decode", shape=(draws, n, x_held.shape[1])).double()
    except AssertionError:
        return float("nan")
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)
    x = x_held.double().unsqueeze(0).expand_as(logits)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1).mean(0)
    return float((recon + kl).mean())


def test_training_loop(worker, seed, thresholds, credit, artifacts):
    """The student's train() on the training digits for a fixed number of steps; the
    held-out -ELBO (nats per image, the grader's own estimate from the student's
    encode/decode) is scored in tiers calibrated in grading.yml."""
    result = _trained(worker, seed, thresholds)
    steps = int(thresholds["train_steps"])
    losses = result.get("losses") if isinstance(result, dict) else None
    if isinstance(losses, (list, tuple)) and all(isinstance(v, torch.Tensor) and v.numel() == 1 for v in losses):
        losses = [float(v) for v in losses]
    if not isinstance(losses, (list, tuple)) or len(losses) != steps or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in losses):
        fails(f"train should return its {steps} losses as a list of floats, got {describe_value(losses)}"
              + (f" of length {len(losses)}" if isinstance(losses, (list, tuple)) else ""))
    neg_elbo = result["heldout_neg_elbo"]
    if not isinstance(neg_elbo, float) or not math.isfinite(neg_elbo):
        fails("after training, the model's held-out ELBO is not finite")
    if neg_elbo < thresholds["neg_elbo_floor"]:
        fails(f"the held-out -ELBO ({neg_elbo:.1f} nats) is below what any VAE of this size reaches: "
              "are the reconstructions computed from the inputs themselves?")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    curve = np.asarray(losses, dtype=np.float64)
    finite = curve[np.isfinite(curve)]
    if finite.size >= 2:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(np.arange(1, steps + 1), plottable(curve), lw=0.6)
        ax.set_xlabel("step")
        ax.set_ylabel("loss = -ELBO (nats per image)")
        low, high = float(finite.min()), float(np.percentile(finite, 99))
        ax.set_ylim(low - 0.05 * (high - low) - 1, high + 0.05 * (high - low) + 1)
        ax.set_title("your training loss")
        artifacts.figure("vae_loss.png", fig)
    artifacts.note(f"held-out -ELBO after {steps} steps of your train(): {neg_elbo:.2f} nats per image (lower is better)")

    fraction = tier(neg_elbo, thresholds["neg_elbo_tiers"], higher_is_better=False)
    if 0 < fraction < 1:
        credit(fraction, f"held-out -ELBO {neg_elbo:.1f} nats per image after {steps} steps: "
                         "training works but less well than expected")
    if fraction > 0:
        return
    fails(f"held-out -ELBO {neg_elbo:.1f} nats per image after {steps} steps: your train() does not "
          "maximise the ELBO (check the loss sign, zero_grad, and the optimiser step)")


def test_sample_quality(worker, seed, thresholds, credit, artifacts):
    """Samples from the prior after the fixed training budget, scored with FID-lite against
    the held-out digits (tiers in grading.yml). Samples that are copies of training images
    score zero whatever their FID-lite."""
    import kitdata.metrics

    result = _trained(worker, seed, thresholds)
    n = int(thresholds["n_samples"])
    samples = result.get("samples") if isinstance(result, dict) else None
    if isinstance(samples, Raised):
        fails(f"sample raised {samples}")
    samples = expect_tensor(samples, name="sample", shape=(n, X_DIM))
    expect_finite(samples, name="sample")
    if float(samples.min()) < 0 or float(samples.max()) > 1:
        fails("sample should return pixel means in [0, 1] (sigmoid of the decoder's logits)")
    samples = samples.double()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("samples from the prior", digit_grid(samples, 8, 8))]
    if all(isinstance(result.get(k), torch.Tensor) for k in ("inputs", "reconstructions", "walk")):
        panels.append(("held-out digits (top) and reconstructions",
                       digit_grid(torch.cat([result["inputs"], result["reconstructions"]]).double(), 2, 10)))
        panels.append(("walks in latent space", digit_grid(result["walk"].double(), 3, 8)))
    for filename, (title, image) in zip(["vae_samples.png", "vae_reconstructions.png", "vae_latent_walk.png"], panels):
        fig, ax = plt.subplots(figsize=(image.shape[1] / 12 + 1, image.shape[0] / 12 + 0.6))
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        artifacts.figure(filename, fig)

    memorised = kitdata.metrics.memorisation_fraction(samples, kitdata.digits.every_real_image())
    if memorised > thresholds["memorisation_max"]:
        fails(f"{memorised:.0%} of your samples are near-copies of real digits: a generative model "
              "must produce new digits")
    fid = kitdata.metrics.fid_lite(samples)
    artifacts.note(f"FID-lite of your samples against the held-out digits: {fid:.1f} (lower is better)")
    fraction = tier(fid, thresholds["fid_tiers"], higher_is_better=False)
    if 0 < fraction < 1:
        credit(fraction, f"FID-lite {fid:.1f}: your samples look like digits only in part")
    if fraction > 0:
        return
    fails(f"FID-lite {fid:.1f}: your samples from the prior do not look like the digits "
          "(is the KL term in the loss, and does sample decode z ~ N(0, I)?)")


# --------------------------------------------------------------------------- IWAE

IWAE_X = 3


def _iwae(worker, seed, ks, replicas):
    w = fixed_weights(seed, z_dim=2, logvar_bias=-1.5)
    x = heldout_digits(IWAE_X, offset=7)
    out = worker.call("iwae", w, x, replicas, list(ks))
    if not isinstance(out, dict):
        fails(f"iwae_bound should return a tensor, got {describe_value(out)}")
    est = {}
    for k in ks:
        v = expect_tensor(out.get(str(k)), name=f"iwae_bound(model, x, k={k})", shape=(replicas * IWAE_X,), dtype=F64)
        expect_finite(v, name=f"iwae_bound(model, x, k={k})")
        est[k] = per_example(v, IWAE_X)                   # (B, R)
    mu, logvar = ref_encode(w, x)
    elbo = -(ref_expected_recon(w, x) + ref_kl(mu, logvar))
    return est, elbo, w, x


def test_iwae_k1_matches_elbo(worker, seed):
    """With k = 1 the IWAE estimate is a single-sample ELBO: its average is the ELBO."""
    est, elbo, _, _ = _iwae(worker, seed, [1], replicas=4000)
    for b in range(IWAE_X):
        mean, se = mean_and_se(est[1][b])
        if abs(mean - float(elbo[b])) > Z_CRIT * se:
            fails(f"iwae_bound with k = 1 does not average to the ELBO ({abs(mean - float(elbo[b])) / se:.0f} "
                  "standard errors off): log w = log p(x|z) + log p(z) - log q(z|x), full Gaussian densities")


def test_iwae_grows_with_k(worker, seed):
    """E[IWAE_k] grows with k (k = 1, 8, 64: significantly from 1 to 64, never
    significantly down between neighbours) and E[IWAE_64] >= ELBO."""
    ks = (1, 8, 64)
    est, elbo, _, _ = _iwae(worker, seed, ks, replicas=1500)
    for b in range(IWAE_X):
        means = {k: mean_and_se(est[k][b]) for k in ks}
        for small, large in zip(ks, ks[1:]):
            (m1, s1), (m2, s2) = means[small], means[large]
            if m2 < m1 - Z_CRIT * math.hypot(s1, s2):
                fails(f"iwae_bound decreases from k = {small} to k = {large} on average: it must grow with k")
        (m1, s1), (m64, s64) = means[1], means[64]
        if m64 - m1 < Z_CRIT * math.hypot(s1, s64):
            fails("iwae_bound does not grow with k on average (k = 1 vs k = 64): average the weights w_i, "
                  "not the log-weights (logsumexp - log k)")
        if m64 < float(elbo[b]) - Z_CRIT * s64:
            fails("iwae_bound with k = 64 is below the ELBO on average")


def ref_iwae(w, x, k: int, replicas: int, generator) -> torch.Tensor:
    """The judge's own IWAE_k draws, float64: (B, replicas)."""
    mu, logvar = ref_encode(w, x)
    eps = torch.randn(replicas, k, *mu.shape, generator=generator, dtype=F64)   # (R, k, B, Z)
    z = mu + torch.exp(0.5 * logvar) * eps
    log_prior = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(-1)
    log_q = -0.5 * (eps ** 2 + logvar + math.log(2 * math.pi)).sum(-1)
    log_w = ref_log_px_z(w, x, z) + log_prior - log_q                             # (R, k, B)
    return (torch.logsumexp(log_w, 1) - math.log(k)).T


def test_iwae_below_log_likelihood(worker, seed):
    """E[IWAE_k] <= log p(x) (log p(x) by quadrature over the 2-d latent) for k = 64 and
    256, and E[IWAE_64] is the value the grader's own IWAE estimates (two-sample test)."""
    ks = (64, 256)
    est, elbo, w, x = _iwae(worker, seed, ks, replicas=300)
    log_px = ref_log_px(w, x)
    own = ref_iwae(w, x, 64, 600, torch.Generator().manual_seed(seed))
    for b in range(IWAE_X):
        for k in ks:
            m, s = mean_and_se(est[k][b])
            if m > float(log_px[b]) + Z_CRIT * s + 1e-6:
                fails(f"iwae_bound with k = {k} is above log p(x) on average: it must be a lower bound "
                      "(is the -log k there?)")
        (m, s), (m_ref, s_ref) = mean_and_se(est[64][b]), mean_and_se(own[b])
        if abs(m - m_ref) > Z_CRIT * math.hypot(s, s_ref):
            fails(f"iwae_bound with k = 64 does not average to E[IWAE_64] "
                  f"({abs(m - m_ref) / math.hypot(s, s_ref):.0f} standard errors off)")
