"""Public checks for the classifiers assignment. Passing them does not mean full marks: the
hidden suite checks the same functions more thoroughly (float64 references, extreme inputs,
statistics, devices, learned quality after training)."""

import math

import pytest
import torch

from autograder.grading.judge import expect_close, expect_finite, expect_tensor, fails

F64 = torch.float64


@pytest.mark.judges("fit_gaussian_classifier", "log_joint", "posterior", "predict")
def test_fit_and_bayes_rule(worker):
    out = worker.call("fitted")
    p = out["params"]
    expect_close(p["log_prior"], torch.log(torch.tensor([0.5, 0.5], dtype=F64)), name="log_prior", rtol=1e-9)
    expect_close(p["means"], torch.tensor([[1 / 3, 1 / 3], [13 / 3, 14 / 3]], dtype=F64), name="means", rtol=1e-9)
    expect_tensor(p["cov"], name="cov", shape=(2, 2), dtype=F64)
    if not torch.allclose(p["cov"], p["cov"].T):
        fails("cov should be symmetric")
    expect_tensor(out["log_joint"], name="log_joint", shape=(6, 2), dtype=F64)
    post = expect_tensor(out["posterior"], name="posterior", shape=(6, 2), dtype=F64)
    expect_close(post.sum(1), torch.ones(6, dtype=F64), name="posterior's row sums", rtol=1e-9)
    pred = expect_tensor(out["predict"], name="predict", shape=(6,), dtype=torch.int64)
    if pred.tolist() != [0, 0, 0, 1, 1, 1]:
        fails("predict should label these well-separated points by their class")
    expect_finite(expect_tensor(out["posterior_far"], name="posterior far from the data", shape=(1, 2)),
                  name="posterior far from the data (use log-sum-exp)")
    expect_tensor(out["samples"], name="sample_class", shape=(5, 2), dtype=F64)


@pytest.mark.judges("cross_entropy")
def test_cross_entropy(worker):
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0]], dtype=F64)
    y = torch.tensor([0, 2])
    out = worker.call("ce", logits, y)
    expected = (torch.logsumexp(logits, 1) - logits[[0, 1], [0, 2]]).mean()
    expect_close(out["loss"], expected, name="cross_entropy", rtol=1e-9)
    expect_tensor(out["grad"], name="the gradient of cross_entropy", shape=(2, 3))


@pytest.mark.judges("TinyCNN", "class_activation_map")
def test_cnn_and_cam(worker):
    out = worker.call("cnn_and_cam")
    expect_tensor(out["logits"], name="TinyCNN", shape=(2, 3))
    expect_tensor(out["features"], name="TinyCNN.features", shape=(2, 6, 6, 6))
    expect_tensor(out["cam"], name="class_activation_map", shape=(2, 12, 12))


@pytest.mark.judges("train_classifier")
@pytest.mark.upstream("test_cross_entropy")
def test_training_lowers_the_loss(worker):
    losses = worker.call("short_training", 200)
    if not isinstance(losses, list) or len(losses) != 200 or not all(isinstance(v, float) for v in losses):
        fails("train_classifier should return its 200 losses as Python floats")
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    if not (math.isfinite(last) and last < 0.5 * first):
        fails("train_classifier: the loss of logistic regression on the digits should fall by half in 200 steps")
