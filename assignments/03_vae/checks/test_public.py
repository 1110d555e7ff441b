"""Public checks for the VAE assignment. Passing them does not mean full marks: the hidden
suite checks the same functions more thoroughly (float64 references, statistics, devices,
sample quality after training)."""

import math

import pytest
import torch

from autograder.grading.judge import digit_grid, expect_close, expect_finite, expect_tensor, plottable


@pytest.mark.judges("VAE")
def test_shapes(worker):
    out = worker.call("shapes")
    expect_tensor(out["mu"], name="VAE.encode(x)[0] (mu)", shape=(5, 8), dtype=torch.float32)
    expect_tensor(out["logvar"], name="VAE.encode(x)[1] (logvar)", shape=(5, 8), dtype=torch.float32)
    expect_tensor(out["logits"], name="VAE.decode", shape=(5, 64), dtype=torch.float32)
    expect_tensor(out["kl"], name="kl_divergence", shape=(5,), dtype=torch.float32)
    expect_tensor(out["recon"], name="reconstruction_loss", shape=(5,), dtype=torch.float32)
    s = expect_tensor(out["sample"], name="sample", shape=(7, 64), dtype=torch.float32)
    assert float(s.min()) >= 0 and float(s.max()) <= 1, "sample should return pixel means in [0, 1]"
    expect_tensor(out["iwae"], name="iwae_bound", shape=(5,), dtype=torch.float32)


@pytest.mark.judges("kl_divergence")
def test_kl_divergence_formula(worker):
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0], [0.5, 0.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, 0.0], [0.0, 0.0], [math.log(4.0), -1.0]], dtype=torch.float64)
    got = expect_tensor(worker.call("kl", mu, logvar), name="kl_divergence", shape=(3,), dtype=torch.float64)
    # 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2), worked by hand (see the handout).
    expected = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(-1)
    expect_close(got, expected, name="kl_divergence", rtol=1e-9, atol=1e-12)


@pytest.mark.judges("reconstruction_loss")
def test_reconstruction_loss_formula(worker):
    logits = torch.tensor([[0.0, 2.0, -3.0], [1.5, -0.5, 4.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 0.25], [0.0, 1.0, 1.0]], dtype=torch.float64)
    got = expect_tensor(worker.call("recon", logits, x), name="reconstruction_loss", shape=(2,), dtype=torch.float64)
    # -sum_d [ x_d log sigmoid(l_d) + (1 - x_d) log(1 - sigmoid(l_d)) ], summed over pixels (the handout)
    expected = -(x * torch.nn.functional.logsigmoid(logits) + (1 - x) * torch.nn.functional.logsigmoid(-logits)).sum(-1)
    expect_close(got, expected, name="reconstruction_loss (-log p(x|z), summed over pixels)", rtol=1e-9, atol=1e-12)


@pytest.mark.judges("reparameterize")
def test_reparameterize_has_gradients(worker):
    out = worker.call("gradients")
    assert out["mu_grad"] is not None, "no gradient reaches mu through reparameterize"
    assert out["logvar_grad"] is not None, "no gradient reaches logvar through reparameterize"
    expect_close(out["mu_grad"], torch.ones(3, 2), name="d sum(z) / d mu", atol=1e-6)


@pytest.mark.judges("elbo")
@pytest.mark.upstream("test_kl_divergence_formula", "test_reconstruction_loss_formula")
def test_elbo_is_recon_plus_kl(worker):
    out = worker.call("elbo_dict")
    assert isinstance(out, dict) and {"elbo", "recon", "kl"} <= set(out), \
        "elbo should return a dict with keys 'elbo', 'recon', 'kl'"
    for k in ("elbo", "recon", "kl"):
        expect_finite(expect_tensor(out[k], name=f"elbo(...)['{k}']", shape=(6,)), name=f"elbo(...)['{k}']")
    expect_close(out["elbo"], -(out["recon"] + out["kl"]), name="elbo(...)['elbo'] vs -(recon + kl)", atol=1e-4)
    assert bool((out["kl"] >= 0).all()), "the KL divergence is never negative"
    assert bool((out["recon"] > 0).all()), "-log p(x|z) of grey-level pixels is positive"


@pytest.mark.judges("iwae_bound")
@pytest.mark.upstream("test_shapes")
def test_iwae_is_above_elbo(worker):
    # the ELBO here is the handout's, from your encode and decode: only iwae_bound is judged
    out = worker.call("iwae_vs_elbo")
    elbo, iw1, iw16 = (expect_tensor(out[k], name=k, shape=(500,)).double() for k in ("elbo", "iwae1", "iwae16"))
    se = float(elbo.std() / math.sqrt(500))
    assert abs(float(iw1.mean() - elbo.mean())) < 6 * se + 1e-3, "iwae_bound with k = 1 should average to the ELBO"
    assert float(iw16.mean()) > float(elbo.mean()), "iwae_bound with k = 16 should be above the ELBO on average"


@pytest.mark.judges("train")
@pytest.mark.upstream("test_shapes", "test_kl_divergence_formula", "test_reconstruction_loss_formula",
                      "test_reparameterize_has_gradients", "test_elbo_is_recon_plus_kl")
def test_training_reduces_the_loss(worker, artifacts):
    out = worker.call("short_training", 300)
    assert isinstance(out, dict) and "losses" in out, "the probe short_training should return losses and samples"
    losses = out["losses"]
    if isinstance(losses, list) and losses:
        feedback_pictures(artifacts, losses, out.get("samples"))
    assert isinstance(losses, list) and len(losses) == 300, "train should return one loss per step (a list of floats)"
    first, last = sum(losses[:30]) / 30, sum(losses[-30:]) / 30
    assert last < first - 5, f"after 300 steps the loss went from {first:.1f} to {last:.1f}: is the model learning?"


def feedback_pictures(artifacts, losses, samples):
    """Your training curve and 40 samples from the prior, in feedback/ (the handout's pictures)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    ax.plot(range(1, len(losses) + 1), plottable(losses), lw=0.8)
    ax.set_xlabel("Adam step (batch 64, lr 2e-3)")
    ax.set_ylabel("-ELBO of the minibatch (nats)")
    ax.set_title("your train(): the losses it returned", fontsize=9)
    artifacts.figure("training_curve.png", fig)
    if isinstance(samples, torch.Tensor) and samples.numel() >= 64:
        fig, ax = plt.subplots(figsize=(4.0, 2.2))
        ax.imshow(digit_grid(samples, 4, 10), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"your sample(model, 40) after {len(losses)} steps", fontsize=9)
        ax.axis("off")
        artifacts.figure("samples.png", fig)
