"""Public checks: quick signs that each part works. Passing them is not full marks: the
grader's tests are stricter (exact updates, extreme logits, devices, sample quality)."""
import math

import torch

from autograder.judge import expect_close, expect_finite, expect_tensor


def test_shapes(worker):
    out = worker.call("shapes")
    expect_tensor(out["x"], name="Generator(4, 2)", shape=(10, 2), dtype=torch.float32)
    expect_tensor(out["logits"], name="Discriminator(2)", shape=(10,), dtype=torch.float32)
    x = expect_tensor(out["x_sig"], name="Generator(4, 64, output='sigmoid')", shape=(10, 64))
    assert float(x.min()) >= 0 and float(x.max()) <= 1, "output='sigmoid' should give values in [0, 1]"


def test_losses_at_zero_logits(worker):
    # sigma(0) = 1/2: L_D = 2 log 2, non-saturating L_G = log 2, saturating L_G = -log 2 (handout, section 2)
    out = worker.call("losses", torch.zeros(5), torch.zeros(3))
    expect_close(out["d"], torch.tensor(2 * math.log(2)), name="discriminator_loss at zero logits", rtol=1e-5)
    expect_close(out["g"], torch.tensor(math.log(2)), name="generator_loss at zero logits", rtol=1e-5)
    expect_close(out["g_sat"], torch.tensor(-math.log(2)), name="generator_loss(saturating=True) at zero logits", rtol=1e-5)


def test_losses_finite_on_large_logits(worker):
    big = torch.tensor([-1e4, -200.0, 200.0, 1e4])
    out = worker.call("losses", big, big)
    for key, name in (("d", "discriminator_loss"), ("g", "generator_loss"), ("g_sat", "generator_loss(saturating=True)")):
        expect_finite(expect_tensor(out[key], name=name, shape=()), name=f"{name} on logits of size 1e4")


def test_step_isolation(worker):
    out = worker.call("isolation")
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a, b))
    assert same(out["g_after_d"], out["g0"]), "discriminator_step changed G's parameters"
    assert all(g is None or not bool(g.abs().max() > 0) for g in out["g_grads"]), \
        "gradients reach G during discriminator_step: detach the fakes"
    assert not same(out["d_after_d"], out["d0"]), "discriminator_step did not change D"
    assert same(out["d_after_g"], out["d_after_d"]), "generator_step changed D's parameters"
    assert not same(out["g_after_g"], out["g_after_d"]), "generator_step did not change G"


def test_short_training(worker):
    out = worker.call("short_training", 5)
    h = out["history"]
    assert isinstance(h, dict) and all(len(h.get(k, [])) == 5 for k in ("d_loss", "g_loss")), \
        "train should return history with 5 d_loss and 5 g_loss values for 5 steps"
    expect_finite(expect_tensor(out["samples"], name="sample(G, 20)", shape=(20, 2)), name="sample")
