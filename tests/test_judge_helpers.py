"""Units of the engine that need no worker: the judge's checks, the wire format, the fence."""

from __future__ import annotations

import os
import struct

import pytest
import torch

from autograder.sandbox import wire
from autograder.grading.judge import (Raised, changed_inputs, digit_grid, expect_close, expect_meta, expect_same, expect_tensor,
                              on_device, output_problems, recorded_groups, score_checks, tier)
from autograder.sandbox.containment import Policy
from autograder.sandbox.worker import Fence


def test_expect_tensor_names_the_function_and_the_problem():
    with pytest.raises(AssertionError, match=r"kl\(mu, logvar\) should return a tensor of shape \(4,\), got a list"):
        expect_tensor([1.0], name="kl(mu, logvar)", shape=(4,))
    with pytest.raises(AssertionError, match=r"should have shape \(4, \*\), got \(3, 2\)"):
        expect_tensor(torch.zeros(3, 2), name="f", shape=(4, None))
    with pytest.raises(AssertionError, match="should have dtype float64, got float32"):
        expect_tensor(torch.zeros(2), name="f", dtype=torch.float64)
    assert expect_tensor(torch.zeros(4, 7), name="f", shape=(4, None)).shape == (4, 7)


def test_expect_close_never_shows_the_expected_value():
    expected = torch.tensor([123.456, 7.25])
    with pytest.raises(AssertionError) as error:
        expect_close(torch.tensor([123.0, 7.25]), expected, name="f(x)", rtol=1e-6)
    assert "off by up to" in str(error.value) and "123.4" not in str(error.value)
    with pytest.raises(AssertionError, match="contains NaN"):
        expect_close(torch.tensor([float("nan"), 7.25]), expected, name="f(x)")
    expect_close(expected + 1e-9, expected, name="f(x)", rtol=1e-6)


def test_expect_same_is_bit_for_bit():
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    expect_same(x.clone(), x, name="x after f(x)")
    with pytest.raises(AssertionError, match=r"x after f\(x\) differs in 1 of 3 elements"):
        expect_same(x + torch.tensor([0.0, 1e-15, 0.0], dtype=torch.float64), x, name="x after f(x)")
    with pytest.raises(AssertionError, match="should have dtype float64"):
        expect_same(x.float(), x, name="f")


def test_output_problems_gives_one_verdict_per_function():
    expected = {"kl": (3,), "encode": [(3, 2), (3, 2)], "elbo": {"elbo": (3,), "kl": (3,)}}
    good = {"kl": torch.zeros(3), "encode": (torch.zeros(3, 2), torch.zeros(3, 2)),
            "elbo": {"elbo": torch.zeros(3), "kl": torch.zeros(3)}}
    check = on_device("cpu", torch.float32)
    assert output_problems(good, expected, check) == []
    bad = {"kl": torch.zeros(3, 1), "encode": Raised("ValueError: no"), "elbo": {"elbo": torch.zeros(3)}}
    problems = output_problems(bad, expected, check)
    assert len(problems) == 3
    assert "kl should have shape (3,), got (3, 1)" in problems[0]
    assert "encode raised" in problems[1]
    assert "elbo should return a dict with keys 'elbo', 'kl'" in problems[2]
    assert len(output_problems(None, expected, check)) == 3
    meta = on_device("meta", torch.float32)
    assert output_problems({"kl": wire.MetaTensor((3,), torch.float32)}, {"kl": (3,)}, meta) == []
    assert "CPU tensor" in output_problems({"kl": torch.zeros(3)}, {"kl": (3,)}, meta)[0]


def test_score_checks_keeps_the_fraction_passed():
    given = []
    score_checks([], 4, lambda f, why: given.append(f))
    assert given == []
    score_checks(["f is wrong"], 4, lambda f, why: given.append((f, why)), "batch 1")
    assert given == [(0.75, "batch 1: 1 of 4 checks failed, e.g. f is wrong")]
    with pytest.raises(AssertionError, match="batch 1: f is wrong"):
        score_checks(["f is wrong"] * 4, 4, lambda f, why: None, "batch 1")


def test_expect_meta():
    expect_meta(wire.MetaTensor((2, 3), torch.float64), name="f", shape=(2, 3), dtype=torch.float64)
    with pytest.raises(AssertionError, match="create new tensors on the input's device"):
        expect_meta(torch.zeros(2, 3), name="f", shape=(2, 3))
    with pytest.raises(AssertionError, match="should keep dtype"):
        expect_meta(wire.MetaTensor((2, 3), torch.float32), name="f", shape=(2, 3), dtype=torch.float64)


@pytest.mark.parametrize("value, higher, expected", [
    (8, True, 1.0), (6, True, 0.5), (2, True, 0.0), (float("nan"), True, 0.0),
    (3.0, False, 1.0), (9.0, False, 0.5), (30.0, False, 0.0), (float("inf"), False, 0.0),
])
def test_tier(value, higher, expected):
    tiers = [[7, 1.0], [5, 0.5]] if higher else [[8.0, 1.0], [11.0, 0.5]]
    assert tier(value, tiers, higher_is_better=higher) == expected


def test_changed_inputs_names_the_function_and_the_argument():
    x = torch.arange(6.0).reshape(2, 3)
    after = {"encode": {"x": x.clone()}, "decode": {"x": x + 1}, "kl": {"n": 3}}
    assert changed_inputs(after, {"x": x, "n": 3}, ["encode", "decode", "kl"]) == [
        "decode changed its argument x in place: leave the inputs as they are"]
    assert changed_inputs(after, {"x": x}, ["encode"]) == []
    assert changed_inputs("garbage", {"x": x}, ["encode"]) == ["the functions' inputs could not be read back"]


def test_recorded_groups_fails_a_loop_that_never_used_the_model():
    good = {"groups": [{"weights": {"w": torch.zeros(1)}, "batches": [[0, 1]]}], "losses": [1.0]}
    assert recorded_groups(good, "train") == good["groups"]
    with pytest.raises(AssertionError, match=r"train never called the model it was given \(call elbo\)"):
        recorded_groups({"groups": [{"weights": {}, "batches": []}], "losses": []}, "train", hint="call elbo")
    with pytest.raises(AssertionError, match="train raised ValueError"):
        recorded_groups({"groups": [], "losses": Raised("ValueError: no")}, "train")
    with pytest.raises(AssertionError, match="train: expected what the grader recorded, got a list"):
        recorded_groups([1, 2], "train")
    calls = {"groups": [{"weights": {"w": torch.zeros(1)}, "calls": [1]}], "losses": []}
    assert recorded_groups(calls, "train", calls="calls") == calls["groups"]


def test_digit_grid_places_each_digit():
    images = torch.arange(6).double().repeat_interleave(64).reshape(6, 64) / 5
    canvas = digit_grid(images, 2, 3)
    assert canvas.shape == (2 * 9 + 1, 3 * 9 + 1)
    assert canvas[1, 1] == 0.0 and canvas[10, 19] == 1.0 and canvas[0, 0] == 0.35


def test_wire_round_trip_drops_what_may_not_cross():
    class Liar(torch.Tensor):
        def __eq__(self, other):
            return True

    value = {"t": torch.ones(2).as_subclass(Liar), "meta": torch.empty(3, 4, device="meta", dtype=torch.float64),
             "obj": object(), "nested": [1, 2.5, "s", None, (True,)]}
    back = wire.from_wire(wire.loads(wire.dumps(wire.to_wire(value))))
    assert type(back["t"]) is torch.Tensor
    assert back["meta"] == wire.MetaTensor((3, 4), torch.float64)
    assert isinstance(back["obj"], wire.Unsupported) and back["obj"].type_name == "object"
    assert back["nested"] == [1, 2.5, "s", None, (True,)]


def test_wire_refuses_pickled_code_and_oversized_frames():
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with pytest.raises(wire.ChannelError, match="unreadable"):
        wire.loads(pickle.dumps(Evil()))
    read, write = os.pipe()
    os.write(write, struct.pack(">Q", wire.MAX_FRAME_BYTES + 1))
    with pytest.raises(wire.ChannelError, match="larger than the channel allows"):
        wire.read_frame(read)
    os.close(read), os.close(write)


def test_fence_rules(tmp_path):
    """The fence grants as Landlock does: a readable tree, less the hidden paths inside it."""
    kit, data, scratch = tmp_path / "kit", tmp_path / "kit" / "data", tmp_path / "scratch"
    for folder in (data / "heldout", scratch):
        folder.mkdir(parents=True)
    policy = Policy(scratch=str(scratch), readable=(str(data), "/usr", "/proc/self"),
                    hidden=(str(kit), str(data / "heldout")))
    fence = Fence(policy)
    assert fence.may_read(str(data / "train.npz"))           # the kit is hidden, but data is a tree of its own
    assert not fence.may_read(str(data / "heldout" / "x.npz"))
    assert not fence.may_read(str(kit / "solutions" / "x.py"))
    assert not fence.may_read(str(tmp_path / "elsewhere.txt"))
    assert fence.may_read("/usr/lib/os-release") and fence.may_read(f"/proc/{os.getpid()}/status")
    assert not fence.may_read("/proc/1/environ")
    assert fence.may_write(str(scratch / "out.txt")) and not fence.may_write(str(tmp_path / "out.txt"))
    with pytest.raises(PermissionError, match="off limits"):
        fence("open", (str(data / "heldout" / "x.npz"), "r", 0))
    with pytest.raises(PermissionError, match="only write inside"):
        fence("open", (str(tmp_path / "results.json"), "w", os.O_WRONLY))
    with pytest.raises(PermissionError, match="does not allow subprocess.Popen"):
        fence("subprocess.Popen", ("sleep", ["sleep"], None, None))
    with pytest.raises(PermissionError, match="signalling other processes"):
        fence("os.kill", (1, 9))
    fence("open", (str(scratch / "data.txt"), "r", 0))  # allowed: no exception


@pytest.mark.parametrize("name, shown", [
    ("alice", "alice"), ("alice\u200b", "alice\\u200b"), ("alice ", "alice\\u0020"), (" bob", "\\u0020bob"),
    ("Mary Ann", "Mary Ann"), ("x\u00a0y", "x\\u00a0y"), ("Jose\u0301", "Jose\\u0301"), ("José", "José"),
    ("a\\b", "a\\\\b"), ("a\x1b[31mb", "a\\u001b[31mb"), ("\U000e0041x", "\\U000e0041x"),
])
def test_student_names_are_shown_with_every_invisible_character_escaped(name, shown):
    from autograder.escape import student_name

    assert student_name(name) == shown


def test_look_alike_names_are_grouped():
    from autograder.escape import look_alike_groups

    names = ["alice", "alice\u200b", "alice ", "\u0430lice", "\uff41lice", "bob", "carol", "Carol"]
    assert look_alike_groups(names) == [["alice", "alice\u200b", "alice ", "\u0430lice", "\uff41lice"], ["carol", "Carol"]]
    assert look_alike_groups(["alice", "bob", "alice"]) == []   # the same name twice is one name
