"""Public checks for the diffusion assignment. Passing them does not mean full marks: the
hidden suite checks the same functions more thoroughly (float64 references, statistics,
samplers driven by an exact noise predictor, devices, quality after training)."""

import pytest
import torch

from autograder.grading.judge import expect_close, expect_tensor, fails

F64 = torch.float64


@pytest.mark.judges("linear_betas", "cosine_betas", "make_schedule", "q_sample", "time_embedding", "EpsModel", "diffusion_loss", "reverse_step", "sample")
def test_shapes(worker):
    out = worker.call("shapes")
    expect_tensor(out["linear"], name="linear_betas(10)", shape=(11,), dtype=F64)
    expect_tensor(out["cosine"], name="cosine_betas(10)", shape=(11,), dtype=F64)
    if not isinstance(out["schedule"], dict):
        fails("make_schedule should return a dict")
    for key in ("betas", "alphas", "alpha_bars", "posterior_variance"):
        expect_tensor(out["schedule"].get(key), name=f"make_schedule(...)[{key!r}]", shape=(11,), dtype=F64)
    expect_tensor(out["q_sample"], name="q_sample", shape=(5, 2), dtype=torch.float32)
    expect_tensor(out["embedding"], name="time_embedding(t, 8)", shape=(5, 8), dtype=torch.float32)
    expect_tensor(out["model"], name="EpsModel(dim=2)(x, t)", shape=(5, 2), dtype=torch.float32)
    expect_tensor(out["loss"], name="diffusion_loss", shape=())
    expect_tensor(out["reverse"], name="reverse_step", shape=(5, 2), dtype=torch.float32)
    expect_tensor(out["sample"], name="sample(model, schedule, 7, 2)", shape=(7, 2), dtype=torch.float32)
    expect_tensor(out["ddim"], name="ddim_sample", shape=(5, 2), dtype=torch.float32)


@pytest.mark.judges("linear_betas", "cosine_betas", "make_schedule")
def test_schedule_endpoints(worker):
    out = worker.call("schedules", 100)
    lin, cos = out["linear"], out["cosine"]
    # Entry 0 stands for t = 0: no noise yet.
    for name, sch in (("linear", lin), ("cosine", cos)):
        if float(sch["betas"][0]) != 0.0 or float(sch["alpha_bars"][0]) != 1.0:
            fails(f"{name}: betas[0] should be 0 and alpha_bars[0] 1 (index 0 is t = 0)")
        if float(sch["alpha_bars"][100]) > 1e-3:
            fails(f"{name}: alpha_bar_T should be close to 0 (nothing but noise left at t = T)")
        if not bool((sch["alpha_bars"][1:] < sch["alpha_bars"][:-1]).all()):
            fails(f"{name}: alpha_bar_t should decrease with t")
        if float(sch["posterior_variance"][1]) != 0.0:
            fails(f"{name}: posterior_variance[1] (beta-tilde_1) should be 0")
    expect_close(lin["betas"][1:3], torch.tensor([1e-3, 1e-3 + (0.2 - 1e-3) / 99], dtype=F64),
                 name="linear_betas(100)[1:3]", rtol=1e-12)
    if abs(float(cos["betas"][100]) - 0.999) > 1e-12:
        fails("cosine_betas: beta_T should be clipped at max_beta = 0.999")


@pytest.mark.judges("q_sample")
def test_q_sample_formula(worker):
    abar = torch.tensor([1.0, 0.64, 0.25], dtype=F64)
    x0 = torch.tensor([[1.0, 2.0], [3.0, -1.0]], dtype=F64)
    noise = torch.tensor([[0.5, -0.5], [1.0, 2.0]], dtype=F64)
    got = expect_tensor(worker.call("q_sample", x0, torch.tensor([1, 2]), abar, noise), name="q_sample",
                        shape=(2, 2), dtype=F64)
    # t = 1: 0.8 x0 + 0.6 noise;  t = 2: 0.5 x0 + sqrt(0.75) noise (worked by hand).
    expected = torch.stack([0.8 * x0[0] + 0.6 * noise[0], 0.5 * x0[1] + 0.75 ** 0.5 * noise[1]])
    expect_close(got, expected, name="q_sample", rtol=1e-12)


@pytest.mark.judges("reverse_step")
def test_reverse_step_last_step(worker):
    betas = torch.tensor([0.0, 0.1, 0.2], dtype=F64)
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    post = torch.tensor([0.0, 0.0, 0.1 / 0.28 * 0.2], dtype=F64)
    sch = {"betas": betas, "alphas": alphas, "alpha_bars": abar, "posterior_variance": post}
    x = torch.tensor([[1.0, -1.0]], dtype=F64)
    eps = torch.tensor([[0.3, 0.2]], dtype=F64)
    z = torch.tensor([[5.0, 5.0]], dtype=F64)
    mean = (x - 0.1 / (0.1 ** 0.5) * eps) / 0.9 ** 0.5
    for variance in ("posterior", "beta"):
        got = worker.call("reverse_step", x, 1, eps, sch, z, variance)
        expect_close(expect_tensor(got, name="reverse_step at t = 1", shape=(1, 2), dtype=F64), mean,
                     name=f"reverse_step at t = 1 (variance={variance!r}: no noise at the last step)", rtol=1e-12)


@pytest.mark.judges("train")
@pytest.mark.upstream("test_shapes", "test_schedule_endpoints", "test_q_sample_formula")
def test_training_reduces_the_loss(worker):
    losses = worker.call("short_training", 600)
    if not isinstance(losses, list) or len(losses) != 600:
        fails("train should return one loss per step (a list of floats)")
    first, last = sum(losses[:50]) / 50, sum(losses[-50:]) / 50
    if not last < 0.85 * first:
        fails(f"after 600 steps the loss went from {first:.3f} to {last:.3f}: is the model learning?")
