"""Hidden probes for the diffusion assignment: they run in the sandboxed worker and call the
student's ``diffusion.py``. They measure nothing; the judge (test_diffusion.py) does.

The grader's models here are built from what the judge sends in the call that needs them
and hold nothing else: ``SmallEps`` (a tiny network whose weights the judge draws) and
``MixtureEps``, the exact noise predictor of a Gaussian mixture, built from the mixture's
parameters only in the probe calls that drive the student's samplers with it. Those
mixtures are drawn by the judge from the test's seed; the mixture a student's network is
trained on in ``train_toy`` reaches the worker only as samples, so nothing in the worker
can hand a student's training the exact answer.

A probe that runs a student function downstream of another (``diffusion_loss`` calls
``q_sample``, ``train`` calls ``diffusion_loss``) runs it :func:`substituted`: the grader's
``q_sample`` (judged by test_q_sample) and, under ``train``, the grader's ``diffusion_loss``
(judged by test_loss) are in the student's module for the duration of the call, so each test
judges its own function.
"""

from __future__ import annotations


import torch
import torch.nn as nn

from autograder.sandbox.wire import Raised
from autograder.sandbox.worker import (attempt, attempt_detached, describe, detached, readable_meta, shuffled_weights,
                                        student, substituted)

T_TRAIN = 100          # steps of the linear schedule the quality probes use
TOY_HIDDEN = 128
DIGITS_HIDDEN = 256


# --------------------------------------------------------------------------- the grader's pieces
# The handout's definitions, exactly (ref_diffusion.py holds the same maths in float64).


def _ref_q_sample(x0, t, alpha_bars, noise=None):
    if noise is None:
        noise = torch.randn_like(x0)
    a = alpha_bars[t].unsqueeze(-1)
    return a.sqrt().to(x0.dtype) * x0 + (1 - a).sqrt().to(x0.dtype) * noise


def _ref_diffusion_loss(model, x0, alpha_bars, t=None, noise=None):
    T = alpha_bars.shape[0] - 1
    if t is None:
        t = torch.randint(1, T + 1, (x0.shape[0],), device=x0.device)
    if noise is None:
        noise = torch.randn_like(x0)
    return ((noise - model(_ref_q_sample(x0, t, alpha_bars, noise), t)) ** 2).mean()


# What diffusion_loss and train may call that another test judges; never train, a sampler, the
# network or the schedules (the probes call those themselves).
UNDER_LOSS = {"q_sample": _ref_q_sample}
UNDER_TRAIN = {**UNDER_LOSS, "diffusion_loss": _ref_diffusion_loss}


def _to(sch: dict, device="cpu", dtype=None) -> dict:
    return {k: v.to(device=device, dtype=dtype or v.dtype) for k, v in sch.items()}


# --------------------------------------------------------------------------- the grader's models


class SmallEps(nn.Module):
    """eps = tanh(x W1 + E[t]) W2 + b2, weights from the judge (ref_diffusion.small_weights).
    ``record``: keep every (x_t, t) it is called with."""

    def __init__(self, weights: dict, record: bool = False):
        super().__init__()
        self.names = sorted(weights)
        for name in self.names:
            setattr(self, name, nn.Parameter(weights[name].clone()))
        self.record = record
        self.calls: list[dict] = []

    def forward(self, x, t):
        if self.record:
            self.calls.append({"x": x.detach().clone(), "t": t.detach().clone() if isinstance(t, torch.Tensor) else t})
        return torch.tanh(x @ self.w1 + self.emb[t]) @ self.w2 + self.b2


class MixtureEps(nn.Module):
    """The exact noise predictor of a Gaussian mixture {means (K, 2), stds (K,), weights (K,)}
    under the schedule alpha_bars (T + 1,) (see ref_diffusion.mixture_eps). It records the
    first ``keep`` rows of every x_t and the t it is called with."""

    def __init__(self, mix: dict, alpha_bars, keep: int = 0, dtype=torch.float64):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1, dtype=dtype))   # the dtype and device samplers read
        self.register_buffer("means", mix["means"].to(dtype))
        self.register_buffer("stds", mix["stds"].to(dtype))
        self.register_buffer("weights", mix["weights"].to(dtype))
        self.register_buffer("alpha_bars", alpha_bars.to(dtype))
        self.keep = keep
        self.calls: list[dict] = []

    def forward(self, x, t):
        if self.keep:
            self.calls.append({"x": x[: self.keep].detach().clone(),
                               "t": t.detach().clone()[: self.keep] if isinstance(t, torch.Tensor) else t})
        abar = self.alpha_bars[t].reshape(-1, 1, 1)                          # (B, 1, 1)
        centres = abar.sqrt() * self.means                                   # (B, K, 2)
        v = abar[..., 0] * self.stds ** 2 + (1 - abar[..., 0])               # (B, K)
        d2 = ((x[:, None, :] - centres) ** 2).sum(-1)
        r = torch.softmax(torch.log(self.weights) - torch.log(v) - 0.5 * d2 / v, dim=1)
        return (1 - abar[..., 0]).sqrt() * (r[..., None] * (x[:, None, :] - centres) / v[..., None]).sum(1)


# --------------------------------------------------------------------------- shapes


def shapes(batch: int, dim: int, T: int, inputs: dict, weights: dict) -> dict:
    """Every function's output on the judge's inputs {x0, x_t, t, noise, eps, z, betas,
    alpha_bars, schedule}; each call gets its own copy of them, and "inputs_after" says what
    each call left in its copy (a function must not change its inputs)."""
    d = student("diffusion")
    small = SmallEps(weights).float()

    def model():
        return d.EpsModel(dim=dim, hidden=16, emb_dim=8)

    step = max(2, T // 2)
    calls = {
        "linear_betas": (lambda: d.linear_betas(T), []),
        "cosine_betas": (lambda: d.cosine_betas(T), []),
        "make_schedule": (lambda betas: d.make_schedule(betas), ["betas"]),
        "q_sample": (lambda x0, t, a, noise: d.q_sample(x0, t, a, noise), ["x0", "t", "alpha_bars", "noise"]),
        "time_embedding": (lambda t: d.time_embedding(t, 6), ["t"]),
        "EpsModel": (lambda x_t, t: model()(x_t, t), ["x_t", "t"]),
        "diffusion_loss": (lambda x0, a: d.diffusion_loss(small, x0, a), ["x0", "alpha_bars"]),
        "reverse_step": (lambda x_t, eps, z: d.reverse_step(x_t, step, eps, inputs["schedule"], z), ["x_t", "eps", "z"]),
        "sample": (lambda: d.sample(small, inputs["schedule"], batch, dim), []),
        "ddim_sample": (lambda x_t: d.ddim_sample(small, inputs["schedule"], x_t, 3), ["x_t"]),
    }
    out, after = {}, {}
    for name, (call, args) in calls.items():
        copies = [inputs[a].clone() for a in args]
        out[name] = attempt_detached(lambda: call(*copies))
        after[name] = dict(zip(args, copies))
    out["inputs_after"] = after
    return out


def model_outputs(dim: int, x, ts: list) -> list:
    """The student's EpsModel(dim) (one set of initial weights) on the same x at several t."""
    model = student("diffusion").EpsModel(dim=dim)
    with torch.no_grad():
        return [attempt_detached(lambda: model(x, torch.full((x.shape[0],), int(t), dtype=torch.long))) for t in ts]


def model_rows(dim: int, x, x2, t) -> dict:
    """The student's EpsModel(dim) (one set of initial weights) on (x, t) with a different
    step per row, on (x, t_i) for each distinct step t_i of t, and on (x2, t) and
    ((x + x2) / 2, t)."""
    model = student("diffusion").EpsModel(dim=dim)
    model.eval()
    with torch.no_grad():
        return {"mixed": attempt_detached(lambda: model(x.clone(), t.clone())),
                "each": [attempt_detached(lambda: model(x.clone(), torch.full_like(t, int(s))))
                         for s in t.unique().tolist()],
                "other": attempt_detached(lambda: model(x2.clone(), t.clone())),
                "middle": attempt_detached(lambda: model((x + x2) / 2, t.clone()))}


def model_modes(dim: int, x, t) -> dict:
    """The student's EpsModel(dim) on the same (x, t) in train() mode, twice, and in eval() mode."""
    model = student("diffusion").EpsModel(dim=dim)
    out = {}
    with torch.no_grad():
        for name, train in (("train", True), ("train_again", True), ("eval", False)):
            model.train(train)
            out[name] = attempt_detached(lambda: model(x.clone(), t.clone()))
    return out


# --------------------------------------------------------------------------- maths


def schedules(T: int, linear: list, cosine: list, betas) -> dict:
    """linear_betas(T, *linear), cosine_betas(T, *cosine), make_schedule(betas)."""
    d = student("diffusion")
    copy = betas.clone()
    return {"linear": attempt_detached(lambda: d.linear_betas(T, *linear)),
            "cosine": attempt_detached(lambda: d.cosine_betas(T, *cosine)),
            "schedule": attempt_detached(lambda: d.make_schedule(copy)),
            "betas_after": copy}


def q_sample_given(x0, t, alpha_bars, noise):
    return student("diffusion").q_sample(x0, t, alpha_bars, noise)


def q_sample_draws(x0, t, alpha_bars, calls: int) -> list:
    """`calls` calls of q_sample(x0, t, alpha_bars) with noise drawn by the student."""
    d = student("diffusion")
    return [attempt_detached(lambda: d.q_sample(x0, t, alpha_bars)) for _ in range(calls)]


def embedding(t, dim: int):
    return student("diffusion").time_embedding(t, dim)


def loss_given(weights, x0, alpha_bars, t, noise):
    d = student("diffusion")
    model = SmallEps(weights)
    with substituted(d, **UNDER_LOSS):
        return attempt_detached(lambda: d.diffusion_loss(model, x0, alpha_bars, t, noise))


def loss_draws(weights, x0, alpha_bars, calls: int) -> dict:
    """`calls` calls of diffusion_loss(model, x0, alpha_bars) (t and noise drawn by the
    student) on the grader's recording model: the losses and what the model was shown."""
    d = student("diffusion")
    model = SmallEps(weights, record=True)
    losses = []
    with torch.no_grad(), substituted(d, **UNDER_LOSS):
        for _ in range(calls):
            losses.append(attempt_detached(lambda: d.diffusion_loss(model, x0, alpha_bars)))
    return {"losses": losses, "calls": model.calls[: calls + 1]}


def reverse(x_t, t: int, eps, schedule, z, variance: str):
    copies = [x_t.clone(), eps.clone(), z.clone()]
    out = attempt_detached(lambda: student("diffusion").reverse_step(copies[0], t, copies[1], schedule, copies[2],
                                                             variance=variance))
    return {"x": out, "after": copies}


# --------------------------------------------------------------------------- samplers on the exact model


def exact_sampler(mix: dict, schedule: dict, n: int, variance: str, keep: int) -> dict:
    """The student's ``sample`` driven by the exact noise predictor of the judge's mixture:
    its samples, and the first `keep` rows of every x_t (and t) the model was shown."""
    model = MixtureEps(mix, schedule["alpha_bars"], keep=keep)
    samples = attempt_detached(lambda: student("diffusion").sample(model, schedule, n, 2, variance=variance))
    return {"samples": samples, "calls": model.calls[: schedule["betas"].shape[0] + 1]}


def exact_ddim(mix: dict, schedule: dict, x_T, steps: int) -> dict:
    """The student's ``ddim_sample`` from the judge's x_T, driven by the exact noise predictor."""
    model = MixtureEps(mix, schedule["alpha_bars"], keep=x_T.shape[0])
    start = x_T.clone()
    out = attempt_detached(lambda: student("diffusion").ddim_sample(model, schedule, start, steps))
    return {"x0": out, "ts": [c["t"] for c in model.calls[: steps + 2]], "after": start}


# --------------------------------------------------------------------------- the prior, state and seeds


class ZeroEps(nn.Module):
    """eps = 0 at every step, recording every x_t it is shown (in the dtype of its one parameter)."""

    def __init__(self, dtype=torch.float64):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1, dtype=dtype))
        self.calls: list = []

    def forward(self, x, t):
        self.calls.append(x.detach().clone())
        return x * 0


def prior_draws(schedule: dict, n: int, dim: int) -> dict:
    """Two calls of the student's sample(ZeroEps, schedule (T = 2), n, dim): the x_T and x_1
    the model was shown in each (x_1 - x_2 / sqrt(alpha_2) is the step's noise)."""
    d = student("diffusion")
    out = []
    for _ in range(2):
        model = ZeroEps()
        done = attempt_detached(lambda: d.sample(model, schedule, n, dim))
        out.append({"error": done if isinstance(done, Raised) else None, "calls": model.calls[:3]})
    return {"first": out[0], "second": out[1]}


def seeded_calls(function: str, seed: int, inputs: dict) -> list:
    """The student's function run under torch.manual_seed(seed), again under the same seed, and
    under seed + 1, drawing its randomness from torch's global generator (generator=None)."""
    d = student("diffusion")
    calls = {
        "q_sample": lambda: d.q_sample(inputs["x0"].clone(), inputs["t"].clone(), inputs["alpha_bars"]),
        "diffusion_loss": lambda: d.diffusion_loss(SmallEps(inputs["weights"]), inputs["x0"].clone(),
                                                   inputs["alpha_bars"]),
        "sample": lambda: d.sample(MixtureEps(inputs["mix"], inputs["schedule"]["alpha_bars"]), inputs["schedule"],
                                   inputs["n"], 2),
        "train": lambda: d.train(SmallEps(inputs["weights"]), inputs["data"].clone(), inputs["alpha_bars"],
                                 inputs["steps"], batch_size=inputs["batch_size"], lr=inputs["lr"]),
    }
    pieces = {"diffusion_loss": UNDER_LOSS, "train": UNDER_TRAIN}.get(function, {})
    out = []
    for s in (seed, seed, seed + 1):
        torch.manual_seed(s)
        with torch.no_grad() if function != "train" else torch.enable_grad(), substituted(d, **pieces):
            out.append(attempt_detached(calls[function]))
    return out


def ddim_small(weights: dict, schedule: dict, x_T, steps: int):
    """The student's ddim_sample from the judge's x_T with the grader's SmallEps in x_T's dtype."""
    model = SmallEps({k: v.to(x_T.dtype) for k, v in weights.items()})
    return attempt_detached(lambda: student("diffusion").ddim_sample(model, schedule, x_T.clone(), steps))


# --------------------------------------------------------------------------- devices


def parity(device: str, dtype_name: str, weights: dict, mix: dict, schedule: dict, inputs: dict) -> dict:
    """The same computations on `device` in `dtype`; on 'meta' every output must stay a meta tensor."""
    d = student("diffusion")
    dtype = getattr(torch, dtype_name)
    x = {k: (v.to(device) if v.dtype == torch.long else v.to(device=device, dtype=dtype)) for k, v in inputs.items()}
    sch = _to(schedule, device)
    small = SmallEps({k: v.to(dtype) for k, v in weights.items()}).to(device)
    exact = MixtureEps(mix, schedule["alpha_bars"], dtype=dtype).to(device)
    torch.manual_seed(torch.initial_seed())   # the same initial weights on every device
    with torch.no_grad():
        out = {
            "q_sample": attempt_detached(lambda: d.q_sample(x["x0"], x["t"], sch["alpha_bars"], x["noise"])),
            "time_embedding": attempt_detached(lambda: d.time_embedding(x["t"], 8)),
            "diffusion_loss": attempt_detached(lambda: d.diffusion_loss(small, x["x0"], sch["alpha_bars"])),
            "reverse_step": attempt_detached(lambda: d.reverse_step(x["x_t"], 3, x["eps"], sch, x["z"])),
            "sample": attempt_detached(lambda: d.sample(exact, sch, 5, 2)),
            "ddim_sample": attempt_detached(lambda: d.ddim_sample(exact, sch, x["x_t"], 4)),
        }
        try:
            model = d.EpsModel(dim=2, hidden=16, emb_dim=8).to(device=device, dtype=dtype)
        except Exception as error:  # noqa: BLE001
            out["EpsModel"] = Raised(describe(error))
        else:
            out["EpsModel"] = attempt_detached(lambda: model(x["x_t"], x["t"]))
    return out


def train_on(device: str) -> object:
    """Two steps of the student's train on the student's network and data on `device` (on
    'meta' under ``readable_meta``)."""
    d = student("diffusion")
    model = d.EpsModel(dim=2, hidden=16, emb_dim=8).to(device)
    data = torch.randn(20, 2).to(device)
    abar = torch.cumprod(1 - torch.linspace(0.01, 0.2, 11, dtype=torch.float64), 0)
    abar = torch.cat([torch.ones(1, dtype=torch.float64), abar[1:]]).to(device)
    if device != "meta":
        return attempt(lambda: d.train(model, data, abar, 2, batch_size=5, lr=1e-3))
    with readable_meta():
        return attempt(lambda: d.train(model, data, abar, 2, batch_size=5, lr=1e-3))


# --------------------------------------------------------------------------- training


class RecordingEps(SmallEps):
    """The grader's model, recording every (x_t, t) the student's train shows it, grouped by
    the weights it was seen with (a new group each time the weights have changed)."""

    def __init__(self, weights: dict):
        super().__init__(weights)
        self.groups: list[dict] = []

    def weights(self) -> dict:
        return {name: getattr(self, name).detach().clone() for name in self.names}

    def forward(self, x, t):
        now = self.weights()
        last = self.groups[-1]["weights"] if self.groups else None
        if last is None or any(not torch.equal(now[k], last[k]) for k in now):
            self.groups.append({"weights": now, "calls": []})
        self.groups[-1]["calls"].append({"x": x.detach().clone(),
                                         "t": t.detach().clone() if isinstance(t, torch.Tensor) else t})
        return super().forward(x, t)


def train_mechanics(weights, data, alpha_bars, steps: int, batch_size: int, lr: float) -> dict:
    d = student("diffusion")
    model = RecordingEps(weights)
    with substituted(d, **UNDER_TRAIN):
        losses = attempt_detached(lambda: d.train(model, data, alpha_bars, steps, batch_size=batch_size, lr=lr))
    return {"losses": losses, "groups": model.groups[: steps + 2], "steps_seen": len(model.groups),
            "final": model.weights()}


def _schedule_of(d):
    return d.make_schedule(d.linear_betas(T_TRAIN))


class Watched(nn.Module):
    """The student's trained network, unchanged, with the first ``keep`` rows of every x_t
    it is shown kept (the reverse trajectory, for the feedback picture)."""

    def __init__(self, model, keep: int):
        super().__init__()
        self.model, self.keep, self.calls = model, keep, []

    def forward(self, x, t):
        if self.keep:
            self.calls.append(x[: self.keep].detach().clone())
        return self.model(x, t)


def _generate(d, model, sch, x_T, zs):
    """The ancestral sampler written out with the student's reverse_step and the student's
    network, from the judge's x_T and per-step noise zs[T - t] (t = T..2; t = 1 adds none)."""
    T = sch["betas"].shape[0] - 1
    x = x_T.clone()
    with torch.no_grad():
        for t in range(T, 0, -1):
            steps = torch.full((x.shape[0],), t, dtype=torch.long)
            z = zs[T - t] if t > 1 else torch.zeros_like(x)
            x = d.reverse_step(x, t, model(x, steps), sch, z.clone())
    return x


def _quality_runs(d, model, sch, seed: int, x_T, zs, dim: int, keep: int = 0) -> dict:
    """After training: the judge's generation (x_T and noise from the judge, through the
    student's trained network and reverse_step) and the student's own ``sample``, each on the
    trained network and on a copy with its weights shuffled (``shuffled_weights``)."""
    model.eval()
    twin = shuffled_weights(model, generator=torch.Generator().manual_seed(seed + 7))
    out = {"guided": attempt_detached(lambda: _generate(d, model, sch, x_T, zs)),
           "guided_shuffled": attempt_detached(lambda: _generate(d, twin, sch, x_T, zs))}
    torch.manual_seed(seed + 1)
    watched = Watched(model, keep=keep)
    out["samples"] = attempt_detached(lambda: d.sample(watched, sch, x_T.shape[0], dim))
    out["trajectory"] = [x for x in watched.calls[:: 10][:12]] if keep else []
    torch.manual_seed(seed + 1)
    out["samples_shuffled"] = attempt_detached(lambda: d.sample(twin, sch, x_T.shape[0], dim))
    return out


def train_toy(seed: int, data, steps: int, batch_size: int, lr: float, x_T, zs) -> dict:
    """The student's EpsModel(dim=2) trained by the student's train on the judge's samples of
    this grading's hidden 2-D mixture (the worker never sees its parameters), then the runs of
    ``_quality_runs``; the first rows of the student's reverse trajectory for the feedback."""
    d = student("diffusion")
    torch.manual_seed(seed)
    sch = _schedule_of(d)
    model = d.EpsModel(dim=2, hidden=TOY_HIDDEN)
    with substituted(d, **UNDER_TRAIN):   # the grader's loss: the student's train must learn
        losses = detached(d.train(model, data, sch["alpha_bars"], steps, batch_size=batch_size, lr=lr))
    return {"losses": losses, **_quality_runs(d, model, sch, seed, x_T, zs, 2, keep=300)}


def train_digits(seed: int, data, steps: int, batch_size: int, lr: float, x_T, zs) -> dict:
    """The student's EpsModel(dim=64) trained by the student's train on the judge's training
    digits (scaled to [-1, 1], under this grading's hidden pixel permutation), then the runs
    of ``_quality_runs``; also the student's q_sample on one training row at several t (the
    forward process, for the feedback)."""
    d = student("diffusion")
    torch.manual_seed(seed)
    sch = _schedule_of(d)
    model = d.EpsModel(dim=64, hidden=DIGITS_HIDDEN)
    with substituted(d, **UNDER_TRAIN):   # the grader's loss: the student's train must learn
        losses = detached(d.train(model, data, sch["alpha_bars"], steps, batch_size=batch_size, lr=lr))
    out = {"losses": losses, **_quality_runs(d, model, sch, seed, x_T, zs, 64)}
    ts = torch.tensor([1, 5, 10, 20, 30, 45, 60, 80, 100])
    out["forward"] = attempt_detached(lambda: d.q_sample(data[:1].repeat(len(ts), 1), ts, sch["alpha_bars"]))
    out["forward_t"] = ts
    return out
