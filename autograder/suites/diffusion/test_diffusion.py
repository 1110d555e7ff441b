"""Hidden suite for the diffusion assignment (runs in the judge; never imports student code).
The float64 reference maths, the grader's networks and the exact noise predictor of a
Gaussian mixture live in ref_diffusion.py.

Conventions judged (handout.md): schedule tensors of T + 1 entries indexed by t (entry 0 is
t = 0); t in 1..T; the loss averages over rows and dimensions; no noise at the last reverse
step; samplers return x_0 unclipped.

The samplers are judged with the exact noise predictor eps* of a Gaussian mixture that the
judge draws from the test's seed: the worker gets the mixture's parameters in that probe
call only, and the judge recomputes eps* in float64 on every x_t the student's sampler
showed the model, so each step of the trajectory is checked against the reverse step, and
the samples against the mixture itself.

Statistical checks run at alpha = 1e-7 each (z-tests at 5.33 standard errors, chi-square,
Kolmogorov-Smirnov), or with a Bonferroni share of it: a correct solution fails one with
probability below 1e-5 over the whole suite. The draws come from the worker's seeded RNG,
so a given grader seed always gives the same verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from autograder.grading.judge import (Raised, changed_inputs, describe_value, digit_grid, expect_close, expect_finite, expect_learned,
                              expect_same, expect_tensor, fails, on_device, output_problems, parity_devices,
                              plottable, recorded_groups, score_checks, tier)
from ref_diffusion import (ddim_taus, mixture_eps, mixture_log_prob, mixture_sample, ref_sample,
                           nearest_component, random_mixture, ref_cosine_betas, ref_ddim, ref_linear_betas,
                           ref_q_sample, ref_reverse_mean, ref_reverse_step, ref_schedule, ref_sigma,
                           ref_time_embedding, small_eps, small_eps_loss, small_weights)

F64 = torch.float64
ALPHA = 1e-7
Z_CRIT = float(stats.norm.isf(ALPHA / 2))      # 5.33


def _schedule(kind: str = "linear", T: int = 100) -> dict:
    betas = ref_linear_betas(T, min(0.1 / T, 0.01), min(20.0 / T, 0.5)) if kind == "linear" else ref_cosine_betas(T, 0.008, 0.999)
    return ref_schedule(betas)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


# --------------------------------------------------------------------------- shapes


SHAPE_CASES = [(1, 2, 6), (7, 3, 10), (32, 64, 5)]     # (batch, dim, T): a batch of one, distinct sizes


@pytest.mark.parametrize("batch,dim,T", SHAPE_CASES)
def test_shapes(worker, seed, credit, batch, dim, T):
    """Every function returns what the handout says (shape, dtype: float64 schedules, the
    data's float32 elsewhere), for a batch of one among the cases, and leaves its inputs
    unchanged."""
    g = torch.Generator().manual_seed(seed)
    sch = {k: v for k, v in _schedule("linear", T).items()}
    inputs = {"x0": torch.randn(batch, dim, generator=g), "x_t": torch.randn(batch, dim, generator=g),
              "t": torch.randint(1, T + 1, (batch,), generator=g), "noise": torch.randn(batch, dim, generator=g),
              "eps": torch.randn(batch, dim, generator=g), "z": torch.randn(batch, dim, generator=g),
              "betas": sch["betas"].clone(), "alpha_bars": sch["alpha_bars"].clone(), "schedule": sch}
    out = worker.call("shapes", batch, dim, T, inputs, small_weights(seed, dim, T))
    keys = ("betas", "alphas", "alpha_bars", "posterior_variance")
    doubles = {"linear_betas": (T + 1,), "cosine_betas": (T + 1,), "make_schedule": {k: (T + 1,) for k in keys}}
    floats = {"q_sample": (batch, dim), "time_embedding": (batch, 6), "EpsModel": (batch, dim),
              "diffusion_loss": (), "reverse_step": (batch, dim), "sample": (batch, dim), "ddim_sample": (batch, dim)}
    problems = output_problems(out, doubles, on_device("cpu", F64))
    problems += output_problems(out, floats, on_device("cpu", torch.float32))
    plain = {k: v for k, v in inputs.items() if k != "schedule"}
    if len(problems) == len(doubles) + len(floats):
        fails(problems[0])
    changed = changed_inputs(out.get("inputs_after") if isinstance(out, dict) else None, plain, {**doubles, **floats})
    score_checks(problems + changed[:1], len(doubles) + len(floats) + 1, credit, f"batch {batch}, dim {dim}, T {T}")


# --------------------------------------------------------------------------- schedules


@pytest.mark.judges("linear_betas", "cosine_betas", "make_schedule")
def test_schedules(worker, seed, credit):
    """linear_betas and cosine_betas against float64 references for T, beta_1, beta_T, s and
    max_beta drawn from the seed (entry 0 is 0, beta_T clipped at max_beta), T = 1 for the
    linear one, and make_schedule's alphas, alpha_bars and posterior variance (beta-tilde,
    0 at t = 1) on the judge's betas, the betas left unchanged; each function called again
    with the same T and other arguments (nothing cached by T). Credit per function."""
    g = torch.Generator().manual_seed(seed)
    T = int(torch.randint(20, 300, (1,), generator=g))
    linear = [float(10 ** (-4 + 2 * torch.rand(1, generator=g))), float(0.05 + 0.2 * torch.rand(1, generator=g))]
    cosine = [float(0.004 + 0.02 * torch.rand(1, generator=g)), float(0.9 + 0.09 * torch.rand(1, generator=g))]
    # A valid schedule (every beta in [0, 0.999]): beyond 1, alpha_t < 0 and an implementation
    # through log(alpha_t) (exp of a cumulative sum, a correct idiom) would be judged on nonsense.
    betas = (ref_cosine_betas(T, 0.008, 0.999) * (0.5 + torch.rand(T + 1, generator=g, dtype=F64))).clamp(max=0.999)
    betas[0] = 0.0
    # The same T again with other arguments, in the same worker: nothing may be cached by T or
    # by the length of betas alone.
    linear2 = [linear[0] * 0.5, linear[1] * 1.5]
    cosine2 = [cosine[0] * 2, cosine[1] - 0.05]
    betas2 = betas * 0.7
    out = worker.call("schedules", T, linear, cosine, betas)
    one = worker.call("schedules", 1, linear, cosine, betas)
    again = worker.call("schedules", T, linear2, cosine2, betas2)
    problems, total = [], 4
    checks = [[("linear_betas", out.get("linear"), ref_linear_betas(T, *linear)),
               ("linear_betas (a second call with the same T)", again.get("linear"), ref_linear_betas(T, *linear2))],
              [("linear_betas with T = 1", one.get("linear"), ref_linear_betas(1, *linear))],
              [("cosine_betas", out.get("cosine"), ref_cosine_betas(T, *cosine)),
               ("cosine_betas (a second call with the same T)", again.get("cosine"), ref_cosine_betas(T, *cosine2))]]
    for group in checks:
        try:
            for name, got, want in group:
                if isinstance(got, Raised):
                    fails(f"{name} raised {got}")
                expect_close(expect_tensor(got, name=name, shape=tuple(want.shape), dtype=F64), want, name=name,
                             rtol=1e-10, atol=1e-13)
        except AssertionError as error:
            problems.append(str(error))
    try:
        for reply, given, which in ((out, betas, ""), (again, betas2, " (a second call, betas of the same length)")):
            sch = reply.get("schedule")
            if isinstance(sch, Raised):
                fails(f"make_schedule raised {sch}")
            if not isinstance(sch, dict):
                fails(f"make_schedule should return a dict, got {describe_value(sch)}")
            want = ref_schedule(given)
            for key in ("alphas", "alpha_bars", "posterior_variance", "betas"):
                name = f"make_schedule(betas)[{key!r}]{which}"
                expect_close(expect_tensor(sch.get(key), name=name, shape=(T + 1,), dtype=F64), want[key], name=name,
                             rtol=1e-10, atol=1e-14)
            expect_same(reply.get("betas_after"), given, name="make_schedule's argument betas")
    except AssertionError as error:
        problems.append(str(error))
    score_checks(problems, total, credit, f"T = {T}")


# --------------------------------------------------------------------------- forward process


@pytest.mark.judges("q_sample")
def test_q_sample(worker, seed, credit):
    """q_sample against float64 for given noise (t = 1, T and between; float64 and float32,
    with a schedule so gentle that 1 - alpha_bar_t rounds to 0 in float32), and its drawn
    noise: 20,000 rows have standardised noise of mean 0, variance 1, Gaussian (each at
    alpha = 1e-7), fresh on a second call; inputs unchanged; the draws follow torch's global
    seed (the same torch.manual_seed, the same x_t; another seed, another x_t)."""
    g = torch.Generator().manual_seed(seed)
    problems = []
    T = 50
    sch = _schedule("cosine", T)
    x0 = torch.randn(6, 3, generator=g, dtype=F64) * 2
    t = torch.tensor([1, T, *torch.randint(2, T, (4,), generator=g).tolist()])
    noise = torch.randn(6, 3, generator=g, dtype=F64)
    gentle = ref_schedule(ref_linear_betas(T, 1e-10, 1e-8))
    for name, abar, dtype, rtol in (("q_sample (float64)", sch["alpha_bars"], F64, 1e-10),
                                     ("q_sample (float32)", sch["alpha_bars"], torch.float32, 1e-5),
                                     ("q_sample (float32, alpha_bar_t within 1e-7 of 1)", gentle["alpha_bars"],
                                      torch.float32, 1e-6)):
        try:
            scale = 100.0 if abar is gentle["alpha_bars"] else 1.0
            got = worker.call("q_sample_given", x0.to(dtype), t, abar, (noise * scale).to(dtype))
            if isinstance(got, Raised):
                fails(f"q_sample raised {got}")
            want = ref_q_sample(x0.to(dtype), t, abar, (noise * scale).to(dtype))
            expect_close(expect_tensor(got, name=name, shape=(6, 3), dtype=dtype), want, name=name,
                         rtol=rtol, atol=rtol * 1e-3)
        except AssertionError as error:
            problems.append(str(error))
    # Drawn noise.
    n = 20_000
    x0d = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64).repeat(n, 1)
    td = torch.randint(1, T + 1, (n,), generator=g)
    calls = worker.call("q_sample_draws", x0d, td, sch["alpha_bars"], 2)
    try:
        if not isinstance(calls, list) or len(calls) != 2:
            fails(f"q_sample should return a tensor, got {describe_value(calls)}")
        a = sch["alpha_bars"][td].unsqueeze(-1)
        eps = [(expect_finite(expect_tensor(c, name="q_sample (noise=None)", shape=(n, 3), dtype=F64),
                              name="q_sample") - a.sqrt() * x0d) / (1 - a).sqrt() for c in calls]
        e = eps[0].reshape(-1)
        m = len(e)
        if abs(float(e.mean())) * math.sqrt(m) > Z_CRIT:
            fails("q_sample: with noise=None, the noise in x_t does not have mean 0 (x_t = sqrt(abar) x0 + sqrt(1 - abar) noise)")
        chi2 = float((e ** 2).sum())
        if not stats.chi2.ppf(ALPHA / 2, m) <= chi2 <= stats.chi2.isf(ALPHA / 2, m):
            fails(f"q_sample: with noise=None, x_t's variance around sqrt(abar) x0 is {chi2 / m:.3g} times "
                  "1 - abar (draw noise ~ N(0, I))")
        if stats.kstest(e.numpy(), "norm").pvalue < ALPHA:
            fails("q_sample: with noise=None, the noise is not Gaussian (torch.randn_like)")
        r = float(torch.corrcoef(torch.stack([e, eps[1].reshape(-1)]))[0, 1])
        if abs(r) * math.sqrt(m) > Z_CRIT:
            fails("q_sample: a second call repeats the first call's noise: draw fresh noise on every call")
    except AssertionError as error:
        problems.append(str(error))
    problems += _global_seed_problems(worker, "q_sample", seed, {"x0": x0d[:50], "t": td[:50], "alpha_bars": sch["alpha_bars"]},
                                      "q_sample (noise=None)")
    score_checks(problems, 5, credit)


def _global_seed_problems(worker, function: str, seed: int, inputs: dict, what: str) -> list[str]:
    """generator=None means torch's global generator: the same torch.manual_seed gives the same
    result, another seed another one (a private or fixed generator fails one of the two)."""
    runs = worker.call("seeded_calls", function, 1000 + seed, inputs)
    if not isinstance(runs, list) or len(runs) != 3:
        return [f"{what}: expected three results, got {describe_value(runs)}"]
    for run in runs:
        if isinstance(run, Raised):
            return [f"{what} raised {run}"]

    def same(a, b) -> bool:
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            return a.shape == b.shape and a.dtype == b.dtype and bool(torch.equal(a, b))
        return isinstance(a, list) and isinstance(b, list) and a == b

    if not same(runs[0], runs[1]):
        return [f"{what}: two calls after the same torch.manual_seed differ: draw from torch's global generator "
                "(torch.randn_like, torch.randint, ...), not a generator of your own"]
    if same(runs[0], runs[2]):
        return [f"{what}: the result does not change with torch.manual_seed: draw from torch's global generator"]
    return []


# --------------------------------------------------------------------------- network


@pytest.mark.judges("time_embedding", "EpsModel")
def test_time_embedding(worker, seed, credit):
    """time_embedding against float64 for t from 1 to 1000 and two sizes (sin half, then cos
    half), float32 out; the student's EpsModel gives different outputs at different t for
    the same x (it uses the step), and the same outputs in train() and eval() mode at the
    digits' size. The parts of EpsModel the handout names, which learned quality hardly shows
    (a linear network still covers the ring's modes): each row read with its own step, and
    a hidden activation (the output is not an affine function of x_t)."""
    g = torch.Generator().manual_seed(seed)
    problems = []
    t = torch.cat([torch.tensor([1, 1000]), torch.randint(1, 1000, (5,), generator=g)])
    for dim in (2 * int(torch.randint(3, 9, (1,), generator=g)), 32):
        name = f"time_embedding(t, {dim})"
        try:
            got = worker.call("embedding", t, dim)
            expect_close(expect_tensor(got, name=name, shape=(7, dim), dtype=torch.float32), ref_time_embedding(t, dim),
                         name=name, rtol=0, atol=5e-4)
        except AssertionError as error:
            problems.append(str(error))
    x = torch.randn(4, 3, generator=g)
    outs = worker.call("model_outputs", 3, x, [1, 2, 50, 100])
    try:
        if not isinstance(outs, list) or len(outs) != 4:
            fails(f"EpsModel should return a tensor, got {describe_value(outs)}")
        outs = [expect_finite(expect_tensor(o, name="EpsModel(dim=3)", shape=(4, 3)), name="EpsModel") for o in outs]
        for a, b in zip(outs, outs[1:]):
            if float((a - b).abs().max()) < 1e-7:
                fails("EpsModel gives the same output at different t: feed time_embedding(t) to the network")
    except AssertionError as error:
        problems.append(str(error))
    problems += _model_structure_problems(worker, g)
    # The handout: EpsModel's forward does not depend on train() / eval() mode (no dropout, no
    # batch statistics), at the digits' size: a batch of 32 rows of 64 in float32.
    xm = torch.randn(32, 64, generator=g)
    tm = torch.randint(1, 101, (32,), generator=g)
    modes = worker.call("model_modes", 64, xm, tm)
    try:
        if not isinstance(modes, dict):
            fails(f"EpsModel: expected outputs, got {describe_value(modes)}")
        outs = {}
        for key in ("train", "train_again", "eval"):
            if isinstance(modes.get(key), Raised):
                fails(f"EpsModel(dim=64) raised {modes[key]}")
            outs[key] = expect_tensor(modes.get(key), name="EpsModel(dim=64)", shape=(32, 64), dtype=torch.float32)
        if not (torch.allclose(outs["train"], outs["train_again"], rtol=1e-5, atol=1e-6)
                and torch.allclose(outs["train"], outs["eval"], rtol=1e-5, atol=1e-6)):
            fails("EpsModel: forward gives different outputs in train() and eval() mode (or twice in train mode): "
                  "it must not depend on the mode (no dropout, no batch norm)")
    except AssertionError as error:
        problems.append(str(error))
    score_checks(problems, 6, credit)


def _model_structure_problems(worker, g) -> list[str]:
    """Two checks on EpsModel(dim=3) at its initial weights, on x ~ N(0, 2^2) (wide enough to
    cross the activations' kinks): (1) on a batch whose rows have different steps, each row
    equals that row in a batch where every row has its step (training draws one t per row);
    (2) the output depends on x_t, and at the midpoint of two inputs (same t) it differs from the
    average of the outputs by more than float32 error (a network without hidden activation is
    affine in x)."""
    B = 12
    x, x2 = 2 * torch.randn(B, 3, generator=g), 2 * torch.randn(B, 3, generator=g)
    t = torch.tensor([1, 100, 7, 40])[torch.arange(B) % 4]
    out = worker.call("model_rows", 3, x, x2, t)
    problems = []
    try:
        if not isinstance(out, dict):
            fails(f"EpsModel(dim=3): expected outputs, got {describe_value(out)}")
        mixed = expect_finite(expect_tensor(out.get("mixed"), name="EpsModel(dim=3)", shape=(B, 3)), name="EpsModel")
        each = out.get("each")
        if not (isinstance(each, list) and len(each) == len(t.unique())):
            fails(f"EpsModel(dim=3): expected outputs, got {describe_value(each)}")
        for s, o in zip(t.unique().tolist(), each):
            rows = t == s
            o = expect_tensor(o, name="EpsModel(dim=3)", shape=(B, 3))
            if not torch.allclose(mixed[rows], o[rows], rtol=1e-5, atol=1e-6):
                fails("EpsModel: on a batch whose rows have different steps t, a row's output differs from its "
                      "output when every row has its step: embed each row's own t")
    except AssertionError as error:
        problems.append(str(error))
    try:
        if not isinstance(out, dict):
            fails(f"EpsModel(dim=3): expected outputs, got {describe_value(out)}")
        ends = [expect_finite(expect_tensor(out.get(k), name="EpsModel(dim=3)", shape=(B, 3)), name="EpsModel").double()
                for k in ("mixed", "other", "middle")]
        curvature = float((ends[2] - (ends[0] + ends[1]) / 2).abs().max())
        spread = float((ends[0] - ends[1]).abs().max())
        if not spread > 1e-6:
            fails("EpsModel gives the same output for different x_t: feed x_t to the network")
        if not curvature > 1e-3 * spread:
            fails("EpsModel is an affine function of x_t: put an activation (ReLU or SiLU) after each hidden layer")
    except AssertionError as error:
        problems.append(str(error))
    return problems


# --------------------------------------------------------------------------- loss


LOSS_T = 12
LOSS_CALLS = 300
LOSS_BATCH = 40


@pytest.mark.judges("diffusion_loss")   # on the grader's q_sample (probes.UNDER_LOSS)
def test_loss(worker, seed, credit):
    """diffusion_loss against float64 for given t and noise on the grader's network (rows
    and dimensions of distinct sizes), and with t and noise drawn by the student: 12,000 t's
    uniform on 1..T (chi-square), the noise in each x_t standard normal, and every returned
    loss equal to the judge's recomputation from what the network was shown (the target is
    the noise that made x_t); the draws follow torch's global seed."""
    g = torch.Generator().manual_seed(seed)
    problems = []
    T = LOSS_T
    sch = _schedule("linear", T)
    w = small_weights(seed, 3, T)
    x0 = torch.randn(7, 3, generator=g, dtype=F64)
    t = torch.randint(1, T + 1, (7,), generator=g)
    t[0], t[1] = 1, T
    noise = torch.randn(7, 3, generator=g, dtype=F64)
    try:
        got = worker.call("loss_given", w, x0, sch["alpha_bars"], t, noise)
        if isinstance(got, Raised):
            fails(f"diffusion_loss raised {got}")
        want = small_eps_loss(w, ref_q_sample(x0, t, sch["alpha_bars"], noise), t, noise)
        expect_close(expect_tensor(got, name="diffusion_loss", shape=(), dtype=F64), want,
                     name="diffusion_loss (mean over rows and dimensions of (noise - model(x_t, t))^2)",
                     rtol=1e-9, atol=1e-12)
    except AssertionError as error:
        problems.append(str(error))

    x0 = torch.randn(LOSS_BATCH, 3, generator=g, dtype=F64)
    out = worker.call("loss_draws", w, x0, sch["alpha_bars"], LOSS_CALLS)
    draws_problems = []
    try:
        if not isinstance(out, dict) or not isinstance(out.get("calls"), list) or not isinstance(out.get("losses"), list):
            fails(f"diffusion_loss: expected what the grader recorded, got {describe_value(out)}")
        calls, losses = out["calls"], out["losses"]
        if len(calls) != LOSS_CALLS or len(losses) != LOSS_CALLS:
            fails(f"diffusion_loss should call the model once per call ({len(calls)} calls for {LOSS_CALLS})")
        ts, eps_all, mismatched = [], [], 0
        for call, loss in zip(calls, losses):
            tt, xt = call.get("t"), call.get("x")
            if not isinstance(tt, torch.Tensor) or tt.shape != (LOSS_BATCH,) or tt.dtype != torch.long:
                fails("diffusion_loss should call model(x_t, t) with t an int64 tensor of one step per row")
            if int(tt.min()) < 1 or int(tt.max()) > T:
                fails(f"diffusion_loss draws t outside 1..T (saw {int(tt.min())} .. {int(tt.max())} for T = {T})")
            xt = expect_tensor(xt, name="x_t in diffusion_loss", shape=(LOSS_BATCH, 3), dtype=F64)
            a = sch["alpha_bars"][tt].unsqueeze(-1)
            eps = (xt - a.sqrt() * x0) / (1 - a).sqrt()
            ts.append(tt)
            eps_all.append(eps)
            if isinstance(loss, Raised):
                fails(f"diffusion_loss raised {loss}")
            loss = expect_tensor(loss, name="diffusion_loss", shape=())
            if abs(float(loss) - float(small_eps_loss(w, xt, tt, eps))) > 1e-9 * (1 + abs(float(loss))):
                mismatched += 1
        counts = torch.bincount(torch.cat(ts), minlength=T + 1)[1:].double()
        expected = LOSS_CALLS * LOSS_BATCH / T
        if stats.chi2.sf(float(((counts - expected) ** 2 / expected).sum()), T - 1) < ALPHA:
            draws_problems.append("diffusion_loss: t is not drawn uniformly from 1..T")
        e = torch.cat(eps_all).reshape(-1)
        m = e.numel()
        chi2 = float((e ** 2).sum())
        if (abs(float(e.mean())) * math.sqrt(m) > Z_CRIT or not stats.chi2.ppf(ALPHA / 2, m) <= chi2 <= stats.chi2.isf(ALPHA / 2, m)
                or stats.kstest(e.numpy(), "norm").pvalue < ALPHA):
            draws_problems.append("diffusion_loss: x_t is not sqrt(abar_t) x0 + sqrt(1 - abar_t) noise with noise ~ N(0, I)")
        if mismatched:
            draws_problems.append(f"diffusion_loss: {mismatched} of {LOSS_CALLS} losses are not the mean of "
                                  "(noise - model(x_t, t))^2 for the noise that made x_t")
    except AssertionError as error:
        draws_problems = [str(error)] * 3      # nothing to judge the draws on: all three checks lost
    draws_problems += _global_seed_problems(worker, "diffusion_loss", seed,
                                            {"weights": w, "x0": x0, "alpha_bars": sch["alpha_bars"]},
                                            "diffusion_loss (t and noise drawn)")
    score_checks(problems + draws_problems, 1 + 3 + 1, credit)


# --------------------------------------------------------------------------- reverse step


def _reverse_cases(g):
    """(schedule name, schedule, t, variance): t = 1 (no noise), 2, T and between, both
    variances, linear and cosine schedules, and a float32 case where 1 - alpha_bar_t < 1e-7."""
    lin, cos = _schedule("linear", 50), _schedule("cosine", 40)
    cases = []
    for name, sch, T in (("linear", lin, 50), ("cosine", cos, 40)):
        mid = int(torch.randint(3, T, (1,), generator=g))
        for t in (1, 2, mid, T):
            for variance in ("posterior", "beta"):
                cases.append((name, sch, t, variance, F64))
    gentle = ref_schedule(ref_linear_betas(10, 1e-10, 1e-8))
    cases.append(("gentle (1 - alpha_bar_t < 1e-7), float32", gentle, 5, "posterior", torch.float32))
    # Another linear schedule with the same T = 50 in the same worker: nothing cached by T.
    other = ref_schedule(ref_linear_betas(50, 3e-3, 0.05))
    cases.append(("another linear (the same T)", other, int(torch.randint(3, 50, (1,), generator=g)), "posterior", F64))
    # Realistic extremes at the digits' size (64-d, float32): DDPM's linear schedule for T = 1000
    # (beta 1e-4 .. 0.02: 1 - alpha_bar_1 = 1e-4, beta-tilde_2 = 5.5e-5, alpha_bar_T = 4.0e-5) and the
    # cosine one (alpha_bar_T = 2.4e-9, beta_T = 0.999), at t = 2 and t = T. The schedules trained
    # here reach alpha_bar_T = 2.0e-5 (linear_betas(100)); these go a factor 10^4 below it.
    ddpm, cosine = ref_schedule(ref_linear_betas(1000, 1e-4, 0.02)), _schedule("cosine", 1000)
    for name, sch in (("DDPM linear T = 1000, 64-d float32", ddpm), ("cosine T = 1000, 64-d float32", cosine)):
        for t in (2, 1000):
            cases.append((name, sch, t, "posterior", torch.float32))
    return cases


@pytest.mark.judges("reverse_step")
def test_reverse_step(worker, seed, credit):
    """reverse_step against float64: the posterior mean written through eps, the variance
    beta-tilde_t ("posterior") or beta_t ("beta"), no noise at t = 1, at t = 1, 2, T and
    between, on a linear and a cosine schedule, in float32 where alpha_bar_t is within 1e-7
    of 1, on a second linear schedule with the same T, and at 64-d float32 at t = 2 and T of
    DDPM's and the cosine schedule for T = 1000; inputs unchanged. Credit: the fraction of
    cases right."""
    g = torch.Generator().manual_seed(seed)
    cases = _reverse_cases(g)
    problems = []
    for name, sch, t, variance, dtype in cases:
        shape = (16, 64) if "64-d" in name else (5, 3)
        x = torch.randn(*shape, generator=g, dtype=F64).to(dtype)
        eps = torch.randn(*shape, generator=g, dtype=F64).to(dtype)
        z = torch.randn(*shape, generator=g, dtype=F64).to(dtype)
        label = f"reverse_step (t = {t}, variance={variance!r}, {name} schedule)"
        try:
            out = worker.call("reverse", x, t, eps, sch, z, variance)
            got = out.get("x") if isinstance(out, dict) else out
            if isinstance(got, Raised):
                fails(f"{label} raised {got}")
            got = expect_tensor(got, name=label, shape=shape, dtype=dtype)
            expect_finite(got, name=label)
            tol = 1e-10 if dtype == F64 else 1e-5
            want = ref_reverse_step(x, t, eps, sch, z, variance)
            # float32 rounding of x_t and eps alone is amplified by 1 / sqrt(alpha_t) (31.6 at beta_T = 0.999)
            expect_close(got, want, name=label, rtol=tol, atol=tol * max(1.0, float(1 / sch["alphas"][t].sqrt())))
            for arg, original in zip(("x_t", "eps_hat", "z"), (x, eps, z)):
                expect_same(out["after"][["x_t", "eps_hat", "z"].index(arg)], original, name=f"reverse_step's {arg}")
        except AssertionError as error:
            problems.append(str(error))
    score_checks(problems, len(cases), credit)


# --------------------------------------------------------------------------- samplers on the exact model


SAMPLER_N = 3000
SAMPLER_KEEP = 400


def _trajectory_problems(calls, samples, sch, mix, variance: str) -> list[str]:
    """The recorded x_T, ..., x_1 (first rows) and the samples: x_T ~ N(0, I); the model
    called at t = T, ..., 1 in order; each x_{t-1} - mean_t(x_t, eps*) has variance
    sigma_t^2 (chi-square per step, Bonferroni over the steps) and mean 0; x_0 = mean_1."""
    T = sch["betas"].shape[0] - 1
    if not isinstance(calls, list) or len(calls) != T:
        n = len(calls) if isinstance(calls, list) else 0
        return [f"sample should call the model once per step, T = {T} times (called it {n} times)"]
    xs, problems = [], []
    for i, call in enumerate(calls):
        t = call.get("t") if isinstance(call, dict) else None
        if not isinstance(t, torch.Tensor) or t.dtype != torch.long or t.dim() != 1 or not bool((t == T - i).all()):
            return [f"sample should call model(x_t, t) with t = T, T-1, ..., 1 (an int64 tensor (n,)); "
                    f"call {i + 1} was not at t = {T - i}"]
        xs.append(expect_tensor(call.get("x"), name="x_t in sample", shape=(SAMPLER_KEEP, 2), dtype=F64))
    xs.append(samples[:SAMPLER_KEEP])
    if stats.kstest(xs[0].reshape(-1).numpy(), "norm").pvalue < ALPHA:
        problems.append("sample: x_T is not drawn from N(0, I)")
    worst, offset = 0.0, 0.0
    for i in range(T - 1):
        t = T - i
        mean = ref_reverse_mean(xs[i], t, mixture_eps(mix, xs[i], sch["alpha_bars"][t]), sch)
        resid = (xs[i + 1] - mean).reshape(-1)
        sigma = ref_sigma(t, sch, variance)
        m = resid.numel()
        chi2 = float((resid ** 2).sum()) / sigma ** 2
        p = min(stats.chi2.cdf(chi2, m), stats.chi2.sf(chi2, m)) * 2
        if p < ALPHA / T:
            worst = max(worst, abs(math.log(chi2 / m)))
        offset = max(offset, abs(float(resid.mean())) / sigma * math.sqrt(m))
    if worst:
        problems.append(f"sample: the noise added at some steps has the wrong variance (off by a factor up to "
                        f"{math.exp(worst):.3g}); variance={variance!r} asks for "
                        + ("beta-tilde_t" if variance == "posterior" else "beta_t"))
    if offset > float(stats.norm.isf(ALPHA / T / 2)):
        problems.append("sample: x_{t-1} is not centred on the reverse step's mean (reverse_step with eps = model(x_t, t))")
    last = ref_reverse_mean(xs[T - 1], 1, mixture_eps(mix, xs[T - 1], sch["alpha_bars"][1]), sch)
    if float((xs[T] - last).abs().max()) > 1e-8 * (1 + float(last.abs().max())):
        problems.append("sample: the last step (t = 1) must return the mean, with no noise added")
    return problems


def _two_sample_z(a: torch.Tensor, b: torch.Tensor) -> float:
    return abs(float(a.mean() - b.mean())) / math.sqrt(float(a.var()) / len(a) + float(b.var()) / len(b) + 1e-300)


def _distribution_problems(samples, mix, sch, variance: str, g, what: str) -> list[str]:
    """The samples against the judge's own float64 sampler with the same exact model, schedule
    and variance (ref_sample; two-sample tests, each at alpha = 1e-7): each coordinate's mean
    and the second moments, each component's share (chi-square), the share within 3 std of a
    mean, and the mean log-density."""
    own = ref_sample(mix, sch, samples.shape[0], variance, g)
    mean = own.mean(0)
    for j in range(2):
        if _two_sample_z(samples[:, j], own[:, j]) > Z_CRIT:
            return [f"{what}: the samples' mean is off (coordinate {j})"]
    for i, j in ((0, 0), (1, 1), (0, 1)):
        if _two_sample_z((samples[:, i] - mean[i]) * (samples[:, j] - mean[j]), (own[:, i] - mean[i]) * (own[:, j] - mean[j])) > Z_CRIT:
            return [f"{what}: the samples' spread (covariance) is off"]
    comp, near = nearest_component(mix, samples)
    comp_own, near_own = nearest_component(mix, own)
    k = len(mix["weights"])
    table = torch.stack([torch.bincount(comp, minlength=k), torch.bincount(comp_own, minlength=k)]).double()
    table = table[:, table.sum(0) > 0]
    if table.shape[1] > 1 and stats.chi2_contingency(table.numpy(), correction=False)[1] < ALPHA:
        return [f"{what}: the mixture's components do not get their share of the samples"]
    if _two_sample_z(near.double(), near_own.double()) > Z_CRIT:
        return [f"{what}: {float(near.double().mean()):.1%} of the samples lie within 3 std of a component's mean"]
    if _two_sample_z(mixture_log_prob(mix, samples), mixture_log_prob(mix, own)) > Z_CRIT:
        return [f"{what}: the mean log-density of the samples is not that of a correct sampler"]
    return []


def _density_figure(plt, mix, panels, title_prefix: str, extent: float = 3.5):
    """Scatter plots of point sets over the contours of the mixture's density."""
    axis = torch.linspace(-extent, extent, 120, dtype=F64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
    density = mixture_log_prob(mix, grid).exp().reshape(120, 120).numpy()
    fig, axes = plt.subplots(1, len(panels), figsize=(2.1 * len(panels), 2.3))
    for ax, (title, points) in zip(np.atleast_1d(axes), panels):
        ax.contour(axis.numpy(), axis.numpy(), density, levels=6, linewidths=0.5, colors="tab:blue")
        p = plottable(points)
        ax.scatter(p[:, 0], p[:, 1], s=1.5, c="black", alpha=0.5, linewidths=0)
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title_prefix, fontsize=9)
    fig.tight_layout()
    return fig


@pytest.mark.judges("sample")
@pytest.mark.upstream("test_reverse_step")
def test_sampler_exact(worker, seed, credit, artifacts):
    """The student's sample driven by the exact noise predictor eps* of a Gaussian mixture
    the judge draws from the seed (T = 100, both variances): every step of the trajectory
    against the reverse step recomputed in the judge (t = T..1 in order, the variance of
    each step's noise, no noise at t = 1), and the samples against the mixture (moments,
    components' shares, share near a mean, mean log-density); x_T and a step's z exactly
    N(0, I) on 10^6 draws (not shrunk, truncated or clamped), x_T fresh on a second call,
    and the draws following torch's global seed. Credit: the fraction of checks passed."""
    g = torch.Generator().manual_seed(seed)
    mix = random_mixture(g)
    sch = _schedule("linear", 100)
    problems, total, shown = [], 0, None
    for variance in ("posterior", "beta"):
        out = worker.call("exact_sampler", mix, sch, SAMPLER_N, variance, SAMPLER_KEEP)
        total += 2
        try:
            if not isinstance(out, dict):
                fails(f"sample: expected samples, got {describe_value(out)}")
            samples = out.get("samples")
            if isinstance(samples, Raised):
                fails(f"sample raised {samples}")
            name = f"sample(model, schedule, {SAMPLER_N}, 2, variance={variance!r})"
            samples = expect_finite(expect_tensor(samples, name=name, shape=(SAMPLER_N, 2), dtype=F64), name=name)
        except AssertionError as error:
            problems += [str(error)] * 2
            continue
        found = _trajectory_problems(out.get("calls"), samples, sch, mix, variance)
        problems += found[:1]
        dist = _distribution_problems(samples, mix, sch, variance, g, f"sample (variance={variance!r}, exact model)")
        problems += dist[:1]
        if variance == "posterior":
            calls = out.get("calls") if isinstance(out.get("calls"), list) else []
            xs = [c.get("x") for c in calls if isinstance(c, dict)]
            shown = (samples, xs)
    if shown is not None:
        samples, xs = shown
        plt = _plt()
        panels = [(f"t = {100 - i}", xs[i]) for i in (0, 50, 80, 95) if i < len(xs) and isinstance(xs[i], torch.Tensor)]
        panels.append(("t = 0 (samples)", samples[:SAMPLER_KEEP]))
        artifacts.figure("exact_reverse_trajectory.png",
                         _density_figure(plt, mix, panels, "your sample() with the exact noise predictor"))
    problems += _prior_problems(worker)
    problems += _global_seed_problems(worker, "sample", seed, {"mix": mix, "schedule": _schedule("linear", 10), "n": 20},
                                      "sample")
    score_checks(problems, total + 3, credit)


PRIOR_N = 500_000      # rows of x_T (2-D): 10^6 draws, about 63 expected beyond 4 standard deviations


def _normal_problems(e: torch.Tensor, what: str) -> str | None:
    """Standard normal draws, exactly: mean, variance (chi-square), KS, and the counts beyond
    3, 3.5 and 4 (a truncated or clamped N(0, 1) has none there), each at alpha = 1e-7."""
    m = e.numel()
    if abs(float(e.mean())) * math.sqrt(m) > Z_CRIT:
        return f"{what} does not have mean 0"
    chi2 = float((e ** 2).sum())
    if not stats.chi2.ppf(ALPHA / 2, m) <= chi2 <= stats.chi2.isf(ALPHA / 2, m):
        return f"{what} has variance {chi2 / m:.3g}, not 1"
    if stats.kstest(e.numpy(), "norm").pvalue < ALPHA:
        return f"{what} is not standard normal"
    for c in (3.0, 3.5, 4.0):
        count = int((e.abs() > c).sum())
        expected = m * 2 * float(stats.norm.sf(c))
        if stats.poisson.cdf(count, expected) < ALPHA / 2 or stats.poisson.sf(count - 1, expected) < ALPHA / 2:
            return f"{what} has {count} draws beyond {c:g} standard deviations where N(0, 1) has about {expected:.0f}"
    return None


def _prior_problems(worker) -> list[str]:
    """sample's prior and noise, exactly, on 10^6 draws (two calls of sample with a model that
    predicts eps = 0 and T = 2): x_T ~ N(0, I) itself (not shrunk, truncated or clamped), the
    step's z likewise, and a second call's x_T fresh (nothing cached between calls)."""
    sch = ref_schedule(torch.tensor([0.0, 0.1, 0.2], dtype=F64))
    out = worker.call("prior_draws", sch, PRIOR_N, 2)
    problems = []
    try:
        if not isinstance(out, dict):
            fails(f"sample: expected what the grader recorded, got {describe_value(out)}")
        runs = []
        for key in ("first", "second"):
            run = out.get(key) if isinstance(out.get(key), dict) else {}
            if isinstance(run.get("error"), Raised):
                fails(f"sample raised {run['error']}")
            calls = run.get("calls") if isinstance(run.get("calls"), list) else []
            if len(calls) != 2:
                fails(f"sample should call the model once per step, T = 2 times (called it {len(calls)} times)")
            runs.append([expect_tensor(c, name="x_t in sample", shape=(PRIOR_N, 2), dtype=F64) for c in calls])
        x_T, x_1 = runs[0]
        found = _normal_problems(x_T.reshape(-1), "sample: x_T")
        if found:
            fails(found + ": draw x_T ~ N(0, I) (torch.randn), the model's own prior")
        z = (x_1 - x_T / sch["alphas"][2].sqrt()) / sch["posterior_variance"][2].sqrt()
        found = _normal_problems(z.reshape(-1), "sample: the noise z of a reverse step")
        if found:
            problems.append(found + ": draw z ~ N(0, I) at every step")
        r = float(torch.corrcoef(torch.stack([x_T.reshape(-1), runs[1][0].reshape(-1)]))[0, 1])
        if abs(r) * math.sqrt(x_T.numel()) > Z_CRIT:
            problems.append("sample: a second call starts from the first call's x_T: draw x_T fresh on every call")
    except AssertionError as error:
        problems = [str(error)] * 2        # nothing to judge the second call's x_T on either
    return problems


@pytest.mark.judges("ddim_sample")
def test_ddim_exact(worker, seed, credit):
    """The student's ddim_sample from the judge's x_T, driven by the exact eps* of the
    seed's mixture, against the judge's own float64 DDIM: 1 step, 7 steps (T / 7 is not an
    integer), a number of steps drawn from the seed, and T steps, on a linear and a cosine
    schedule; x_T left unchanged. Then with the grader's small network: a second linear
    schedule with the same T, and 64-d float32 on DDPM's and the cosine schedule for T = 1000
    (alpha_bar_T down to 2.4e-9)."""
    g = torch.Generator().manual_seed(seed)
    mix = random_mixture(g)
    cases = []
    for kind, T in (("linear", 100), ("cosine", 60)):
        for steps in (1, 7, int(torch.randint(5, 21, (1,), generator=g)), T):
            cases.append((kind, T, steps))
    problems = []
    for kind, T, steps in cases:
        sch = _schedule(kind, T)
        x_T = torch.randn(50, 2, generator=g, dtype=F64)
        label = f"ddim_sample ({steps} steps, {kind} schedule, T = {T})"
        try:
            out = worker.call("exact_ddim", mix, sch, x_T, steps)
            got = out.get("x0") if isinstance(out, dict) else out
            if isinstance(got, Raised):
                fails(f"{label} raised {got}")
            got = expect_finite(expect_tensor(got, name=label, shape=(50, 2), dtype=F64), name=label)
            want = ref_ddim(lambda x, t: mixture_eps(mix, x, sch["alpha_bars"][t]), sch, x_T, steps)
            ts = out.get("ts")
            visited = [int(t[0]) if isinstance(t, torch.Tensor) and t.numel() else None for t in ts] \
                if isinstance(ts, list) else None
            if visited != ddim_taus(T, steps)[:-1]:
                fails(f"{label} should call the model at t = (i * T) // steps for i = steps, ..., 1")
            expect_close(got, want, name=label, rtol=1e-7, atol=1e-7)
            expect_same(out.get("after"), x_T, name="ddim_sample's argument x_T")
        except AssertionError as error:
            problems.append(str(error))
    # Another linear schedule with T = 100 in the same worker (nothing cached by T), and realistic
    # extremes at the digits' size (64-d, float32, the grader's small network): DDPM's linear
    # schedule for T = 1000 (alpha_bar_T = 4.0e-5) and the cosine one (alpha_bar_T = 2.4e-9), 1 and
    # 10 steps. Trained schedules here reach alpha_bar_T = 2.0e-5; the cosine goes 10^4 below it.
    extra = [("another linear schedule, T = 100", ref_schedule(ref_linear_betas(100, 5e-4, 0.05)), 7, 3, F64),
             ("DDPM linear T = 1000, 64-d float32", ref_schedule(ref_linear_betas(1000, 1e-4, 0.02)), 10, 64,
              torch.float32),
             ("cosine T = 1000, 64-d float32", _schedule("cosine", 1000), 1, 64, torch.float32)]
    for name, sch, steps, dim, dtype in extra:
        T = sch["betas"].shape[0] - 1
        w = small_weights(seed, dim, T)
        x_T = torch.randn(16, dim, generator=g, dtype=F64).to(dtype)
        label = f"ddim_sample ({steps} steps, {name})"
        try:
            got = worker.call("ddim_small", w, sch, x_T, steps)
            if isinstance(got, Raised):
                fails(f"{label} raised {got}")
            got = expect_finite(expect_tensor(got, name=label, shape=(16, dim), dtype=dtype), name=label)
            want = ref_ddim(lambda x, t: small_eps(w, x, torch.full((x.shape[0],), t, dtype=torch.long)), sch, x_T, steps)
            # float32: x0_hat divides by sqrt(alpha_bar_t) (up to 2e4 here); relative 1e-4 of the output
            tol = 1e-9 if dtype == F64 else 1e-4
            expect_close(got, want, name=label, rtol=tol, atol=tol * float(want.abs().max()))
        except AssertionError as error:
            problems.append(str(error))
    score_checks(problems, len(cases) + len(extra), credit)


# --------------------------------------------------------------------------- devices


PARITY_SHAPES = {"q_sample": (6, 2), "time_embedding": (6, 8), "diffusion_loss": (), "reverse_step": (6, 2),
                 "sample": (5, 2), "ddim_sample": (6, 2), "EpsModel": (6, 2)}


def _train_problems(losses, device: str) -> list[str]:
    if isinstance(losses, Raised):
        return [f"train raised {losses} on a model and data on the {device} device"]
    if not isinstance(losses, (list, tuple)) or len(losses) != 2:
        return [f"train on the {device} device should return its 2 losses, got {describe_value(losses)}"]
    return []


def test_device_parity(worker, seed, credit):
    """Same results on every device and dtype: on an accelerator the deterministic outputs
    match the CPU's; without one, every function must keep PyTorch's `meta` device and
    float64 inputs give float64 outputs (time_embedding: float32); two training steps run on
    each device. Credit: the fraction of (function, device or dtype) checks passed."""
    g = torch.Generator().manual_seed(seed)
    T = 10
    sch = _schedule("linear", T)
    w = small_weights(seed, 2, T)
    mix = random_mixture(g)
    inputs = {"x0": torch.randn(6, 2, generator=g, dtype=F64), "x_t": torch.randn(6, 2, generator=g, dtype=F64),
              "noise": torch.randn(6, 2, generator=g, dtype=F64), "eps": torch.randn(6, 2, generator=g, dtype=F64),
              "z": torch.randn(6, 2, generator=g, dtype=F64), "t": torch.randint(1, T + 1, (6,), generator=g)}
    f64 = {k: v for k, v in PARITY_SHAPES.items() if k != "time_embedding"}
    problems = output_problems(worker.call("parity", "cpu", "float64", w, mix, sch, inputs), f64,
                               on_device("cpu", F64, where=" on float64 inputs"))
    total = len(f64)
    cpu32 = worker.call("parity", "cpu", "float32", w, mix, sch, inputs)
    for device in parity_devices(worker):
        out = worker.call("parity", device, "float32", w, mix, sch, inputs)
        problems += output_problems(out, PARITY_SHAPES, on_device(device, torch.float32, where=f" on {device}"))
        problems += _train_problems(worker.call("train_on", device), device)
        total += len(PARITY_SHAPES) + 1
        if device == "meta":
            continue
        for name in ("q_sample", "time_embedding", "reverse_step", "ddim_sample", "EpsModel"):
            a, b = out.get(name) if isinstance(out, dict) else None, cpu32.get(name) if isinstance(cpu32, dict) else None
            if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape:
                if not torch.allclose(a.double(), b.double(), rtol=1e-3, atol=1e-4):
                    problems.append(f"{name} on {device} differs from the CPU's result")
            total += 1
    problems += _train_problems(worker.call("train_on", "cpu"), "cpu")
    total += 1
    score_checks(problems, total, credit)


# --------------------------------------------------------------------------- training


MECHANICS = {"rows": 13, "batch": 6, "dim": 3, "hidden": 5, "steps": 30, "T": 7}   # every size distinct


def _mechanics_schedule(T: int) -> torch.Tensor:
    """alpha_bars with 1 - alpha_bar_t = 0.01 .. 0.017: x_t is within 0.8 of sqrt(abar) x0, and
    x0 (a lattice of spacing 10) is read back from x_t exactly."""
    abar = 1 - (0.01 + 0.001 * torch.arange(T + 1, dtype=F64))
    abar[0] = 1.0
    return abar


def _recover(call, abar, data):
    """(data row indices, noise) behind one recorded model call, or None."""
    x, t = call.get("x") if isinstance(call, dict) else None, call.get("t") if isinstance(call, dict) else None
    if not isinstance(x, torch.Tensor) or not isinstance(t, torch.Tensor) or x.dim() != 2 or t.shape != (x.shape[0],) \
            or x.shape[1] != data.shape[1] or t.dtype != torch.long or int(t.min()) < 1 or int(t.max()) >= len(abar):
        return None
    a = abar[t].unsqueeze(-1)
    x0 = torch.round(x.double() / a.sqrt() / 10) * 10
    match = (x0[:, None, :] == data[None]).all(-1)
    if not bool(match.any(1).all()):
        return None
    return match.double().argmax(1).tolist(), (x.double() - a.sqrt() * x0) / (1 - a).sqrt()


def adam_first_step(w, x, t, noise, lr: float):
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in w.items()}
    small_eps_loss(leaves, x, t, noise).backward()
    return {k: (-lr * v.grad / (v.grad.abs() + 1e-8), v.grad) for k, v in leaves.items()}


@pytest.mark.judges("train")   # on the grader's diffusion_loss and q_sample (probes.UNDER_TRAIN)
def test_train_mechanics(worker, seed, credit):
    """The student's train on the grader's network and lattice data drawn from the seed,
    watched step by step: exactly `steps` Adam steps of learning rate `lr`, each on one batch
    of `batch_size` rows of the data with t in 1..T, the batches reaching every row, and the
    returned losses (Python floats) equal to the judge's recomputation of each step's loss
    before its update (the data row and the noise are read back from each x_t); every step
    replayed by the judge's own Adam (one optimiser, fresh gradients), batches that are not
    runs of consecutive rows, and the draws following torch's global seed."""
    g = torch.Generator().manual_seed(seed)
    n, size, steps, T = MECHANICS["rows"], MECHANICS["batch"], MECHANICS["steps"], MECHANICS["T"]
    w = small_weights(seed, MECHANICS["dim"], T, MECHANICS["hidden"])
    data = torch.randperm(40, generator=g)[: n * MECHANICS["dim"]].reshape(n, -1).double() * 10 - 200
    abar = _mechanics_schedule(T)
    lr = float(10 ** (-2.4 + 0.8 * torch.rand(1, generator=g)))
    out = worker.call("train_mechanics", w, data, abar, steps, size, lr)
    groups = recorded_groups(out, "train", calls="calls", hint="diffusion_loss(model, batch, alpha_bars)")
    problems, losses = [], out["losses"]
    floats = isinstance(losses, list) and len(losses) == steps and all(isinstance(v, float) for v in losses)
    if not floats:
        got = describe_value(losses) + (f" of length {len(losses)}" if isinstance(losses, (list, tuple)) else "")
        problems.append(f"train should return a list of its {steps} losses as Python floats (loss.item()), got {got}")
    final = out.get("final")
    moved = not isinstance(final, dict) or any(not torch.equal(final[k], groups[-1]["weights"][k]) for k in w)
    updates = int(out.get("steps_seen", 0)) - 1 + moved
    if updates != steps:
        problems.append(f"train should take exactly steps = {steps} optimiser steps, took {updates}")
    recovered = [_recover(grp["calls"][0], abar, data) for grp in groups[:steps]]
    if any(r is None or len(r[0]) != size for r in recovered) or any(len(grp["calls"]) != 1 for grp in groups[:steps]):
        problems.append(f"train: every step should compute the loss once, on batch_size = {size} rows of the data "
                        "with t in 1..T")
    else:
        if len({i for rows, _ in recovered for i in rows}) < n:
            problems.append(f"train: in {steps} steps the minibatches never reached some rows of the data: "
                            "draw them uniformly from all the rows")
        if floats:
            bad = 0
            for loss, grp, (_, noise) in zip(losses, groups, recovered):
                call = grp["calls"][0]
                bad += abs(float(small_eps_loss(grp["weights"], call["x"], call["t"], noise)) - loss) > 1e-6 * (1 + abs(loss))
            if bad:
                problems.append("train: the losses returned are not diffusion_loss of each step's minibatch "
                                "(before the step)")
        if len(groups) >= 2:
            call = groups[0]["calls"][0]
            step = adam_first_step(groups[0]["weights"], call["x"], call["t"], recovered[0][1], lr)
            delta = {k: groups[1]["weights"][k] - groups[0]["weights"][k] for k in w}
            if not all(bool(((delta[k] - d).abs() <= 0.02 * lr)[grad.abs() > 1e-3].all()) for k, (d, grad) in step.items()):
                problems.append("train: the first step is not an Adam step with learning rate lr")
            elif len(groups) == steps and isinstance(final, dict):
                problems += _adam_replay_problems(groups, recovered, final, w, lr)
        # Minibatches of consecutive rows (a window at a random start, or epochs without a
        # shuffle, wrapping around) reach every row, but a uniform draw gives such a batch with
        # probability 13 / 13^6, and half of 30 such batches never.
        windows = sum(rows == [(rows[0] + k) % n for k in range(size)] for rows, _ in recovered)
        if windows > steps // 2:
            problems.append("train: the minibatches are runs of consecutive rows: draw each batch's rows at random "
                            "(torch.randint or torch.randperm)")
    problems += _global_seed_problems(
        worker, "train", seed, {"weights": w, "data": data, "alpha_bars": abar, "steps": 3, "batch_size": size, "lr": lr},
        "train (its minibatches, t and noise)")
    score_checks(problems, 6, credit)


def _adam_replay_problems(groups, recovered, final, w, lr: float) -> list[str]:
    """The judge's own Adam (torch.optim.Adam, lr, default betas and eps) from the first
    weights, fed each step's recorded (x_t, t) and recovered noise: after every step the
    student's weights must be the replay's (one fresh gradient per step, one optimiser that
    keeps its moments). Tolerance 1e-3 lr per step taken: float64 round-off is ~1e-12 lr."""
    leaves = {k: groups[0]["weights"][k].detach().clone().double().requires_grad_(True) for k in w}
    optimiser = torch.optim.Adam(list(leaves.values()), lr=lr)
    for i, (grp, (_, noise)) in enumerate(zip(groups, recovered)):
        call = grp["calls"][0]
        optimiser.zero_grad()
        small_eps_loss(leaves, call["x"], call["t"], noise).backward()
        optimiser.step()
        after = groups[i + 1]["weights"] if i + 1 < len(groups) else final
        if any(float((after[k].double() - leaves[k].detach()).abs().max()) > 1e-3 * lr * (i + 1) for k in w):
            return [f"train: step {i + 1} is not the Adam step it should be (one optimiser for all the steps, "
                    "zero_grad before each backward, learning rate lr)"]
    return []


def _loss_figure(plt, losses, steps: int, title: str):
    curve = plottable(losses).reshape(-1)
    finite = curve[np.isfinite(curve)]
    if finite.size < 2 or curve.size != steps:
        return None
    fig, ax = plt.subplots(figsize=(4.5, 2.6))
    ax.plot(np.arange(1, steps + 1), curve, lw=0.5)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_ylim(0, float(np.percentile(finite, 99)) * 1.05 + 1e-6)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


TOY_BASE_RADIUS = 2.0     # the public ring of 8 the hidden variant moves (kitdata.variants.mixture)


def _toy_variant(secret_rng, std: float) -> dict:
    """This grading's hidden 2-D mixture: the ring of 8 (radius 2, std `std`) rotated, scaled,
    shifted and reweighted by kitdata.variants.mixture, as the float64 dict ref_diffusion uses."""
    import kitdata.toy2d
    import kitdata.variants

    angles = 2 * math.pi * np.arange(8) / 8
    base = kitdata.toy2d.GaussianMixture2D(TOY_BASE_RADIUS * np.stack([np.cos(angles), np.sin(angles)], 1), std)
    v = kitdata.variants.mixture(base, secret_rng)
    stds = np.broadcast_to(np.asarray(v.std, dtype=np.float64), (v.n_modes,))
    return {"means": torch.from_numpy(v.means.copy()), "stds": torch.from_numpy(stds.copy()),
            "weights": torch.from_numpy(np.asarray(v.weights, dtype=np.float64).copy())}


def _judge_noise(secret_rng, n: int, dim: int, T: int):
    """x_T (n, dim) and the per-step noise (T - 1, n, dim) the judge's generation uses, float32."""
    g = torch.Generator().manual_seed(int(secret_rng.integers(2 ** 62)))
    return torch.randn(n, dim, generator=g), torch.randn(T - 1, n, dim, generator=g)


def _generated(out, key: str, n: int, dim: int, what: str):
    """One of the probe's generations as a float64 tensor (n, dim), or fails with one line."""
    value = out.get(key)
    if isinstance(value, Raised):
        fails(f"{what} raised {value}")
    return expect_finite(expect_tensor(value, name=what, shape=(n, dim), dtype=torch.float32), name=what).double()


def _toy_score(mix, samples, thresholds) -> tuple[float, float, int]:
    comp, near = nearest_component(mix, samples)
    hq = float(near.double().mean())
    modes = int(torch.unique(comp[near]).numel())
    fraction = min(tier(hq, thresholds["toy_hq_tiers"], higher_is_better=True),
                   tier(modes, thresholds["toy_modes_tiers"], higher_is_better=True))
    return fraction, hq, modes


def _shuffled_credit(out, key: str, n: int, dim: int, score) -> float:
    """The credit the shuffled copy's generation would earn (0 when it is not usable numbers)."""
    value = out.get(key)
    if not isinstance(value, torch.Tensor) or value.shape != (n, dim) or not bool(torch.isfinite(value).all()):
        return 0.0
    return score(value.double())


@pytest.mark.upstream("test_schedules", "test_time_embedding", "test_train_mechanics", "test_reverse_step",
                      "test_sampler_exact")   # the loss and q_sample under train: the grader's
def test_toy_quality(worker, seed, secret_rng, thresholds, credit, artifacts):
    """The student's EpsModel(dim=2) trained by the student's train, for a fixed number of
    steps, on samples of this grading's hidden mixture (the ring of 8 rotated, scaled, shifted
    and reweighted; drawn from the grading's secret), then generated from twice: through the
    student's trained network and reverse_step from the judge's x_T and noise, and by the
    student's sample. Scored on the worse of the two against the hidden mixture: the share of
    samples within 3 std of a mode and the modes covered, in tiers (grading.yml). The same
    generations through a copy of the network with its weights shuffled must earn nothing."""
    mix = _toy_variant(secret_rng, float(thresholds["toy_std"]))
    g = torch.Generator().manual_seed(int(secret_rng.integers(2 ** 62)))
    data = mixture_sample(mix, int(thresholds["toy_data"]), g).float()
    steps = int(thresholds["toy_steps"])
    n = int(thresholds["toy_samples"])
    x_T, zs = _judge_noise(secret_rng, n, 2, 100)
    out = worker.call("train_toy", seed, data, steps, int(thresholds["toy_batch_size"]), float(thresholds["toy_lr"]),
                      x_T, zs)
    if not isinstance(out, dict):
        fails(f"train, then sample on the 2-D mixture: expected samples, got {describe_value(out)}")
    guided = _generated(out, "guided", n, 2, "reverse_step with your trained EpsModel, from the grader's x_T")
    samples = _generated(out, "samples", n, 2, "sample with your trained EpsModel")
    plt = _plt()
    trajectory = out.get("trajectory") if isinstance(out.get("trajectory"), list) else []
    panels = [(f"t = {100 - 10 * i}", x) for i, x in enumerate(trajectory)
              if i in (0, 5, 8, 9) and isinstance(x, torch.Tensor) and x.dim() == 2 and x.shape[-1] == 2]
    panels.append(("t = 0 (samples)", samples[:1000]))
    artifacts.figure("toy_reverse_trajectory.png", _density_figure(plt, mix, panels, "your trained model: reverse trajectory over the true density", extent=4.5))
    fig = _loss_figure(plt, out.get("losses"), steps, "your training loss (2-D mixture)")
    if fig is not None:
        artifacts.figure("toy_loss.png", fig)
    scored = {name: _toy_score(mix, x, thresholds) for name, x in (("guided", guided), ("sample", samples))}
    lp = float(mixture_log_prob(mix, samples).clamp(min=-50).mean())
    artifacts.note("2-D mixture after {} steps: {}; mean log-density of sample's {:.2f} (exact samples: about {:.2f})".format(
        steps, ", ".join(f"{name}: {hq:.1%} of samples within 3 std of a mode, {modes} of 8 modes covered"
                         for name, (_, hq, modes) in scored.items()),
        lp, float(mixture_log_prob(mix, mixture_sample(mix, 4000, g)).mean())))
    shuffled = max(_shuffled_credit(out, key, n, 2, lambda x: _toy_score(mix, x, thresholds)[0])
                   for key in ("guided_shuffled", "samples_shuffled"))
    twin = out.get("guided_shuffled")
    if isinstance(twin, torch.Tensor) and twin.shape == (n, 2) and bool(torch.isfinite(twin).all()):
        _, hq_twin, modes_twin = _toy_score(mix, twin.double(), thresholds)
        artifacts.note(f"the same generation with your network's weights shuffled: {hq_twin:.1%} of samples within "
                       f"3 std of a mode, {modes_twin} of 8 modes covered")
    expect_learned(out.get("guided"), out.get("guided_shuffled"), shuffled, name="EpsModel on the 2-D mixture")
    name, (fraction, hq, modes) = min(scored.items(), key=lambda item: item[1][0])
    what = "your sample" if name == "sample" else "your trained EpsModel with reverse_step from the grader's noise"
    if 0 < fraction < 1:
        credit(fraction, f"2-D mixture, {what}: {hq:.0%} of samples near a mode, {modes} of 8 modes: training works "
                         "but less well than expected")
    if fraction > 0:
        return
    fails(f"2-D mixture, {what}: {hq:.0%} of samples near a mode, {modes} of 8 modes covered after {steps} steps: "
          "the model or sampler does not reproduce the data (check the loss target, the time embedding and sample)")


def _fid_score(pixels, thresholds) -> float:
    import kitdata.metrics

    return tier(kitdata.metrics.fid_lite(pixels), thresholds["digits_fid_tiers"], higher_is_better=False)


@pytest.mark.upstream("test_schedules", "test_time_embedding", "test_train_mechanics", "test_reverse_step",
                      "test_sampler_exact")   # the loss and q_sample under train: the grader's
def test_digits_quality(worker, seed, secret_rng, thresholds, credit, artifacts):
    """The student's EpsModel(dim=64) trained by the student's train, for a fixed number of
    steps, on the training digits scaled to [-1, 1] under this grading's hidden pixel
    permutation (a fully connected network learns them as well as the originals), then
    generated from through the trained network and reverse_step from the judge's x_T and
    noise, and by the student's sample. The judge undoes the permutation; FID-lite of
    (x + 1) / 2 (clipped to [0, 1] for the measurement only) against the held-out digits, the
    worse of the two, in tiers; near-copies of real digits score zero; a copy of the network
    with its weights shuffled must earn nothing. The feedback shows the forward process on
    one digit (your q_sample) and your samples."""
    import kitdata.digits
    import kitdata.metrics
    import kitdata.variants

    n = int(thresholds["digits_samples"])
    steps = int(thresholds["digits_steps"])
    perm = kitdata.variants.PixelPermutation(secret_rng)
    data = perm.apply(torch.from_numpy(kitdata.digits.load_digits("train")[0]) * 2 - 1).contiguous()
    x_T, zs = _judge_noise(secret_rng, n, 64, 100)
    out = worker.call("train_digits", seed, data, steps, int(thresholds["digits_batch_size"]),
                      float(thresholds["digits_lr"]), x_T, zs)
    if not isinstance(out, dict):
        fails(f"train, then sample on the digits: expected samples, got {describe_value(out)}")
    plt = _plt()
    forward = out.get("forward")
    if isinstance(forward, torch.Tensor) and forward.shape == (9, 64):
        image = digit_grid(((perm.undo(forward).double() + 1) / 2).clamp(0, 1), 1, 9)
        fig, ax = plt.subplots(figsize=(6, 1.2))
        ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title("your q_sample on one digit: t = 1, 5, 10, 20, 30, 45, 60, 80, 100", fontsize=8)
        ax.axis("off")
        artifacts.figure("forward_process.png", fig)
    guided = _generated(out, "guided", n, 64, "reverse_step with your trained EpsModel, from the grader's x_T")
    samples = _generated(out, "samples", n, 64, "sample with your trained EpsModel")

    def pixels_of(x):
        return ((perm.undo(x.double()) + 1) / 2).clamp(0, 1)

    image = digit_grid(pixels_of(samples)[:64], 8, 8)
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title("your samples (x + 1) / 2", fontsize=9)
    ax.axis("off")
    artifacts.figure("digit_samples.png", fig)
    fig = _loss_figure(plt, out.get("losses"), steps, "your training loss (digits)")
    if fig is not None:
        artifacts.figure("digits_loss.png", fig)
    shuffled = max(_shuffled_credit(out, key, n, 64, lambda x: _fid_score(pixels_of(x), thresholds))
                   for key in ("guided_shuffled", "samples_shuffled"))
    twin = out.get("guided_shuffled")
    if isinstance(twin, torch.Tensor) and twin.shape == (n, 64) and bool(torch.isfinite(twin).all()):
        artifacts.note(f"FID-lite with your network's weights shuffled: {kitdata.metrics.fid_lite(pixels_of(twin)):.1f}")
    expect_learned(out.get("guided"), out.get("guided_shuffled"), shuffled, name="EpsModel on the digits")
    real = kitdata.digits.every_real_image()
    fids = {}
    for name, x in (("guided", guided), ("sample", samples)):
        memorised = kitdata.metrics.memorisation_fraction(pixels_of(x), real)
        if memorised > thresholds["memorisation_max"]:
            fails(f"{memorised:.0%} of your samples are near-copies of real digits: a generative model must produce "
                  "new digits")
        fids[name] = kitdata.metrics.fid_lite(pixels_of(x))
    artifacts.note("FID-lite of your digit samples against the held-out digits (lower is better): "
                   f"{fids['sample']:.1f} from your sample, {fids['guided']:.1f} from your trained EpsModel with "
                   "reverse_step from the grader's noise")
    name, fid = max(fids.items(), key=lambda item: item[1])
    what = "your sample" if name == "sample" else "your trained EpsModel with reverse_step from the grader's noise"
    fraction = tier(fid, thresholds["digits_fid_tiers"], higher_is_better=False)
    if 0 < fraction < 1:
        credit(fraction, f"FID-lite {fid:.1f} ({what}): your samples look like digits only in part")
    if fraction > 0:
        return
    fails(f"FID-lite {fid:.1f} ({what}): your samples do not look like the digits (check the loss, train and sample)")
