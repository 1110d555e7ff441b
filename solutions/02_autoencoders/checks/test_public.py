"""Public checks for the autoencoders assignment. Passing them does not mean full marks: the
hidden suite checks the same functions more thoroughly (float64 references, statistics,
devices, training mechanics, learned quality against exact optima)."""

import pytest
import torch

from autograder.grading.judge import expect_close, expect_finite, expect_tensor, fails


@pytest.mark.judges("Autoencoder")
def test_shapes(worker):
    out = worker.call("shapes")
    for name, shape in {"encode": (5, 3), "decode": (5, 64), "forward": (5, 64), "linear_encode": (5, 3),
                        "linear_forward": (5, 64), "recon": (5,), "gaussian": (5, 64), "masking": (5, 64),
                        "reconstruct": (5, 64), "random": (7, 64), "fitted": (7, 64)}.items():
        expect_tensor(out[name], name=name, shape=shape)


@pytest.mark.judges("reconstruction_loss")
def test_reconstruction_loss_sums_over_pixels(worker):
    x_hat = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5]], dtype=torch.float64)
    got = expect_tensor(worker.call("recon", x_hat, x), name="reconstruction_loss", shape=(2,), dtype=torch.float64)
    # (0 + 4 + 9, 3 * 0.25), worked by hand (see the handout).
    expect_close(got, torch.tensor([13.0, 0.75], dtype=torch.float64), name="reconstruction_loss", atol=1e-12)


@pytest.mark.judges("gaussian_noise", "masking_noise")
def test_corruption_basics(worker):
    x = torch.rand(200, 64, dtype=torch.float64) + 0.1
    out = worker.call("noise", x, 0.5, 0.3)
    g = expect_tensor(out["gaussian"], name="gaussian_noise", shape=(200, 64), dtype=torch.float64)
    m = expect_tensor(out["masking"], name="masking_noise", shape=(200, 64), dtype=torch.float64)
    expect_close(out["x_after"], x, name="x after the corruptions (never change x in place)", atol=0)
    std = float((g - x).std())
    if not 0.45 < std < 0.55:
        fails(f"gaussian_noise(x, 0.5): the noise's standard deviation is {std:.3f}, not 0.5")
    zeroed = float((m == 0).double().mean())
    if not 0.25 < zeroed < 0.35:
        fails(f"masking_noise(x, 0.3): {zeroed:.2f} of the pixels are zeroed, not about 0.3")


@pytest.mark.judges("LinearAutoencoder")
def test_linear_autoencoder_is_centred(worker):
    out = worker.call("linear_centred")
    expect_close(out["encode_mean"], torch.zeros(1, 4), name="LinearAutoencoder.encode(mean)", atol=1e-5)
    expect_close(out["decode_zero"], out["mean"].unsqueeze(0), name="LinearAutoencoder.decode(0)", atol=1e-5)


@pytest.mark.judges("train")
@pytest.mark.upstream("test_shapes", "test_reconstruction_loss_sums_over_pixels", "test_corruption_basics")
def test_denoising_loss_goes_down(worker):
    losses = worker.call("short_denoising", 200)
    if not isinstance(losses, list) or len(losses) != 200:
        fails("train should return its 200 losses as a list of floats")
    t = expect_finite(torch.tensor(losses), name="train's losses")
    if float(t[-20:].mean()) > 0.7 * float(t[:20].mean()):
        fails("train: the denoising loss hardly goes down in 200 steps")
