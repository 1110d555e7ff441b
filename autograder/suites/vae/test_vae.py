"""Hidden suite for the VAE assignment (runs in the judge; never imports student code).
The float64 reference maths and the grader's own model live in ref_vae.py.

Conventions judged (handout.md): Bernoulli likelihood on logits; every per-example
quantity summed over its dimensions and returned as (B,); training loss = -mean ELBO.

Statistical checks. Every check on random draws compares an average over R draws with an
exact float64 reference and fails only beyond Z_CRIT = 5 standard errors (the standard
error estimated from the same draws), or runs a test at alpha = 1e-7 (Kolmogorov-Smirnov,
chi-square, correlation): a false alarm rate below 6e-7 per comparison, below 1e-4 for the
whole suite. The draws come from the worker's seeded RNG, so a given grader seed always
gives the same verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from autograder.grading.judge import (Raised, StudentError, changed_inputs, describe_value, digit_grid, expect_close,
                              expect_finite, expect_learned, expect_tensor, fails, on_device, output_problems,
                              parity_devices, plottable, recorded_groups, score_checks, tier)
from ref_vae import (adam_first_step, adam_step_errors, fixed_weights, heldout_digits, mean_and_se, per_example,
                     ref_encode, ref_expected_recon, ref_iwae, ref_kl, ref_kl_closed, ref_log_px, ref_log_px_z,
                     ref_recon, ref_train_loss)

X_DIM = 64
Z_CRIT = 5.0
F64 = torch.float64


# --------------------------------------------------------------------------- shapes


SHAPE_CASES = [(1, 2, 5), (7, 1, 3), (32, 16, 5)]     # (batch, z_dim, k): batch of one, one latent dim


def _shape_spec(batch: int, z_dim: int, sample_n: int) -> dict:
    return {
        "encode": [(batch, z_dim), (batch, z_dim)],
        "decode": (batch, X_DIM),
        "forward": [(batch, X_DIM), (batch, z_dim), (batch, z_dim)],
        "reparameterize": (batch, z_dim),
        "kl_divergence": (batch,),
        "reconstruction_loss": (batch,),
        "elbo": {"elbo": (batch,), "recon": (batch,), "kl": (batch,)},
        "sample": (sample_n, X_DIM),
        "iwae_bound": (batch,),
    }


@pytest.mark.judges("VAE")
@pytest.mark.parametrize("batch,z_dim,k", SHAPE_CASES)
def test_shapes(worker, seed, credit, batch, z_dim, k):
    """Every function returns what the handout says (shape, float32), for a batch of one and
    one latent dimension among the cases, and leaves its inputs unchanged."""
    g = torch.Generator().manual_seed(seed)
    inputs = {"x": torch.rand(batch, X_DIM, generator=g), "mu": torch.randn(batch, z_dim, generator=g),
              "logvar": torch.randn(batch, z_dim, generator=g), "z": torch.randn(batch, z_dim, generator=g),
              "logits": torch.randn(batch, X_DIM, generator=g) * 3}
    out = worker.call("shapes", batch, z_dim, k, inputs)
    expected = _shape_spec(batch, z_dim, batch)
    problems = output_problems(out, expected, on_device("cpu", torch.float32))
    changed = changed_inputs(out.get("inputs_after") if isinstance(out, dict) else None, inputs, expected)
    structure = _structure_problems(out.get("structure") if isinstance(out, dict) else None, batch, z_dim)
    score_checks(problems + changed[:1] + structure[:1], len(expected) + 2, credit, f"batch {batch}, z_dim {z_dim}")


def _structure_problems(got, batch: int, z_dim: int) -> list[str]:
    """The model's parts as the handout defines them, on the student's untrained VAE: encode's
    mu and log sigma^2 both depend on x, and forward returns encode's (mu, logvar) with the
    logits of a *sample* z = reparameterize(mu, logvar), in train() and in eval() mode alike
    (nothing in a VAE depends on the mode)."""
    if isinstance(got, Raised):
        return [f"encode, decode or forward raised {got}"]
    try:
        mu, logvar = (expect_tensor(t, name="encode", shape=(batch, z_dim)).double() for t in got["encode"])
        decoded_mu = expect_tensor(got["decode_mu"], name="decode", shape=(batch, X_DIM)).double()
        for mode in ("train", "eval"):
            out = got[f"forward_{mode}"]
            if not isinstance(out, (list, tuple)) or len(out) != 3:
                return [f"forward in {mode}() mode should return (logits, mu, logvar), got {describe_value(out)}"]
            logits, f_mu, f_logvar = (expect_tensor(t, name="forward").double() for t in out)
            expect_close(f_mu, mu, name=f"forward's mu in {mode}() mode (vs encode)", rtol=1e-5, atol=1e-5)
            expect_close(f_logvar, logvar, name=f"forward's logvar in {mode}() mode (vs encode)", rtol=1e-5, atol=1e-5)
            if logits.shape == decoded_mu.shape and float((logits - decoded_mu).abs().max()) < 1e-6:
                return [f"forward in {mode}() mode decodes mu: it must decode z = reparameterize(mu, logvar) "
                        "whatever the mode"]
    except (AssertionError, KeyError, TypeError) as error:
        return [str(error)]
    if batch > 1 and float((logvar - logvar[:1]).abs().max()) < 1e-7:
        return ["encode: log sigma^2 is the same for every input: the encoder must output it from x, like mu"]
    if batch > 1 and float((mu - mu[:1]).abs().max()) < 1e-7:
        return ["encode: mu is the same for every input: the encoder must output it from x"]
    return []


# --------------------------------------------------------------------------- KL


# Log-variances trained encoders reach: -3.8 .. 0.1 on every digit (reference and the two
# independent implementations, 2,000-8,000 steps, Z 8/16, hidden 128/256); means -3.1 .. 2.9.
# The wide case goes to log sigma^2 in [-20, 12] and |mu| up to 30: a margin of 16 nats
# below, 12 above and 10x in mu. There exp(logvar) neither under- nor overflows in float32,
# so every correct way of writing the KL (the closed form, torch.distributions) is exact.
KL_LOGVAR_RANGE = (-20.0, 12.0)
KL_MU_MAX = 30.0


def _kl_inputs(case: str, g) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar), float64. typical: the prior itself (KL = 0) and the ranges a trained
    encoder gives, (8, 5); wide: a batch of 64 codes of Z = 8, as in training, with
    log sigma^2 spread over KL_LOGVAR_RANGE (its two ends in every row) and mu up to KL_MU_MAX."""
    if case == "typical":
        mu = torch.cat([torch.zeros(1, 5, dtype=F64), torch.randn(7, 5, generator=g, dtype=F64) * 1.5])
        logvar = torch.cat([torch.zeros(1, 5, dtype=F64), torch.rand(7, 5, generator=g, dtype=F64) * 5 - 4.5])
        return mu, logvar
    low, high = KL_LOGVAR_RANGE
    logvar = torch.rand(64, 8, generator=g, dtype=F64) * (high - low) + low
    ends = torch.randint(0, 8, (64, 2), generator=g)
    logvar[torch.arange(64), ends[:, 0]] = low
    logvar[torch.arange(64), (ends[:, 0] + 1 + ends[:, 1] % 7) % 8] = high
    mu = (torch.rand(64, 8, generator=g, dtype=F64) * 2 - 1) * KL_MU_MAX
    return mu, logvar


@pytest.mark.judges("kl_divergence")
@pytest.mark.parametrize("case", ["typical", "wide"])
def test_kl_divergence(worker, seed, case):
    """Closed-form KL(N(mu, sigma^2) || N(0, I)) against a float64 reference, for float64 and
    float32 inputs: at the prior itself and the ranges trained encoders give (typical), and
    over a wide margin around them at the real size, 64 codes of Z = 8 (wide). Each case is
    called twice with different inputs of the same shape (no result kept between calls)."""
    g = torch.Generator().manual_seed(seed + (case == "wide"))
    for dtype, tolerance in ((F64, 1e-9), (torch.float32, 1e-4)):
        for call in range(2):
            mu, logvar = (t.to(dtype) for t in _kl_inputs(case, g))
            name = f"kl_divergence ({str(dtype).removeprefix('torch.')} inputs" + (", a second call)" if call else ")")
            got = expect_tensor(worker.call("kl", mu, logvar), name=name, shape=(mu.shape[0],), dtype=dtype)
            expect_close(got, ref_kl_closed(mu.double(), logvar.double()), name=name, rtol=tolerance, atol=tolerance)


# --------------------------------------------------------------------------- reparameterisation


@pytest.mark.judges("reparameterize")
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


@pytest.mark.judges("reparameterize")
def test_reparameterize_statistics(worker):
    """Draws of reparameterize(mu, logvar) have mean mu, variance exp(logvar) and are Gaussian,
    and a second call draws fresh noise.

    n = 20,000 draws per dimension, 4 dimensions, 3 tests each (z-test of the mean,
    chi-square test of the variance, Kolmogorov-Smirnov test of normality), a test that
    the second call's draws are uncorrelated with the first's, and two binomial tests of the
    tails over all dimensions, each at alpha = 1e-7: a correct solution fails with
    probability below 2e-6.
    """
    n, alpha = 20_000, 1e-7
    mu = torch.tensor([[0.0, 1.5, -2.0, 0.3]], dtype=F64)
    logvar = torch.tensor([[0.0, 2.0, -3.0, 1.0]], dtype=F64)     # variances 1, 7.4, 0.05, 2.7
    calls = worker.call("reparam_draws", mu, logvar, n)
    if not isinstance(calls, list) or len(calls) != 2:
        fails(f"reparameterize should return a tensor, got {describe_value(calls)}")
    z, again = (expect_finite(expect_tensor(c, name="reparameterize", shape=(n, 4)), name="reparameterize").double()
                for c in calls)
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
        r = float(torch.corrcoef(torch.stack([zj, again[:, j]]))[0, 1])
        if not abs(r) * math.sqrt(n) <= stats.norm.isf(alpha / 2):
            fails("reparameterize: a second call repeats the first call's noise: draw a fresh eps on every call")
    # The tails over all four dimensions (80,000 draws; about 1,000 beyond 2.5 sigma and 216
    # beyond 3): noise clamped or truncated at 3 has none there, yet passes every test above.
    eps = (z - mu) / sigma
    for cut in (2.5, 3.0):
        beyond = int((eps.abs() > cut).sum())
        if stats.binomtest(beyond, eps.numel(), 2 * stats.norm.sf(cut)).pvalue < alpha:
            fails("reparameterize: the draws' tails are not Gaussian (is eps clamped or truncated?): "
                  "eps must be standard normal")


# --------------------------------------------------------------------------- ELBO


# Decoder logits trained VAEs reach: -45 .. 8 (reconstructions and prior samples of the
# reference and two independent implementations, 2,000-8,000 steps). The far rows go to
# |l| = 30, 60 and 100: where sigmoid(l) rounds to 0 or 1 in float32 (beyond ~17) and the
# log of it is -inf, with a margin of 2x over what training gives.
RECON_FAR_SCALES = (30.0, 60.0, 100.0)


def _recon_logits(g) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of 64 logits: one moderate (|l| up to 6), then one of each RECON_FAR_SCALES
    magnitude (random signs), with targets 0, 1 and grey levels."""
    scale = torch.tensor([[3.0]] + [[v / 2] for v in RECON_FAR_SCALES], dtype=F64)
    logits = scale * torch.randn(4, X_DIM, generator=g, dtype=F64).sign() * (1 + torch.rand(4, X_DIM, generator=g, dtype=F64))
    x = torch.rand(4, X_DIM, generator=g, dtype=F64)
    x[:, ::3] = x[:, ::3].round()
    return logits, x


@pytest.mark.judges("reconstruction_loss", "elbo")      # elbo runs on the grader's kl_divergence
def test_elbo_terms(worker, seed, credit):
    """reconstruction_loss against float64 at moderate logits and at logits far from 0 (the
    far case its own third of the points), in float64 and float32; and the ELBO,
    reconstruction and KL per example on the grader's model in float64.

    The grader's encoder has sigma = exp(-15) ~ 3e-7, so z = mu up to ~1e-6 and the
    reconstruction term is deterministic to ~1e-5 nats: each term is compared with the
    float64 reference.
    """
    logits, target = _recon_logits(torch.Generator().manual_seed(seed))
    problems = []
    for rows, where in ((slice(0, 1), "moderate logits"), (slice(1, 4), "logits far from 0")):
        try:
            for dtype, rtol in ((F64, 1e-9), (torch.float32, 1e-5)):
                name = f"reconstruction_loss ({str(dtype).removeprefix('torch.')}, {where})"
                l, x = logits[rows].to(dtype), target[rows].to(dtype)
                got = expect_tensor(worker.call("recon", l, x), name=name, shape=(x.shape[0],), dtype=dtype)
                expect_close(got, ref_recon(l, x), name=name, rtol=rtol, atol=1e-3)
        except AssertionError as error:
            problems.append(str(error))
        except StudentError as error:
            if where == "moderate logits":
                raise
            problems.append(str(error))      # failing only far from 0 costs the far case's share
    try:
        _elbo_terms(worker, seed)
    except AssertionError as error:
        problems.append(str(error))
    score_checks(problems, 3, credit)


def _elbo_terms(worker, seed):
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


@pytest.mark.judges("elbo")   # on the grader's reparameterize, kl_divergence and reconstruction_loss
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


def _train_problems(losses, device: str) -> list[str]:
    """Two steps of the student's train on `device` (probes.train_on): it must run there."""
    if isinstance(losses, Raised):
        return [f"train raised {losses} on a model and data on the {device} device"]
    if not isinstance(losses, (list, tuple)) or len(losses) != 2:
        return [f"train on the {device} device should return its 2 losses, got {describe_value(losses)}"]
    return []


def test_device_parity(worker, seed, credit):
    """Same results on every device and dtype: on an accelerator (CUDA, MPS) the
    deterministic outputs match the CPU's; without one, every function must keep PyTorch's
    `meta` device (no tensor created on the CPU inside) and float64 inputs must give
    float64 outputs; two training steps run on each device. Credit: the fraction of
    (function, device or dtype) checks passed."""
    w = fixed_weights(seed, z_dim=4, logvar_bias=-1.0)
    x = heldout_digits(6).float()
    problems = output_problems(worker.call("parity", "cpu", "float64", w, x), PARITY_SHAPES,
                               on_device("cpu", F64, where=" on float64 inputs"))
    total = len(PARITY_SHAPES)
    cpu32 = worker.call("parity", "cpu", "float32", w, x)
    for device in parity_devices(worker):
        out = worker.call("parity", device, "float32", w, x)
        problems += output_problems(out, PARITY_SHAPES, on_device(device, torch.float32, where=f" on {device}"))
        problems += _train_problems(worker.call("train_on", device), device)
        total += len(PARITY_SHAPES) + 1
        if device == "meta":
            continue
        # Deterministic outputs must agree with the CPU's (same inputs, same initial weights).
        for name in ("kl_divergence", "reconstruction_loss", "decode"):
            total += 1
            try:
                expect_close(out.get(name), expect_tensor(cpu32.get(name), name=f"{name} on the CPU"),
                             name=f"{name} on {device} vs CPU", rtol=1e-4, atol=1e-4)
            except AssertionError as error:
                problems.append(str(error))
    score_checks(problems, total, credit)


# --------------------------------------------------------------------------- generation


PRIOR_DRAWS = 20_000


def _prior_latents(call, n: int, z_dim: int) -> torch.Tensor:
    """The z a sample() call decoded, read back from the grader's linear decoder (its first
    z_dim logits are z), after checking what sample returned: (n, 64) pixel means in [0, 1]."""
    if isinstance(call, Raised):
        fails(f"sample raised {call}")
    if not isinstance(call, dict):
        expect_tensor(call, name="sample", shape=(n, X_DIM))
        fails(f"sample should return a tensor of shape ({n}, {X_DIM}), got {describe_value(call)}")
    if list(call.get("shape", [])) != [n, X_DIM]:
        fails(f"sample should return a tensor of shape ({n}, {X_DIM}), got shape {tuple(call.get('shape', []))}")
    head = expect_finite(expect_tensor(call.get("head"), name="sample"), name="sample").double()
    p = expect_finite(expect_tensor(call.get("latent"), name="sample", shape=(n, z_dim)), name="sample").double()
    if min(float(head.min()), float(p.min())) < 0 or max(float(head.max()), float(p.max())) > 1:
        fails("sample should return pixel means sigmoid(decode(z)) in [0, 1], not logits")
    if float(head[:, z_dim:].sub(0.5).abs().max()) > 1e-6:
        fails("sample should return the decoder's pixel means sigmoid(decode(z)), not a draw from them")
    p = p.clamp(1e-300, 1 - 1e-16)
    return torch.log(p) - torch.log1p(-p)


@pytest.mark.judges("sample")
def test_sample_from_prior(worker, seed):
    """sample() decodes z ~ N(0, I) and returns sigmoid(logits). The grader's decoder puts
    z into the first logits, so the judge reads z back and tests it (alpha = 1e-7 per test):
    mean, variance and normality per latent dimension, and the number of |z| beyond 2.5 and
    3 over all of them (a truncated or shrunk prior has too few: with 20,000 draws of 4
    dimensions about 1,000 and 216 are expected; truncation at 3 leaves none, z * 0.95
    about 730 and 127). The grader's encoder is far from N(0, I), so sampling from it is
    caught too. A second call draws fresh z; two calls right after the same
    torch.manual_seed draw the same z (sample follows torch's global generator)."""
    z_dim, n, alpha = 4, PRIOR_DRAWS, 1e-7
    w = fixed_weights(seed, z_dim=z_dim, linear=True)
    w["enc_mu_b"] = torch.full((z_dim,), 3.0, dtype=F64)
    # dtype is judged by test_device_parity; here the grader's decoder accepts any float z.
    out = worker.call("prior_samples", w, n, z_dim, 1000 + seed)
    calls = out.get("calls") if isinstance(out, dict) else None
    if not isinstance(calls, list) or len(calls) != 4:
        fails(f"sample should return a tensor, got {describe_value(out)}")
    z = _prior_latents(calls[0], n, z_dim)
    for j in range(z_dim):
        mean_z = float(z[:, j].mean() * math.sqrt(n))
        chi2 = float(z[:, j].var() * (n - 1))
        ks = stats.kstest(z[:, j].numpy(), "norm").pvalue
        if (abs(mean_z) > stats.norm.isf(alpha / 2) or ks < alpha
                or not stats.chi2.ppf(alpha / 2, n - 1) <= chi2 <= stats.chi2.isf(alpha / 2, n - 1)):
            fails("sample: the latent vectors decoded are not drawn from the prior N(0, I)")
    for cut in (2.5, 3.0):
        beyond = int((z.abs() > cut).sum())
        if stats.binomtest(beyond, z.numel(), 2 * stats.norm.sf(cut)).pvalue < alpha:
            fails("sample: the latent vectors' tails are not those of N(0, I) (a truncated or rescaled prior?): "
                  "draw z ~ N(0, I) itself")
    again, reseeded, repeat = (_prior_latents(c, n, z_dim) for c in calls[1:])
    r = float(torch.corrcoef(torch.stack([z[:, 0], again[:, 0]]))[0, 1])
    if bool(torch.equal(z, again)) or abs(r) * math.sqrt(n) > stats.norm.isf(alpha / 2):
        fails("sample: a second call decodes the same z as the first: draw fresh z ~ N(0, I) on every call")
    if not torch.equal(reseeded, repeat):
        fails("sample: two calls after the same torch.manual_seed draw different z: draw z with torch's "
              "random functions (torch.randn), so that the seed decides the samples")


def _trained(worker, seed, thresholds, secret_rng):
    """One run of probes.train_and_sample (each learned-quality test trains its own model,
    with its own seed) on the training digits under a pixel permutation drawn for this
    grading (the worker cannot know it: copying or blending shipped digits gives scrambled
    images once the judge undoes it), and the trained model's outputs on the held-out
    digits under the same permutation. The VAE's MLPs see every pixel alike, so the task is
    as hard as on the plain digits."""
    import kitdata.digits
    import kitdata.variants

    perm = kitdata.variants.PixelPermutation(secret_rng)
    x_train = torch.from_numpy(perm.apply(kitdata.digits.load_digits("train")[0])).contiguous()
    x_held, y_held = (torch.from_numpy(a) for a in kitdata.digits.load_digits("heldout"))
    x_held = perm.apply(x_held).contiguous()
    z = torch.randn(int(thresholds["n_samples"]), X_DIM, generator=torch.Generator().manual_seed(seed + 3))
    trained = worker.call("train_and_sample", x_train, int(thresholds["train_steps"]), z)
    if not isinstance(trained, dict):
        return trained
    held = worker.call("heldout_report", x_held, y_held, _heldout_noise(seed, len(x_held)))
    if not isinstance(held, dict):
        return {**trained, "perm": perm, "heldout_neg_elbo": float("nan"), "shuffled_neg_elbo": float("nan")}
    shuffled = held.get("shuffled")
    return {**trained, **held, "perm": perm, "heldout_neg_elbo": _heldout_neg_elbo(held, x_held),
            "shuffled_neg_elbo": _heldout_neg_elbo(shuffled, x_held) if isinstance(shuffled, dict) else float("nan")}


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


@pytest.mark.judges("train")   # train runs on the grader's elbo and its pieces (probes.UNDER_TRAIN)
@pytest.mark.upstream("test_shapes", "test_train_mechanics")
def test_training_loop(worker, seed, thresholds, credit, artifacts, secret_rng):
    """The student's train() on the training digits (permuted for this grading) for a fixed
    number of steps; the held-out -ELBO (nats per image, the grader's own estimate from the
    student's encode/decode) is scored in tiers calibrated in grading.yml, and must come from
    the trained weights (a copy with its weights shuffled earns nothing)."""
    result = _trained(worker, seed, thresholds, secret_rng)
    steps = int(thresholds["train_steps"])
    if not isinstance(result, dict):
        fails(f"train_and_sample: expected the trained model's outputs, got {describe_value(result)}")
    losses = result.get("losses")     # judged by test_train_mechanics; plotted here
    neg_elbo = result["heldout_neg_elbo"]
    if not isinstance(neg_elbo, float) or not math.isfinite(neg_elbo):
        fails("after training, the model's held-out ELBO is not finite")
    if neg_elbo < thresholds["neg_elbo_floor"]:
        fails(f"the held-out -ELBO ({neg_elbo:.1f} nats) is below what any VAE of this size reaches: "
              "are the reconstructions computed from the inputs themselves?")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    curve = plottable(losses).reshape(-1)
    finite = curve[np.isfinite(curve)]
    if finite.size >= 2 and curve.size == steps:
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(np.arange(1, steps + 1), curve, lw=0.6)
        ax.set_xlabel("step")
        ax.set_ylabel("loss = -ELBO (nats per image)")
        low, high = float(finite.min()), float(np.percentile(finite, 99))
        ax.set_ylim(low - 0.05 * (high - low) - 1, high + 0.05 * (high - low) + 1)
        ax.set_title("your training loss")
        artifacts.figure("vae_loss.png", fig)
    artifacts.note(f"held-out -ELBO after {steps} steps of your train(): {neg_elbo:.2f} nats per image "
                   f"(lower is better); with the trained weights shuffled: {result['shuffled_neg_elbo']:.1f}")

    fraction = tier(neg_elbo, thresholds["neg_elbo_tiers"], higher_is_better=False)
    shuffled = result.get("shuffled") if isinstance(result.get("shuffled"), dict) else {}
    expect_learned(result.get("logits"), shuffled.get("logits"),
                   tier(result["shuffled_neg_elbo"], thresholds["neg_elbo_tiers"], higher_is_better=False),
                   name="decode (on the encoded held-out digits)")
    if 0 < fraction < 1:
        credit(fraction, f"held-out -ELBO {neg_elbo:.1f} nats per image after {steps} steps: "
                         "training works but less well than expected")
    if fraction > 0:
        return
    fails(f"held-out -ELBO {neg_elbo:.1f} nats per image after {steps} steps: your train() does not "
          "maximise the ELBO (check the loss sign, zero_grad, and the optimiser step)")


MECHANICS = {"rows": 13, "batch": 6, "z_dim": 3, "hidden": 5, "steps": 40}   # every size distinct


def _batch_rows(batch, data: torch.Tensor, size: int):
    """The rows of `data` a recorded batch holds (None when it is not `size` rows of it)."""
    if not isinstance(batch, torch.Tensor) or batch.dim() != 2 or batch.shape != (size, data.shape[1]):
        return None
    match = (batch.double()[:, None, :] == data[None, :, :]).all(-1)          # (size, N)
    return match.float().argmax(1).tolist() if bool(match.any(1).all()) else None


def _loss_matches(loss, group) -> bool:
    """Whether `loss` is -mean ELBO of the group's weights on one of the batches it saw."""
    return any(isinstance(x, torch.Tensor) and x.dim() == 2 and x.shape[1] == X_DIM and x.shape[0] > 0
               and abs(float(ref_train_loss(group["weights"], x.double())) - loss) <= 1e-3 + 1e-6 * abs(loss)
               for x in group["batches"])


@pytest.mark.judges("train")   # on the grader's elbo and its pieces (probes.UNDER_TRAIN): nothing upstream
def test_train_mechanics(worker, seed, credit):
    """The student's train on the grader's model (deterministic loss: log sigma^2 ~ -300, z = mu)
    and data drawn from the seed, watched step by step: exactly `steps` Adam steps of
    learning rate `lr` (Adam's first step moves each weight by lr against its gradient's
    sign), each on `batch_size` rows of the data, batches reaching every row, and the
    returned losses, Python floats, equal to -mean ELBO of the weights of that step on its
    batch (the judge's recomputation).; every later step an Adam step (PyTorch's defaults)
    on its own minibatch's gradient (no gradient left over from earlier steps), and the
    minibatches drawn at random by torch's generator (not runs of consecutive rows; the
    same after the same torch.manual_seed whatever NumPy's and Python's generators hold)."""
    g = torch.Generator().manual_seed(seed)
    n, size, steps = MECHANICS["rows"], MECHANICS["batch"], MECHANICS["steps"]
    w = fixed_weights(seed, z_dim=MECHANICS["z_dim"], hidden=MECHANICS["hidden"], logvar_bias=-300.0)
    data = torch.rand(n, X_DIM, generator=g, dtype=F64)
    lr = float(10 ** (-2.4 + 0.8 * torch.rand(1, generator=g)))                # 0.004 .. 0.025
    out = worker.call("train_mechanics", w, data, steps, size, lr, 500 + seed)
    groups = recorded_groups(out, "train", hint="call elbo(model, batch)")

    def rows_of(x):
        return _batch_rows(x, data, size)

    problems, losses = [], out["losses"]
    floats = isinstance(losses, list) and len(losses) == steps and all(isinstance(v, float) for v in losses)
    if not floats:
        got = describe_value(losses)
        if isinstance(losses, (list, tuple)):
            odd = [v for v in losses if not isinstance(v, float)]
            got += f" of length {len(losses)}" + (f" holding {describe_value(odd[0])}" if odd else "")
        problems.append(f"train should return a list of its {steps} losses as Python floats (loss.item()), got {got}")
    final = out.get("final")
    final_moved = not isinstance(final, dict) or any(not torch.equal(final[k], groups[-1]["weights"][k]) for k in w)
    updates = int(out.get("steps_seen", 0)) - 1 + final_moved
    if updates != steps:
        problems.append(f"train should take exactly steps = {steps} optimiser steps, took {updates}")
    batches = [rows_of(grp["batches"][0]) for grp in groups[:steps]]
    if any(rows is None for rows in batches):
        problems.append(f"train: every minibatch should be batch_size = {size} rows of the data")
    elif len({r for rows in batches for r in rows}) < n:
        problems.append(f"train: in {steps} steps the minibatches never reached some rows of the data: "
                        "draw them uniformly from all the rows")
    if floats and not all(_loss_matches(loss, grp) for loss, grp in zip(losses, groups)):
        problems.append("train: the losses returned are not -mean ELBO of the minibatch at each step "
                        "(before the step, averaged over the batch)")
    if len(groups) >= 2:
        step = adam_first_step(groups[0]["weights"], groups[0]["batches"][0].double(), lr)
        moved = {k: groups[1]["weights"][k] - groups[0]["weights"][k] for k in w}
        if not all(bool(((moved[k] - delta).abs() <= 0.02 * lr)[grad.abs() > 1e-3].all()) for k, (delta, grad) in step.items()):
            problems.append("train: the first step is not an Adam step with learning rate lr")
    if len(groups) >= steps and isinstance(final, dict) and not any(rows is None for rows in batches):
        weights = [grp["weights"] for grp in groups[:steps]] + [final]
        errors = adam_step_errors(weights, [grp["batches"][0] for grp in groups[:steps]], lr)
        # Seeds 0-4: the reference and the three independent implementations deviate by at most
        # 2e-12 lr; no zero_grad by at least 1.6 lr, zero_grad every other step by at least 0.74 lr.
        if max(errors[1:], default=0.0) > 0.02:
            problems.append("train: the steps after the first are not Adam steps on each minibatch's own gradient "
                            "(optimiser.zero_grad() before every backward, one step per minibatch)")
    problems += _batching_problems(batches, out.get("rerun_batches"), data, size)[:1]
    score_checks(problems, 7, credit)


def _batching_problems(batches, reruns, data, size: int) -> list[str]:
    """Minibatches drawn at random with torch's generator: not runs of consecutive rows (a
    run of `size` rows is a chance of about n / n^size per uniform draw), and the same rows
    when train runs again right after the same torch.manual_seed, whatever Python's and
    NumPy's generators hold."""
    n, problems = data.shape[0], []
    if batches and not any(rows is None for rows in batches):
        runs = sum(all((b - a) % n == 1 for a, b in zip(rows, rows[1:])) for rows in batches)
        if runs > len(batches) // 2:
            problems.append("train: the minibatches are runs of consecutive rows: draw the rows at random")
    if not isinstance(reruns, list) or len(reruns) != 2:
        return problems + ["train: could not be run again after torch.manual_seed"]
    first, second = ([_batch_rows(x, data, size) for x in run] for run in reruns)
    if first != second:
        problems.append("train: two runs after the same torch.manual_seed drew different minibatches: draw "
                        "them with torch's random functions, so that the seed decides them")
    return problems


def _generated(logits, n: int, perm, name: str) -> torch.Tensor:
    """Pixel means sigmoid(decode(z)) of the judge's z, the grading's permutation undone."""
    if isinstance(logits, Raised):
        fails(f"{name} raised {logits}")
    logits = expect_finite(expect_tensor(logits, name=name, shape=(n, X_DIM)), name=name)
    return perm.undo(torch.sigmoid(logits.double()))


def _quality(samples: torch.Tensor, thresholds) -> tuple[float, float, float]:
    """(memorised fraction, FID-lite, credit under the tiers) of samples in the digits' pixel order."""
    import kitdata.digits
    import kitdata.metrics

    memorised = kitdata.metrics.memorisation_fraction(samples, kitdata.digits.every_real_image())
    fid = kitdata.metrics.fid_lite(samples)
    fraction = 0.0 if memorised > thresholds["memorisation_max"] else tier(fid, thresholds["fid_tiers"],
                                                                            higher_is_better=False)
    return memorised, fid, fraction


@pytest.mark.upstream("test_shapes", "test_train_mechanics", "test_training_loop")   # the loss: the grader's
def test_sample_quality(worker, seed, thresholds, credit, artifacts, secret_rng):
    """Generation after the fixed training budget on digits permuted for this grading: the
    student's trained decoder on the judge's z ~ N(0, I), pixel means sigmoid(decode(z)),
    scored (permutation undone) with FID-lite against the held-out digits (tiers in
    grading.yml). Samples that are copies of real images score zero whatever their FID-lite,
    and so does quality that survives shuffling the trained weights."""
    result = _trained(worker, seed, thresholds, secret_rng)
    if not isinstance(result, dict):
        fails(f"after training, decode gave no samples: got {describe_value(result)}")
    n, perm = int(thresholds["n_samples"]), result["perm"]
    samples = _generated(result.get("prior_logits"), n, perm, "decode (on z drawn from the prior)")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    panels = [("samples from the prior", digit_grid(samples, 8, 8))]
    if all(isinstance(result.get(k), torch.Tensor) for k in ("inputs", "reconstructions", "walk")):
        shown = perm.undo(torch.cat([result["inputs"], result["reconstructions"]]).double())
        panels.append(("held-out digits (top) and reconstructions", digit_grid(shown, 2, 10)))
        panels.append(("walks in latent space", digit_grid(perm.undo(result["walk"].double()), 3, 8)))
    for filename, (title, image) in zip(["vae_samples.png", "vae_reconstructions.png", "vae_latent_walk.png"], panels):
        fig, ax = plt.subplots(figsize=(image.shape[1] / 12 + 1, image.shape[0] / 12 + 0.6))
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
        artifacts.figure(filename, fig)

    memorised, fid, fraction = _quality(samples, thresholds)
    try:
        _, shuffled_fid, shuffled_credit = _quality(_generated(result.get("shuffled_prior_logits"), n, perm, "decode"),
                                                    thresholds)
        artifacts.note(f"FID-lite with your trained decoder's weights shuffled: {shuffled_fid:.1f}")
    except AssertionError:
        shuffled_credit = 0.0                   # the shuffled copy gave nothing usable: no credit
    expect_learned(result.get("prior_logits"), result.get("shuffled_prior_logits"), shuffled_credit,
                   name="decode (on z drawn from the prior)")
    if memorised > thresholds["memorisation_max"]:
        fails(f"{memorised:.0%} of your samples are near-copies of real digits: a generative model "
              "must produce new digits")
    artifacts.note(f"FID-lite of your samples against the held-out digits: {fid:.1f} (lower is better)")
    if 0 < fraction < 1:
        credit(fraction, f"FID-lite {fid:.1f}: your samples look like digits only in part")
    if fraction > 0:
        return
    fails(f"FID-lite {fid:.1f}: your samples from the prior do not look like the digits "
          "(is the KL term in the loss, and does the decoder map z ~ N(0, I) to digits?)")


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


@pytest.mark.judges("iwae_bound")
def test_iwae_k1_matches_elbo(worker, seed):
    """With k = 1 the IWAE estimate is a single-sample ELBO: its average is the ELBO."""
    est, elbo, _, _ = _iwae(worker, seed, [1], replicas=4000)
    for b in range(IWAE_X):
        mean, se = mean_and_se(est[1][b])
        if abs(mean - float(elbo[b])) > Z_CRIT * se:
            fails(f"iwae_bound with k = 1 does not average to the ELBO ({abs(mean - float(elbo[b])) / se:.0f} "
                  "standard errors off): log w = log p(x|z) + log p(z) - log q(z|x), full Gaussian densities")


@pytest.mark.judges("iwae_bound")
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


@pytest.mark.judges("iwae_bound")
def test_iwae_below_log_likelihood(worker, seed):
    """IWAE_16 on 16 digits has the law of the grader's own IWAE_16 (k == B; also with a
    confident decoder), E[IWAE_k] <= log p(x) (log p(x) by quadrature over the 2-d latent)
    for k = 64 and 256, and E[IWAE_64] is the value the grader's own IWAE estimates; first,
    exactly, on a model whose q(z|x) is the prior and whose decoder ignores z."""
    _iwae_exact(worker, seed)
    _iwae_k_equals_b(worker, seed)
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


def _iwae_exact(worker, seed):
    """With q(z|x) = p(z) = N(0, I) and a decoder that ignores z, every importance weight is
    p(x) itself, so IWAE_k = log p(x) exactly for every k: an average over k - 1 or k + 1
    (a bias of log(64/63) = 0.016 nats at k = 64, far below what draws can show), a density
    whose constants differ between log p(z) and log q(z|x), or a missing log k all show here."""
    z_dim, ks = 3, (1, 5, 64)
    g = torch.Generator().manual_seed(seed)
    w = {"enc_mu_w": torch.zeros(X_DIM, z_dim, dtype=F64), "enc_mu_b": torch.zeros(z_dim, dtype=F64),
         "enc_lv_w": torch.zeros(X_DIM, z_dim, dtype=F64), "enc_lv_b": torch.zeros(z_dim, dtype=F64),
         "dec_w2": torch.zeros(z_dim, X_DIM, dtype=F64), "dec_b2": torch.randn(X_DIM, generator=g, dtype=F64) * 2}
    x = heldout_digits(5, offset=11)
    out = worker.call("iwae", w, x, 1, list(ks))
    if not isinstance(out, dict):
        fails(f"iwae_bound should return a tensor, got {describe_value(out)}")
    log_px = -ref_recon(w["dec_b2"].expand_as(x), x)
    for k in ks:
        name = f"iwae_bound(model, x, k={k}) where q(z|x) = p(z) and p(x|z) ignores z (every weight is p(x))"
        got = expect_tensor(out.get(str(k)), name=f"iwae_bound(model, x, k={k})", shape=(5,), dtype=F64)
        expect_close(got, log_px, name=name, rtol=1e-9, atol=1e-7)


IWAE_CALLS = 200
IWAE_ALPHA = 1e-7    # per example: the two-sample Kolmogorov-Smirnov test is exact whatever the tails


def _iwae_k_equals_b(worker, seed):
    """E[IWAE_16] on 16 digits (k == B, where a log-sum-exp over the wrong axis keeps its
    shape), for the grader's model and for a confident decoder whose log p(x|z) is about
    -1000 nats (where exp(log w) underflows in float64): the student's 200 draws and the
    judge's 1,200 have the same law (two-sample Kolmogorov-Smirnov test per example; the
    draws' tails are too heavy for a test of the means at 5 standard errors)."""
    x = heldout_digits(16, offset=3, stride=18)
    k = x.shape[0]
    for confidence in (1.0, 40.0):
        w = fixed_weights(seed + 1, z_dim=2, logvar_bias=-1.5, confidence=confidence)
        calls = worker.call("iwae_calls", w, x, k, IWAE_CALLS)
        if not isinstance(calls, list) or len(calls) != IWAE_CALLS:
            fails(f"iwae_bound should return a tensor, got {describe_value(calls)}")
        name = f"iwae_bound(model, x, k={k}) on {k} digits" + (" (confident decoder)" if confidence > 1 else "")
        est = torch.stack([expect_finite(expect_tensor(c, name=name, shape=(k,), dtype=F64), name=name)
                           for c in calls], 1)                                         # (B, calls)
        own = ref_iwae(w, x, k, 1200, torch.Generator().manual_seed(seed))
        for b in range(k):
            if stats.ks_2samp(est[b].numpy(), own[b].numpy()).pvalue < IWAE_ALPHA:
                fails(f"{name} is not distributed as IWAE_{k}: log-sum-exp over the k samples of each example")
