"""autograder.sandbox.lean_torch: torch's compiler stays unloaded through everything a grading
does, loads the moment something compiles, and changes no result.

Each case runs in a fresh interpreter: the stand-in must not leak into this test process.
"""
from __future__ import annotations

import json
import subprocess
import sys

TRAIN = """
import json, sys, warnings
warnings.simplefilter("ignore")
import torch
LEAN = sys.argv[1] == "lean"
if LEAN:
    from autograder.sandbox import lean_torch
    wrapped = lean_torch.install()
    lean_torch.lean_allocator()
    lean_torch.deterministic_algorithms(torch)
else:
    wrapped = 0
    torch.use_deterministic_algorithms(True, warn_only=True)
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1))
losses = []
for make in (torch.optim.Adam, torch.optim.SGD, torch.optim.AdamW, torch.optim.RMSprop):
    opt = make(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 2)
    for step in range(4):
        x = torch.randn(32, 8)
        opt.zero_grad()
        loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
    opt.load_state_dict(opt.state_dict())
data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(10, 3)), batch_size=4, shuffle=True)
losses.append(sum(float(b[0].sum()) for b in data))
real = sys.modules.get("torch._dynamo")
print(json.dumps({"losses": losses, "wrapped": wrapped, "compiler_loaded": "torch._inductor.config" in sys.modules
                  or (real is not None and type(real).__name__ == "module"),
                  "deterministic": torch.are_deterministic_algorithms_enabled()}))
"""


def _run(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_training_never_loads_the_compiler_and_gives_the_same_numbers():
    lean, plain = _run(TRAIN, "lean"), _run(TRAIN, "plain")
    assert lean["wrapped"] > 0, "no _disable_dynamo wrapper was found: torch's source changed"
    assert not lean["compiler_loaded"] and lean["deterministic"]
    assert plain["compiler_loaded"], "plain torch no longer loads its compiler here: the module has no purpose"
    assert lean["losses"] == plain["losses"]


def test_compiling_loads_the_real_compiler_and_optimisers_still_step():
    script = """
import json, sys, warnings
warnings.simplefilter("ignore")
import torch
from autograder.sandbox import lean_torch
lean_torch.install()
stand_in = sys.modules["torch._dynamo"]
double = torch.compile(lambda x: x * 2, backend="eager")
value = double(torch.ones(3)).tolist()
real = sys.modules["torch._dynamo"]
model = torch.nn.Linear(2, 1)
opt = torch.optim.Adam(model.parameters())
model(torch.ones(1, 2)).sum().backward()
opt.step()
print(json.dumps({"value": value, "replaced": real is not stand_in and torch._dynamo is real,
                  "real": type(real).__name__ == "module", "graph_break": callable(stand_in.graph_break)}))
"""
    out = _run(script)
    assert out == {"value": [2.0, 2.0, 2.0], "replaced": True, "real": True, "graph_break": True}


def test_a_torch_of_another_shape_is_left_alone():
    script = """
import json, sys
import torch
torch._disable_dynamo = lambda fn=None, recursive=True: fn   # not the wrapper lean_torch knows
from autograder.sandbox import lean_torch
print(json.dumps({"wrapped": lean_torch.install(), "stand_in": "torch._dynamo" in sys.modules}))
"""
    assert _run(script) == {"wrapped": 0, "stand_in": False}


def test_dropped_pages_come_back_when_used():
    script = """
import json
import torch
from autograder.sandbox import lean_torch

def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1])

before = resident()
dropped = lean_torch.drop_loaded_pages()
after = resident()
x = torch.randn(64, 64, dtype=torch.float64)
value = float((x @ torch.linalg.inv(x)).trace())
print(json.dumps({"dropped": dropped, "fewer": after < before, "value": round(value, 6)}))
"""
    out = _run(script)
    assert out["dropped"] > 10 and out["fewer"] and out["value"] == 64.0
