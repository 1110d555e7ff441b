"""Public-check probes: they run your classifiers.py in the grader's worker, exactly as the
hidden suite does. Run them with  `autograder check assignments/01_generative_vs_discriminative`."""

from __future__ import annotations

import torch

from autograder.sandbox.worker import student


def fitted() -> dict:
    """A fit on six 2-D points of two classes, and the functions of Bayes' rule on them."""
    clf = student("classifiers")
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [4.0, 4.0], [5.0, 4.0], [4.0, 6.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 0, 1, 1, 1])
    params = clf.fit_gaussian_classifier(x, y, 2, var_floor=0.5)
    far = torch.tensor([[1e4, -1e4]], dtype=torch.float64)
    return {"params": params, "log_joint": clf.log_joint(params, x), "posterior": clf.posterior(params, x),
            "predict": clf.predict(params, x), "posterior_far": clf.posterior(params, far),
            "samples": clf.sample_class(params, 1, 5, generator=torch.Generator().manual_seed(0))}


def ce(logits, y) -> dict:
    clf = student("classifiers")
    logits = logits.clone().requires_grad_(True)
    loss = clf.cross_entropy(logits, y)
    loss.backward()
    return {"loss": loss.detach(), "grad": logits.grad}


def cnn_and_cam() -> dict:
    clf = student("classifiers")
    model = clf.TinyCNN(3, 4, 6)
    x = torch.randn(2, 1, 12, 12)
    with torch.no_grad():
        return {"logits": model(x), "features": model.features(x),
                "cam": clf.class_activation_map(model, x, torch.tensor([0, 2]))}


def short_training(steps: int) -> list:
    import kitdata.digits

    clf = student("classifiers")
    x, y = (torch.from_numpy(a) for a in kitdata.digits.load_digits("train"))
    return clf.train_classifier(clf.LogisticRegression(64, 10), x, y, steps, batch_size=64, lr=1e-2)
