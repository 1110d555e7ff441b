"""Hidden suite for the classifiers assignment (runs in the judge; never imports student
code). The float64 reference maths, the grader's models' weights and the held-out draws
live in ref_classifiers.py.

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

from autograder.judge import (Raised, changed_inputs, describe_value, digit_grid, expect_close, expect_finite,
                              expect_meta, expect_same, expect_tensor, fails, output_problems, parity_devices,
                              plottable, recorded_groups, score_checks, tier)
from ref_classifiers import (affine_fit, cam_from, cnn_weights, grader_params, heldout_mixture,
                             heldout_planted, linear_error, ref_cam, ref_ce, ref_ce_grad, ref_features, ref_fit,
                             ref_log_joint, ref_logits, ref_posterior)

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


def test_log_joint_posterior(worker, seed, credit):
    """log_joint, posterior and predict on the grader's Gaussian classifier (unequal priors,
    a covariance far from I) against float64 references; rows of the posterior sum to one
    as returned; and the same at inputs 1e2 to 3e4 away from every class, where every
    p(x, c) underflows to 0 (log-sum-exp, never exp then normalise)."""
    params, x, far = _bayes_case(seed)
    problems = []
    for label, points in (("", x), (" far from every class", far)):
        out = worker.call("bayes_rule", params, points)
        if not isinstance(out, dict):
            fails(f"log_joint, posterior and predict: expected their three outputs, got {describe_value(out)}")
        n = points.shape[0]
        try:
            got = expect_tensor(out.get("log_joint"), name=f"log_joint{label}", shape=(n, 3), dtype=F64)
            expect_close(got, ref_log_joint(params, points), name=f"log_joint{label} (log p(c) + log N(x; mu_c, Sigma))",
                         rtol=1e-9, atol=1e-8)
        except AssertionError as error:
            problems.append(str(error))
        try:
            got = expect_finite(expect_tensor(out.get("posterior"), name=f"posterior{label}", shape=(n, 3), dtype=F64),
                                name=f"posterior{label}")
            if float((got.sum(1) - 1).abs().max()) > 1e-9:
                fails(f"posterior{label}: the rows do not sum to one")
            expect_close(got, ref_posterior(params, points), name=f"posterior{label} (p(c | x) by Bayes' rule, with the prior)",
                         rtol=1e-7, atol=1e-9)
        except AssertionError as error:
            problems.append(str(error))
        try:
            got = expect_tensor(out.get("predict"), name=f"predict{label}", shape=(n,), dtype=torch.int64)
            if not torch.equal(got, ref_log_joint(params, points).argmax(1)):
                fails(f"predict{label} is not the most probable class argmax_c p(c | x)")
        except AssertionError as error:
            problems.append(str(error))
    score_checks(problems, 6, credit)


def test_sample_class(worker, seed, credit):
    """sample_class draws from N(mu_c, Sigma): the judge whitens the draws with the true L
    (z = L^{-1}(x - mu_c)) and tests mean 0 and covariance I at 5 standard errors, for the
    class asked; the same generator seed repeats the draws, another seed changes them, and
    n is the number of rows."""
    params = grader_params(seed + 7, n_classes=3, dim=3)
    g = torch.Generator().manual_seed(seed)
    c = int(torch.randint(1, 3, (1,), generator=g))
    n = 20_000 + int(torch.randint(0, 97, (1,), generator=g))
    s = int(torch.randint(0, 2**31, (1,), generator=g))
    draws = worker.call("samples", params, c, n, [s, s, s + 1])
    if not isinstance(draws, list) or len(draws) != 3:
        fails(f"sample_class should return a tensor, got {describe_value(draws)}")
    if isinstance(draws[0], Raised):
        fails(f"sample_class raised {draws[0]}")
    a, b, other = (expect_finite(expect_tensor(d, name="sample_class", shape=(n, 3), dtype=F64), name="sample_class")
                   for d in draws)
    problems = []
    chol = torch.linalg.cholesky(params["cov"])
    z = torch.linalg.solve_triangular(chol, (a - params["means"][c]).T, upper=False).T       # (n, 3)
    mean_z = z.mean(0) * math.sqrt(n)
    if float(mean_z.abs().max()) > Z_CRIT:
        nearest = int((a.mean(0) - params["means"]).norm(dim=1).argmin())
        problems.append("sample_class: the draws are centred on another class's mean" if nearest != c
                        else "sample_class: the draws' mean is not mu_c")
    cov_z = torch.cov(z.T)
    se = torch.full((3, 3), 1 / math.sqrt(n), dtype=F64) + torch.eye(3, dtype=F64) * (math.sqrt(2 / n) - 1 / math.sqrt(n))
    if float(((cov_z - torch.eye(3, dtype=F64)).abs() / se).max()) > Z_CRIT:
        problems.append("sample_class: the draws' covariance is not Sigma (x = mu_c + L eps with L = cholesky(Sigma))")
    if not torch.equal(a, b):
        problems.append("sample_class: two generators with the same seed give different draws: draw eps with generator=")
    if torch.equal(a, other):
        problems.append("sample_class: generators with different seeds give the same draws: draw eps with generator=")
    score_checks(problems, 4, credit)


def test_digit_samples(worker, seed, thresholds, credit, artifacts):
    """The Gaussian classifier fitted on the training digits generates digits of the class
    asked: the kit's own digit classifier (kitdata.features) labels the samples, and the
    fraction labelled as asked is scored in tiers. The samples must be new (not copies of
    real digits), centred on the judge's own fit of each class's mean and spread as its Sigma."""
    import kitdata.digits
    import kitdata.features
    import kitdata.metrics

    per = int(thresholds["digit_samples_per_class"])
    floor = float(thresholds["digit_var_floor"])
    out = worker.call("digit_samples", floor, per, seed)
    if not isinstance(out, dict):
        fails(f"digit_samples: expected the samples, got {describe_value(out)}")
    samples = out.get("samples")
    if isinstance(samples, Raised):
        fails(f"sample_class raised {samples}")
    samples = expect_finite(expect_tensor(samples, name="sample_class on the digits", shape=(10 * per, 64), dtype=F64),
                            name="sample_class on the digits")
    x, y = (torch.from_numpy(a) for a in kitdata.digits.load_digits("train"))
    ref = ref_fit(x, y, 10, floor)
    labels = torch.arange(10).repeat_interleave(per)
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


def test_train_mechanics(worker, seed, credit):
    """train_classifier on the grader's linear model and data drawn from the seed, watched
    step by step: exactly `steps` Adam steps of learning rate `lr` (the judge replays the
    first ones with its own Adam on the same minibatches), each on `batch_size` rows, the batches
    reaching every row, and the returned losses, Python floats, equal to the mean
    cross-entropy of that step's weights on its batch with its rows' labels."""
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
    score_checks(problems, 5, credit)


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


def test_logistic_regression(worker, seed, thresholds, credit, artifacts):
    """LogisticRegression(64, 10) trained by the student's train_classifier for a fixed
    number of steps on the training digits; the judge sends the held-out digits afterwards
    and scores the accuracy of the returned logits in tiers. The logits must be an affine
    function of the pixels (a logistic regression is linear)."""
    import kitdata.digits

    steps = int(thresholds["digits_steps"])
    losses = worker.call("train_digits", seed, steps, float(thresholds["digits_lr"]))
    if isinstance(losses, Raised):
        fails(f"train_classifier raised {losses}")
    x_held, y_held = (torch.from_numpy(a) for a in kitdata.digits.load_digits("heldout"))
    logits = worker.call("digits_heldout", x_held)
    if isinstance(logits, Raised):
        fails(f"LogisticRegression raised {logits}")
    logits = expect_finite(expect_tensor(logits, name="LogisticRegression", shape=(len(y_held), 10)),
                           name="LogisticRegression")
    _, _, residual = affine_fit(x_held, logits)
    if residual > 1e-3 * (1 + float(logits.abs().max())):
        fails("LogisticRegression's logits are not an affine function of x: one nn.Linear, nothing else")
    _plot_losses(artifacts, losses, "logistic_regression_loss.png", "your train_classifier on the digits")
    accuracy = float((logits.argmax(1) == y_held).double().mean())
    artifacts.note(f"logistic regression after {steps} steps: held-out accuracy {accuracy:.1%} on the digits")
    fraction = tier(accuracy, thresholds["digits_accuracy_tiers"], higher_is_better=True)
    if 0 < fraction < 1:
        credit(fraction, f"held-out accuracy {accuracy:.1%}: training works but less well than expected")
    if fraction == 0:
        fails(f"held-out accuracy {accuracy:.1%} after {steps} steps: train_classifier does not minimise the "
              "cross-entropy (check the loss, zero_grad and the optimiser step)")


# --------------------------------------------------------------------------- the CNN and CAM


def test_cnn_forward(worker, seed, credit):
    """TinyCNN with the grader's weights loaded into conv1, conv2 and fc: its features
    (ReLU, 2x2 max-pool, conv, ReLU) and logits (global *average* pooling, then fc) against
    float64, on images whose height and width differ."""
    w = cnn_weights(seed, hidden=5, channels=7, n_classes=3)
    images = torch.randn(4, 1, 8, 10, generator=torch.Generator().manual_seed(seed + 1), dtype=F64)
    out = worker.call("cnn_forward", w, images)
    if not isinstance(out, dict):
        fails(f"TinyCNN: expected its outputs, got {describe_value(out)}")
    problems = []
    for key, ref, shape in (("features", ref_features(w, images), (4, 7, 4, 5)), ("logits", ref_logits(w, images), (4, 3))):
        name = "TinyCNN.features" if key == "features" else "TinyCNN (logits)"
        try:
            value = out.get(key)
            if isinstance(value, Raised):
                fails(f"{name} raised {value}")
            expect_close(expect_tensor(value, name=name, shape=shape, dtype=F64), ref, name=name, rtol=1e-9, atol=1e-10)
        except AssertionError as error:
            problems.append(str(error))
    score_checks(problems, 2, credit)


CAM_CASES = [(1, 6, 8), (5, 8, 12)]     # (batch, H, W): a batch of one


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


def test_cnn_localisation(worker, seed, thresholds, credit, artifacts):
    """TinyCNN() trained by the student's train_classifier on the planted-object images
    (kitdata.planted); the judge then draws held-out images from a seed of its own. Scored:
    held-out accuracy and the pointing game (the maximum of the student's CAM for the true
    class within 2 pixels of the planted pattern's centre), each in tiers; credit is the
    smaller. The CAMs must be those of the trained network (the judge recomputes them from
    its raw features and fc weights)."""
    steps = int(thresholds["planted_steps"])
    losses = worker.call("train_planted", seed, steps, int(thresholds["planted_batch_size"]), float(thresholds["planted_lr"]))
    if isinstance(losses, Raised):
        fails(f"train_classifier raised {losses}")
    n = int(thresholds["planted_heldout"])
    images, labels, centres = heldout_planted(seed, n)
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
    hits = kitdata.planted.pointing_hits(cams.double().numpy(), centres.numpy(), radius=2)
    hit_rate = float(hits.mean())
    accuracy = float((logits.argmax(1) == labels).double().mean())
    _plot_cams(artifacts, images, cams, centres, labels, hits)
    _plot_losses(artifacts, losses, "cnn_loss.png", "your train_classifier on the planted images")
    artifacts.note(f"TinyCNN after {steps} steps on the planted images: held-out accuracy {accuracy:.1%}; "
                   f"your CAM points at the planted pattern in {hit_rate:.1%} of the images (chance: about 17%)")
    fraction = min(tier(accuracy, thresholds["planted_accuracy_tiers"], higher_is_better=True),
                   tier(hit_rate, thresholds["pointing_tiers"], higher_is_better=True))
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
    names = ("plus", "cross", "ring")
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


def test_bayes_excess_error(worker, seed, thresholds, credit, artifacts):
    """On the 2-D data with known class-conditionals (kitdata.labelled2d), the student's
    Gaussian classifier and logistic regression are trained on sets of several sizes drawn
    by the judge; the judge computes each one's *exact* error from its linear decision rule
    (the Gaussian classifier's from its returned parameters, the logistic regression's from
    an affine fit of its logits on held-out points, which must be exact) and scores the
    logistic regression's excess error over the Bayes error at the largest size in tiers.
    The learning curves (Ng and Jordan, 2001) go in the feedback."""
    import kitdata.labelled2d as labelled2d

    sizes = [int(v) for v in thresholds["mixture_sizes"]]
    g = np.random.default_rng([seed, 2])
    sets = []
    for n in sizes:
        x, y = labelled2d.sample(n, g)
        y[:2] = [0, 1]                                       # both classes present, even at n = 8
        sets.append((torch.from_numpy(x).double(), torch.from_numpy(y)))
    kept = worker.call("fit_mixture", seed, sets, int(thresholds["mixture_steps"]), 64, float(thresholds["mixture_lr"]))
    if isinstance(kept, Raised):
        fails(f"the 2-D classifiers raised {kept}")
    x_held, _ = heldout_mixture(seed, 400)
    x_held = x_held.double()
    out = worker.call("mixture_heldout", x_held)
    if not isinstance(out, list) or len(out) != len(sizes):
        fails(f"the 2-D classifiers: expected one result per training set, got {describe_value(out)}")
    gda_err, lr_err = [], []
    for item in out:
        gda_err.append(_gda_error(item.get("params") if isinstance(item, dict) else None, x_held))
        lr_err.append(_lr_error(item.get("logits") if isinstance(item, dict) else None, x_held))
    bayes = labelled2d.BAYES_ERROR
    _plot_learning_curves(artifacts, sizes, gda_err, lr_err, bayes)
    excess = lr_err[-1] - bayes
    artifacts.note(f"2-D data, n = {sizes[-1]}: error of your Gaussian classifier {gda_err[-1]:.4f}, of your logistic "
                   f"regression {lr_err[-1]:.4f}; the Bayes error is {bayes:.4f} (excess error of the logistic "
                   f"regression: {excess:.4f})")
    if not math.isfinite(lr_err[-1]):
        fails("the logistic regression trained on the 2-D data does not give an affine rule with finite logits")
    fraction = tier(excess, thresholds["excess_error_tiers"], higher_is_better=False)
    if 0 < fraction < 1:
        credit(fraction, f"excess error {excess:.4f} over the Bayes error: training works but less well than expected")
    if fraction == 0:
        fails(f"the logistic regression's error on the 2-D data is {excess:.4f} above the Bayes error: "
              "train_classifier does not reach the best linear rule")


def _gda_error(params, x_held) -> float:
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
        return linear_error(a[:, 0].numpy() if a.dim() == 2 else a.numpy(), float(b)) if residual < 1e-6 else float("nan")
    except (AssertionError, RuntimeError):
        return float("nan")


def _lr_error(logits, x_held) -> float:
    try:
        logits = expect_finite(expect_tensor(logits, name="LogisticRegression", shape=(len(x_held), 2)),
                               name="LogisticRegression").double()
    except AssertionError:
        return float("nan")
    a, b, residual = affine_fit(x_held, (logits[:, 1] - logits[:, 0])[:, None])
    if residual > 1e-4 * (1 + float(logits.abs().max())):
        return float("nan")
    return linear_error(a[:, 0].numpy(), float(b[0]))


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
