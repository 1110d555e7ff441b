"""Probes for the public checks (they run your gan.py in a separate worker process)."""
import torch
from torch import nn

from autograder.sandbox.worker import student


def shapes():
    gan = student("gan")
    G, D = gan.Generator(4, 2, 16), gan.Discriminator(2, 16)
    z = torch.randn(10, 4)
    x = G(z)
    return {"x": x.detach(), "logits": D(x).detach(), "x_sig": gan.Generator(4, 64, 16, "sigmoid")(z).detach()}


def losses(real_logits, fake_logits):
    gan = student("gan")
    return {"d": gan.discriminator_loss(real_logits, fake_logits),
            "g": gan.generator_loss(fake_logits),
            "g_sat": gan.generator_loss(fake_logits, saturating=True)}


class _TinyG(nn.Module):
    def __init__(self):
        super().__init__()
        self.z_dim, self.x_dim = 2, 2
        self.lin = nn.Linear(2, 2)

    def forward(self, z):
        return self.lin(z)


def isolation():
    """Does the discriminator's step leave G alone, and the generator's step leave D alone?"""
    gan = student("gan")
    G, D = _TinyG(), nn.Sequential(nn.Linear(2, 1), nn.Flatten(0))
    opt_g, opt_d = torch.optim.SGD(G.parameters(), lr=0.1), torch.optim.SGD(D.parameters(), lr=0.1)
    g0 = [p.detach().clone() for p in G.parameters()]
    d0 = [p.detach().clone() for p in D.parameters()]
    gan.discriminator_step(G, D, opt_d, torch.randn(8, 2))
    g_after_d = [p.detach().clone() for p in G.parameters()]
    g_grads = [None if p.grad is None else p.grad.clone() for p in G.parameters()]
    d_after_d = [p.detach().clone() for p in D.parameters()]
    gan.generator_step(G, D, opt_g, 8)
    return {"g0": g0, "d0": d0, "g_after_d": g_after_d, "g_grads": g_grads, "d_after_d": d_after_d,
            "d_after_g": [p.detach().clone() for p in D.parameters()],
            "g_after_g": [p.detach().clone() for p in G.parameters()]}


def short_training(steps):
    gan = student("gan")
    from kitdata import toy2d

    x = torch.from_numpy(toy2d.ring8().sample(2048)).float()
    G, D, history = gan.train(x, steps, z_dim=2, hidden=32, batch_size=64)
    return {"history": history, "samples": gan.sample(G, 500), "data": x[:500]}


def noise_and_optimizers():
    """sample_noise's draw for a float64 generator, and what make_optimizers returns."""
    gan = student("gan")
    G, D = gan.Generator(3, 2, 16).double(), gan.Discriminator(2, 16)
    opts = gan.make_optimizers(G, D, lr=2e-3)
    kinds = [type(o).__name__ for o in opts] if isinstance(opts, (tuple, list)) else [type(opts).__name__]
    ids = [{id(p) for group in o.param_groups for p in group["params"]} for o in opts] if len(kinds) == 2 else []
    return {"noise": gan.sample_noise(G, 5), "kinds": kinds,
            "lrs": [o.param_groups[0]["lr"] for o in opts] if ids else [],
            "own": ids == [{id(p) for p in G.parameters()}, {id(p) for p in D.parameters()}]}
