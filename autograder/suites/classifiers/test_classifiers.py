"""Hidden suite for the classifiers assignment (runs in the judge; never imports student
code). The float64 reference maths, the grader's models' weights and the planted images
live in ref_classifiers.py. Learned quality is judged on data drawn from the grading's
secret (the `secret_rng` fixture): pixel-permuted digits, planted patterns of the grading,
a moved and reweighted 2-D distribution, handed to the worker as probe arguments.

Conventions judged (handout.md): Gaussian discriminant analysis with a shared covariance,
maximum likelihood (1/N_c, 1/N) plus var_floor on the diagonal; log p(x, c) per example and
class; the posterior by Bayes' rule with log-sum-exp; x = mu_c + L eps for samples; the
mean cross-entropy from logits; Adam for exactly `steps` steps on uniformly drawn
minibatches; CAM = sum_k w_{c,k} f_k (no bias), bilinear upsampling (align_corners=False).

Statistical checks compare averages over many draws with exact values and fail only beyond
Z_CRIT = 5 standard errors; the draws follow the test's seed, so a grader seed always gives
the same verdict.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from autograder.grading.judge import (Raised, changed_inputs, describe_value, digit_grid, expect_close, expect_finite,
                              expect_learned, expect_meta, expect_same, expect_tensor, fails, output_problems,
                              parity_devices, plottable, recorded_groups, score_checks, tier)
from ref_classifiers import (affine_fit, cam_from, cnn_weights, grader_params, linear_error, planted_sets, ref_cam,
                             ref_ce, ref_ce_grad, ref_features, ref_fit, ref_log_joint, ref_logits)

F64 = torch.float64
Z_CRIT = 5.0


def _check(device: str, dtype: torch.dtype, where: str = ""):
    """on_device, with predict's labels int64 whatever the input's dtype."""
    def check(name, value, shape):
        want = torch.int64 if name.startswith("predict") else dtype
        if device == "meta":
            expect_meta(value, name=name, shape=shape, dtype=want)
        else:
            expect_tensor(value, name=f"{name}{where}", shape=shape, dtype=want)
    return check


# --------------------------------------------------------------------------- shapes

SHAPE_CASES = [(1, 3, 2, 6, 8), (7, 5, 4, 8, 10)]   # (batch, D, C, H, W): a batch of one; every size distinct


@pytest.mark.parametrize("batch,dim,n_classes,height,width", SHAPE_CASES)
def test_shapes(worker, seed, credit, batch, dim, n_classes, height, width):
    """Every function returns what the handout says (shape, float32; predict int64), for a
    batch of one among the cases, and leaves its inputs unchanged."""
    g = torch.Generator().manual_seed(seed)
    n_fit = 3 * n_classes + 2
    y_fit = torch.cat([torch.arange(n_classes), torch.randint(0, n_classes, (n_fit - n_classes,), generator=g)])
    inputs = {"x": torch.randn(n_fit, dim, generator=g), "y": y_fit,
              "xq": torch.randn(batch, dim, generator=g) * 2, "yq": torch.randint(0, n_classes, (batch,), generator=g),
              "logits": torch.randn(batch, n_classes, generator=g) * 3,
              "images": torch.randn(batch, 1, height, width, generator=g),
              "classes": torch.randint(0, n_classes, (batch,), generator=g)}
    n_samples = batch + 2
    out = worker.call("shapes", inputs, n_classes, n_samples)
    small = (height // 2, width // 2)
    expected = {
        "fit_gaussian_classifier": {"log_prior": (n_classes,), "means": (n_classes, dim), "cov": (dim, dim)},
        "log_joint": (batch, n_classes), "posterior": (batch, n_classes), "predict": (batch,),
        "sample_class": (n_samples, dim), "cross_entropy": (),
        "LogisticRegression": (batch, n_classes), "TinyCNN.features": (batch, 6, *small),
        "TinyCNN": (batch, n_classes), "class_activation_map": (batch, height, width),
    }
    problems = output_problems(out, expected, _check("cpu", torch.float32))
    context = f"batch {batch}, D {dim}, C {n_classes}"
    if len(problems) == len(expected):      # nothing ran: leaving the inputs alone earns nothing
        fails(f"{context}: {problems[0]}")
    changed = changed_inputs(out.get("inputs_after") if isinstance(out, dict) else None, inputs, expected)
    score_checks(problems + changed[:1], len(expected) + 1, credit, context)


# --------------------------------------------------------------------------- the Gaussian classifier


def _fit_data(g, dim: int, n_classes: int):
    """Unequal class counts, a constant feature (its variance is the floor alone), float64."""
    y = torch.cat([torch.full((k + 1,), c) for c, k in enumerate(torch.randint(1, 9, (n_classes,), generator=g).tolist())])
    y = y[torch.randperm(len(y), generator=g)]
    x = torch.randn(len(y), dim, generator=g, dtype=F64) * torch.rand(dim, generator=g, dtype=F64).add(0.3) * 2
    x = x + torch.randn(n_classes, dim, generator=g, dtype=F64)[y] * 3
    x[:, 1] = 0.75
    return x, y


@pytest.mark.judges("fit_gaussian_classifier")
def test_fit_gaussian(worker, seed, credit):
    """fit_gaussian_classifier against the float64 maximum-likelihood fit: the priors from
    the class counts, the class means, the shared covariance with 1/N plus var_floor on the
    diagonal (a constant feature's variance is var_floor itself), float64 kept, and
    var_floor used (two floors, two covariances)."""
    g = torch.Generator().manual_seed(seed)
    dim, n_classes = 5, 3
    x, y = _fit_data(g, dim, n_classes)
    floor = float(10 ** (-3 + 2 * torch.rand(1, generator=g)))
    out = worker.call("fit", x, y, n_classes, floor)
    if isinstance(out, Raised):
        fails(f"fit_gaussian_classifier raised {out}")
    if not isinstance(out, dict) or {"log_prior", "means", "cov"} - set(out):
        fails(f"fit_gaussian_classifier should return a dict with keys 'log_prior', 'means', 'cov', got {describe_value(out)}")
    ref = ref_fit(x, y, n_classes, floor)
    shapes = {"log_prior": (n_classes,), "means": (n_classes, dim), "cov": (dim, dim)}
    what = {"log_prior": "log_prior (log of the class frequencies N_c / N)",
            "means": "means (the average of each class's examples)",
            "cov": "cov (1/N sum of outer products of x - mean of its class, plus var_floor I)"}
    problems = []
    for key in ("log_prior", "means", "cov"):
        try:
            got = expect_tensor(out[key], name=f"fit_gaussian_classifier(...)['{key}']", shape=shapes[key], dtype=F64)
            expect_close(got, ref[key], name=f"fit_gaussian_classifier(...)['{key}']: {what[key]}", rtol=1e-9, atol=1e-10)
        except AssertionError as error:
            problems.append(str(error))
    # var_floor: two floors give two covariances exactly floor_b - floor_a apart on the diagonal
    other = floor * 7.0
    twice = worker.call("fit_twice", x, y, n_classes, [floor, other])
    try:
        if not isinstance(twice, list) or len(twice) != 2 or not all(isinstance(t, dict) and "cov" in t for t in twice):
            fails(f"fit_gaussian_classifier should return a dict, got {describe_value(twice)}")
        a, b = (expect_tensor(t["cov"], name="fit_gaussian_classifier(...)['cov']", shape=(dim, dim)) for t in twice)
        expect_close(b - a, (other - floor) * torch.eye(dim, dtype=F64),
                     name="the change in cov between two values of var_floor (var_floor * I on the diagonal)",
                     rtol=1e-9, atol=1e-12)
    except AssertionError as error:
        problems.append(str(error))
    score_checks(problems, 4, credit)


def _bayes_case(seed: int):
    params = grader_params(seed, n_classes=3, dim=4)
    g = torch.Generator().manual_seed(seed + 1)
    x = params["means"][torch.randint(0, 3, (9,), generator=g)] + torch.randn(9, 4, generator=g, dtype=F64) * 1.5
    far = torch.randn(4, 4, generator=g, dtype=F64)
    far = far / far.norm(dim=1, keepdim=True) * torch.tensor([[1e2], [1e3], [1e4], [3e4]], dtype=F64)
    return params, x, far


def _digit_case(seed: int):
    """The Gaussian classifier of the training digits in float32, as a student's fit gives it:
    64-d, a floor drawn from 1e-3 to 1e-2 (the handout's default, and ten times below it for a
    margin), so Sigma's eigenvalues span 1e-3 .. 0.36 and log det Sigma is -220 .. -275: det
    Sigma (1e-96 .. 1e-119) underflows float32, its logarithm does not. Queries: training
    digits, faded and mirrored ones."""
    import kitdata.digits

    g = torch.Generator().manual_seed(seed + 5)
    x, y = (torch.from_numpy(a) for a in kitdata.digits.load_digits("train"))
    floor = float(10 ** (-3 + torch.rand(1, generator=g)))
    params = {k: v.float() for k, v in ref_fit(x, y, 10, floor).items()}
    pick = x[torch.randint(0, len(x), (24,), generator=g)]
    return params, torch.cat([pick[:12], pick[12:18] * 0.5 + 0.25, pick[18:].flip(1)])


@pytest.mark.judges("log_joint", "posterior", "predict")
def test_log_joint_posterior(worker, seed, credit):
    """log_joint, posterior and predict on the grader's Gaussian classifier (unequal priors,
    a covariance far from I) against float64 references; rows of the posterior sum to one
    as returned; the same at inputs 1e2 to 3e4 away from every class, where every p(x, c)
    underflows to 0 (log-sum-exp, never exp then normalise); on the 64-d digits' classifier
    in float32 (log det Sigma from the Cholesky factor's diagonal, never log(det)); and on
    a second classifier of the same shapes right after the first (nothing kept between calls)."""
    params, x, far = _bayes_case(seed)
    digits, queries = _digit_case(seed)
    other = grader_params(seed + 13, n_classes=3, dim=4)
    # (label, params, points, relative tolerance of log_joint, tolerance of the posterior):
    # float32 at 64-d: the Cholesky route is within 1.1e-5 * (1 + |log p|) and the posterior within
    # 2.3e-5 of float64 (torch.distributions, inv + slogdet alike); log(det Sigma) is -inf there
    cases = [("", params, x, 1e-9, 1e-9), (" far from every class", params, far, 1e-9, 1e-9),
             (" on the 64-d digits in float32", digits, queries, 1e-4, 1e-3),
             (" for a second classifier of the same shapes", other, x, 1e-9, 1e-9)]
    outs = worker.call("bayes_rules", [(p, pts) for _, p, pts, _, _ in cases])
    if not isinstance(outs, list) or len(outs) != len(cases):
        fails(f"log_joint, posterior and predict: expected their outputs, got {describe_value(outs)}")
    problems = []
    for (label, p, points, rtol, ptol), out in zip(cases, outs):
        if not isinstance(out, dict):
            fails(f"log_joint, posterior and predict: expected their three outputs, got {describe_value(out)}")
        n, dtype = points.shape[0], points.dtype
        ref = ref_log_joint({k: v.double() for k, v in p.items()}, points.double())
        try:
            got = expect_tensor(out.get("log_joint"), name=f"log_joint{label}", shape=(n, ref.shape[1]), dtype=dtype)
            got = expect_finite(got, name=f"log_joint{label}").double()
            if float(((got - ref).abs() / (1 + ref.abs())).max()) > rtol:
                fails(f"log_joint{label} is not log p(c) + log N(x; mu_c, Sigma)")
        except AssertionError as error:
            problems.append(str(error))
        try:
            got = expect_finite(expect_tensor(out.get("posterior"), name=f"posterior{label}", shape=(n, ref.shape[1]),
                                              dtype=dtype), name=f"posterior{label}").double()
            if float((got.sum(1) - 1).abs().max()) > max(1e-9, ptol):
                fails(f"posterior{label}: the rows do not sum to one")
            expect_close(got, torch.softmax(ref, 1), name=f"posterior{label} (p(c | x) by Bayes' rule, with the prior)",
                         rtol=max(1e-7, ptol), atol=ptol)
        except AssertionError as error:
            problems.append(str(error))
        try:
            got = expect_tensor(out.get("predict"), name=f"predict{label}", shape=(n,), dtype=torch.int64)
            top2 = ref.topk(2, dim=1).values
            clear = (top2[:, 0] - top2[:, 1]) > 1e-3 * (1 + top2[:, 0].abs())     # float32 may swap near-ties
            if not torch.equal(got[clear], ref.argmax(1)[clear]):
                fails(f"predict{label} is not the most probable class argmax_c p(c | x)")
        except AssertionError as error:
            problems.append(str(error))
    score_checks(problems, 3 * len(cases), credit)


def _distribution_problems(draws, params, c: int, what: str) -> list[str]:
    """Whiten the draws with the true L (z = L^{-1}(x - mu_c)) and test z ~ N(0, I) at Z_CRIT
    standard errors: mean 0, covariance I, and Gaussian tails (each coordinate's excess
    kurtosis 0, standard error sqrt(24 / n); uniform or truncated noise is -0.6 or below)."""
    n, d = draws.shape
    chol = torch.linalg.cholesky(params["cov"])
    z = torch.linalg.solve_triangular(chol, (draws - params["means"][c]).T, upper=False).T
    problems = []
    if float((z.mean(0) * math.sqrt(n)).abs().max()) > Z_CRIT:
        nearest = int((draws.mean(0) - params["means"]).norm(dim=1).argmin())
        problems.append(f"sample_class{what}: the draws are centred on another class's mean" if nearest != c
                        else f"sample_class{what}: the draws' mean is not mu_c")
    cov_z = torch.cov(z.T)
    se = torch.full((d, d), 1 / math.sqrt(n), dtype=F64) + torch.eye(d, dtype=F64) * (math.sqrt(2 / n) - 1 / math.sqrt(n))
    if float(((cov_z - torch.eye(d, dtype=F64)).abs() / se).max()) > Z_CRIT:
        problems.append(f"sample_class{what}: the draws' covariance is not Sigma (x = mu_c + L eps with L = cholesky(Sigma))")
    centred = z - z.mean(0)
    kurtosis = (centred ** 4).mean(0) / (centred ** 2).mean(0) ** 2 - 3
    if float(kurtosis.abs().max()) > Z_CRIT * math.sqrt(24 / n):
        problems.append(f"sample_class{what}: the draws are not Gaussian (eps ~ N(0, I), drawn with torch.randn)")
    return problems


@pytest.mark.judges("sample_class")
def test_sample_class(worker, seed, credit):
    """sample_class draws from N(mu_c, Sigma): the judge whitens the draws with the true L
    (z = L^{-1}(x - mu_c)) and tests mean 0, covariance I and Gaussian tails at 5 standard
    errors, for the class asked, and again for a second classifier of the same shapes right
    after (nothing kept between calls); the same generator seed repeats the draws, another
    seed changes them; with generator=None the draws follow torch's global seed (the same
    after torch.manual_seed(s), others after another seed); n is the number of rows."""
    params = grader_params(seed + 7, n_classes=3, dim=3)
    other = grader_params(seed + 17, n_classes=3, dim=3)
    g = torch.Generator().manual_seed(seed)
    c = int(torch.randint(1, 3, (1,), generator=g))
    n = 20_000 + int(torch.randint(0, 97, (1,), generator=g))
    s = int(torch.randint(0, 2**31, (1,), generator=g))
    out = worker.call("samples", params, c, n, [s, s, s + 1], other)
    draws = out.get("seeded") if isinstance(out, dict) else None
    if not isinstance(draws, list) or len(draws) != 3:
        fails(f"sample_class should return a tensor, got {describe_value(draws)}")
    if isinstance(draws[0], Raised):
        fails(f"sample_class raised {draws[0]}")
    a, b, again = (expect_finite(expect_tensor(d, name="sample_class", shape=(n, 3), dtype=F64), name="sample_class")
                   for d in draws)
    problems = _distribution_problems(a, params, c, "")
    if not torch.equal(a, b):
        problems.append("sample_class: two generators with the same seed give different draws: draw eps with generator=")
    if torch.equal(a, again):
        problems.append("sample_class: generators with different seeds give the same draws: draw eps with generator=")
    try:
        second = expect_finite(expect_tensor(out.get("other"), name="sample_class for a second classifier",
                                             shape=(n, 3), dtype=F64), name="sample_class for a second classifier")
        found = _distribution_problems(second, other, c, " for a second classifier of the same shapes")
        if found:
            fails(found[0] + " (is something kept from the first call?)")
    except AssertionError as error:
        problems.append(str(error))
    try:
        glob = out.get("global")
        if not isinstance(glob, list) or len(glob) != 3:
            fails(f"sample_class with generator=None should return a tensor, got {describe_value(glob)}")
        first, repeat, moved = (expect_tensor(v, name="sample_class with generator=None", shape=(n, 3), dtype=F64)
                                for v in glob)
        if not torch.equal(first, repeat):
            fails("sample_class with generator=None: the same torch.manual_seed gives different draws "
                  "(draw from torch's global generator)")
        if torch.equal(first, moved):
            fails("sample_class with generator=None: different torch.manual_seed give the same draws "
                  "(draw from torch's global generator, not a fixed one)")
    except AssertionError as error:
        problems.append(str(error))
    score_checks(problems, 7, credit)


@pytest.mark.upstream("test_fit_gaussian", "test_sample_class")
def test_digit_samples(worker, seed, secret_rng, thresholds, credit, artifacts):
    """The Gaussian classifier fitted on the training digits under a pixel permutation drawn
    for this grading (the judge's secret) generates digits of the class asked: the judge
    undoes the permutation and the kit's own digit classifier (kitdata.features) labels the
    samples; the fraction labelled as asked is scored in tiers. The samples must come from
    the fitted parameters (shifting the fitted means by the judge's offsets, with the same
    generator seed, shifts every sample by its class's offset), be centred on the judge's own
    fit of each class's mean and spread as its Sigma, and be new (not copies of real digits)."""
    import kitdata.digits
    import kitdata.features
    import kitdata.metrics
    from kitdata.variants import PixelPermutation

    per = int(thresholds["digit_samples_per_class"])
    floor = float(thresholds["digit_var_floor"])
    perm = PixelPermutation(secret_rng)
    x, y = (torch.from_numpy(a) for a in kitdata.digits.load_digits("train"))
    x = perm.apply(x.double())
    shift = torch.from_numpy(secret_rng.normal(0.0, 0.2, (10, 64)))
    out = worker.call("digit_samples", x, y, floor, per, seed, shift)
    if not isinstance(out, dict):
        fails(f"digit_samples: expected the samples, got {describe_value(out)}")
    samples = out.get("samples")
    if isinstance(samples, Raised):
        fails(f"the Gaussian classifier on the digits raised {samples}")
    samples = expect_finite(expect_tensor(samples, name="sample_class on the digits", shape=(10 * per, 64), dtype=F64),
                            name="sample_class on the digits")
    labels = torch.arange(10).repeat_interleave(per)
    moved = out.get("moved")
    if isinstance(moved, Raised):
        fails(f"sample_class raised {moved}")
    moved = expect_tensor(moved, name="sample_class on the digits", shape=(10 * per, 64), dtype=F64)
    if not bool(((moved - samples - shift[labels]).abs() <= 1e-6).all()):
        fails("sample_class on the digits: the samples do not move with the fitted means "
              "(x = mu_c + L eps, with eps from the generator)")
    ref = ref_fit(x, y, 10, floor)
    # a class's sample mean is within 5 standard errors of its mean (per pixel, sd <= sqrt(max var))
    worst = float((samples.reshape(10, per, 64).mean(1) - ref["means"]).abs().max())
    if worst > Z_CRIT * math.sqrt(float(torch.diagonal(ref["cov"]).max()) / per):
        fails("sample_class on the digits: the samples of a class are not centred on its fitted mean")
    # ... and spread as N(0, Sigma): the mean squared Mahalanobis distance under the judge's
    # Sigma is chi-square with 64 degrees of freedom over the samples, mean 64, sd sqrt(128 / n)
    chol = torch.linalg.cholesky(ref["cov"])
    z = torch.linalg.solve_triangular(chol, (samples - ref["means"][labels]).T, upper=False)
    spread = float((z ** 2).sum(0).mean())
    if abs(spread - 64) > Z_CRIT * math.sqrt(128 / len(samples)):
        fails("sample_class on the digits: the samples do not spread as N(mu_c, Sigma) around their class's mean")
    samples = perm.undo(samples)          # digits in their usual layout, for the metrics and the picture
    memorised = kitdata.metrics.memorisation_fraction(samples, kitdata.digits.every_real_image())
    if memorised > thresholds["memorisation_max"]:
        fails(f"{memorised:.0%} of your samples are near-copies of real digits: sample from p(x|y), do not return data")
    predicted = torch.from_numpy(kitdata.features.classify_digits(samples.numpy()))
    accuracy = float((predicted == labels).double().mean())

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    shown = samples.reshape(10, per, 64)[:, :8].transpose(0, 1).reshape(-1, 64).clamp(0, 1)
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    ax.imshow(digit_grid(shown, 8, 10), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title("your samples from p(x | y = c), c = 0..9 (columns)", fontsize=8)
    ax.axis("off")
    artifacts.figure("gaussian_samples.png", fig)
    artifacts.note(f"samples from your Gaussian class-conditionals: the kit's digit classifier labels "
                   f"{accuracy:.1%} of them as the class asked (higher is better)")
    fraction = tier(accuracy, thresholds["sample_accuracy_tiers"], higher_is_better=True)
    if 0 < fraction < 1:
        credit(fraction, f"{accuracy:.1%} of your samples are recognised as their class: partly right")
    if fraction == 0:
        fails(f"only {accuracy:.1%} of your samples are recognised as the class asked "
              "(x = mu_c + L eps with L = cholesky(Sigma))")


# --------------------------------------------------------------------------- the discriminative loss


def _ce_cases(g):
    """Moderate logits (B = 6, C = 5), extreme logits (|l| 1e2 .. 1e4), a batch of one."""
    moderate = torch.randn(6, 5, generator=g, dtype=F64) * 2
    y_mod = torch.randint(0, 5, (6,), generator=g)
    scale = torch.tensor([[1e2], [1e3], [1e4], [3.0]], dtype=F64)
    extreme = scale * torch.randn(4, 5, generator=g, dtype=F64)
    y_ext = extreme.argmin(1)          # the least probable class: p(y | x) underflows to 0
    y_ext[-1] = int(torch.randint(0, 5, (1,), generator=g))
    one = torch.randn(1, 5, generator=g, dtype=F64) * 2
    y_one = torch.randint(0, 5, (1,), generator=g)
    return [("", moderate, y_mod), (" with logits of 1e2 to 1e4", extreme, y_ext), (" on a batch of one", one, y_one)]


@pytest.mark.judges("cross_entropy")
def test_cross_entropy(worker, seed, credit):
    """cross_entropy against float64 (the mean over the batch of logsumexp - the label's
    logit), and its gradient with respect to the logits ((softmax - one-hot) / B), for
    moderate logits, logits of 1e2 to 1e4 (where softmax rounds to 0 and 1) and a batch of one."""
    problems = []
    for label, logits, y in _ce_cases(torch.Generator().manual_seed(seed)):
        out = worker.call("ce", logits, y)
        try:
            if not isinstance(out, dict):
                fails(f"cross_entropy: expected its value, got {describe_value(out)}")
            got = expect_tensor(out.get("loss"), name=f"cross_entropy{label}", shape=(), dtype=F64)
            expect_close(got, ref_ce(logits, y), name=f"cross_entropy{label}", rtol=1e-9, atol=1e-9)
            if out.get("grad") is None:
                fails(f"cross_entropy{label}: no gradient reaches the logits")
            expect_close(out["grad"], ref_ce_grad(logits, y), name=f"the gradient of cross_entropy{label}",
                         rtol=1e-7, atol=1e-10)
        except AssertionError as error:
            problems.append(str(error))
    score_checks(problems, 3, credit)


MECHANICS = {"rows": 13, "dim": 5, "classes": 3, "batch": 6, "steps": 30}   # every size distinct


def _batch_rows(batch, data: torch.Tensor, size: int):
    if not isinstance(batch, torch.Tensor) or batch.dim() != 2 or batch.shape != (size, data.shape[1]):
        return None
    match = (batch.double()[:, None, :] == data[None, :, :]).all(-1)
    return match.double().argmax(1).tolist() if bool(match.any(1).all()) else None


REPLAYED = 4    # the judge replays this many of the student's steps with its own Adam


def _adam_replay_matches(groups, rows, data, labels, lr) -> bool:
    """Replay the first steps with torch.optim.Adam (default betas, eps) on the recorded
    minibatches, from the weights the student's loop started with, and compare the weights
    after each step with the ones the student's next step saw."""
    weight = groups[0]["weights"]["weight"].double().clone().requires_grad_(True)
    bias = groups[0]["weights"]["bias"].double().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([weight, bias], lr=lr)
    for i, r in enumerate(rows):
        optimiser.zero_grad()
        ref_ce(data[r] @ weight.T + bias, labels[r]).backward()
        optimiser.step()
        seen = groups[i + 1]["weights"]
        for mine, theirs in ((weight, seen["weight"]), (bias, seen["bias"])):
            if float((mine.detach() - theirs.double()).abs().max()) > 1e-3 * lr:
                return False
    return True


@pytest.mark.judges("train_classifier")   # on the grader's cross_entropy (probes.UNDER_TRAIN): nothing upstream
def test_train_mechanics(worker, seed, credit):
    """train_classifier on the grader's linear model and data drawn from the seed, watched
    step by step: exactly `steps` Adam steps of learning rate `lr` (the judge replays the
    first ones with its own Adam on the same minibatches), each on `batch_size` rows, the batches
    reaching every row and not runs of consecutive rows, following torch's global seed (the
    same batches after the same torch.manual_seed, others after another), and the returned
    losses, Python floats, equal to the mean cross-entropy of that step's weights on its
    batch with its rows' labels."""
    g = torch.Generator().manual_seed(seed)
    n, d, c, size, steps = (MECHANICS[k] for k in ("rows", "dim", "classes", "batch", "steps"))
    data = torch.randn(n, d, generator=g, dtype=F64)
    labels = torch.randint(0, c, (n,), generator=g)
    weight = torch.randn(c, d, generator=g, dtype=F64) * 0.5
    bias = torch.randn(c, generator=g, dtype=F64) * 0.5
    lr = float(10 ** (-2.4 + 0.8 * torch.rand(1, generator=g)))
    out = worker.call("train_mechanics", weight, bias, data, labels, steps, size, lr)
    groups = recorded_groups(out, "train_classifier")
    problems, losses = [], out["losses"]
    floats = isinstance(losses, list) and len(losses) == steps and all(isinstance(v, float) for v in losses)
    if not floats:
        problems.append(f"train_classifier should return a list of its {steps} losses as Python floats (loss.item()), "
                        f"got {describe_value(losses)}")
    final = out.get("final")
    final_moved = not isinstance(final, dict) or any(not torch.equal(final[k], groups[-1]["weights"][k]) for k in ("weight", "bias"))
    updates = int(out.get("steps_seen", 0)) - 1 + final_moved
    if updates != steps:
        problems.append(f"train_classifier should take exactly steps = {steps} optimiser steps, took {updates}")
    rows = [_batch_rows(grp["batches"][0], data, size) for grp in groups[:steps]]
    if any(r is None for r in rows):
        problems.append(f"train_classifier: every minibatch should be batch_size = {size} rows of x")
    elif len({i for r in rows for i in r}) < n:
        problems.append(f"train_classifier: in {steps} steps the minibatches never reached some rows of x: "
                        "draw them uniformly from all the rows")
    elif sum(all((b - a) % n == 1 for a, b in zip(r, r[1:])) for r in rows) > steps // 3:
        # drawn uniformly, a batch of 6 of 13 rows is such a run with probability 13 / 13^6
        problems.append("train_classifier: the minibatches are runs of consecutive rows: draw each batch's rows "
                        "uniformly at random")
    s0 = int(torch.randint(0, 2**31, (1,), generator=g))
    runs = worker.call("train_seeded", weight, bias, data, labels, steps, size, lr, [s0, s0, s0 + 1])
    runs = [[_batch_rows(b, data, size) for b in run] if isinstance(run, list) else None
            for run in (runs if isinstance(runs, list) and len(runs) == 3 else [None] * 3)]
    if any(run is None or len(run) != steps or any(r is None for r in run) for run in runs):
        problems.append("train_classifier: run twice, it should take the same number of steps of batch_size rows each")
    elif runs[0] != runs[1] or runs[0] == runs[2]:
        problems.append("train_classifier: the minibatches should follow torch's global seed (the same after "
                        "torch.manual_seed(s), others after another seed): draw them with torch's random functions")
    if floats and all(r is not None for r in rows):
        right = all(abs(float(ref_ce(data[r] @ grp["weights"]["weight"].T + grp["weights"]["bias"], labels[r])) - loss)
                    <= 1e-6 + 1e-6 * abs(loss) for loss, grp, r in zip(losses, groups, rows))
        if not right:
            problems.append("train_classifier: the losses returned are not the mean cross-entropy of each step's "
                            "minibatch with its own labels (before the step)")
    replay = min(REPLAYED, len(groups) - 1)
    if replay >= 1 and all(r is not None for r in rows[:replay]):
        if not _adam_replay_matches(groups, rows[:replay], data, labels, lr):
            problems.append("train_classifier: the first steps are not Adam steps with learning rate lr on each "
                            "minibatch's cross-entropy (zero the gradients before each backward)")
    score_checks(problems, 6, credit)


# --------------------------------------------------------------------------- learned quality: digits


def _plot_losses(artifacts, losses, filename: str, title: str) -> None:
    curve = plottable(losses).reshape(-1)
    finite = curve[np.isfinite(curve)]
    if finite.size < 2:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 2.8))
    ax.plot(np.arange(1, curve.size + 1), curve, lw=0.6)
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_ylim(0, float(np.percentile(finite, 99)) * 1.05 + 1e-3)
    ax.set_title(title, fontsize=9)
    artifacts.figure(filename, fig)


PROBE_POINTS = 160     # random points in [0, 1]^64 on which the judge reads the trained logistic regression


def _digits_accuracy(logits, x_probe, x_held, y_held):
    """Held-out accuracy of the affine map that gives ``logits`` on the probe points, applied
    by the judge to the held-out digits; None when the logits are not affine in x."""
    a, b, residual = affine_fit(x_probe, logits)
    if residual > 1e-3 * (1 + float(logits.abs().max())):
        return None, b
    return float(((x_held @ a + b).argmax(1) == y_held).double().mean()), b


@pytest.mark.judges("LogisticRegression")
@pytest.mark.upstream("test_train_mechanics")   # cross_entropy: the grader's
def test_logistic_regression(worker, seed, secret_rng, thresholds, credit, artifacts):
    """LogisticRegression(64, 10) trained by the student's train_classifier for a fixed
    number of steps on the training digits under a pixel permutation drawn for this grading
    (the judge's secret). The judge reads the trained model on random probe points: its logits
    must be an affine function of the pixels with a bias (logits = x W^T + b), the same in
    train() and eval() mode; the judge applies that affine map to the permuted held-out
    digits (which never enter the worker) and scores the accuracy in tiers. The same read
    through a copy with its weights shuffled must score nothing."""
    import kitdata.digits
    from kitdata.variants import PixelPermutation

    perm = PixelPermutation(secret_rng)
    x, y = (torch.from_numpy(a) for a in kitdata.digits.load_digits("train"))
    steps = int(thresholds["digits_steps"])
    losses = worker.call("train_digits", seed, steps, float(thresholds["digits_lr"]), perm.apply(x), y)
    if isinstance(losses, Raised):
        fails(f"train_classifier raised {losses}")
    x_probe = torch.rand(PROBE_POINTS, 64, generator=torch.Generator().manual_seed(seed + 9))
    out = worker.call("digits_logits", x_probe)
    if not isinstance(out, dict):
        fails(f"LogisticRegression: expected its logits, got {describe_value(out)}")
    if isinstance(out.get("eval"), Raised):
        fails(f"LogisticRegression raised {out['eval']}")
    logits = expect_finite(expect_tensor(out.get("eval"), name="LogisticRegression", shape=(PROBE_POINTS, 10)),
                           name="LogisticRegression").double()
    x_held, y_held = (torch.from_numpy(a) for a in kitdata.digits.load_digits("heldout"))
    x_held = perm.apply(x_held).double()
    accuracy, bias = _digits_accuracy(logits, x_probe, x_held, y_held)
    if accuracy is None:
        fails("LogisticRegression's logits are not an affine function of x: one nn.Linear, nothing else")
    if float(bias.abs().max()) <= 1e-6 * (1 + float(logits.abs().max())):
        fails("LogisticRegression has no bias: logits = x W^T + b")
    train_mode = out.get("train")
    if not isinstance(train_mode, torch.Tensor) or train_mode.shape != logits.shape or \
            not torch.allclose(train_mode.double(), logits, rtol=1e-5, atol=1e-6):
        fails("LogisticRegression gives other logits in train() mode than in eval() mode: nothing in it depends on the mode")
    _plot_losses(artifacts, losses, "logistic_regression_loss.png", "your train_classifier on the digits")
    artifacts.note(f"logistic regression after {steps} steps: held-out accuracy {accuracy:.1%} on the digits")
    tiers = thresholds["digits_accuracy_tiers"]
    shuffled = out.get("shuffled")
    shuffled_credit = 0.0
    if isinstance(shuffled, torch.Tensor) and shuffled.shape == logits.shape and bool(torch.isfinite(shuffled).all()):
        shuffled_accuracy, _ = _digits_accuracy(shuffled.double(), x_probe, x_held, y_held)
        shuffled_credit = tier(shuffled_accuracy, tiers, higher_is_better=True) if shuffled_accuracy is not None else 0.0
    expect_learned(out.get("eval"), shuffled, shuffled_credit, name="LogisticRegression")
    fraction = tier(accuracy, tiers, higher_is_better=True)
    if 0 < fraction < 1:
        credit(fraction, f"held-out accuracy {accuracy:.1%}: training works but less well than expected")
    if fraction == 0:
        fails(f"held-out accuracy {accuracy:.1%} after {steps} steps: train_classifier does not minimise the "
              "cross-entropy (check the loss, zero_grad and the optimiser step)")


# --------------------------------------------------------------------------- the CNN and CAM


@pytest.mark.judges("TinyCNN")
def test_cnn_forward(worker, seed, credit):
    """TinyCNN with the grader's weights loaded into conv1, conv2 and fc: its features
    (ReLU, 2x2 max-pool, conv, ReLU) and logits (global *average* pooling, then fc) against
    float64, on images whose height and width differ, in train() mode and again in eval()
    mode (nothing in TinyCNN depends on the mode)."""
    w = cnn_weights(seed, hidden=5, channels=7, n_classes=3)
    images = torch.randn(4, 1, 8, 10, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    out = worker.call("cnn_forward", w, images)
    if not isinstance(out, dict) or not all(isinstance(out.get(m), dict) for m in ("train", "eval")):
        fails(f"TinyCNN: expected its outputs, got {describe_value(out)}")
    problems = []
    for key, ref, shape in (("features", ref_features(w, images), (4, 7, 4, 5)), ("logits", ref_logits(w, images), (4, 3))):
        name = "TinyCNN.features" if key == "features" else "TinyCNN (logits)"
        try:
            value = out["train"].get(key)
            if isinstance(value, Raised):
                fails(f"{name} raised {value}")
            expect_close(expect_tensor(value, name=name, shape=shape, dtype=F64), ref, name=name, rtol=1e-9, atol=1e-10)
        except AssertionError as error:
            problems.append(str(error))
    try:
        for key, ref in (("features", ref_features(w, images)), ("logits", ref_logits(w, images))):
            value = out["eval"].get(key)
            if isinstance(value, Raised):
                fails(f"TinyCNN in eval() mode raised {value}")
            expect_close(expect_tensor(value, name=f"TinyCNN {key} in eval() mode", shape=ref.shape, dtype=F64), ref,
                         name=f"TinyCNN {key} in eval() mode (nothing in it depends on the mode)", rtol=1e-9, atol=1e-10)
    except AssertionError as error:
        problems.append(str(error))
    score_checks(problems, 3, credit)


CAM_CASES = [(1, 6, 8), (5, 8, 12)]     # (batch, H, W): a batch of one


@pytest.mark.judges("class_activation_map")
@pytest.mark.upstream("test_cnn_forward")
@pytest.mark.parametrize("batch,height,width", CAM_CASES)
def test_cam_values(worker, seed, batch, height, width):
    """class_activation_map on the grader's CNN against float64: sum_k w_{c,k} f_k for each
    image's own class (no bias), bilinear upsampling to the input's H x W
    (align_corners=False), the input left unchanged."""
    w = cnn_weights(seed, hidden=4, channels=6, n_classes=4)
    g = torch.Generator().manual_seed(seed + 3)
    images = torch.randn(batch, 1, height, width, generator=g, dtype=F64)
    classes = torch.randperm(4, generator=g)[:batch] if batch <= 4 else torch.randint(0, 4, (batch,), generator=g)
    if batch > 1:
        classes[:4] = torch.randperm(4, generator=g)
    out = worker.call("cam", w, images, classes)
    if not isinstance(out, dict):
        fails(f"class_activation_map: expected its maps, got {describe_value(out)}")
    if isinstance(out.get("cam"), Raised):
        fails(f"class_activation_map raised {out['cam']}")
    got = expect_tensor(out.get("cam"), name="class_activation_map", shape=(batch, height, width), dtype=F64)
    expect_close(got, ref_cam(w, images, classes), name="class_activation_map", rtol=1e-9, atol=1e-10)
    expect_same(out.get("images_after"), images, name="class_activation_map's input x (leave it unchanged)")


@pytest.mark.upstream("test_train_mechanics", "test_cnn_forward", "test_cam_values")   # cross_entropy: the grader's
def test_cnn_localisation(worker, seed, secret_rng, thresholds, credit, artifacts):
    """TinyCNN() trained by the student's train_classifier on planted-object images whose
    three patterns, training set and held-out set the judge draws for this grading (its
    secret; kitdata.planted.variant_patterns). Scored: held-out accuracy and the pointing game
    (the maximum of the student's CAM for the true class within 2 pixels of the planted
    pattern's centre), each in tiers; credit is the smaller. The CAMs must be those of the
    trained network (the judge recomputes them from its raw features and fc weights), and
    the same network with its weights shuffled must score nothing."""
    steps = int(thresholds["planted_steps"])
    n = int(thresholds["planted_heldout"])
    (x_train, y_train, _), (images, labels, centres) = planted_sets(secret_rng, int(thresholds["planted_train"]), n)
    losses = worker.call("train_planted", seed, steps, int(thresholds["planted_batch_size"]), float(thresholds["planted_lr"]),
                         x_train, y_train)
    if isinstance(losses, Raised):
        fails(f"train_classifier raised {losses}")
    out = worker.call("planted_heldout", images, labels)
    if not isinstance(out, dict):
        fails(f"TinyCNN: expected its outputs, got {describe_value(out)}")
    for key in ("logits", "features", "fc_weight", "cam"):
        if isinstance(out.get(key), Raised):
            fails(f"{'class_activation_map' if key == 'cam' else 'TinyCNN'} raised {out[key]}")
    logits = expect_finite(expect_tensor(out["logits"], name="TinyCNN", shape=(n, 3)), name="TinyCNN")
    cams = expect_finite(expect_tensor(out["cam"], name="class_activation_map", shape=(n, 12, 12)),
                         name="class_activation_map")
    features = expect_tensor(out["features"], name="TinyCNN.features", shape=(n, None, 6, 6))
    fc_weight = expect_tensor(out["fc_weight"], name="TinyCNN.fc.weight", shape=(3, features.shape[1]))
    own = cam_from(features, fc_weight, labels, (12, 12))
    if float((own - cams.double()).abs().max()) > 1e-4 * (1 + float(own.abs().max())):
        fails("class_activation_map on the trained network is not sum_k w_{c,k} f_k of its own features, upsampled")

    import kitdata.planted

    def scores(logits, cams):
        hits = kitdata.planted.pointing_hits(cams.double().numpy(), centres.numpy(), radius=2)
        accuracy = float((logits.argmax(1) == labels).double().mean())
        fraction = min(tier(accuracy, thresholds["planted_accuracy_tiers"], higher_is_better=True),
                       tier(float(hits.mean()), thresholds["pointing_tiers"], higher_is_better=True))
        return accuracy, hits, fraction

    accuracy, hits, fraction = scores(logits, cams)
    hit_rate = float(hits.mean())
    _plot_cams(artifacts, images, cams, centres, labels, hits)
    _plot_losses(artifacts, losses, "cnn_loss.png", "your train_classifier on the planted images")
    artifacts.note(f"TinyCNN after {steps} steps on the planted images: held-out accuracy {accuracy:.1%}; "
                   f"your CAM points at the planted pattern in {hit_rate:.1%} of the images (chance: about 17%)")
    shuffled_logits, shuffled_cam = out.get("shuffled_logits"), out.get("shuffled_cam")
    shuffled_credit = 0.0
    if all(isinstance(v, torch.Tensor) and bool(torch.isfinite(v).all()) for v in (shuffled_logits, shuffled_cam)) and \
            shuffled_logits.shape == logits.shape and shuffled_cam.shape == cams.shape:
        shuffled_credit = scores(shuffled_logits, shuffled_cam)[2]
    expect_learned(out["logits"], shuffled_logits, shuffled_credit, name="TinyCNN")
    if 0 < fraction < 1:
        credit(fraction, f"held-out accuracy {accuracy:.1%}, pointing game {hit_rate:.1%}: partly there")
    if fraction == 0:
        fails(f"held-out accuracy {accuracy:.1%}, pointing game {hit_rate:.1%}: the network does not find the "
              "pattern, or its CAM does not show where it looked")


def _plot_cams(artifacts, images, cams, centres, labels, hits) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.patches as patches

    k = 6
    fig, axes = plt.subplots(2, k, figsize=(1.3 * k, 2.9))
    names = ("class 0", "class 1", "class 2")
    for i in range(k):
        r, c = (int(v) for v in centres[i])
        axes[0, i].imshow(images[i, 0].numpy(), cmap="gray", interpolation="nearest")
        axes[0, i].set_title(names[int(labels[i])], fontsize=7)
        axes[1, i].imshow(plottable(cams[i]), cmap="magma", interpolation="nearest")
        axes[1, i].set_title("hit" if hits[i] else "miss", fontsize=7)
        for ax in axes[:, i]:
            ax.add_patch(patches.Rectangle((c - 1.5, r - 1.5), 3, 3, fill=False, ec="cyan", lw=0.8))
            ax.axis("off")
    fig.suptitle("held-out images (top) and your CAM for the true class (bottom); box: the planted pattern", fontsize=7)
    artifacts.figure("class_activation_maps.png", fig)


# --------------------------------------------------------------------------- the data-generating distribution


@pytest.mark.upstream("test_fit_gaussian", "test_log_joint_posterior", "test_train_mechanics")   # cross_entropy: the grader's
def test_bayes_excess_error(worker, seed, secret_rng, thresholds, credit, artifacts):
    """On 2-D data with known class-conditionals, a variant of kitdata.labelled2d drawn for
    this grading (the judge's secret: both classes moved by one similarity transform, the
    components and priors reweighted; labelled2d.variant), the student's Gaussian classifier
    and logistic regression are trained on sets of several sizes drawn by the judge; the
    judge computes each one's *exact* error from its linear decision rule (the Gaussian
    classifier's from its returned parameters, the logistic regression's from an affine fit
    of its logits on the judge's points, which must be exact) and scores the logistic
    regression's excess error over the variant's Bayes error at the largest size in tiers.
    The same model with its parameters negated must score nothing. The learning curves (Ng
    and Jordan, 2001) go in the feedback."""
    import kitdata.labelled2d as labelled2d

    mix = labelled2d.variant(secret_rng)
    sizes = [int(v) for v in thresholds["mixture_sizes"]]
    sets = []
    for n in sizes:
        x, y = mix.sample(n, secret_rng)
        y[:2] = [0, 1]                                       # both classes present, even at n = 8
        sets.append((torch.from_numpy(x).double(), torch.from_numpy(y)))
    kept = worker.call("fit_mixture", seed, sets, int(thresholds["mixture_steps"]), 64, float(thresholds["mixture_lr"]))
    if isinstance(kept, Raised):
        fails(f"the 2-D classifiers raised {kept}")
    x_held = torch.from_numpy(mix.sample(400, secret_rng)[0]).double()
    out = worker.call("mixture_heldout", x_held)
    if not isinstance(out, list) or len(out) != len(sizes):
        fails(f"the 2-D classifiers: expected one result per training set, got {describe_value(out)}")
    gda_err, lr_err = [], []
    for item in out:
        gda_err.append(_gda_error(item.get("params") if isinstance(item, dict) else None, x_held, mix))
        lr_err.append(_lr_error(item.get("logits") if isinstance(item, dict) else None, x_held, mix))
    bayes = mix.bayes_error(h=0.02)     # midpoint rule; within 3e-5 of the exact value at this step
    _plot_learning_curves(artifacts, sizes, gda_err, lr_err, bayes)
    excess = lr_err[-1] - bayes
    artifacts.note(f"2-D data, n = {sizes[-1]}: error of your Gaussian classifier {gda_err[-1]:.4f}, of your logistic "
                   f"regression {lr_err[-1]:.4f}; the Bayes error is {bayes:.4f} (excess error of the logistic "
                   f"regression: {excess:.4f})")
    if not math.isfinite(lr_err[-1]):
        fails("the logistic regression trained on the 2-D data does not give an affine rule with finite logits")
    tiers = thresholds["excess_error_tiers"]
    last = out[-1] if isinstance(out[-1], dict) else {}
    negated_err = _lr_error(last.get("negated"), x_held, mix)
    negated_credit = tier(negated_err - bayes, tiers, higher_is_better=False) if math.isfinite(negated_err) else 0.0
    expect_learned(last.get("logits"), last.get("negated"), negated_credit, name="LogisticRegression")
    fraction = tier(excess, tiers, higher_is_better=False)
    if 0 < fraction < 1:
        credit(fraction, f"excess error {excess:.4f} over the Bayes error: training works but less well than expected")
    if fraction == 0:
        fails(f"the logistic regression's error on the 2-D data is {excess:.4f} above the Bayes error: "
              "train_classifier does not reach the best linear rule")


def _gda_error(params, x_held, mix) -> float:
    """Exact error of the rule a Gaussian classifier's parameters define (NaN if unusable)."""
    try:
        if not isinstance(params, dict):
            return float("nan")
        p = {k: expect_tensor(params.get(k), name=k, shape=s).double()
             for k, s in (("log_prior", (2,)), ("means", (2, 2)), ("cov", (2, 2)))}
        if not all(bool(torch.isfinite(v).all()) for v in p.values()):
            return float("nan")
        score = ref_log_joint(p, x_held)
        a, b, residual = affine_fit(x_held, score[:, 1] - score[:, 0])
        if residual >= 1e-6:
            return float("nan")
        return linear_error(a[:, 0].numpy() if a.dim() == 2 else a.numpy(), float(b), mix)
    except (AssertionError, RuntimeError):
        return float("nan")


def _lr_error(logits, x_held, mix) -> float:
    try:
        logits = expect_finite(expect_tensor(logits, name="LogisticRegression", shape=(len(x_held), 2)),
                               name="LogisticRegression").double()
    except AssertionError:
        return float("nan")
    a, b, residual = affine_fit(x_held, (logits[:, 1] - logits[:, 0])[:, None])
    if residual > 1e-4 * (1 + float(logits.abs().max())):
        return float("nan")
    return linear_error(a[:, 0].numpy(), float(b[0]), mix)


def _plot_learning_curves(artifacts, sizes, gda_err, lr_err, bayes) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.0))
    ax.plot(sizes, plottable(gda_err), "o-", label="your Gaussian classifier (generative)")
    ax.plot(sizes, plottable(lr_err), "s-", label="your logistic regression (discriminative)")
    ax.axhline(bayes, color="k", ls="--", lw=0.8, label="Bayes error")
    ax.set_xscale("log")
    ax.set_xlabel("training examples")
    ax.set_ylabel("exact test error")
    ax.set_title("learning curves on the 2-D data (Ng and Jordan, 2001)", fontsize=9)
    ax.legend(fontsize=7)
    artifacts.figure("learning_curves.png", fig)


# --------------------------------------------------------------------------- devices


def _parity_spec(n: int, dim: int, batch: int, height: int, width: int) -> dict:
    return {"fit_gaussian_classifier": {"log_prior": (3,), "means": (3, dim), "cov": (dim, dim)},
            "log_joint": (n, 3), "posterior": (n, 3), "predict": (n,), "sample_class": (4, dim),
            "cross_entropy": (), "class_activation_map": (batch, height, width),
            "LogisticRegression": (n, 3), "TinyCNN": (batch, 3)}


def _train_problems(losses, device: str) -> list[str]:
    if isinstance(losses, Raised):
        return [f"train_classifier raised {losses} on a model and data on the {device} device"]
    if not isinstance(losses, (list, tuple)) or len(losses) != 2:
        return [f"train_classifier on the {device} device should return its 2 losses, got {describe_value(losses)}"]
    return []


def test_device_parity(worker, seed, credit):
    """Same results on every device and dtype: on an accelerator the deterministic outputs
    match the CPU's; without one, every function must keep PyTorch's `meta` device and
    float64 inputs must give float64 outputs (the fit, whose class selection has
    data-dependent shapes, is judged on the CPU and accelerators only); two training steps
    run on each device."""
    g = torch.Generator().manual_seed(seed)
    n, dim, batch, height, width = 9, 4, 2, 6, 8
    inputs = {"x": torch.randn(n, dim, generator=g), "y": torch.arange(n) % 3,
              "logits": torch.randn(n, 3, generator=g), "images": torch.randn(batch, 1, height, width, generator=g),
              "classes": torch.tensor([2, 0])}
    cnn = cnn_weights(seed, hidden=3, channels=5, n_classes=3)
    gaussian = grader_params(seed, n_classes=3, dim=dim)
    spec = _parity_spec(n, dim, batch, height, width)
    problems = output_problems(worker.call("parity", "cpu", "float64", inputs, cnn, gaussian), spec,
                               _check("cpu", F64, where=" on float64 inputs"))
    total = len(spec)
    cpu32 = worker.call("parity", "cpu", "float32", inputs, cnn, gaussian)
    for device in parity_devices(worker):
        out = worker.call("parity", device, "float32", inputs, cnn, gaussian)
        # the fit selects each class's rows (data-dependent shapes): not run on meta
        here = {k: v for k, v in spec.items() if device != "meta" or k != "fit_gaussian_classifier"}
        problems += output_problems(out, here, _check(device, torch.float32, where=f" on {device}"))
        problems += _train_problems(worker.call("train_on", device), device)
        total += len(here) + 1
        if device == "meta":
            continue
        for name in ("log_joint", "posterior", "cross_entropy", "class_activation_map"):
            total += 1
            try:
                expect_close(out.get(name), expect_tensor(cpu32.get(name), name=f"{name} on the CPU"),
                             name=f"{name} on {device} vs CPU", rtol=1e-4, atol=1e-4)
            except AssertionError as error:
                problems.append(str(error))
    score_checks(problems, total, credit)
