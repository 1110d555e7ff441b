"""Checks on one value a student's function returned, with failure messages a student can
read: each names the function and says what is wrong in one line, and never shows an
expected value, a threshold or a hidden input."""

from __future__ import annotations

import math

import torch

from autograder.sandbox.wire import MetaTensor, Raised, Unsupported



def fails(message: str):
    """Fail the current test with ``message`` (one line, for the student). The suites' one
    failure idiom: unlike ``assert``, it cannot be stripped by ``python -O``."""
    raise AssertionError(message)


def describe_value(value) -> str:
    """'a tensor of shape (4, 2) and dtype float32', 'a list', 'None' ..."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {str(value.dtype).removeprefix('torch.')}"
    if isinstance(value, MetaTensor):
        return f"a meta tensor of shape {value.shape}"
    if isinstance(value, Unsupported):
        return f"a {value.type_name} object"
    if isinstance(value, Raised):
        return f"an error ({value.message})"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def expect_tensor(value, *, name: str, shape=None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Assert that ``value`` is a tensor (of ``shape`` and ``dtype``, when given) and return it.

    ``shape`` may contain ``None`` for a dimension that is not checked.
    """
    if not isinstance(value, torch.Tensor):
        wanted = f"a tensor of shape {tuple(shape)}" if shape is not None else "a tensor"
        raise AssertionError(f"{name} should return {wanted}, got {describe_value(value)}")
    if value.layout != torch.strided:
        raise AssertionError(f"{name} should return a dense tensor, got a {str(value.layout).removeprefix('torch.')} one")
    if value.is_complex() and (dtype is None or not dtype.is_complex):
        raise AssertionError(f"{name} should return a real tensor, got dtype {str(value.dtype).removeprefix('torch.')}")
    if shape is not None:
        shape = tuple(shape)
        if value.dim() != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
            shown = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
            raise AssertionError(f"{name} should have shape {shown}, got {tuple(value.shape)}")
    if dtype is not None and value.dtype != dtype:
        raise AssertionError(
            f"{name} should have dtype {str(dtype).removeprefix('torch.')}, got {str(value.dtype).removeprefix('torch.')}")
    return value


def expect_finite(value: torch.Tensor, *, name: str) -> torch.Tensor:
    """Assert that ``value`` is a real dense tensor with no NaN or inf."""
    value = expect_tensor(value, name=name)
    if value.is_floating_point() and not torch.isfinite(value).all():
        bad = "NaN" if torch.isnan(value).any() else "inf"
        raise AssertionError(f"{name} contains {bad} values")
    return value


def expect_close(actual, expected: torch.Tensor, *, name: str, rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """Assert ``|actual - expected| <= atol + rtol * |expected|`` elementwise.

    The message gives the size of the error and the tolerance, never the expected values.
    """
    actual = expect_tensor(actual, name=name, shape=tuple(expected.shape))
    expect_finite(actual, name=name)
    actual64, expected64 = actual.double(), expected.double()
    error = (actual64 - expected64).abs()
    allowed = atol + rtol * expected64.abs()
    if not bool((error <= allowed).all()):
        worst = float((error - allowed).argmax()) if error.numel() > 1 else 0
        index = int(worst)
        raise AssertionError(
            f"{name} is off by up to {float(error.max()):.3g} "
            f"(allowed {float(allowed.flatten()[index]):.3g} at the worst element)")


def expect_same(actual, expected: torch.Tensor, *, name: str) -> None:
    """Assert bit-for-bit equality: for what must not change (a student's function left its
    inputs as they were; a second identical call with the same seed gives the same answer)."""
    actual = expect_tensor(actual, name=name, shape=tuple(expected.shape), dtype=expected.dtype)
    if not torch.equal(actual, expected):
        fails(f"{name} differs in {int((actual != expected).sum())} of {expected.numel()} elements")


def expect_meta(value, *, name: str, shape, dtype: torch.dtype | None = None) -> None:
    """Assert that a probe run on the ``meta`` device returned a meta tensor of ``shape``.

    A CPU tensor created inside the student's function (a hard-coded device) either makes
    the call fail on meta inputs or comes back as a real tensor: both fail here.
    """
    if isinstance(value, torch.Tensor):
        raise AssertionError(
            f"{name} returned a {value.device.type if value.device.type != 'cpu' else 'CPU'} tensor for inputs "
            "on another device: create new tensors on the input's device (e.g. torch.zeros_like, device=x.device)")
    if not isinstance(value, MetaTensor):
        raise AssertionError(f"{name} should return a tensor, got {describe_value(value)}")
    if tuple(value.shape) != tuple(shape):
        raise AssertionError(f"{name} on the meta device should have shape {tuple(shape)}, got {value.shape}")
    if dtype is not None and value.dtype != dtype:
        raise AssertionError(f"{name} on the meta device should keep dtype {dtype}, got {value.dtype}")


def parity_devices(worker) -> list[str]:
    """The devices a parity check runs on: the accelerators present, else ``["meta"]``."""
    return list(worker.devices) or ["meta"]


def tier(value: float, tiers, *, higher_is_better: bool) -> float:
    """The credit of ``value`` under ``tiers`` = [[threshold, fraction], ...], best tier first
    (as written in grading.yml); 0.0 when it reaches no tier, or is not a finite number."""
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError, RuntimeError):  # a student's value that is not a number
        return 0.0
    if not math.isfinite(value):
        return 0.0
    for threshold, fraction in tiers:
        if (value >= threshold) if higher_is_better else (value <= threshold):
            return float(fraction)
    return 0.0


def expect_learned(trained, shuffled, shuffled_credit: float, *, name: str) -> None:
    """Quality must come from the trained weights. ``trained`` and ``shuffled`` are what the
    same generation made with the student's trained network and with a copy whose weights
    were shuffled (``autograder.sandbox.worker.shuffled_weights``); ``shuffled_credit`` is the credit
    the copy's outputs earn under the test's own tiers. Fails when the outputs are the same
    (they ignore the network) or when the shuffled copy still earns credit (the quality
    comes from somewhere else: an exact sampler, replayed data)."""
    a = trained if isinstance(trained, torch.Tensor) else None
    b = shuffled if isinstance(shuffled, torch.Tensor) else None
    if a is not None and b is not None and a.shape == b.shape and bool(torch.equal(a, b)):
        raise AssertionError(f"{name} gives the same outputs when the trained network's weights are shuffled: "
                             "generate through the trained network, from the noise or inputs it is given")
    if shuffled_credit > 0:
        raise AssertionError(f"{name} scores as well with the trained network's weights shuffled: the quality "
                             "must come from what the network learned, not from elsewhere")


def digit_grid(images, rows: int, cols: int, pad: int = 1, side: int = 8):
    """(N, side*side) images in [0, 1] -> one (H, W) numpy picture, a dark frame around each."""
    import numpy as np

    flat = plottable(images, low=0.0, high=1.0).reshape(-1)
    count = min(rows * cols, flat.size // (side * side))
    images = flat[: count * side * side].reshape(count, side, side)
    canvas = np.full((rows * (side + pad) + pad, cols * (side + pad) + pad), 0.35)
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        top, left = pad + r * (side + pad), pad + c * (side + pad)
        canvas[top: top + side, left: left + side] = image
    return canvas


def plottable(values, low: float = -1e6, high: float = 1e6):
    """A float64 numpy copy of a student's values that matplotlib can always draw: NaN and
    inf become NaN (a gap), everything else is clipped to [low, high]; anything that is not
    numbers at all becomes an empty array."""
    import numpy as np

    try:
        if isinstance(values, torch.Tensor):
            if values.layout != torch.strided:
                values = values.to_dense()
            values = (values.real if values.is_complex() else values).detach().double().cpu().numpy()
        array = np.array(values, dtype=np.float64)
    except (TypeError, ValueError, RuntimeError, OverflowError):
        return np.zeros(0)
    return np.where(np.isfinite(array), np.clip(array, low, high), np.nan)
