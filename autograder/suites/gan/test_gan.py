"""Hidden suite for the GAN assignment (judge side: never imports the student's code).

Expected values are recomputed here in float64 from the inputs the probes report back;
training budgets and quality tiers come from grading.yml (`thresholds:` of the gan entry).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ref_gan
from autograder.grading.judge import (on_device, digit_grid, expect_close, expect_finite, expect_learned, expect_meta,
                              expect_same, expect_tensor, fails, parity_devices, plottable, tier)
from ref_gan import (ref_d_loss, ref_d_loss_at, ref_g_loss, ref_g_loss_at, ref_grad, ref_sgd,
                     ref_theta)

# Logits where sigmoid-then-log breaks in float32: sigmoid rounds to 1 above ~17 and to 0
# below ~-104, so log(sigmoid) or log(1 - sigmoid) is -inf (and BCELoss clamps it at -100).
MODERATE_REAL = [-4.0, -1.5, -0.3, 0.0, 0.7, 2.0, 5.0]
MODERATE_FAKE = [-3.0, -0.8, 0.0, 0.4, 1.7, 4.5]             # a different batch size on purpose
EXTREME_REAL = [-1e4, -300.0, -105.0, -40.0, 25.0, 1e4]
EXTREME_FAKE = [-1e4, -120.0, 18.0, 40.0, 300.0, 1e4]


# --- the two networks ----------------------------------------------------------------------

def _judge_network(worker, seed, which, dims, output=None):
    """The network built as the handout says, read from its own parameters: its forward must be
    that MLP (every layer, bias, LeakyReLU(0.2) and output map: parts that learned quality hardly
    shows), the same in train() and eval() mode, and a function of its input alone (two
    batches of the same shape, then the first again)."""
    d_in, d_out, hidden = (dims[0], dims[1], dims[2]) if which == "G" else (dims[0], 1, dims[1])
    name = (f"Generator({d_in}, {d_out}, hidden={hidden}, output={output!r})" if which == "G"
            else f"Discriminator({d_in}, hidden={hidden})")
    gen = torch.Generator().manual_seed(seed)
    n = 33
    inputs = [torch.randn(n, d_in, generator=gen), 3 * torch.randn(n, d_in, generator=gen)]
    out = worker.call("network_outputs", which, list(dims), output, inputs)
    shape = (n, d_out) if which == "G" else (n,)
    got = {key: [expect_finite(expect_tensor(v, name=name, shape=shape, dtype=torch.float32), name=name)
                 for v in out[key]] for key in ("train", "eval", "train_again")}
    params = [expect_tensor(q, name=f"the parameters of {name}") for q in out["params"]]
    candidates = ref_gan.ref_mlp_layers(params, d_in, hidden, d_out)
    if not candidates:
        fails(f"{name} should have exactly the parameters of Linear({d_in}, {hidden}) -> Linear({hidden}, {hidden}) "
              f"-> Linear({hidden}, {d_out}), biases included")
    for key in ("train", "train_again"):
        if not all(bool(((a.double() - b.double()).abs() <= 1e-6 + 1e-6 * b.double().abs()).all())
                   for a, b in zip(got[key], got["eval"])):
            fails(f"{name} gives different outputs in train() and eval() mode: nothing in it may depend on the mode")

    def matches(layers):
        return all(bool(((g.double() - ref_gan.ref_mlp_forward(layers, x, output == "sigmoid").reshape(shape)).abs()
                         <= 1e-5 + 1e-4 * g.double().abs()).all()) for g, x in zip(got["eval"], inputs))
    if not any(matches(layers) for layers in candidates):
        fails(f"{name}'s forward is not the handout's MLP on its own parameters: Linear -> LeakyReLU(0.2) -> "
              "Linear -> LeakyReLU(0.2) -> Linear" + (" -> output map" if which == "G" else " (no sigmoid)"))


@pytest.mark.judges("Generator")
def test_generator_output(worker, seed):
    _judge_network(worker, seed, "G", (6, 5, 9), "linear")
    _judge_network(worker, seed, "G", (7, 64, 24), "sigmoid")
    for z_dim, x_dim, hidden, output in [(8, 2, 32, "linear"), (16, 64, 48, "sigmoid")]:
        out = worker.call("generator_forward", z_dim, x_dim, hidden, output, 64)
        name = f"Generator({z_dim}, {x_dim}, output={output!r})"
        x = expect_tensor(out["x"], name=name, shape=(64, x_dim), dtype=torch.float32)
        x = expect_finite(x, name=name)
        x2 = expect_tensor(out["x2"], name=name, shape=(64, x_dim), dtype=torch.float32)
        if not (out["z_dim"] == z_dim and out["x_dim"] == x_dim):
            fails(f"{name} should keep z_dim and x_dim as attributes")
        if not (float(x.std(0).max()) > 1e-4 and float((x - x2).abs().max()) > 1e-4):
            fails(f"{name} gives the same sample for different noise z: G must depend on z")
        if output == "sigmoid":
            if not (float(x.min()) >= 0.0 and float(x.max()) <= 1.0):
                fails(f"{name} should return values in [0, 1], the range of the digits' pixels")
        else:
            if not (float(x.min()) < 0.0 or float(x.max()) > 1.0):
                fails(f"{name} squashes its output into [0, 1]: output='linear' has no output map")


@pytest.mark.judges("Discriminator")
def test_discriminator_output(worker, seed):
    _judge_network(worker, seed, "D", (5, 9))
    _judge_network(worker, seed, "D", (64, 24))
    name = "Discriminator(64)"
    logits = expect_tensor(worker.call("discriminator_forward", 64, 32, 40),
                           name=name, shape=(120,), dtype=torch.float32)
    logits = expect_finite(logits, name=name)
    if not (float(logits.min()) < 0.0 or float(logits.max()) > 1.0):
        fails(f"{name} returns values in [0, 1]: it should return logits, with no sigmoid at the end")
    if not (float(logits.std()) > 1e-6):
        fails(f"{name} returns the same logit for every input")
    expect_tensor(worker.call("discriminator_one", 5, 24), name="Discriminator(5) on a batch of one sample",
                  shape=(1,), dtype=torch.float32)


# --- the two losses ------------------------------------------------------------------------

def _check_loss(name, got, expected_loss, expected_grads):
    loss = expect_tensor(got.get("loss"), name=name, shape=(), dtype=torch.float32)
    if not bool(torch.isfinite(loss)):
        raise AssertionError(f"{name} is inf or NaN: write it with softplus / logsigmoid "
                             "(or a *_with_logits loss), not log(sigmoid(.))")
    expect_close(loss, expected_loss, name=name, rtol=1e-5, atol=1e-6)
    for key, expected in expected_grads.items():
        if got.get(key) is None:
            raise AssertionError(f"{name} is not differentiable with respect to its logits")
        expect_close(got[key], expected, name=f"the gradient of {name}", rtol=1e-4, atol=1e-7)


def _judge_loss(name, call, expected, credit):
    """Moderate logits decide the formula (all or nothing), twice, on two batches of the same
    shapes (a result kept from the first call fails the second); extreme logits the numerics:
    right on moderate logits but wrong on extreme ones keeps 40 %."""
    _check_loss(f"{name} (on moderate logits)", call(False), *expected(False))
    _check_loss(f"{name} (called again on other logits of the same shapes)", call("again"), *expected("again"))
    try:
        _check_loss(f"{name} (on logits up to +-1e4)", call(True), *expected(True))
    except AssertionError as error:
        credit(0.4, f"{error}; right on moderate logits: 40% kept")


def _again(values):
    """Other moderate logits of the same length: reversed and shifted."""
    return torch.tensor(values[::-1]) * 0.8 + 0.35


@pytest.mark.judges("discriminator_loss")
def test_discriminator_loss(worker, credit):
    def logits(extreme):
        if extreme == "again":
            return _again(MODERATE_REAL), _again(MODERATE_FAKE)
        r, f = (MODERATE_REAL + EXTREME_REAL, MODERATE_FAKE + EXTREME_FAKE) if extreme else (MODERATE_REAL, MODERATE_FAKE)
        return torch.tensor(r), torch.tensor(f)

    def expected(extreme):
        r, f = (t.double().requires_grad_() for t in logits(extreme))
        loss = ref_d_loss(r, f)
        gr, gf = torch.autograd.grad(loss, [r, f])
        return loss.detach(), {"grad_real": gr, "grad_fake": gf}

    _judge_loss("discriminator_loss", lambda e: worker.call("discriminator_loss", *logits(e)), expected, credit)


@pytest.mark.judges("generator_loss")
@pytest.mark.parametrize("saturating", [False, True], ids=["non_saturating", "saturating"])
def test_generator_loss(worker, credit, saturating):
    def logits(extreme):
        if extreme == "again":
            return _again(MODERATE_FAKE)
        return torch.tensor(MODERATE_FAKE + EXTREME_FAKE if extreme is True else MODERATE_FAKE)

    def expected(extreme):
        f = logits(extreme).double().requires_grad_()
        loss = ref_g_loss(f, saturating)
        (g,) = torch.autograd.grad(loss, [f])
        return loss.detach(), {"grad": g}

    _judge_loss(f"generator_loss(saturating={saturating})",
                lambda e: worker.call("generator_loss", logits(e), saturating), expected, credit)


# --- devices -------------------------------------------------------------------------------

def _parity_call(worker, what, device, dtype="float32"):
    logits = torch.tensor(MODERATE_REAL + EXTREME_REAL[:3])
    if dtype == "float64":
        logits = logits.double()
    if what == "generator":
        return worker.call("generator_forward", 6, 5, 16, "linear", 12, device=device, dtype=dtype)["x"], (12, 5)
    if what == "discriminator":
        return worker.call("discriminator_forward", 5, 16, 12, device=device, dtype=dtype), (36,)
    if what == "discriminator_loss":
        return worker.call("discriminator_loss", logits, logits.flip(0)[:7], device=device,
                           with_grad=False)["loss"], ()
    return worker.call("generator_loss", logits, False, device=device, with_grad=False)["loss"], ()


@pytest.mark.parametrize("what", ["generator", "discriminator", "discriminator_loss", "generator_loss", "train"])
def test_device_parity(worker, what):
    """The same call on every accelerator present (or on `meta`) and in float64 agrees with
    the float32 CPU result; the probe builds the weights on the CPU (seeded) before moving them.
    train runs two rounds on x's device and builds its networks there."""
    if what == "train":
        for device in parity_devices(worker):
            out = worker.call("train_on_device", device, 3, 5, 7, 4, 2)
            if out["devices"] != [device]:
                fails(f"train should build both networks on x's device ({device} here)")
            on_device(device, torch.float32, where=f" on {device}")("sample(G, 4) for G from train", out["samples"], (4, 3))
        return
    name = {"generator": "Generator.forward", "discriminator": "Discriminator.forward"}.get(what, what)
    cpu, shape = _parity_call(worker, what, "cpu")
    cpu = expect_finite(expect_tensor(cpu, name=name, shape=shape, dtype=torch.float32), name=name)
    for device in parity_devices(worker):
        got, _ = _parity_call(worker, what, device)
        if device == "meta":
            expect_meta(got, name=f"{name} on the meta device", shape=shape, dtype=torch.float32)
        else:
            expect_close(got, cpu, name=f"{name} on {device}", rtol=1e-4, atol=1e-5)
    got64, _ = _parity_call(worker, what, "cpu", dtype="float64")
    got64 = expect_tensor(got64, name=f"{name} with float64 inputs", shape=shape, dtype=torch.float64)
    expect_close(got64, cpu.double(), name=f"{name} in float64 vs float32", rtol=1e-4, atol=1e-5)


# --- the training step ---------------------------------------------------------------------
# The probe's G is a learned constant b (it ignores z) and its D is logistic regression
# D(x) = x w + c, so L_D(w, c) and L_G(b) have closed forms the judge recomputes in float64.

def _judge_noise(name, calls, n, z_dim):
    """What each call of the step fed G: noise batches of shape (n, G.z_dim), fresh at every
    call, and N(0, I) (the moments of all of them pooled: n * z_dim * calls = 600 values)."""
    for noise in calls:
        if not noise:
            fails(f"{name} never calls G: it must make fakes G(z)")
        for z in noise:
            expect_tensor(z, name=f"the noise {name} feeds G", shape=(n, z_dim), dtype=torch.float32)
    if any(torch.equal(a[0], b[0]) for i, a in enumerate(calls) for b in calls[i + 1:]):
        fails(f"{name} feeds G the same noise at two calls: draw fresh z ~ N(0, I) at every call")
    z = torch.cat([z.double().flatten() for noise in calls for z in noise])
    if not (abs(float(z.mean())) < 0.25 and abs(float(z.std()) - 1) < 0.25):
        fails(f"{name} should feed G noise z ~ N(0, I) (use sample_noise)")


# A confident discriminator, at logits trained ones reach with a margin. Measured: the reference's
# D gives logits in [-21.4, 13.0] over its whole training on the ring (2000 rounds) and the digits
# (1500 rounds), both losses. The steps are checked at +20 (fakes taken for real: log(1 - sigmoid)
# is log(0) in float32 above ~17) and at -110 (about 5x the measured range: log(sigmoid) is log(0)
# below ~-104), in float32, on batches of 100.
CONFIDENT_D_STEP = [20.0, -110.0]
CONFIDENT_G_STEP = {False: -110.0, True: 20.0}   # where each form of L_G keeps a gradient of ~1


@pytest.mark.judges("discriminator_step")   # on the grader's discriminator_loss (probes.LOSSES)
def test_discriminator_step(worker, credit):
    _check_discriminator_steps(worker, calls=2, confident=None)
    try:
        for logit in CONFIDENT_D_STEP:
            _check_discriminator_steps(worker, calls=1, confident=logit)
    except AssertionError as error:
        credit(0.6, f"{error} (with a confident discriminator: logits far from 0, as trained ones reach); "
                    "right on moderate logits: 60% kept")


def _check_discriminator_steps(worker, calls, confident):
    lr, momentum = 0.1, 0.9
    out = worker.call("discriminator_steps", 4, 100, lr, momentum, calls, confident)
    b, reals = out["b"], out["reals"]
    _judge_noise("discriminator_step", out["noise"], n=100, z_dim=3)
    for k in range(calls):
        expect_same(out["reals_after"][k], reals[k], name="discriminator_step's batch of real samples "
                    "(it must not change its input)")
    for k in range(calls):
        if not (torch.equal(out["g_b"][k], b)):
            fails("discriminator_step changed G's parameters")
        g = out["g_grad"][k]
        if not (g is None or not bool(g.abs().max() > 0)):
            fails("gradients reach G during discriminator_step: the fakes must be detached (or made under no_grad)")

    def expected(**variant):
        return ref_sgd(ref_theta(out["d0"]), lambda th, k: ref_grad(lambda t: ref_d_loss_at(t, reals[k], b, **variant), th),
                    lr, momentum, calls)

    got = [ref_theta(d) for d in out["after"]]
    right = expected()
    close = lambda a, e: bool(((a - e).abs() <= 1e-5 + 1e-4 * e.abs()).all())
    if not all(close(a, e) for a, e in zip(got, right)):
        if torch.equal(got[0], ref_theta(out["d0"])):
            raise AssertionError("discriminator_step did not change D: backward on L_D and opt_d.step() are needed")
        if all(close(a, e) for a, e in zip(got, expected(swapped=True))):
            raise AssertionError("discriminator_step moves D the wrong way: real samples are labelled fake and fakes real")
        if all(close(a, e) for a, e in zip(got, expected(real_only=True))):
            raise AssertionError("discriminator_step trains D on real samples only: L_D has a term for the fakes too")
        raise AssertionError("discriminator_step's update of D is not one step of opt_d on L_D "
                             "(stale gradients not reset with opt_d.zero_grad()? another optimiser?)")
    thetas = [ref_theta(out["d0"])] + right[:-1]
    for k in range(calls):
        loss = out["losses"][k]
        if not (isinstance(loss, float)):
            fails(f"discriminator_step should return a Python float, got {type(loss).__name__}")
        if not (abs(loss - float(ref_d_loss_at(thetas[k], reals[k], b))) <= 1e-4 * (1 + abs(loss))):
            fails("discriminator_step should return L_D computed before the step")


@pytest.mark.judges("generator_step")   # on the grader's generator_loss (probes.LOSSES)
@pytest.mark.parametrize("saturating", [False, True], ids=["non_saturating", "saturating"])
def test_generator_step(worker, credit, saturating):
    _check_generator_steps(worker, saturating, calls=2, confident=None)
    try:
        _check_generator_steps(worker, saturating, calls=1, confident=CONFIDENT_G_STEP[saturating])
    except AssertionError as error:
        credit(0.6, f"{error} (with a confident discriminator: logits far from 0, as trained ones reach); "
                    "right on moderate logits: 60% kept")


def _check_generator_steps(worker, saturating, calls, confident):
    lr, momentum = 0.1, 0.9
    out = worker.call("generator_steps", 4, 100, lr, momentum, calls, saturating, confident)
    theta = ref_theta(out["d0"])
    for k in range(calls):
        if not (torch.equal(ref_theta(out["d"][k]), theta)):
            fails("generator_step changed D's parameters: only opt_g may step")
    _judge_noise("generator_step", out["noise"], n=100, z_dim=3)
    b0 = out["b0"].double()
    got = [b.double() for b in out["b"]]
    if torch.equal(got[0], b0):
        raise AssertionError("generator_step did not change G: the gradient of L_G must flow through D into G "
                             "(no detach here) and opt_g must step")

    def expected(sat):
        return ref_sgd(b0, lambda b, k: ref_grad(lambda t: ref_g_loss_at(t, theta, sat), b), lr, momentum, calls)

    close = lambda a, e: bool(((a - e).abs() <= 1e-5 + 1e-4 * e.abs()).all())
    if not all(close(a, e) for a, e in zip(got, expected(saturating))):
        if all(close(a, e) for a, e in zip(got, expected(not saturating))):
            raise AssertionError(f"generator_step(saturating={saturating}) uses the "
                                 f"{'non-' if saturating else ''}saturating loss")
        raise AssertionError("generator_step's update of G is not one step of opt_g on L_G "
                             "(stale gradients not reset with opt_g.zero_grad()? another optimiser?)")
    bs = [b0] + expected(saturating)[:-1]
    for k in range(calls):
        loss = out["losses"][k]
        if not (isinstance(loss, float)):
            fails(f"generator_step should return a Python float, got {type(loss).__name__}")
        if not (abs(loss - float(ref_g_loss_at(bs[k], theta, saturating))) <= 1e-4 * (1 + abs(loss))):
            fails("generator_step should return L_G computed before the step")


@pytest.mark.judges("train_step")
@pytest.mark.upstream("test_discriminator_step", "test_generator_step")
def test_train_step(worker):
    """One round: D steps first (against the current G), then G against the updated D."""
    lr = 0.1
    out = worker.call("train_step", 4, 16, lr, False)
    losses = out["losses"]
    if not (isinstance(losses, dict) and {"d_loss", "g_loss"} <= set(losses)):
        fails("train_step should return a dict with keys 'd_loss' and 'g_loss'")
    if not (all(isinstance(losses[k], float) for k in ("d_loss", "g_loss"))):
        fails("train_step's losses should be floats")
    b0, theta0 = out["b0"].double(), ref_theta(out["d0"])
    theta1 = theta0 - lr * ref_grad(lambda t: ref_d_loss_at(t, out["real"], b0), theta0)
    b1 = b0 - lr * ref_grad(lambda b: ref_g_loss_at(b, theta1, False), b0)
    b_other = b0 - lr * ref_grad(lambda b: ref_g_loss_at(b, theta0, False), b0)
    close = lambda a, e: bool(((a.double() - e).abs() <= 1e-5 + 1e-4 * e.abs()).all())
    if not (close(ref_theta(out["d"]), theta1)):
        fails("train_step's discriminator update is not one discriminator_step on `real`")
    if not close(out["b"], b1):
        if close(out["b"], b_other):
            raise AssertionError("train_step updates G against the old D: the discriminator steps first, then G")
        raise AssertionError("train_step's generator update is not one generator_step with n = real.shape[0]")


@pytest.mark.judges("make_optimizers")
def test_optimizers(worker):
    out = worker.call("optimizers", 3e-3, (0.4, 0.99))
    if not (out["pair"]):
        fails("make_optimizers should return a pair (opt_g, opt_d)")
    for name, who, n in (("opt_g", "G", out["n_G"]), ("opt_d", "D", out["n_D"])):
        opt = out[name]
        if not (opt is not None):
            fails(f"make_optimizers: {name} is not a torch.optim.Optimizer")
        if not (opt["type"] == "Adam"):
            fails(f"make_optimizers: {name} should be Adam, got {opt['type']}")
        if not (all(o == who for o in opt["owners"]) and len(opt["owners"]) == n):
            fails(f"make_optimizers: {name} should hold exactly {who}'s parameters, and nothing else")
        if not (all(abs(lr - 3e-3) < 1e-12 for lr in opt["lr"])):
            fails(f"make_optimizers: {name} ignores lr")
        if not (all(bt is not None and abs(bt[0] - 0.4) < 1e-12 and abs(bt[1] - 0.99) < 1e-12
                       for bt in opt["betas"])):
            fails(f"make_optimizers: {name} ignores betas")


@pytest.mark.judges("train")
@pytest.mark.upstream("test_generator_output", "test_discriminator_output", "test_train_step", "test_optimizers")
def test_train_loop(worker, seed):
    steps = 7
    out = worker.call("train_loop", steps, 32)
    history = out["history"]
    if not (isinstance(history, dict) and {"d_loss", "g_loss"} <= set(history)):
        fails("train should return history = {'d_loss': [...], 'g_loss': [...]}")
    for key in ("d_loss", "g_loss"):
        values = history[key]
        if not (isinstance(values, (list, tuple)) and len(values) == steps):
            fails(f"train: history[{key!r}] should hold one float per step ({steps} here)")
        if not (all(isinstance(v, float) and np.isfinite(v) for v in values)):
            fails(f"train: history[{key!r}] should hold finite Python floats")
    if not (out["G_is_generator"] and out["D_is_discriminator"]):
        fails("train should return (Generator, Discriminator, history)")
    x = expect_tensor(out["x"], name="the generator returned by train", shape=(50, 64))
    if not (float(x.min()) >= 0 and float(x.max()) <= 1):
        fails("train should build G with the given output map ('sigmoid' here)")
    expect_tensor(out["logits"], name="the discriminator returned by train", shape=(10,))
    # The mechanics: a second, tiny train() with every size different, every forward of G and D
    # and every optimiser step recorded; the judge splits the rounds at the optimiser steps.
    gen = torch.Generator().manual_seed(seed)
    m, x_dim, z_dim, hidden = 20, 3, 5, 7
    x = torch.randn(m, x_dim, generator=gen)
    for run in ({"steps": 10, "batch_size": 32, "lr": 2e-3, "saturating": True},
                {"steps": 3, "batch_size": 1, "lr": 3e-4, "saturating": False}):
        out = worker.call("train_mechanics", x, run["steps"], z_dim, hidden, run["batch_size"], run["lr"],
                          run["saturating"])
        _judge_mechanics(out, x, z_dim, hidden, **run)


def _rounds(events, steps):
    """The recorded events split at the optimiser steps: one (D-step events, G-step events,
    opt_d step, opt_g step) per round; fails unless train ran `steps` rounds of D then G."""
    rounds, segment, current = [], [], None
    for e in events:
        if e["net"] != "step":
            segment.append(e)
            continue
        who = e["owners"]
        if who == ["D"] and current is None:
            current = (segment, e)
        elif who == ["G"] and current is not None:
            rounds.append((current[0], segment, current[1], e))
            current = None
        else:
            fails("train should make each round one step of opt_d (D's parameters only), then one of opt_g "
                  "(G's only), on the networks it returns")
        segment = []
    if len(rounds) != steps or current is not None:
        fails(f"train should run exactly `steps` rounds of train_step ({steps} here)")
    return rounds


def _d_logits(segment, x_dim):
    """D's logits (with autograd on) in one step, with the input rows they were computed from."""
    rows, logits = [], []
    for e in segment:
        if e["net"] == "D" and e["grad"]:
            if e["id"] != "D":
                fails("train should return the discriminator it trained")
            x_in = expect_tensor(e["input"], name="the input of the discriminator in train", dtype=torch.float32)
            if not (x_in.dim() == 2 and x_in.shape[1] == x_dim):
                fails("train should feed the discriminator batches of shape (N, x_dim)")
            out = expect_tensor(e["output"], name="the discriminator in train", shape=(x_in.shape[0],))
            rows.append(x_in)
            logits.append(out.double())
    if not rows:
        fails("train never calls the discriminator with gradients on in one of its steps")
    return torch.cat(rows), torch.cat(logits)


def _judge_mechanics(out, x, z_dim, hidden, steps, batch_size, lr, saturating):
    run = f"train(..., steps={steps}, batch_size={batch_size}, lr={lr}, saturating={saturating})"
    history = out["history"]
    if not (isinstance(history, dict) and all(isinstance(history.get(k), (list, tuple)) and len(history[k]) == steps
                                              for k in ("d_loss", "g_loss"))):
        fails(f"{run}: history should hold one d_loss and one g_loss per round")
    if out["n_params"] != [ref_gan.ref_mlp_params(z_dim, hidden, x.shape[1]), ref_gan.ref_mlp_params(x.shape[1], hidden, 1)]:
        fails(f"{run}: the networks should be Generator(z_dim, x_dim, hidden, output) and Discriminator(x_dim, hidden)")
    index = {row.numpy().tobytes(): i for i, row in enumerate(x)}
    seen, batches = set(), []
    for k, (d_seg, g_seg, opt_d, opt_g) in enumerate(_rounds(out["events"], steps)):
        for opt in (opt_d, opt_g):
            if not (opt["type"] == "Adam" and all(abs(v - lr) <= 1e-12 * lr for v in opt["lr"])
                    and all(b == [0.5, 0.999] for b in opt["betas"])):
                fails(f"{run}: the optimisers should be make_optimizers(G, D, lr): Adam with this lr, default betas")
        for seg in (d_seg, g_seg):
            if not any(e["net"] == "G" and tuple(getattr(e["input"], "shape", ())) == (batch_size, z_dim) for e in seg):
                fails(f"{run}: each step should feed G a noise batch of shape (batch_size, z_dim)")
        rows, logits = _d_logits(d_seg, x.shape[1])
        real = torch.tensor([row.numpy().tobytes() in index for row in rows])
        seen.update(index[row.numpy().tobytes()] for row in rows[real])
        if not (int(real.sum()) == batch_size and int((~real).sum()) == batch_size):
            fails(f"{run}: each discriminator step should see batch_size rows of x and batch_size fakes")
        d_loss = float(ref_d_loss(logits[real], logits[~real]))
        g_rows, g_logits = _d_logits(g_seg, x.shape[1])
        if not g_rows.shape[0] == batch_size:
            fails(f"{run}: each generator step should score batch_size fakes")
        g_loss = float(ref_g_loss(g_logits, saturating))
        _judge_gradients(run, d_seg, g_seg, opt_d, opt_g, index, x.shape[1], z_dim, hidden, saturating)
        batches.append([index[row.numpy().tobytes()] for row in rows[real]])
        for key, want in (("d_loss", d_loss), ("g_loss", g_loss)):
            got = history[key][k]
            if not (isinstance(got, float) and abs(got - want) <= 1e-4 * (1 + abs(want))):
                fails(f"{run}: history[{key!r}] should hold the loss of each round's step, on that round's batch")
    if steps * batch_size >= 300 and len(seen) < x.shape[0]:
        fails(f"{run}: some rows of x are never drawn: draw the batch uniformly from all of x's rows at every round")
    if steps >= 2 and batch_size >= 8:
        if all(sorted(b) == sorted(batches[0]) for b in batches):
            fails(f"{run}: every round sees the same batch: draw a fresh batch at every round")
        # Rows drawn uniformly: the next row is the one after the last with probability 1/M (5 % here).
        pairs = [(a, b) for batch in batches for a, b in zip(batch, batch[1:])]
        if sum((b - a) % x.shape[0] == 1 for a, b in pairs) > 0.5 * len(pairs):
            fails(f"{run}: the batches are runs of consecutive rows of x: draw each row uniformly at random")


def _matching_layers(weights, d_in, hidden, d_out, event, sigmoid=False):
    """The reading of a network's recorded weights as the handout's MLP that reproduces the output
    the network gave in `event`; None if none does (the structure is judged by the network tests)."""
    out = event.get("output")
    if not isinstance(out, torch.Tensor):
        return None
    for layers in ref_gan.ref_mlp_layers(weights, d_in, hidden, d_out):
        with torch.no_grad():
            ref = ref_gan.ref_mlp_forward(layers, event["input"], sigmoid)
        if ref.numel() == out.numel() and bool(((ref.reshape(out.shape) - out.double()).abs()
                                                <= 1e-5 + 1e-4 * ref.reshape(out.shape).abs()).all()):
            return layers
    return None


def _judge_gradients(run, d_seg, g_seg, opt_d, opt_g, index, x_dim, z_dim, hidden, saturating):
    """Each optimiser steps with the gradient of its own loss on this round's batch and nothing
    else: recomputed in float64 from the networks' recorded weights and inputs (gradients
    left from an earlier step, a missing zero_grad, a loss summed over rounds all differ)."""
    d_events = [e for e in d_seg if e["net"] == "D" and e["grad"] and e["id"] == "D"]
    g_events = [e for e in g_seg if e["net"] == "G" and e["grad"] and e["id"] == "G"]
    dg_events = [e for e in g_seg if e["net"] == "D" and e["grad"] and e["id"] == "D"]
    if not (d_events and g_events and dg_events):
        return
    leaves = [w.double().requires_grad_() for w in d_events[0]["weights"]]
    layers = _matching_layers(leaves, x_dim, hidden, 1, d_events[0])
    if layers is not None:
        real, fake = [], []
        for e in d_events:
            logits = ref_gan.ref_mlp_forward(layers, e["input"]).reshape(-1)
            is_real = torch.tensor([row.numpy().tobytes() in index for row in e["input"]], dtype=torch.bool)
            real.append(logits[is_real])
            fake.append(logits[~is_real])
        want = torch.autograd.grad(ref_d_loss(torch.cat(real), torch.cat(fake)), leaves, allow_unused=True)
        if not _same_gradients(opt_d.get("grads"), want):
            fails(f"{run}: opt_d does not step with the gradient of this round's L_D alone "
                  "(gradients left from an earlier step? reset them before each backward)")
    g_leaves = [w.double().requires_grad_() for w in g_events[0]["weights"]]
    g_layers = _matching_layers(g_leaves, z_dim, hidden, x_dim, g_events[0])
    d_layers = _matching_layers([w.double() for w in dg_events[0]["weights"]], x_dim, hidden, 1, dg_events[0])
    if g_layers is not None and d_layers is not None:
        fakes = torch.cat([ref_gan.ref_mlp_forward(g_layers, e["input"]) for e in g_events])
        loss = ref_g_loss(ref_gan.ref_mlp_forward(d_layers, fakes).reshape(-1), saturating)
        want = torch.autograd.grad(loss, g_leaves, allow_unused=True)
        if not _same_gradients(opt_g.get("grads"), want):
            fails(f"{run}: opt_g does not step with the gradient of this round's L_G alone "
                  "(gradients left from an earlier step? reset them before each backward)")


def _same_gradients(got, want):
    if not (isinstance(got, list) and len(got) == len(want)):
        return False
    for g, w in zip(got, want):
        w = torch.zeros(()) if w is None else w
        if not isinstance(g, torch.Tensor) or g.numel() != w.numel():
            return False
        if not bool(((g.double().reshape(w.shape) - w).abs() <= 1e-6 + 1e-3 * w.abs()).all()):
            return False
    return True


# Bins of |z| for the check of sample's noise: the prior is N(0, I) itself, tails included
# (no truncation, no shrinking, no other law with the same two moments).
PRIOR_BINS = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, float("inf")]
PRIOR_CHI2_MAX = 50.0   # chi-square with 6 degrees of freedom: P(> 50) ~ 5e-9 for a correct draw


def _judge_prior(worker):
    """120,000 noise values from sample(G, n) for G(z) = z, against N(0, 1): the histogram of |z|
    (a truncation at 3 std empties a bin expecting 324 draws: chi-square ~ 320; a uniform law of
    unit variance ~ 2500), and no standardisation of the batch (a sample mean exactly 0)."""
    from math import erf, sqrt

    z = expect_tensor(worker.call("sampling_noise", 20000, 6)["z"], name="sample(G, 20000) for G(z) = z",
                      shape=(20000, 6))
    z = z.double()
    if not bool(torch.isfinite(z).all()):
        fails("sample's noise should be finite: z ~ N(0, I)")
    if float(z.mean(0).abs().max()) < 1e-6 or float((z.std(0) - 1).abs().max()) < 1e-6:
        fails("sample's noise is standardised over the batch: draw z ~ N(0, I), each row independently")
    edges = torch.tensor(PRIOR_BINS, dtype=torch.float64)
    a = z.abs().flatten()
    counts = torch.stack([((a >= lo) & (a < hi)).sum() for lo, hi in zip(edges[:-1], edges[1:])]).double()
    cdf = [erf(e / sqrt(2)) if e != float("inf") else 1.0 for e in PRIOR_BINS]
    expected = torch.tensor([hi - lo for lo, hi in zip(cdf[:-1], cdf[1:])], dtype=torch.float64) * a.numel()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    if not (chi2 <= PRIOR_CHI2_MAX):
        fails("sample's noise is not z ~ N(0, I): its distribution differs (truncated, shrunk or another law?)")


@pytest.mark.judges("sample")
@pytest.mark.upstream("test_generator_output")
def test_sampling(worker, seed):
    out = worker.call("sampling", 40)
    a = expect_finite(expect_tensor(out["a"], name="sample(G, 40)", shape=(40, 3), dtype=torch.float32), name="sample")
    b = expect_tensor(out["b"], name="sample(G, 40)", shape=(40, 3))
    if not (not out["requires_grad"]):
        fails("sample should not build an autograd graph")
    if not (float((a - b).abs().max()) > 1e-6):
        fails("sample returns the same samples twice: draw fresh noise each call")
    # The global seed decides the draw: seeding torch the same way twice gives the same samples,
    # another seed others (a private torch.Generator, numpy's or Python's generator do not follow it).
    seeded = worker.call("sampling_seeded", 50, 4, [seed, seed, seed + 1])
    a, b, c = (expect_tensor(v, name="sample(G, 50) for G(z) = z", shape=(50, 4)) for v in seeded)
    if not (torch.equal(a, b) and not torch.equal(a, c)):
        fails("sample should draw its noise from torch's global generator: torch.manual_seed decides the samples")
    _judge_prior(worker)
    for dtype in (torch.float32, torch.float64):
        out = worker.call("sampling_noise", 4000, 6, dtype=str(dtype).split(".")[-1])
        z = expect_tensor(out["z"], name=f"sample(G, 4000) for G(z) = z in {dtype}", shape=(4000, 6), dtype=dtype)
        expect_tensor(out["one"], name="sample(G, 1)", shape=(1, 6), dtype=dtype)
        if not (float(z.mean(0).abs().max()) < 0.1 and float((z.std(0) - 1).abs().max()) < 0.1):
            fails("sample's noise should be z ~ N(0, I): mean 0 and standard deviation 1 in every dimension")
    for device in parity_devices(worker):
        got = worker.call("sampling", 40, device=device)["a"]
        if device == "meta":
            expect_meta(got, name="sample(G, 40) for G on the meta device", shape=(40, 3), dtype=torch.float32)
        else:
            expect_tensor(got, name=f"sample(G, 40) on {device}", shape=(40, 3))


# --- sample quality: the student's loop, a fixed number of steps ------------------------------

def _loss_figure(out, title):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    for key, label in (("d_loss", "discriminator loss $L_D$"), ("g_loss", "generator loss $L_G$")):
        if isinstance(out.get(key), torch.Tensor):
            ax.plot(plottable(out[key]), label=label, lw=0.8)
    ax.axhline(2 * np.log(2), color="grey", ls=":", lw=0.8, label="$L_D$ at equilibrium: 2 log 2")
    ax.set_xlabel("round (one D step + one G step)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig


def _judge_noise_batch(seed, n, z_dim):
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def _generated(out, key, name, shape):
    return expect_finite(expect_tensor(out.get(key), name=name, shape=shape), name=name)


RING_SCALE, RING_SHIFT = (0.85, 1.15), 0.35    # the ring's hidden variant (see test_ring_quality)


@pytest.mark.upstream("test_generator_output", "test_discriminator_output", "test_train_step", "test_optimizers",
                      "test_train_loop")   # the losses: the grader's (probes.LOSSES)
def test_ring_quality(worker, thresholds, artifacts, credit, seed, secret_rng):
    """The student's loop on samples of a hidden variant of the ring of 8 (rotated, scaled,
    shifted, reweighted; drawn for this grading in the judge): G(z) from the judge's noise
    and sample(G, n) are both scored against the variant, and G(z) must come from the
    trained weights (a copy with shuffled weights earns nothing)."""
    import matplotlib.pyplot as plt
    from kitdata import metrics, toy2d, variants

    t = thresholds
    # Any rotation; the scale and shift a little narrower than the kit's defaults, which put the
    # ring up to 0.5 off-centre and 1.25x its size: beyond what the round budget lets a correct
    # generator spread over (the reference's arc did not close at 2000 rounds on such draws).
    mixture = variants.mixture(toy2d.ring8(), secret_rng, scale=RING_SCALE, shift=RING_SHIFT)
    x = torch.from_numpy(mixture.sample(t["ring_data"], generator=secret_rng))
    n = t["ring_samples"]
    z = _judge_noise_batch(seed, n, t["z_dim"])
    out = worker.call("train_mixture", x, t["ring_steps"], t["ring_batch_size"], t["ring_lr"], t["z_dim"],
                      t["hidden"], z, n, timeout=t["train_seconds"])
    gz = _generated(out, "gz", "G(z) for the generator returned by train on the ring", (n, 2))
    samples = _generated(out, "samples", "sample(G, n) after train on the ring", (n, 2))
    shuffled = expect_tensor(out.get("gz_shuffled"), name="G(z)", shape=(n, 2))

    def ring_credit(points):
        modes, hq = metrics.mode_coverage(points, mixture)
        return min(tier(modes, t["ring_modes_tiers"], higher_is_better=True),
                   tier(hq, t["ring_hq_tiers"], higher_is_better=True)), modes, hq

    fraction_gz, modes, hq = ring_credit(gz)
    fraction_sample, modes_s, hq_s = ring_credit(samples)
    finite = bool(torch.isfinite(shuffled).all())
    shuffled_credit, modes_x, hq_x = ring_credit(shuffled) if finite else (0.0, 0, 0.0)

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    # The density of this grading's ring underneath, p^0.05 so that narrow peaks show as disks.
    lim = float(np.abs(mixture.means).max()) + 1.0
    axis = np.linspace(-lim, lim, 600)
    grid_x, grid_y = np.meshgrid(axis, axis)
    log_p = mixture.log_prob(np.stack([grid_x.ravel(), grid_y.ravel()], 1)).reshape(grid_x.shape)
    ax.imshow(np.exp(log_p - log_p.max()) ** 0.05, extent=(-lim, lim, -lim, lim), origin="lower", cmap="Blues",
              interpolation="bilinear")
    ax.plot([], [], "s", color="tab:blue", label="true density")
    for m in mixture.means:   # the high-quality region of each mode: 3 std around its mean
        ax.add_patch(plt.Circle(m, 3 * float(np.max(mixture.std)), fill=False, color="k", lw=0.6))
    s = plottable(gz)
    ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.4, color="tab:orange", label="generated G(z)")
    ax.scatter(mixture.means[:, 0], mixture.means[:, 1], marker="+", color="k", s=25, lw=0.8, label="modes")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal",
           title=f"ring of 8: {modes}/8 modes covered, {hq:.0%} high quality")
    ax.legend(fontsize=7, loc="lower right")
    artifacts.figure("ring_samples.png", fig)
    artifacts.figure("ring_losses.png", _loss_figure(out, "training on the ring of 8"))
    artifacts.note(f"ring of 8 Gaussians (drawn afresh for this grading) after {t['ring_steps']} rounds: G(z) "
                   f"covers {modes}/8 modes with {hq:.1%} of samples within 3 std of a mode; sample(G, n) "
                   f"{modes_s}/8 and {hq_s:.1%}; G with its weights shuffled {modes_x}/8 and {hq_x:.1%}")

    expect_learned(gz, shuffled, shuffled_credit, name="the generator trained on the ring")
    fraction = min(fraction_gz, fraction_sample)
    if not (fraction_gz > 0):
        fails(f"after {t['ring_steps']} rounds on the ring the generator covers {modes}/8 modes "
              f"with {hq:.1%} high-quality samples: too far from the data (see ring_samples.png)")
    if not (fraction_sample > 0):
        fails(f"sample(G, n) after training on the ring covers {modes_s}/8 modes with {hq_s:.1%} "
              "high-quality samples, far below G(z) for z ~ N(0, I): sample should return G(z) itself")
    if fraction < 1:
        credit(fraction, f"ring: {min(modes, modes_s)}/8 modes covered, {min(hq, hq_s):.1%} high quality "
                         "(partial credit)")


@pytest.mark.upstream("test_generator_output", "test_discriminator_output", "test_train_step", "test_optimizers",
                      "test_train_loop")   # the losses: the grader's (probes.LOSSES)
def test_digit_quality(worker, thresholds, artifacts, credit, seed, secret_rng):
    """The student's loop on the training digits with their pixels permuted in secret (an MLP
    learns them exactly as well; a copied or blended shipped digit lands on the wrong pixels).
    The judge undoes the permutation before FID-lite and the memorisation check."""
    import matplotlib.pyplot as plt
    from kitdata import digits, metrics, variants

    t = thresholds
    perm = variants.PixelPermutation(secret_rng)
    x = torch.from_numpy(perm.apply(digits.load_digits("train")[0]).copy())
    n = t["digits_samples"]
    z = _judge_noise_batch(seed, n, t["z_dim"])
    out = worker.call("train_digits", x, t["digits_steps"], t["digits_batch_size"], t["digits_lr"], t["z_dim"],
                      t["hidden"], z, n, timeout=t["train_seconds"])
    gz = _generated(out, "gz", "G(z) for the generator returned by train on the digits", (n, 64))
    samples = _generated(out, "samples", "sample(G, n) after train on the digits", (n, 64))
    shuffled = expect_tensor(out.get("gz_shuffled"), name="G(z)", shape=(n, 64))
    for name, value in (("G(z)", gz), ("sample(G, n)", samples)):
        if not (float(value.min()) >= 0 and float(value.max()) <= 1):
            fails(f"{name} on the digits should lie in [0, 1]")
    every_real = digits.every_real_image()

    def digit_credit(points):
        """(credit, FID-lite, near-copies) of samples in the permuted layout."""
        images = perm.undo(points.double())
        fid = metrics.fid_lite(images)
        copies = metrics.memorisation_fraction(images, every_real)
        return (tier(fid, t["digits_fid_tiers"], higher_is_better=False) if copies <= t["memorisation_max"] else 0.0,
                fid, copies)

    fraction_gz, fid, copies = digit_credit(gz)
    fraction_sample, fid_s, copies_s = digit_credit(samples)
    finite = bool(torch.isfinite(shuffled).all())
    shuffled_credit, fid_x, _ = digit_credit(shuffled.clamp(0, 1)) if finite else (0.0, float("nan"), 0.0)

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(digit_grid(perm.undo(gz), 8, 8), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    fig.suptitle(f"generated digits G(z): FID-lite {fid:.1f}", fontsize=9)
    artifacts.figure("digit_samples.png", fig)
    artifacts.figure("digit_losses.png", _loss_figure(out, "training on the 8x8 digits"))
    artifacts.note(f"digits (pixels permuted afresh for this grading, put back before measuring) after "
                   f"{t['digits_steps']} rounds: FID-lite {fid:.1f} for G(z), {fid_s:.1f} for sample(G, n), "
                   f"against held-out digits ({fid_x:.1f} with G's weights shuffled); {max(copies, copies_s):.1%} of "
                   "samples are near-copies of real digits")

    expect_learned(gz, shuffled, shuffled_credit, name="the generator trained on the digits")
    if not (max(copies, copies_s) <= t["memorisation_max"]):
        fails(f"{max(copies, copies_s):.0%} of the samples are near-copies of real digits: "
              "the generator must not replay the data")
    if not (fraction_gz > 0):
        fails(f"FID-lite of the generated digits G(z) is {fid:.1f}: too far from real digits (see digit_samples.png)")
    if not (fraction_sample > 0):
        fails(f"FID-lite of sample(G, n) is {fid_s:.1f}, far from that of G(z) for z ~ N(0, I): "
              "sample should return G(z) itself")
    fraction = min(fraction_gz, fraction_sample)
    if fraction < 1:
        credit(fraction, f"digits: FID-lite {max(fid, fid_s):.1f} (partial credit)")
