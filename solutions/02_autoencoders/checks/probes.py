"""Public-check probes: they run your autoencoders.py in the grader's worker, exactly as the
hidden suite does. Run them with  `autograder check assignments/02_autoencoders`."""

from __future__ import annotations

import torch

from autograder.sandbox.worker import student


def shapes() -> dict:
    ae = student("autoencoders")
    x = torch.rand(5, 64)
    model = ae.Autoencoder(x_dim=64, z_dim=3, hidden=32)
    linear = ae.LinearAutoencoder(x_dim=64, z_dim=3, mean=x.mean(0))
    with torch.no_grad():
        return {
            "encode": model.encode(x), "decode": model.decode(torch.randn(5, 3)), "forward": model(x),
            "linear_encode": linear.encode(x), "linear_forward": linear(x),
            "recon": ae.reconstruction_loss(torch.zeros(5, 64), x),
            "gaussian": ae.gaussian_noise(x, 0.5), "masking": ae.masking_noise(x, 0.5),
            "reconstruct": ae.reconstruct(model, x),
            "random": ae.sample_random_latents(model, 7),
            "fitted": ae.sample_fitted_latents(model, torch.randn(50, 3), 7),
        }


def recon(x_hat, x):
    return student("autoencoders").reconstruction_loss(x_hat, x)


def noise(x, sigma: float, p: float) -> dict:
    ae = student("autoencoders")
    return {"gaussian": ae.gaussian_noise(x, sigma), "masking": ae.masking_noise(x, p), "x_after": x}


def linear_centred() -> dict:
    ae = student("autoencoders")
    mean = torch.rand(64)
    model = ae.LinearAutoencoder(x_dim=64, z_dim=4, mean=mean)
    with torch.no_grad():
        return {"encode_mean": model.encode(mean.unsqueeze(0)), "decode_zero": model.decode(torch.zeros(1, 4)),
                "mean": mean}


def short_denoising(steps: int) -> list:
    import kitdata.digits

    ae = student("autoencoders")
    model = ae.Autoencoder(x_dim=64, z_dim=16, hidden=128)
    data = torch.from_numpy(kitdata.digits.load_digits("train")[0])
    return ae.train(model, data, steps, batch_size=64, lr=2e-3, corrupt=lambda x: ae.gaussian_noise(x, 0.4))
