"""Hidden suite for the GAN assignment (judge side: never imports the student's code).

Expected values are recomputed here in float64 from the inputs the probes report back;
training budgets and quality tiers come from grading.yml (`thresholds:` of the gan entry).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ref_gan
from autograder.judge import (on_device, digit_grid, expect_close, expect_finite, expect_meta, expect_same, expect_tensor,
                              fails, parity_devices, plottable, tier)
from ref_gan import (ref_d_loss, ref_d_loss_at, ref_g_loss, ref_g_loss_at, ref_grad, ref_sgd,
                     ref_theta)

# Logits where sigmoid-then-log breaks in float32: sigmoid rounds to 1 above ~17 and to 0
# below ~-104, so log(sigmoid) or log(1 - sigmoid) is -inf (and BCELoss clamps it at -100).
MODERATE_REAL = [-4.0, -1.5, -0.3, 0.0, 0.7, 2.0, 5.0]
MODERATE_FAKE = [-3.0, -0.8, 0.0, 0.4, 1.7, 4.5]             # a different batch size on purpose
EXTREME_REAL = [-1e4, -300.0, -105.0, -40.0, 25.0, 1e4]
EXTREME_FAKE = [-1e4, -120.0, 18.0, 40.0, 300.0, 1e4]


# --- the two networks ----------------------------------------------------------------------

def test_generator_output(worker):
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


def test_discriminator_output(worker):
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
    """Moderate logits decide the formula (all or nothing); extreme logits the numerics:
    right on moderate logits but wrong on extreme ones keeps 40 %."""
    _check_loss(f"{name} (on moderate logits)", call(False), *expected(False))
    try:
        _check_loss(f"{name} (on logits up to +-1e4)", call(True), *expected(True))
    except AssertionError as error:
        credit(0.4, f"{error}; right on moderate logits: 40% kept")


def test_discriminator_loss(worker, credit):
    def logits(extreme):
        r, f = (MODERATE_REAL + EXTREME_REAL, MODERATE_FAKE + EXTREME_FAKE) if extreme else (MODERATE_REAL, MODERATE_FAKE)
        return torch.tensor(r), torch.tensor(f)

    def expected(extreme):
        r, f = (t.double().requires_grad_() for t in logits(extreme))
        loss = ref_d_loss(r, f)
        gr, gf = torch.autograd.grad(loss, [r, f])
        return loss.detach(), {"grad_real": gr, "grad_fake": gf}

    _judge_loss("discriminator_loss", lambda e: worker.call("discriminator_loss", *logits(e)), expected, credit)


@pytest.mark.parametrize("saturating", [False, True], ids=["non_saturating", "saturating"])
def test_generator_loss(worker, credit, saturating):
    def logits(extreme):
        return torch.tensor(MODERATE_FAKE + EXTREME_FAKE if extreme else MODERATE_FAKE)

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


def test_discriminator_step(worker):
    lr, momentum, calls = 0.1, 0.9, 2
    out = worker.call("discriminator_steps", 4, 100, lr, momentum, calls)
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


@pytest.mark.parametrize("saturating", [False, True], ids=["non_saturating", "saturating"])
def test_generator_step(worker, saturating):
    lr, momentum, calls = 0.1, 0.9, 2
    out = worker.call("generator_steps", 4, 100, lr, momentum, calls, saturating)
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
    seen = set()
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
        for key, want in (("d_loss", d_loss), ("g_loss", g_loss)):
            got = history[key][k]
            if not (isinstance(got, float) and abs(got - want) <= 1e-4 * (1 + abs(want))):
                fails(f"{run}: history[{key!r}] should hold the loss of each round's step, on that round's batch")
    if steps * batch_size >= 300 and len(seen) < x.shape[0]:
        fails(f"{run}: some rows of x are never drawn: draw the batch uniformly from all of x's rows at every round")


def test_sampling(worker):
    out = worker.call("sampling", 40)
    a = expect_finite(expect_tensor(out["a"], name="sample(G, 40)", shape=(40, 3), dtype=torch.float32), name="sample")
    b = expect_tensor(out["b"], name="sample(G, 40)", shape=(40, 3))
    if not (not out["requires_grad"]):
        fails("sample should not build an autograd graph")
    if not (float((a - b).abs().max()) > 1e-6):
        fails("sample returns the same samples twice: draw fresh noise each call")
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


def test_ring_quality(worker, thresholds, artifacts, credit):
    import matplotlib.pyplot as plt
    from kitdata import metrics, toy2d

    t = thresholds
    out = worker.call("train_mixture", "ring8", t["ring_data"], t["ring_steps"], t["ring_batch_size"],
                      t["ring_lr"], t["z_dim"], t["hidden"], t["ring_samples"], timeout=t["train_seconds"])
    mixture = toy2d.ring8()
    samples = expect_tensor(out["samples"], name="sample (after train on the ring)", shape=(t["ring_samples"], 2))
    samples = expect_finite(samples, name="the ring samples")
    modes, hq = metrics.mode_coverage(samples, mixture)

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    # The true density underneath, p^0.05 so that peaks of std 0.02 show as visible disks.
    axis = np.linspace(-3, 3, 600)
    grid_x, grid_y = np.meshgrid(axis, axis)
    log_p = mixture.log_prob(np.stack([grid_x.ravel(), grid_y.ravel()], 1)).reshape(grid_x.shape)
    ax.imshow(np.exp(log_p - log_p.max()) ** 0.05, extent=(-3, 3, -3, 3), origin="lower", cmap="Blues",
              interpolation="bilinear")
    ax.plot([], [], "s", color="tab:blue", label="true density")
    for m in mixture.means:   # the high-quality region of each mode: 3 std around its mean
        ax.add_patch(plt.Circle(m, 3 * mixture.std, fill=False, color="k", lw=0.6))
    s = samples.numpy()
    ax.scatter(s[:, 0], s[:, 1], s=2, alpha=0.4, color="tab:orange", label="generated")
    ax.scatter(mixture.means[:, 0], mixture.means[:, 1], marker="+", color="k", s=25, lw=0.8, label="modes")
    ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal",
           title=f"ring of 8: {modes}/8 modes covered, {hq:.0%} high quality")
    ax.legend(fontsize=7, loc="lower right")
    artifacts.figure("ring_samples.png", fig)
    artifacts.figure("ring_losses.png", _loss_figure(out, "training on the ring of 8"))
    artifacts.note(f"ring of 8 Gaussians after {t['ring_steps']} rounds: {modes}/8 modes covered, "
                   f"{hq:.1%} of samples within 3 std of a mode")

    fraction = min(tier(modes, t["ring_modes_tiers"], higher_is_better=True),
                   tier(hq, t["ring_hq_tiers"], higher_is_better=True))
    if not (fraction > 0):
        fails(f"after {t['ring_steps']} rounds on the ring the generator covers {modes}/8 modes "
                              f"with {hq:.1%} high-quality samples: too far from the data (see ring_samples.png)")
    if fraction < 1:
        credit(fraction, f"ring: {modes}/8 modes covered, {hq:.1%} high quality (partial credit)")


def test_digit_quality(worker, thresholds, artifacts, credit):
    import matplotlib.pyplot as plt
    from kitdata import digits, metrics

    t = thresholds
    out = worker.call("train_digits", t["digits_steps"], t["digits_batch_size"], t["digits_lr"], t["z_dim"],
                      t["hidden"], t["digits_samples"], timeout=t["train_seconds"])
    samples = expect_tensor(out["samples"], name="sample (after train on the digits)", shape=(t["digits_samples"], 64))
    samples = expect_finite(samples, name="the digit samples")
    if not (float(samples.min()) >= 0 and float(samples.max()) <= 1):
        fails("digit samples should lie in [0, 1]")
    fid = metrics.fid_lite(samples)
    copies = metrics.memorisation_fraction(samples, digits.every_real_image())

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(digit_grid(samples, 8, 8), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    fig.suptitle(f"generated digits: FID-lite {fid:.1f}", fontsize=9)
    artifacts.figure("digit_samples.png", fig)
    artifacts.figure("digit_losses.png", _loss_figure(out, "training on the 8x8 digits"))
    artifacts.note(f"digits after {t['digits_steps']} rounds: FID-lite {fid:.1f} against held-out digits, "
                   f"{copies:.1%} of samples are near-copies of training digits")

    if not (copies <= t["memorisation_max"]):
        fails(f"{copies:.0%} of the samples are near-copies of training digits: the generator must not replay the data")
    fraction = tier(fid, t["digits_fid_tiers"], higher_is_better=False)
    if not (fraction > 0):
        fails(f"FID-lite of the generated digits is {fid:.1f}: too far from real digits (see digit_samples.png)")
    if fraction < 1:
        credit(fraction, f"digits: FID-lite {fid:.1f} (partial credit)")
