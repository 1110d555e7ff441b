"""Public checks: quick signs that each part works. Passing them is not full marks: the
grader's tests are stricter (exact updates, extreme logits, devices, sample quality)."""
import math

import pytest
import torch

from autograder.grading.judge import expect_close, expect_finite, expect_tensor


@pytest.mark.judges("Generator", "Discriminator")
def test_shapes(worker):
    out = worker.call("shapes")
    expect_tensor(out["x"], name="Generator(4, 2)", shape=(10, 2), dtype=torch.float32)
    expect_tensor(out["logits"], name="Discriminator(2)", shape=(10,), dtype=torch.float32)
    x = expect_tensor(out["x_sig"], name="Generator(4, 64, output='sigmoid')", shape=(10, 64))
    assert float(x.min()) >= 0 and float(x.max()) <= 1, "output='sigmoid' should give values in [0, 1]"


@pytest.mark.judges("discriminator_loss", "generator_loss")
def test_losses_at_zero_logits(worker):
    # sigma(0) = 1/2: L_D = 2 log 2, non-saturating L_G = log 2, saturating L_G = -log 2 (handout, section 2)
    out = worker.call("losses", torch.zeros(5), torch.zeros(3))
    expect_close(out["d"], torch.tensor(2 * math.log(2)), name="discriminator_loss at zero logits", rtol=1e-5)
    expect_close(out["g"], torch.tensor(math.log(2)), name="generator_loss at zero logits", rtol=1e-5)
    expect_close(out["g_sat"], torch.tensor(-math.log(2)), name="generator_loss(saturating=True) at zero logits", rtol=1e-5)


@pytest.mark.judges("discriminator_loss", "generator_loss")
def test_losses_finite_on_large_logits(worker):
    big = torch.tensor([-1e4, -200.0, 200.0, 1e4])
    out = worker.call("losses", big, big)
    for key, name in (("d", "discriminator_loss"), ("g", "generator_loss"), ("g_sat", "generator_loss(saturating=True)")):
        expect_finite(expect_tensor(out[key], name=name, shape=()), name=f"{name} on logits of size 1e4")


@pytest.mark.judges("sample_noise", "make_optimizers")
def test_noise_and_optimizers(worker):
    out = worker.call("noise_and_optimizers")
    expect_tensor(out["noise"], name="sample_noise(G, 5) for G of z_dim 3 in float64", shape=(5, 3),
                  dtype=torch.float64)
    assert out["kinds"] == ["Adam", "Adam"], f"make_optimizers should return two Adam optimisers, got {out['kinds']}"
    assert out["lrs"] == [2e-3, 2e-3], "make_optimizers should use the lr it is given"
    assert out["own"], "make_optimizers: opt_g should hold exactly G's parameters and opt_d exactly D's"


@pytest.mark.judges("discriminator_step", "generator_step")
@pytest.mark.upstream("test_losses_at_zero_logits", "test_losses_finite_on_large_logits")
def test_step_isolation(worker):
    out = worker.call("isolation")
    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a, b))
    assert same(out["g_after_d"], out["g0"]), "discriminator_step changed G's parameters"
    assert all(g is None or not bool(g.abs().max() > 0) for g in out["g_grads"]), \
        "gradients reach G during discriminator_step: detach the fakes"
    assert not same(out["d_after_d"], out["d0"]), "discriminator_step did not change D"
    assert same(out["d_after_g"], out["d_after_d"]), "generator_step changed D's parameters"
    assert not same(out["g_after_g"], out["g_after_d"]), "generator_step did not change G"


@pytest.mark.judges("train")
@pytest.mark.upstream("test_shapes", "test_losses_at_zero_logits", "test_losses_finite_on_large_logits",
                      "test_noise_and_optimizers", "test_step_isolation")
def test_short_training(worker, artifacts):
    out = worker.call("short_training", 300)
    h = out["history"]
    assert isinstance(h, dict) and all(len(h.get(k, [])) == 300 for k in ("d_loss", "g_loss")), \
        "train should return history with 300 d_loss and 300 g_loss values for 300 steps"
    samples = expect_finite(expect_tensor(out["samples"], name="sample(G, 500)", shape=(500, 2)), name="sample")
    feedback_pictures(artifacts, h, samples, out["data"])


def feedback_pictures(artifacts, history, samples, data):
    """Your losses and your samples over the ring, in feedback/ (300 rounds: a start, not the
    grader's run)."""
    import matplotlib.pyplot as plt

    from autograder.grading.judge import plottable

    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    for key in ("d_loss", "g_loss"):
        ax.plot(range(1, len(history[key]) + 1), plottable(history[key]), lw=0.8, label=key)
    ax.set_xlabel("round")
    ax.legend(fontsize=8)
    ax.set_title("your train(): the history it returned", fontsize=9)
    artifacts.figure("training_curve.png", fig)
    fig, ax = plt.subplots(figsize=(3.4, 3.4))
    ax.scatter(*plottable(data).T, s=2, alpha=0.3, label="data")
    ax.scatter(*plottable(samples).T, s=2, alpha=0.5, label="your samples")
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, markerscale=4)
    ax.set_title("sample(G, 500) after 300 rounds on the ring", fontsize=9)
    artifacts.figure("samples.png", fig)
