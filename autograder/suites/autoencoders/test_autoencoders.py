"""Hidden suite for the autoencoders assignment (runs in the judge; never imports student
code). The float64 reference maths (the PCA optimum, the Bayes-optimal denoiser of the
Gaussian mixture and its score) live in ref_autoencoders.py.

Conventions judged (handout.md): squared error summed over pixels, one value per example;
the training loss is its batch mean against the clean target; corruption only on the
model's input in training; no corruption and no dropout in ``reconstruct``.

Learned quality is judged on data drawn in the judge from this grading's hidden variant
(``secret_rng``): the digits under a pixel permutation (an MLP learns them exactly as well;
undone here before FID-lite), the 2-D ring rotated, scaled, shifted and reweighted (its
Bayes denoiser computed here). They reach the worker only as probe arguments, and every
quality is measured on the trained model and on a copy with its weights shuffled.

Statistical checks. Every test on random draws (z-test of a mean, chi-square test of a
variance, Kolmogorov-Smirnov, binomial test of a masking fraction or of a tail count,
correlation) runs at alpha = 1e-7: with fewer than 160 such tests in the suite, a correct solution fails one
with probability below 1.6e-5. The draws come from the worker's seeded RNG or from
generators seeded by the judge, so a given grader seed always gives the same verdict.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from autograder.grading.judge import (Raised, StudentError, changed_inputs, describe_value, digit_grid, expect_close,
                              expect_learned, expect_same, expect_tensor, fails, on_device, output_problems, parity_devices,
                              plottable, recorded_groups, score_checks, tier)
from ref_autoencoders import (adam_first_step, bayes_denoiser, grader_corrupt, heldout_digits, mlp_weights,
                              noisy_score, normal_tests, pca_optimum, ref_recon, ref_train_loss,
                              train_digits, tweedie_gap)

X_DIM = 64
F64 = torch.float64
ALPHA = 1e-7


def _fig():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# --------------------------------------------------------------------------- shapes


SHAPE_CASES = [(1, 1, 16), (7, 3, 11), (12, 5, 9)]     # (batch, z_dim, hidden): a batch of one, one latent dim


def _shape_spec(batch: int, z_dim: int) -> dict:
    return {
        "Autoencoder.encode": (batch, z_dim), "Autoencoder.decode": (batch, X_DIM),
        "Autoencoder.forward": (batch, X_DIM),
        "LinearAutoencoder.encode": (batch, z_dim), "LinearAutoencoder.decode": (batch, X_DIM),
        "LinearAutoencoder.forward": (batch, X_DIM),
        "reconstruction_loss": (batch,), "gaussian_noise": (batch, X_DIM), "masking_noise": (batch, X_DIM),
        "reconstruct": (batch, X_DIM), "sample_random_latents": (batch, X_DIM),
        "sample_fitted_latents": (batch, X_DIM),
    }


@pytest.mark.judges("Autoencoder")
@pytest.mark.parametrize("batch,z_dim,hidden", SHAPE_CASES)
def test_shapes(worker, seed, credit, batch, z_dim, hidden):
    """Every function returns what the handout says (shape, float32): the bottleneck has
    z_dim numbers, for a batch of one and one latent dimension among the cases, and every
    function leaves its inputs unchanged."""
    g = torch.Generator().manual_seed(seed)
    inputs = {"x": torch.rand(batch, X_DIM, generator=g), "z": torch.randn(batch, z_dim, generator=g),
              "x_hat": torch.rand(batch, X_DIM, generator=g) * 2 - 0.5,
              "codes": torch.randn(4 * z_dim + 9, z_dim, generator=g)}
    out = worker.call("shapes", batch, z_dim, hidden, inputs)
    expected = _shape_spec(batch, z_dim)
    problems = output_problems(out, expected, on_device("cpu", torch.float32))
    changed = changed_inputs(out.get("inputs_after") if isinstance(out, dict) else None, inputs, expected)
    score_checks(problems + changed[:1], len(expected) + 1, credit, f"batch {batch}, z_dim {z_dim}")


@pytest.mark.judges("Autoencoder")
def test_architecture(worker, seed, credit):
    """The handout's Autoencoder: its parameter count follows z_dim and hidden, dropout
    works in train mode only and only in the encoder, neither the code nor the decoder's
    output has an activation, encoder and decoder are each nonlinear; LinearAutoencoder has
    two bias-free weight matrices."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(6, X_DIM, generator=g)
    z_big = torch.randn(5, 4, generator=g) * 1e3
    out = worker.call("architecture", x, z_big)
    if not isinstance(out, dict):
        fails(f"Autoencoder: expected the encoder's and decoder's outputs, got {describe_value(out)}")
    problems = []

    def count(z, h):   # Linear(64,h) ReLU Dropout Linear(h,z) | Linear(z,h) ReLU Linear(h,64)
        return (X_DIM * h + h) + (h * z + z) + (z * h + h) + (h * X_DIM + X_DIM)

    counts = out.get("counts")
    if isinstance(counts, Raised):
        problems.append(f"Autoencoder raised {counts}")
    elif counts != [count(3, 20), count(3, 41), count(7, 20)]:
        problems.append("Autoencoder(x_dim, z_dim, hidden) should have the handout's layers: its number of "
                        "parameters does not follow z_dim and hidden")
    drop = out.get("dropout")
    try:
        if isinstance(drop, Raised):
            fails(f"Autoencoder(dropout=0.5) raised {drop}")
        if not isinstance(drop, dict):
            fails("Autoencoder with dropout: could not be run")
        t1, t2 = (expect_tensor(v, name="Autoencoder(dropout=0.5) in train mode", shape=(6, X_DIM)) for v in drop["train"])
        e1, e2 = (expect_tensor(v, name="Autoencoder(dropout=0.5) in eval mode", shape=(6, X_DIM)) for v in drop["eval"])
        p1, p2 = (expect_tensor(v, name="Autoencoder() in train mode", shape=(6, X_DIM)) for v in drop["no_dropout_train"])
        if torch.equal(t1, t2):
            problems.append("Autoencoder(dropout=0.5): two calls in train mode agree: the dropout argument is not used")
        if not torch.equal(e1, e2):
            problems.append("Autoencoder(dropout=0.5): two calls in eval mode differ: dropout must be off in eval mode")
        if not torch.equal(p1, p2):
            problems.append("Autoencoder() (dropout 0) is random in train mode")
    except AssertionError as error:
        problems.append(str(error))
    big = out.get("decode_big")
    if isinstance(big, Raised):
        problems.append(f"Autoencoder.decode raised {big}")
    elif not isinstance(big, torch.Tensor) or big.shape != (5, X_DIM):
        problems.append(f"Autoencoder.decode should return a tensor of shape (5, 64), got {describe_value(big)}")
    elif float(big.double().abs().max()) < 5.0:
        problems.append("Autoencoder.decode stays bounded for huge codes: no activation after the decoder's "
                        "last layer (the Gaussian mean is any real number)")
    problems += _structure_problems(out.get("structure"))
    params = out.get("linear_params")
    if isinstance(params, Raised):
        problems.append(f"LinearAutoencoder raised {params}")
    elif not isinstance(params, dict) or sorted(tuple(v) for v in params.values() if isinstance(v, list)) != [(3, 64), (64, 3)] \
            or len(params) != 2:
        problems.append("LinearAutoencoder(64, 3) should have exactly two weight matrices (64 -> 3 and 3 -> 64) "
                        "and no biases")
    score_checks(problems, 7, credit)


def _structure_problems(out) -> list[str]:
    """Three checks on Autoencoder(64, 24, 40, dropout=0.5): the code is any real vector, both
    halves are nonlinear, the decoder has no dropout. Structure a learned-quality test hardly
    sees (a ReLU on a 16-d code, a linear decoder still denoise the digits)."""
    if isinstance(out, Raised):
        return [f"Autoencoder raised {out}"] * 3
    try:
        if not isinstance(out, dict):
            fails(f"Autoencoder: expected its outputs, got {describe_value(out)}")
        codes = expect_tensor(out.get("codes"), name="Autoencoder.encode", shape=(6, 24)).double()
        mid_c = expect_tensor(out.get("codes_mid"), name="Autoencoder.encode", shape=(6, 24)).double()
        ends_c = [expect_tensor(v, name="Autoencoder.encode", shape=(6, 24)).double() for v in out.get("codes_ends")]
        mid_d = expect_tensor(out.get("decode_mid"), name="Autoencoder.decode", shape=(6, X_DIM)).double()
        ends_d = [expect_tensor(v, name="Autoencoder.decode", shape=(6, X_DIM)).double() for v in out.get("decode_ends")]
        train_d = [expect_tensor(v, name="Autoencoder.decode", shape=(6, X_DIM)) for v in out.get("decode_train")]
    except (AssertionError, TypeError) as error:
        return [str(error).split(chr(10))[0]] * 3
    problems = []
    # inputs 40 times the pixel range: an unbounded code has entries of both signs far beyond 1
    if not bool(torch.isfinite(codes).all()) or float(codes.min()) >= 0 or float(codes.abs().max()) < 5.0:
        problems.append("Autoencoder.encode: the code should be any real vector (no activation after the "
                        "encoder's last layer)")

    def affine(mid, ends):
        gap = float((mid - 0.5 * (ends[0] + ends[1])).abs().max())
        return gap <= 1e-4 * (1.0 + float(torch.stack(ends).abs().max()))

    if affine(mid_c, ends_c) or affine(mid_d, ends_d):
        problems.append("Autoencoder: the encoder and the decoder should each have a ReLU between their two "
                        "Linear layers (one of them is a linear map)")
    if not torch.equal(train_d[0], train_d[1]):
        problems.append("Autoencoder.decode is random in train mode: dropout belongs in the encoder only")
    return problems


@pytest.mark.judges("LinearAutoencoder")
def test_linear_autoencoder(worker, seed):
    """LinearAutoencoder in float64: encode(x) = W_enc (x - mean) and decode(z) = W_dec z + mean
    exactly, with its own weight matrices (no activation, the mean removed and restored)."""
    g = torch.Generator().manual_seed(seed)
    z_dim = 3
    mean = torch.rand(X_DIM, generator=g, dtype=F64)
    x = torch.rand(9, X_DIM, generator=g, dtype=F64) * 4 - 2
    z = torch.randn(9, z_dim, generator=g, dtype=F64) * 5
    out = worker.call("linear_maps", mean, x, z, z_dim)
    if not isinstance(out, dict):
        fails(f"LinearAutoencoder: expected its outputs, got {describe_value(out)}")
    mats = out.get("matrices")
    if not isinstance(mats, list) or sorted(tuple(m.shape) for m in mats if isinstance(m, torch.Tensor)) != [(3, 64), (64, 3)]:
        fails("LinearAutoencoder should hold two weight matrices, nn.Linear(x_dim, z_dim) and nn.Linear(z_dim, x_dim)")
    w_enc = next(m for m in mats if tuple(m.shape) == (3, 64)).double()
    w_dec = next(m for m in mats if tuple(m.shape) == (64, 3)).double()
    for name in ("encode", "encode_mean", "decode", "decode_zero", "forward"):
        if isinstance(out.get(name), Raised):
            fails(f"LinearAutoencoder.{name.split('_')[0]} raised {out[name]}")
    enc = expect_tensor(out["encode"], name="LinearAutoencoder.encode (float64)", shape=(9, z_dim), dtype=F64)
    expect_close(out["encode_mean"], torch.zeros(1, z_dim, dtype=F64), rtol=0, atol=1e-5,
                 name="LinearAutoencoder.encode(mean) (the data must be centred: encode(mean) = 0)")
    expect_close(out["decode_zero"], mean.unsqueeze(0), rtol=0, atol=1e-5,
                 name="LinearAutoencoder.decode(0) (the mean must be added back: decode(0) = mean)")
    expect_close(enc, (x - mean) @ w_enc.T, rtol=1e-8, atol=1e-5,
                 name="LinearAutoencoder.encode (W_enc (x - mean), no activation)")
    dec = expect_tensor(out["decode"], name="LinearAutoencoder.decode (float64)", shape=(9, X_DIM), dtype=F64)
    expect_close(dec, z @ w_dec.T + mean, rtol=1e-8, atol=1e-5,
                 name="LinearAutoencoder.decode (W_dec z + mean, no activation)")
    expect_close(out["forward"], (x - mean) @ w_enc.T @ w_dec.T + mean, rtol=1e-8, atol=1e-5,
                 name="LinearAutoencoder.forward (decode(encode(x)))")


# --------------------------------------------------------------------------- loss


@pytest.mark.judges("reconstruction_loss")
def test_reconstruction_loss(worker, seed, credit):
    """sum_d (x_hat - x)^2 per example against float64: a batch of one, float32, and
    far-from-typical values (1e8 apart by 1, 1e150) where an expanded square cancels."""
    g = torch.Generator().manual_seed(seed)
    problems = []
    cases = []
    x = torch.rand(5, X_DIM, generator=g, dtype=F64)
    x_hat = torch.randn(5, X_DIM, generator=g, dtype=F64)
    cases.append(("float64", x_hat, x, 1e-12))
    cases.append(("a batch of one", x_hat[:1], x[:1], 1e-12))
    cases.append(("float32", x_hat.float(), x.float(), 1e-5))
    big = 1e8 * (1 + torch.rand(3, X_DIM, generator=g, dtype=F64)).round()
    cases.append(("values near 1e8", big + torch.randint(-2, 3, (3, X_DIM), generator=g).double(), big, 1e-12))
    huge = torch.randn(2, X_DIM, generator=g, dtype=F64) * 1e150
    cases.append(("values near 1e150", huge, huge * 0.5, 1e-12))
    for label, xh, xx, tol in cases:
        name = f"reconstruction_loss ({label})"
        try:
            got = expect_tensor(worker.call("recon", xh, xx), name=name, shape=(xh.shape[0],), dtype=xh.dtype)
            expect_close(got, ref_recon(xh, xx).to(xh.dtype), name=name, rtol=tol, atol=tol)
        except AssertionError as error:
            problems.append(str(error))
    score_checks(problems, len(cases), credit)


# --------------------------------------------------------------------------- corruption


def _noise_call(worker, kind, x, level, seeds, global_seed=None):
    """The outputs for each seed in `seeds`, then (with global_seed) the two calls made right
    after torch.manual_seed(global_seed)."""
    out = worker.call("noise", kind, x, level, seeds, global_seed)
    fn = "gaussian_noise" if kind == "gaussian" else "masking_noise"
    if not isinstance(out, dict) or not isinstance(out.get("outputs"), list) or len(out["outputs"]) != len(seeds):
        fails(f"{fn}: expected its outputs, got {describe_value(out)}")
    extra = out.get("global", []) if global_seed is not None else []
    if not isinstance(extra, list) or len(extra) != (2 if global_seed is not None else 0):
        fails(f"{fn}: expected its outputs, got {describe_value(extra)}")
    for o in out["outputs"] + extra:
        if isinstance(o, Raised):
            fails(f"{fn} raised {o}")
    expect_same(out.get("after"), x, name=f"the x given to {fn} (corrupt a copy, never x in place)")
    return [expect_tensor(o, name=fn, shape=tuple(x.shape), dtype=x.dtype) for o in out["outputs"] + extra]


def _generator_checks(fn, outs):
    """outs: no generator, seed a, seed a again, seed b, no generator again, and (when there
    are 7) two calls without a generator each right after the same torch.manual_seed."""
    if torch.equal(outs[0], outs[4]):
        fails(f"{fn}: two calls without a generator give the same draws: draw fresh noise on every call")
    if not torch.equal(outs[1], outs[2]):
        fails(f"{fn}: two calls with generators of the same seed differ: draw with the generator given")
    if torch.equal(outs[1], outs[3]) or torch.equal(outs[0], outs[1]):
        fails(f"{fn}: the generator given does not decide the draws")
    if len(outs) == 7 and not torch.equal(outs[5], outs[6]):
        fails(f"{fn}: without a generator the draws should come from torch's global generator "
              "(torch.manual_seed must fix them)")


@pytest.mark.judges("gaussian_noise")
def test_gaussian_noise(worker, seed):
    """x_tilde - x is N(0, sigma^2) entry by entry (mean, variance, normality at alpha = 1e-7,
    for sigma 0.3 and 2.5 in float64), independent of x and across entries; sigma = 0 returns
    x; x is never changed; a generator decides the draws, torch's global one without it."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(400, X_DIM, generator=g, dtype=F64)
    x[::2] = 0.0                                   # half the rows black: the noise must not depend on x
    a, b = (int(v) for v in torch.randint(0, 2**31, (2,), generator=g))
    for sigma in (0.3, 2.5):
        outs = _noise_call(worker, "gaussian", x, sigma, [None, a, a, b, None], global_seed=a % 100003)
        eps = (outs[0] - x) / sigma
        for part, label in ((eps, "all entries"), (eps[::2], "black pixels"), (eps[1::2], "grey pixels")):
            failed = normal_tests(part, ALPHA)
            if failed == "variance":
                ratio = float(part.var())
                fails(f"gaussian_noise(x, sigma={sigma}): the noise variance is {ratio:.3g} sigma^2 "
                      "(sigma is a standard deviation)")
            if failed:
                fails(f"gaussian_noise(x, sigma={sigma}): x_tilde - x is not N(0, sigma^2) ({failed}, {label})")
        r = float(torch.corrcoef(torch.stack([eps[:, :-1].reshape(-1), eps[:, 1:].reshape(-1)]))[0, 1])
        if abs(r) * math.sqrt(eps[:, 1:].numel()) > stats.norm.isf(ALPHA / 2):
            fails("gaussian_noise: neighbouring pixels get correlated noise: draw every entry independently")
        _generator_checks("gaussian_noise", outs)
    zero = _noise_call(worker, "gaussian", x[:3], 0.0, [None])[0]
    expect_close(zero, x[:3], rtol=0, atol=0, name="gaussian_noise(x, sigma=0)")


@pytest.mark.judges("masking_noise")
def test_masking_noise(worker, seed):
    """Each entry is zeroed with probability p, independently (binomial tests at alpha = 1e-7
    for p = 0.25 and 0.7, also per row and per column), kept exactly otherwise; p = 0 and
    p = 1; x is never changed; a generator decides the draws, torch's global one without it."""
    g = torch.Generator().manual_seed(seed)
    x = 0.05 + 0.95 * torch.rand(300, X_DIM, generator=g, dtype=F64)     # no zero pixel in x
    a, b = (int(v) for v in torch.randint(0, 2**31, (2,), generator=g))
    for p in (0.25, 0.7):
        outs = _noise_call(worker, "masking", x, p, [None, a, a, b, None], global_seed=b % 100003)
        out = outs[0]
        dropped = out == 0
        kept = ~dropped
        if not torch.equal(out[kept], x[kept]):
            fails(f"masking_noise(x, p={p}): the pixels kept must be exactly x (no rescaling, no noise)")
        n, k = dropped.numel(), int(dropped.sum())
        if stats.binomtest(k, n, p).pvalue < ALPHA:
            fails(f"masking_noise(x, p={p}): {k / n:.3f} of the pixels are zeroed: each must be zeroed "
                  "with probability p")
        rows = dropped.double().sum(1)
        chi2 = float(((rows - X_DIM * p) ** 2 / (X_DIM * p * (1 - p))).sum())
        if stats.chi2.sf(chi2, len(rows)) < ALPHA or stats.chi2.cdf(chi2, len(rows)) < ALPHA:
            fails(f"masking_noise(x, p={p}): the number zeroed per image is not binomial: "
                  "zero every pixel independently")
        cols = dropped.double().sum(0)
        chi2 = float(((cols - x.shape[0] * p) ** 2 / (x.shape[0] * p * (1 - p))).sum())
        if stats.chi2.sf(chi2, len(cols)) < ALPHA:
            fails(f"masking_noise(x, p={p}): some pixel positions are zeroed more often than others")
        _generator_checks("masking_noise", outs)
    none = _noise_call(worker, "masking", x[:3], 0.0, [None])[0]
    expect_close(none, x[:3], rtol=0, atol=0, name="masking_noise(x, p=0)")
    every = _noise_call(worker, "masking", x[:3], 1.0, [None])[0]
    expect_close(every, torch.zeros_like(x[:3]), rtol=0, atol=0, name="masking_noise(x, p=1)")


# --------------------------------------------------------------------------- devices


PARITY_SHAPES = {"reconstruction_loss": (6,), "gaussian_noise": (6, X_DIM), "masking_noise": (6, X_DIM),
                 "encode": (6, 4), "decode": (6, X_DIM), "linear_forward": (6, X_DIM), "reconstruct": (6, X_DIM),
                 "sample_random_latents": (5, X_DIM), "sample_fitted_latents": (5, X_DIM)}


def test_device_parity(worker, seed, credit):
    """Same results on every device and dtype: on an accelerator the deterministic outputs
    match the CPU's; without one, every function keeps PyTorch's `meta` device (no tensor
    created on the CPU inside; sample_fitted_latents is left out there, since torch.cov has
    no meta kernel), float64 inputs give float64 outputs, and two training steps
    run on each device. Credit: the fraction of checks passed."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(6, X_DIM, generator=g)
    problems = output_problems(worker.call("parity", "cpu", "float64", x), PARITY_SHAPES,
                               on_device("cpu", F64, where=" on float64 inputs"))
    total = len(PARITY_SHAPES)
    cpu32 = worker.call("parity", "cpu", "float32", x)
    for device in parity_devices(worker):
        out = worker.call("parity", device, "float32", x)
        shapes = {k: v for k, v in PARITY_SHAPES.items() if device != "meta" or k != "sample_fitted_latents"}
        problems += output_problems(out, shapes, on_device(device, torch.float32, where=f" on {device}"))
        losses = worker.call("train_on", device)
        total += len(shapes) + 1
        if isinstance(losses, Raised):
            problems.append(f"train raised {losses} on a model and data on the {device} device")
        elif not isinstance(losses, (list, tuple)) or len(losses) != 2:
            problems.append(f"train on the {device} device should return its 2 losses, got {describe_value(losses)}")
        if device == "meta":
            continue
        for name in ("reconstruction_loss", "encode", "decode", "linear_forward"):
            total += 1
            try:
                expect_close(out.get(name), expect_tensor(cpu32.get(name), name=f"{name} on the CPU"),
                             name=f"{name} on {device} vs CPU", rtol=1e-4, atol=1e-4)
            except AssertionError as error:
                problems.append(str(error))
    score_checks(problems, total, credit)


# --------------------------------------------------------------------------- training mechanics


MECHANICS = {"rows": 13, "batch": 6, "x_dim": 7, "hidden": 5, "steps": 40}   # every size distinct


def _rows_of(batch, data: torch.Tensor, size: int):
    """The rows of `data` that a recorded batch holds (None when it is not `size` of its rows)."""
    if not isinstance(batch, torch.Tensor) or batch.dim() != 2 or batch.shape != (size, data.shape[1]):
        return None
    match = (batch.double()[:, None, :] == data[None, :, :]).all(-1)
    return match.float().argmax(1).tolist() if bool(match.any(1).all()) else None


def _mechanics_problems(out, w, data, steps, size, lr, corrupted: bool) -> list[str]:
    groups = recorded_groups(out, "train")
    seen_as = grader_corrupt(data) if corrupted else data
    problems, losses = [], out["losses"]
    floats = isinstance(losses, list) and len(losses) == steps and all(isinstance(v, float) for v in losses)
    if not floats:
        problems.append(f"train should return a list of its {steps} losses as Python floats (loss.item()), "
                        f"got {describe_value(losses)}")
    final = out.get("final")
    final_moved = not isinstance(final, dict) or any(not torch.equal(final[k], groups[-1]["weights"][k]) for k in w)
    updates = int(out.get("steps_seen", 0)) - 1 + final_moved
    if updates != steps:
        problems.append(f"train should take exactly steps = {steps} optimiser steps, took {updates}")
    if not all(all(grp.get("training", [True])) for grp in groups):
        problems.append("train: the model must be in training mode (model.train()) while it trains")
    batches = [_rows_of(grp["batches"][0], seen_as, size) for grp in groups[:steps]]
    if any(rows is None for rows in batches):
        what = "corrupt(x) of a minibatch x" if corrupted else "a minibatch x"
        problems.append(f"train: the model's input at every step should be {what} of batch_size = {size} rows of the data")
        return problems
    if corrupted and len({r for rows in batches for r in rows}) < data.shape[0]:
        problems.append(f"train: in {steps} steps the minibatches never reached some rows of the data: "
                        "draw them uniformly from all the rows")
    n = data.shape[0]
    runs = sum(any(set(rows) == {(start + k) % n for k in range(size)} for start in range(n)) for rows in batches)
    if corrupted and runs > len(batches) // 2:     # uniform draws: a run of 6 of 13 rows about once in 800
        problems.append("train: the minibatches are runs of consecutive rows of the data: draw the rows "
                        "uniformly at random")
    if corrupted and int(out.get("calls", -1)) != steps:
        problems.append(f"train should call corrupt once per step (on the clean minibatch), called it "
                        f"{out.get('calls')} times in {steps} steps")
    if floats:
        ok = all(abs(float(ref_train_loss(grp["weights"], seen_as[rows], data[rows])) - loss) <= 1e-6 * (1 + abs(loss))
                 for loss, grp, rows in zip(losses, groups, batches))
        if not ok:
            problems.append("train: the losses returned are not the batch mean of reconstruction_loss(model(x_tilde), x) "
                            "against the clean x (before the step)")
    if len(groups) >= 2:
        rows = batches[0]
        step = adam_first_step(groups[0]["weights"], seen_as[rows], data[rows], lr)
        moved = {k: groups[1]["weights"][k] - groups[0]["weights"][k] for k in w}
        if not all(bool(((moved[k] - delta).abs() <= 0.02 * lr)[grad.abs() > 1e-3].all()) for k, (delta, grad) in step.items()):
            problems.append("train: the first step is not an Adam step with learning rate lr on that loss")
        else:
            late = _adam_replay(groups, batches, seen_as, data, lr, final if isinstance(final, dict) else None)
            if late is not None:
                problems.append(f"train: step {late} is not Adam's update on that step's loss (one torch.optim.Adam "
                                "for the whole loop, default settings, zero_grad before each backward)")
    return problems


def _adam_replay(groups, batches, seen_as, data, lr, final):
    """The judge's own torch.optim.Adam (default settings) from the recorded start, on the
    recorded minibatches: the first step whose weights differ from the student's, or None."""
    params = {k: v.detach().clone().requires_grad_(True) for k, v in groups[0]["weights"].items()}
    optimiser = torch.optim.Adam(list(params.values()), lr=lr)
    targets = [grp["weights"] for grp in groups[1:]] + ([final] if final is not None else [])
    for i, (rows, target) in enumerate(zip(batches, targets)):
        loss = ref_train_loss(params, seen_as[rows], data[rows])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        for k, v in params.items():
            if not isinstance(target.get(k), torch.Tensor) or target[k].shape != v.shape:
                return i + 1
            if float((target[k].double() - v.detach()).abs().max()) > 1e-3 * lr + 1e-9:
                return i + 1
    return None


@pytest.mark.judges("train")   # on the grader's reconstruction_loss (probes.UNDER_TRAIN): nothing upstream
def test_train_mechanics(worker, seed, credit):
    """The student's train on the grader's model (a fixed tanh MLP, deterministic loss) and
    data from the seed, with the grader's corruption and without: exactly `steps` Adam
    steps of learning rate `lr`, the model in training mode, its input corrupt(x) of
    `batch_size` rows drawn at random (not runs of consecutive rows), batches reaching every
    row, corrupt called once per step, and the returned losses equal to the mean squared
    error against the clean x (the judge's recomputation)."""
    g = torch.Generator().manual_seed(seed)
    n, size, steps = MECHANICS["rows"], MECHANICS["batch"], MECHANICS["steps"]
    w = mlp_weights(seed, x_dim=MECHANICS["x_dim"], hidden=MECHANICS["hidden"])
    data = torch.rand(n, MECHANICS["x_dim"], generator=g, dtype=F64)
    lr = float(10 ** (-2.4 + 0.8 * torch.rand(1, generator=g)))                 # 0.004 .. 0.025
    problems = _mechanics_problems(worker.call("train_mechanics", w, data, steps, size, lr, True),
                                   w, data, steps, size, lr, True)
    plain = _mechanics_problems(worker.call("train_mechanics", w, data, 4, size + 1, lr, False),
                                w, data, 4, size + 1, lr, False)
    problems += [p + " (corrupt=None)" for p in plain[:1]]
    score_checks(problems, 8, credit)


@pytest.mark.judges("reconstruct")
def test_reconstruct(worker, seed):
    """reconstruct puts the model in eval mode, runs it without gradients and without any
    corruption: on the grader's model (whose output tells its mode) it returns exactly
    2x + 1, twice."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(5, X_DIM, generator=g, dtype=F64)
    out = worker.call("reconstruct_mode", x)
    if not isinstance(out, dict):
        fails(f"reconstruct: expected its outputs, got {describe_value(out)}")
    for key in ("first", "second"):
        if isinstance(out.get(key), Raised):
            fails(f"reconstruct raised {out[key]}")
        got = expect_tensor(out.get(key), name="reconstruct", shape=(5, X_DIM), dtype=F64)
        if float((got - (2 * x + 1)).abs().max()) > 500:
            fails("reconstruct ran the model in training mode: call model.eval() first (dropout off)")
        expect_close(got, 2 * x + 1, rtol=0, atol=1e-12,
                     name="reconstruct (model(x) in eval mode, no corruption at evaluation time)")
    enabled = out.get("grad_enabled")
    if not isinstance(enabled, list) or not enabled or any(enabled):
        fails("reconstruct should run the model without gradients (torch.no_grad())")


# --------------------------------------------------------------------------- learned quality


def _losses_figure(artifacts, losses, filename, title, ylabel):
    curve = plottable(losses).reshape(-1)
    finite = curve[np.isfinite(curve)]
    if finite.size < 2:
        return
    plt = _fig()
    fig, ax = plt.subplots(figsize=(4.5, 2.8))
    ax.plot(np.arange(1, curve.size + 1), curve, lw=0.7)
    ax.set_yscale("log") if float(finite.min()) > 0 else None
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    artifacts.figure(filename, fig)


def _heldout_error(out, x_held, name):
    if isinstance(out, Raised):
        fails(f"{name} raised {out}")
    got = expect_tensor(out, name=name, shape=tuple(x_held.shape))
    return float(ref_recon(got, x_held).mean())


def _pair(out, name):
    """The trained model's and the shuffled twin's outputs from a probe's {"trained", "shuffled"}."""
    if not isinstance(out, dict) or "trained" not in out or "shuffled" not in out:
        fails(f"{name}: expected its outputs, got {describe_value(out)}")
    return out["trained"], out["shuffled"]


def _shuffled_value(compute):
    """The shuffled twin's score, inf when its outputs cannot be scored (no credit either way)."""
    try:
        value = compute()
    except (AssertionError, StudentError, TypeError, ValueError, RuntimeError):
        return float("inf")
    return value if math.isfinite(value) else float("inf")


def _secret_digits(secret_rng):
    """This grading's pixel permutation and the training and held-out digits under it."""
    from kitdata import variants

    perm = variants.PixelPermutation(secret_rng)
    x_held, y_held = heldout_digits()
    return perm, perm.apply(train_digits()).contiguous(), perm.apply(x_held).contiguous(), y_held


@pytest.mark.upstream("test_linear_autoencoder", "test_train_mechanics")   # the loss: the grader's
@pytest.mark.parametrize("z_dim", [2, 5])
def test_linear_ae_matches_pca(worker, seed, secret_rng, thresholds, credit, artifacts, z_dim):
    """A linear autoencoder with a z_dim bottleneck, trained by the student's train for a
    fixed budget on this grading's training digits (a pixel permutation drawn for the
    grading), reaches the exact optimum: its held-out squared error (summed over pixels, mean
    over digits) is scored by its relative gap to the held-out error of the best rank-z_dim
    projection (PCA of the same training data). The same model with its weights shuffled
    must lose that quality."""
    _, x_train, x_held, _ = _secret_digits(secret_rng)
    losses = worker.call("train_linear", seed, z_dim, int(thresholds["linear_steps"]),
                         int(thresholds["linear_batch_size"]), float(thresholds["linear_lr"]), x_train)
    if isinstance(losses, Raised):
        fails(f"train raised {losses}")
    trained, shuffled = _pair(worker.call("linear_heldout", x_held), "LinearAutoencoder")
    error = _heldout_error(trained, x_held, "LinearAutoencoder")
    best = pca_optimum(x_train, x_held, z_dim)
    gap = (error - best["heldout_error"]) / best["heldout_error"]
    gap_shuffled = _shuffled_value(lambda: (_heldout_error(shuffled, x_held, "LinearAutoencoder")
                                            - best["heldout_error"]) / best["heldout_error"])
    artifacts.note(f"linear AE, z_dim {z_dim}: held-out squared error {error:.4f} per digit; the best rank-{z_dim} "
                   f"projection (PCA) {best['heldout_error']:.4f}, on the training data the sum of the trailing "
                   f"eigenvalues {best['train_error']:.4f}; gap {100 * gap:+.2f}% (weights shuffled: "
                   f"{100 * gap_shuffled:+.0f}%)")
    if z_dim == 2:
        _losses_figure(artifacts, losses, "linear_ae_loss.png", "your linear AE's training loss (z_dim 2)",
                       "squared error per digit")
    if not math.isfinite(gap):
        fails("the linear autoencoder's held-out reconstructions are not finite")
    if gap < -float(thresholds["linear_gap_floor"]):
        fails("the linear autoencoder beats the best rank-z_dim projection by far: it is not a rank-z_dim "
              "linear map of the input")
    tiers = thresholds["linear_gap_tiers"]
    expect_learned(trained, shuffled, tier(gap_shuffled, tiers, higher_is_better=False), name="LinearAutoencoder")
    fraction = tier(gap, tiers, higher_is_better=False)
    if 0 < fraction < 1:
        credit(fraction, f"the linear AE's held-out error is {100 * gap:.1f}% above PCA's: close, not there")
    if fraction > 0:
        return
    fails(f"the linear AE's held-out error is {100 * gap:.1f}% above the best rank-{z_dim} projection: "
          "is the data centred, the model linear, and train() minimising the squared error?")


def _dae_run(worker, seed, thresholds, prefix, x_train, sigma):
    return worker.call("train_dae", seed, sigma, int(thresholds[f"{prefix}_steps"]),
                       int(thresholds[f"{prefix}_batch_size"]), float(thresholds[f"{prefix}_lr"]),
                       int(thresholds[f"{prefix}_z_dim"]), int(thresholds[f"{prefix}_hidden"]), x_train)


def _dae_outputs(worker, inputs):
    """reconstruct on each of the judge's inputs: (trained outputs, shuffled twin's outputs)."""
    trained, shuffled = _pair(worker.call("dae_outputs", inputs), "reconstruct")
    if not isinstance(trained, list) or len(trained) != len(inputs):
        fails(f"reconstruct: expected its outputs, got {describe_value(trained)}")
    if not isinstance(shuffled, list) or len(shuffled) != len(inputs):
        shuffled = [shuffled] * len(inputs)
    return trained, shuffled


@pytest.mark.upstream("test_shapes", "test_architecture", "test_train_mechanics", "test_reconstruct")   # the loss
# and the corruption: the grader's (probes.UNDER_TRAIN)
def test_dae_digits(worker, seed, secret_rng, thresholds, credit, artifacts):
    """The student's Autoencoder trained as a denoiser (gaussian_noise of sigma) by the
    student's train on this grading's training digits (a pixel permutation drawn for the
    grading); held-out digits under the same permutation, corrupted by the judge's noise, go
    through reconstruct. Scored: the held-out denoising error divided by the noisy input's
    own error (sigma^2 per pixel), in tiers calibrated on the reference and variants; the
    same input twice must give the same output (no corruption at evaluation time); the same
    model with its weights shuffled must lose the quality."""
    perm, x_train, x_held, y_held = _secret_digits(secret_rng)
    sigma = float(thresholds["dae_sigma"])
    losses = _dae_run(worker, seed, thresholds, "dae", x_train, sigma)
    if isinstance(losses, Raised):
        fails(f"train raised {losses}")
    g = torch.Generator().manual_seed(int(secret_rng.integers(2**31)))
    noisy = x_held + sigma * torch.randn(x_held.shape, generator=g)
    outs, twins = _dae_outputs(worker, [noisy, noisy])
    error = _heldout_error(outs[0], x_held, "reconstruct (the trained denoiser)")
    second = expect_tensor(outs[1], name="reconstruct (the trained denoiser)", shape=tuple(x_held.shape))
    noisy_error = float(ref_recon(noisy, x_held).mean())
    ratio = error / noisy_error
    ratio_shuffled = _shuffled_value(lambda: _heldout_error(twins[0], x_held, "reconstruct") / noisy_error)
    psnr_in, psnr_out = (10 * math.log10(X_DIM / e) if e > 0 else float("inf") for e in (noisy_error, error))

    plt = _fig()
    shown = torch.stack([torch.nonzero(y_held == c)[0, 0] for c in range(10)])
    rows = perm.undo(torch.cat([x_held[shown], noisy[shown], outs[0][shown].float()]))    # the usual layout
    image = digit_grid(rows.double(), 3, 10)
    fig, ax = plt.subplots(figsize=(image.shape[1] / 12 + 1, image.shape[0] / 12 + 0.6))
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title("held-out digits, corrupted (sigma %.2g), your denoiser's output" % sigma, fontsize=8)
    ax.axis("off")
    artifacts.figure("dae_digits.png", fig)
    _losses_figure(artifacts, losses, "dae_loss.png", "your denoiser's training loss", "squared error per digit")
    artifacts.note(f"denoising the held-out digits: squared error {error:.3f} per digit against {noisy_error:.3f} for "
                   f"the noisy input (ratio {ratio:.3f}, weights shuffled {ratio_shuffled:.2f}; PSNR {psnr_in:.1f} dB "
                   f"-> {psnr_out:.1f} dB)")
    if not torch.equal(outs[0], second):
        fails("reconstruct gives two different outputs for the same input: no noise (and no dropout) at evaluation time")
    tiers = thresholds["dae_ratio_tiers"]
    expect_learned(outs[0], twins[0], tier(ratio_shuffled, tiers, higher_is_better=False),
                   name="reconstruct (the trained denoiser)")
    fraction = tier(ratio, tiers, higher_is_better=False)
    if 0 < fraction < 1:
        credit(fraction, f"your denoiser removes part of the noise (error ratio {ratio:.2f}), less than expected")
    if fraction > 0:
        return
    fails(f"your denoiser's held-out error is {ratio:.2f} times the noisy input's: does train() compare "
          "model(corrupt(x)) with the clean x?")


@pytest.mark.upstream("test_shapes", "test_architecture", "test_train_mechanics", "test_reconstruct")   # the loss
# and the corruption: the grader's (probes.UNDER_TRAIN)
def test_dae_mixture(worker, seed, secret_rng, thresholds, credit, artifacts):
    """The student's Autoencoder trained as a denoiser on draws from this grading's 2-D
    Gaussian mixture (kitdata.toy2d.ring8() rotated, scaled, shifted and reweighted, drawn
    for the grading; the noise level scales with it), then judged against that mixture's
    Bayes-optimal denoiser E[x | x_tilde] (known exactly): the excess mean squared error
    E|f(x_tilde) - E[x|x_tilde]|^2 on the judge's fresh draws, relative to the optimal
    denoiser's own error, in tiers. An excess far below any trained network's is not a
    trained network and scores 0, as does quality that survives shuffling the weights.
    Feedback: the learned residual field f(x_tilde) - x_tilde against sigma^2 grad log
    p_sigma (Tweedie's formula)."""
    from kitdata import toy2d, variants

    base = toy2d.ring8()
    mixture = variants.mixture(base, secret_rng)
    scale = float(np.asarray(mixture.std).reshape(-1)[0] / np.asarray(base.std).reshape(-1)[0])
    sigma = float(thresholds["mix_sigma"]) * scale       # the same task in the mixture's own units
    g = torch.Generator().manual_seed(int(secret_rng.integers(2**31)))
    x_train = torch.from_numpy(mixture.sample(int(thresholds["mix_train_points"]), g))
    losses = _dae_run(worker, seed, thresholds, "mix", x_train, sigma)
    if isinstance(losses, Raised):
        fails(f"train raised {losses}")
    n = int(thresholds["mix_eval_points"])
    x = torch.from_numpy(mixture.sample(n, g)).double()
    noisy = x + sigma * torch.randn(x.shape, generator=g, dtype=F64)
    means = torch.from_numpy(np.asarray(mixture.means, dtype=np.float64))
    centre, reach = means.mean(0), 1.5 * float((means - means.mean(0)).norm(dim=1).max())
    axis = torch.linspace(-1.0, 1.0, 13, dtype=F64) * reach
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2) + centre
    outs, twins = _dae_outputs(worker, [noisy.float(), grid.float()])
    for o in outs:
        if isinstance(o, Raised):
            fails(f"reconstruct raised {o}")
    out = expect_tensor(outs[0], name="reconstruct (the 2-D denoiser)", shape=(n, 2)).double()
    on_grid = expect_tensor(outs[1], name="reconstruct (the 2-D denoiser)", shape=(grid.shape[0], 2)).double()
    best = bayes_denoiser(mixture, noisy, sigma)
    mmse = float(((best - x) ** 2).sum(-1).mean())
    excess = float(((out - best) ** 2).sum(-1).mean()) / mmse

    def shuffled_excess():
        twin = expect_tensor(twins[0], name="reconstruct", shape=(n, 2)).double()
        return float(((twin - best) ** 2).sum(-1).mean()) / mmse

    excess_shuffled = _shuffled_value(shuffled_excess)
    if tweedie_gap(mixture, grid, sigma) > 1e-9:
        fails("grader error: Tweedie's formula does not hold for the judge's denoiser")  # never for a student

    plt = _fig()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.scatter(noisy[:600, 0], noisy[:600, 1], s=2, c="0.75")
    true = (sigma ** 2) * noisy_score(mixture, grid, sigma)
    learned = torch.from_numpy(plottable(on_grid - grid.float().double(), low=-10 * reach, high=10 * reach))
    ax.quiver(grid[:, 0], grid[:, 1], true[:, 0], true[:, 1], color="tab:blue", angles="xy", scale_units="xy",
              scale=2, width=0.004, label="sigma^2 grad log p_sigma (Tweedie)")
    ax.quiver(grid[:, 0], grid[:, 1], learned[:, 0], learned[:, 1], color="tab:red", angles="xy", scale_units="xy",
              scale=2, width=0.003, label="your f(x~) - x~")
    ax.set_xlim(float(centre[0]) - 1.15 * reach, float(centre[0]) + 1.15 * reach)
    ax.set_ylim(float(centre[1]) - 1.15 * reach, float(centre[1]) + 1.15 * reach)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("denoiser residual vs the true score", fontsize=9)
    artifacts.figure("dae_residual_field.png", fig)
    artifacts.note(f"2-D mixture, sigma {sigma:.3f}: your denoiser's excess error over the Bayes-optimal E[x|x~] is "
                   f"{100 * excess:.1f}% of the optimum's own error ({mmse:.4f} per point); weights shuffled "
                   f"{100 * excess_shuffled:.0f}%")
    if not math.isfinite(excess):
        fails("your 2-D denoiser's outputs are not finite")
    if excess < float(thresholds["mix_excess_floor"]):
        fails("your 2-D denoiser matches the exact Bayes denoiser more closely than any trained network here: "
              "the denoiser must be learned by train(), not written in")
    tiers = thresholds["mix_excess_tiers"]
    expect_learned(outs[0], twins[0], tier(excess_shuffled, tiers, higher_is_better=False),
                   name="reconstruct (the 2-D denoiser)")
    fraction = tier(excess, tiers, higher_is_better=False)
    if 0 < fraction < 1:
        credit(fraction, f"your 2-D denoiser is {100 * excess:.0f}% of the optimum's error away from it")
    if fraction > 0:
        return
    fails(f"your 2-D denoiser is far from the Bayes-optimal one (excess {100 * excess:.0f}% of its error): "
          "does train() feed corrupt(x) to the model and compare with the clean x?")


# --------------------------------------------------------------------------- generation


def _whitened_problem(fn, z, m, chol, want):
    """The first failing normality or independence test of L^-1 (z - m), or None."""
    white = torch.linalg.solve_triangular(chol, (z - m).T, upper=False).T
    for j in range(white.shape[1]):
        failed = normal_tests(white[:, j], ALPHA)
        if failed:
            return f"{fn}: the latent vectors decoded are not drawn from {want} ({failed}, dim {j})"
    pooled = normal_tests(white, ALPHA)        # all dimensions together: a variance off by a few percent
    if pooled:
        return f"{fn}: the latent vectors decoded are not drawn from {want} ({pooled}, all dims)"
    for t in (2.5, 3.0):                        # the tails, where a truncated or clipped draw shows
        k, p = int((white.abs() > t).sum()), 2 * float(stats.norm.sf(t))
        if stats.binomtest(k, white.numel(), p).pvalue < ALPHA:
            return f"{fn}: the latent vectors decoded are not drawn from {want} (tails beyond {t} std)"
    r = torch.corrcoef(white.T)
    off = r[~torch.eye(white.shape[1], dtype=torch.bool)].abs().max()
    if float(off) * math.sqrt(white.shape[0]) > stats.norm.isf(ALPHA / 2):
        return (f"{fn}: the latent dimensions are not correlated as they should be "
                + ("(independent for N(0, I))" if "N(0, I)" in want else "(the full covariance C, through L L^T = C)"))
    return None


def _fit(codes):
    codes = codes.double()
    m = codes.mean(0)
    c = (codes - m).T @ (codes - m) / (codes.shape[0] - 1)
    return m, torch.linalg.cholesky(c)


def _other_codes(g, codes):
    """Codes the fitted sampler meets besides the first ones, with what each case tests:
    other codes of the same shape (nothing kept from an earlier call); a few codes, z_dim + 2
    of them, where 1/N and 1/(N-1) differ by a fifth (the covariance's normalisation); and
    codes of a trained AE's size in float32, (1497, 16), whose dimensions sit at offsets up
    to 40 with standard deviations 0.1-5. Trained plain AEs on the digits give codes within
    |z| < 3 and per-dimension std 0.36-0.8 (reference, seeds 0-2); the margin is 10x on the
    offset, where a one-pass E[z z^T] - m m^T loses every digit of a small variance."""
    small = torch.randn(codes.shape[1] + 2, codes.shape[1], generator=g, dtype=F64) * 1.5 - 0.5
    offsets = (torch.rand(16, generator=g, dtype=F64) * 2 - 1) * 40
    spread = 0.1 * 50 ** torch.rand(16, generator=g, dtype=F64)
    mixing = torch.eye(16, dtype=F64) + 0.3 * torch.randn(16, 16, generator=g, dtype=F64).tril(-1)
    big = (torch.randn(1497, 16, generator=g, dtype=F64) @ mixing.T * spread + offsets).float()
    return [("other codes of the same shape", codes.flip(0) * 0.5 - 2.0),
            ("a few codes (z_dim + 2: the covariance's 1/(N - 1))", small),
            ("float32 codes of a trained autoencoder's size, far from 0", big)]


@pytest.mark.judges("sample_random_latents", "sample_fitted_latents")
def test_latent_samplers(worker, seed, credit):
    """sample_random_latents decodes z ~ N(0, I) and sample_fitted_latents decodes z ~ N(m, C)
    fitted to the codes (the grader's decoder writes z into the first pixels, so the judge
    reads z back and tests it at alpha = 1e-7; a generator decides the draws, torch's global
    generator without one; the codes are left unchanged), the fitted one again on other codes
    of the same shape, on a few codes, and on float32 codes of a trained model's size."""
    g = torch.Generator().manual_seed(seed)
    z_dim, n = 3, 3000
    mix = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [-0.5, 0.3, 0.4]], dtype=F64)   # correlated codes
    codes = torch.randn(400, z_dim, generator=g, dtype=F64) @ mix.T * 2 + torch.tensor([3.0, -1.0, 0.5], dtype=F64)
    a, b = (int(v) for v in torch.randint(0, 2**31, (2,), generator=g))
    others = _other_codes(g, codes)
    out = worker.call("latent_draws", z_dim, n, codes, a, b, [c for _, c in others], a % 100003)
    if not isinstance(out, dict):
        fails(f"the samplers: expected their outputs, got {describe_value(out)}")
    m, chol = _fit(codes)
    problems = []
    for name, fn in (("random", "sample_random_latents"), ("fitted", "sample_fitted_latents")):
        try:
            calls = out.get(name)
            extra = out.get(name + "_global")
            if not isinstance(calls, list) or len(calls) != 5 or not isinstance(extra, list) or len(extra) != 2:
                fails(f"{fn}: expected its outputs, got {describe_value(calls)}")
            for v in calls + extra:
                if isinstance(v, Raised):
                    fails(f"{fn} raised {v}")
            samples = [expect_tensor(v, name=fn, shape=(n, X_DIM), dtype=F64) for v in calls + extra]
            if float(samples[0][:, z_dim:].abs().max()) > 1e-12:
                fails(f"{fn} should return decode(z) as it is")
            z = samples[0][:, :z_dim]
            if name == "random":
                problem = _whitened_problem(fn, z, torch.zeros(z_dim, dtype=F64), torch.eye(z_dim, dtype=F64), "N(0, I)")
            else:
                problem = _whitened_problem(fn, z, m, chol, "the Gaussian N(m, C) fitted to the codes")
            if problem:
                fails(problem)
            _generator_checks(fn, samples)
            if name == "fitted":
                expect_same(out.get("codes_after"), codes, name="the codes given to sample_fitted_latents")
        except AssertionError as error:
            problems.append(str(error))
    got = out.get("other")
    for i, (label, other) in enumerate(others):
        fn = "sample_fitted_latents"
        try:
            value = got[i] if isinstance(got, list) and len(got) == len(others) else None
            if isinstance(value, Raised):
                fails(f"{fn} raised {value} on {label}")
            sample = expect_tensor(value, name=f"{fn} ({label})", shape=(n, X_DIM), dtype=other.dtype)
            mo, cho = _fit(other)
            problem = _whitened_problem(fn, sample[:, : other.shape[1]].double(), mo, cho,
                                        f"the Gaussian N(m, C) fitted to the codes, on {label}")
            if problem:
                fails(problem)
        except AssertionError as error:
            problems.append(str(error))
    score_checks(problems, 2 + len(others), credit)


@pytest.mark.upstream("test_shapes", "test_architecture", "test_train_mechanics", "test_latent_samplers")   # the loss:
# the grader's (probes.UNDER_TRAIN)
def test_random_latents(worker, seed, secret_rng, thresholds, credit, artifacts):
    """Generation with a plain autoencoder: the student's Autoencoder trained by the student's
    train on this grading's training digits (a pixel permutation drawn for the grading), then
    sample_fitted_latents through the trained model, from the judge's generator seed. Scored:
    FID-lite of those samples (the permutation undone, computed here) against the held-out
    digits, in tiers; the same generation through the model with its weights shuffled must
    lose that quality. Feedback: the same for z ~ N(0, I) (sample_random_latents), not scored,
    since the scale of a plain AE's codes is arbitrary."""
    import kitdata.metrics

    perm, x_train, _, _ = _secret_digits(secret_rng)
    gen = worker.call("generate_with_ae", seed, int(thresholds["gen_steps"]), int(thresholds["gen_samples"]),
                      int(thresholds["gen_z_dim"]), x_train)
    if isinstance(gen, Raised):
        fails(f"train raised {gen}")
    if not isinstance(gen, dict):
        fails(f"the samplers: expected their outputs, got {describe_value(gen)}")
    n = int(thresholds["gen_samples"])

    def fid(value, fn):
        if isinstance(value, Raised):
            fails(f"{fn} raised {value}")
        s = expect_tensor(value, name=fn, shape=(n, X_DIM))
        if not bool(torch.isfinite(s).all()):
            fails(f"{fn}: the samples are not finite")
        shown = perm.undo(s.double()).clamp(0, 1)      # pixels: FID-lite's classifier reads values in [0, 1]
        return kitdata.metrics.fid_lite(shown), shown

    results, panels = {}, []
    for key, fn, label in (("fitted", "sample_fitted_latents", "z ~ Gaussian fitted to the codes"),
                           ("random", "sample_random_latents", "z ~ N(0, I)")):
        trained, shuffled = _pair(gen.get(key), fn)
        try:
            value, shown = fid(trained, fn)
        except AssertionError as error:
            if key == "fitted":
                raise
            artifacts.note(f"no N(0, I) samples to show: {error}")
            continue
        results[key] = (value, _shuffled_value(lambda: fid(shuffled, fn)[0]), trained, shuffled)
        panels.append((f"{label}, FID-lite {value:.1f}", digit_grid(shown, 6, 10)))
    plt = _fig()
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 2.4))
    for ax, (title, image) in zip(np.atleast_1d(axes), panels):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    artifacts.figure("ae_random_latents.png", fig)
    value, value_shuffled, trained, shuffled = results["fitted"]
    artifacts.note(f"FID-lite of your plain AE's samples against the held-out digits (lower is better; pixels "
                   f"clipped to [0, 1]): fitted Gaussian {value:.2f} (weights shuffled {value_shuffled:.1f})"
                   + (f", N(0, I) {results['random'][0]:.2f}" if "random" in results else "")
                   + "; a VAE of the same size reaches about 3-4, the digits themselves 0")
    tiers = thresholds["gen_fid_tiers"]
    expect_learned(trained, shuffled, tier(value_shuffled, tiers, higher_is_better=False),
                   name="sample_fitted_latents (the trained autoencoder)")
    fraction = tier(value, tiers, higher_is_better=False)
    if 0 < fraction < 1:
        credit(fraction, f"your autoencoder's samples from the fitted Gaussian reach FID-lite {value:.1f}: "
                         "close, not there")
    if fraction > 0:
        return
    fails(f"your autoencoder's samples from the fitted Gaussian are far from the digits (FID-lite {value:.1f}): "
          "are train(), encode, decode and sample_fitted_latents right?")
