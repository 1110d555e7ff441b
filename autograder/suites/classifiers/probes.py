"""Hidden probes for the classifiers assignment: they run in the sandboxed worker and call
the student's ``classifiers.py``. They measure nothing; the judge (test_classifiers.py) does.

Several probes hand the student's functions models of the grader's own (``RecordingLinear``,
``FixedCNN``) with weights chosen by the judge, so the judge can compute exact float64
references without trusting the student's networks. Held-out data arrive from the judge
only after training, in a second call on the model the first one kept.

``train_classifier`` runs :func:`substituted`: with the grader's ``cross_entropy`` (judged by
test_cross_entropy) in the student's module for the duration of the call, so the tests of the
training loop judge the loop alone.
"""

from __future__ import annotations


import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.sandbox.wire import Raised
from autograder.sandbox.worker import (attempt, attempt_detached, describe, detached, readable_meta, shuffled_weights,
                                        student, substituted)

DIGITS_BATCH = 64


# --------------------------------------------------------------------------- the grader's pieces


def _ref_cross_entropy(logits, y):
    """The handout's mean cross-entropy from the logits (ref_classifiers.py holds it in float64)."""
    return (torch.logsumexp(logits, dim=1) - logits.gather(1, y[:, None])[:, 0]).mean()


# What train_classifier may call that another test judges (never train_classifier or a model class).
UNDER_TRAIN = {"cross_entropy": _ref_cross_entropy}


class FixedCNN(nn.Module):
    """The grader's CNN: the handout's architecture with the judge's weights, exposing
    ``features`` and ``fc`` as TinyCNN does."""

    def __init__(self, weights: dict):
        super().__init__()
        hidden, channels, n_classes = weights["conv1.weight"].shape[0], weights["conv2.weight"].shape[0], weights["fc.weight"].shape[0]
        self.conv1 = nn.Conv2d(1, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, channels, 3, padding=1)
        self.fc = nn.Linear(channels, n_classes)
        self.to(weights["fc.weight"].dtype)
        with torch.no_grad():
            for name, value in weights.items():
                self.get_parameter(name).copy_(value)

    def features(self, x):
        return F.relu(self.conv2(F.max_pool2d(F.relu(self.conv1(x)), 2)))

    def forward(self, x):
        return self.fc(self.features(x).mean((2, 3)))


def _load(model: nn.Module, weights: dict) -> None:
    """The judge's weights into the student's conv1, conv2, fc (same dtype as the weights)."""
    model.to(weights["fc.weight"].dtype)
    with torch.no_grad():
        for name, value in weights.items():
            model.get_parameter(name).copy_(value)


# --------------------------------------------------------------------------- shapes


def shapes(inputs: dict, n_classes: int, n_samples: int) -> dict:
    """Every function's output on the judge's inputs {x, y (a fit), xq, yq, logits, images,
    classes (a batch)}; each
    call gets its own copies, and "inputs_after" says what each call left in them."""
    clf = student("classifiers")
    out, after = {}, {}
    x, y = inputs["x"], inputs["y"]
    params = attempt(lambda: clf.fit_gaussian_classifier(x.clone(), y.clone(), n_classes))
    calls = {
        "fit_gaussian_classifier": (lambda x, y: clf.fit_gaussian_classifier(x, y, n_classes), ["x", "y"]),
        "log_joint": (lambda xq: clf.log_joint(params, xq), ["xq"]),
        "posterior": (lambda xq: clf.posterior(params, xq), ["xq"]),
        "predict": (lambda xq: clf.predict(params, xq), ["xq"]),
        "sample_class": (lambda: clf.sample_class(params, n_classes - 1, n_samples), []),
        "cross_entropy": (lambda logits, yq: clf.cross_entropy(logits, yq), ["logits", "yq"]),
        "LogisticRegression": (lambda xq: clf.LogisticRegression(xq.shape[1], n_classes)(xq), ["xq"]),
        "TinyCNN.features": (lambda images: clf.TinyCNN(n_classes, 4, 6).features(images), ["images"]),
        "TinyCNN": (lambda images: clf.TinyCNN(n_classes, 4, 6)(images), ["images"]),
        "class_activation_map": (lambda images, classes: clf.class_activation_map(clf.TinyCNN(n_classes, 4, 6), images, classes),
                                 ["images", "classes"]),
    }
    for name, (call, args) in calls.items():
        copies = [inputs[a].clone() for a in args]
        out[name] = attempt_detached(lambda: call(*copies))
        after[name] = dict(zip(args, copies))
    out["inputs_after"] = after
    return out


# --------------------------------------------------------------------------- generative


def fit(x, y, n_classes: int, var_floor: float):
    return attempt_detached(lambda: student("classifiers").fit_gaussian_classifier(x, y, n_classes, var_floor=var_floor))


def fit_twice(x, y, n_classes: int, floors: list) -> list:
    clf = student("classifiers")
    return [attempt_detached(lambda: clf.fit_gaussian_classifier(x, y, n_classes, var_floor=f)) for f in floors]


def bayes_rule(params: dict, x) -> dict:
    clf = student("classifiers")
    return {"log_joint": attempt_detached(lambda: clf.log_joint(params, x)),
            "posterior": attempt_detached(lambda: clf.posterior(params, x)),
            "predict": attempt_detached(lambda: clf.predict(params, x))}


def bayes_rules(cases: list) -> list:
    """bayes_rule on each (params, x) in turn, in one process: a result kept from an earlier
    call (a Cholesky factor cached by shape) shows in a later one."""
    return [bayes_rule(params, x) for params, x in cases]


def samples(params: dict, c: int, n: int, seeds: list, other: dict) -> dict:
    """sample_class(params, c, n, generator) once per seed, each with a fresh Generator; then
    the same for another classifier of the same shapes ``other`` (seeds[0]); then
    generator=None under torch.manual_seed(seeds[0]) twice and under seeds[0] + 1."""
    clf = student("classifiers")

    def draw(p, generator):
        return attempt_detached(lambda: clf.sample_class(p, c, n, generator=generator))

    seeded = [draw(params, torch.Generator().manual_seed(int(s))) for s in seeds]
    other_draws = draw(other, torch.Generator().manual_seed(int(seeds[0])))
    global_draws = []
    for s in (seeds[0], seeds[0], seeds[0] + 1):
        torch.manual_seed(int(s))
        global_draws.append(attempt_detached(lambda: clf.sample_class(params, c, n)))
    return {"seeded": seeded, "other": other_draws, "global": global_draws}


def digit_samples(x, y, var_floor: float, per_class: int, seed: int, shift) -> dict:
    """Fit on the judge's (transformed) training digits, then per_class samples of each class
    from a generator seeded with ``seed``; and the same draws again from the fitted parameters
    with ``shift`` (C, D) added to the means, which must move every sample by its class's shift."""
    clf = student("classifiers")
    params = attempt_detached(lambda: clf.fit_gaussian_classifier(x, y, 10, var_floor=var_floor))

    def draw(p):
        g = torch.Generator().manual_seed(seed)
        return attempt_detached(lambda: torch.cat([clf.sample_class(p, c, per_class, generator=g) for c in range(10)]))

    if not isinstance(params, dict) or not isinstance(params.get("means"), torch.Tensor):
        return {"samples": params if isinstance(params, Raised) else draw(params), "moved": None}
    moved = dict(params)
    moved["means"] = params["means"] + shift.to(params["means"].dtype)
    return {"samples": draw(params), "moved": draw(moved)}


# --------------------------------------------------------------------------- discriminative


def ce(logits, y) -> dict:
    """cross_entropy and its gradient with respect to the logits."""
    clf = student("classifiers")
    logits = logits.clone().requires_grad_(True)
    loss = clf.cross_entropy(logits, y)
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.sum().backward()
    return {"loss": detached(loss), "grad": logits.grad}


class RecordingLinear(nn.Module):
    """The grader's linear model, recording every batch ``forward`` sees, grouped by the
    weights it was seen with (a new group each time the weights have changed)."""

    def __init__(self, weight, bias):
        super().__init__()
        self.weight = nn.Parameter(weight.clone())
        self.bias = nn.Parameter(bias.clone())
        self.groups: list[dict] = []

    def weights(self) -> dict:
        return {"weight": self.weight.detach().clone(), "bias": self.bias.detach().clone()}

    def forward(self, x):
        now = self.weights()
        last = self.groups[-1]["weights"] if self.groups else None
        if last is None or any(not torch.equal(now[k], last[k]) for k in now):
            self.groups.append({"weights": now, "batches": []})
        self.groups[-1]["batches"].append(x.detach().clone())
        return x @ self.weight.T + self.bias


def train_mechanics(weight, bias, x, y, steps: int, batch_size: int, lr: float) -> dict:
    clf = student("classifiers")
    model = RecordingLinear(weight, bias)
    with substituted(clf, **UNDER_TRAIN):
        losses = attempt_detached(lambda: clf.train_classifier(model, x, y, steps, batch_size=batch_size, lr=lr))
    return {"losses": losses, "groups": model.groups[: steps + 2], "steps_seen": len(model.groups),
            "final": model.weights()}


def train_seeded(weight, bias, x, y, steps: int, batch_size: int, lr: float, seeds: list) -> list:
    """The first recorded batch of each step of train_classifier run under torch.manual_seed(s)
    for each s (a fresh copy of the grader's linear model each time)."""
    clf = student("classifiers")
    runs = []
    for s in seeds:
        model = RecordingLinear(weight, bias)
        torch.manual_seed(int(s))
        with substituted(clf, **UNDER_TRAIN):
            attempt(lambda: clf.train_classifier(model, x, y, steps, batch_size=batch_size, lr=lr))
        runs.append([grp["batches"][0] for grp in model.groups[:steps]])
    return runs


def cnn_forward(weights: dict, images) -> dict:
    """The student's TinyCNN with the judge's weights loaded: features and logits."""
    clf = student("classifiers")
    hidden, channels, n_classes = weights["conv1.weight"].shape[0], weights["conv2.weight"].shape[0], weights["fc.weight"].shape[0]
    model = clf.TinyCNN(n_classes, hidden, channels)
    _load(model, weights)
    out = {}
    with torch.no_grad():
        for mode in ("train", "eval"):
            model.train(mode == "train")
            out[mode] = {"features": attempt_detached(lambda: model.features(images)),
                         "logits": attempt_detached(lambda: model(images))}
    return out


def cam(weights: dict, images, classes) -> dict:
    clf = student("classifiers")
    model = FixedCNN(weights)
    copy = images.clone()
    with torch.no_grad():
        return {"cam": attempt_detached(lambda: clf.class_activation_map(model, copy, classes)), "images_after": copy}


_TRAINED: dict = {}


def train_digits(seed: int, steps: int, lr: float, x, y) -> list:
    """The student's LogisticRegression(64, 10) trained with the student's train_classifier
    on the judge's (transformed) training digits; kept for :func:`digits_logits`."""
    clf = student("classifiers")
    torch.manual_seed(seed)
    model = clf.LogisticRegression(64, 10)
    with substituted(clf, **UNDER_TRAIN):
        losses = detached(clf.train_classifier(model, x, y, steps, batch_size=DIGITS_BATCH, lr=lr))
    _TRAINED["digits"] = model
    return losses


def digits_logits(x_probe) -> dict:
    """The trained logistic regression on the judge's probe points: in eval() and train() mode,
    and through a copy with its weights shuffled. (No held-out digit enters the worker: the
    judge recovers the affine map from these points and applies it to them itself.)"""
    model = _TRAINED["digits"]
    out = {}
    with torch.no_grad():
        for mode in ("train", "eval"):
            model.train(mode == "train")
            out[mode] = attempt_detached(lambda: model(x_probe))
        twin = attempt(lambda: shuffled_weights(model))
        out["shuffled"] = twin if isinstance(twin, Raised) else attempt_detached(lambda: twin(x_probe))
    return out


def train_planted(seed: int, steps: int, batch_size: int, lr: float, x, y) -> list:
    """The student's TinyCNN() trained with the student's train_classifier on the judge's
    planted images; kept for :func:`planted_heldout`."""
    clf = student("classifiers")
    torch.manual_seed(seed)
    model = clf.TinyCNN()
    with substituted(clf, **UNDER_TRAIN):
        losses = detached(clf.train_classifier(model, x, y, steps, batch_size=batch_size, lr=lr))
    _TRAINED["planted"] = model
    return losses


def planted_heldout(images, labels) -> dict:
    """The trained CNN on the judge's held-out images: logits, raw features, the fc weights,
    the student's CAM for each image's true class, and the logits and CAM of a copy of the
    network with its weights shuffled."""
    clf = student("classifiers")
    model = _TRAINED["planted"]
    model.eval()
    with torch.no_grad():
        out = {"logits": attempt_detached(lambda: model(images)), "features": attempt_detached(lambda: model.features(images)),
               "fc_weight": attempt_detached(lambda: model.fc.weight.detach().clone()),
               "cam": attempt_detached(lambda: clf.class_activation_map(model, images, labels))}
        twin = attempt(lambda: shuffled_weights(model))
        if isinstance(twin, Raised):
            out["shuffled_logits"] = out["shuffled_cam"] = twin
        else:
            out["shuffled_logits"] = attempt_detached(lambda: twin(images))
            out["shuffled_cam"] = attempt_detached(lambda: clf.class_activation_map(twin, images, labels))
    return out


def fit_mixture(seed: int, sets: list, steps: int, batch_size: int, lr: float) -> int:
    """For each training set (x, y) of the 2-D data: the student's Gaussian classifier and a
    LogisticRegression(2, 2) trained with the student's train_classifier; kept for
    :func:`mixture_heldout`."""
    clf = student("classifiers")
    kept = []
    for i, (x, y) in enumerate(sets):
        params = attempt_detached(lambda: clf.fit_gaussian_classifier(x, y, 2))
        torch.manual_seed(seed + i)
        model = clf.LogisticRegression(2, 2).double()
        with substituted(clf, **UNDER_TRAIN):
            losses = attempt(lambda: clf.train_classifier(model, x, y, steps, batch_size=batch_size, lr=lr))
        kept.append((params, model, losses))
    _TRAINED["mixture"] = kept
    return len(kept)


def _negated(module):
    """A copy of ``module`` with every parameter negated: a linear model's logits change sign
    (its rule flips); outputs that ignore the parameters stay the same. (Shuffling the six
    numbers of a 2-D logistic regression can leave its rule nearly as it was.)"""
    import copy

    twin = copy.deepcopy(module)
    with torch.no_grad():
        for p in twin.parameters():
            p.neg_()
    return twin


def mixture_heldout(x_held) -> list:
    """Per training set: the Gaussian classifier's parameters, the logistic regression's
    logits on the judge's held-out points, and those of a copy with its parameters negated."""
    out = []
    for params, model, losses in _TRAINED["mixture"]:
        model.eval()
        with torch.no_grad():
            logits = attempt_detached(lambda: model(x_held))
            twin = attempt(lambda: _negated(model))
            negated = twin if isinstance(twin, Raised) else attempt_detached(lambda: twin(x_held))
        out.append({"params": params, "logits": logits, "negated": negated, "trained": not isinstance(losses, Raised)})
    return out


# --------------------------------------------------------------------------- devices


def parity(device: str, dtype_name: str, inputs: dict, cnn: dict, gaussian: dict) -> dict:
    """Every function on `device` in `dtype`; on 'meta' every output must stay a meta tensor.
    Bayes' rule and sampling use the judge's parameters ``gaussian`` (the fit selects each
    class's rows, which no meta tensor can do: the fit is judged on the CPU and accelerators)."""
    clf = student("classifiers")
    dtype = getattr(torch, dtype_name)
    x = inputs["x"].to(device=device, dtype=dtype)
    y = inputs["y"].to(device)
    logits = inputs["logits"].to(device=device, dtype=dtype)
    images = inputs["images"].to(device=device, dtype=dtype)
    classes = inputs["classes"].to(device)
    fixed = FixedCNN({k: v.to(dtype) for k, v in cnn.items()}).to(device)
    out = {}
    if device != "meta":
        out["fit_gaussian_classifier"] = attempt_detached(lambda: clf.fit_gaussian_classifier(x, y, 3))
    params = {k: v.to(device=device, dtype=dtype) for k, v in gaussian.items()}
    out["log_joint"] = attempt_detached(lambda: clf.log_joint(params, x))
    out["posterior"] = attempt_detached(lambda: clf.posterior(params, x))
    out["predict"] = attempt_detached(lambda: clf.predict(params, x))
    out["sample_class"] = attempt_detached(lambda: clf.sample_class(params, 1, 4))
    out["cross_entropy"] = attempt_detached(lambda: clf.cross_entropy(logits, y))
    out["class_activation_map"] = attempt_detached(lambda: clf.class_activation_map(fixed, images, classes))
    torch.manual_seed(torch.initial_seed())
    try:
        lr_model = clf.LogisticRegression(x.shape[1], 3).to(device=device, dtype=dtype)
        cnn_model = clf.TinyCNN(3, 4, 5).to(device=device, dtype=dtype)
    except Exception as error:  # noqa: BLE001
        out["LogisticRegression"] = out["TinyCNN"] = Raised(describe(error))
    else:
        with torch.no_grad():
            out["LogisticRegression"] = attempt_detached(lambda: lr_model(x))
            out["TinyCNN"] = attempt_detached(lambda: cnn_model(images))
    return out


def train_on(device: str) -> object:
    """Two steps of the student's train_classifier on the student's TinyCNN and data on
    `device` (on 'meta' under ``readable_meta``)."""
    clf = student("classifiers")
    model = clf.TinyCNN(3, 4, 5).to(device)
    x = torch.randn(10, 1, 6, 8).to(device)
    y = (torch.arange(10) % 3).to(device)
    if device != "meta":
        return attempt(lambda: clf.train_classifier(model, x, y, 2, batch_size=4, lr=1e-3))
    with readable_meta():
        return attempt(lambda: clf.train_classifier(model, x, y, 2, batch_size=4, lr=1e-3))
