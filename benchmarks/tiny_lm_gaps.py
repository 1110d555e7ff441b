"""tiny_lm's learned-quality gap (held-out cross-entropy above the drawn language's exact NLL) of
correct implementations, under several grading secrets and grader seeds: the calibration of
``train_steps`` and ``gap_tiers`` in grading.yml. Prints one line per grading; asserts nothing.

    python benchmarks/tiny_lm_gaps.py SECRET[,SECRET...] SEED[,SEED...]

``default`` stands for the grading's own secret (no AUTOGRADER_SECRET). Two gradings at once.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

KIT = Path(__file__).resolve().parent.parent
IMPLEMENTATIONS = {
    "reference": KIT / "solutions" / "06_tiny_lm",
    "einsum_first_seen": KIT / "tests" / "fixtures" / "independent" / "06_tiny_lm" / "einsum_first_seen",
    "head_loops_gumbel": KIT / "tests" / "fixtures" / "independent" / "06_tiny_lm" / "head_loops_gumbel",
}
GAP = re.compile(r"TinyGPT is \\?([+-][0-9.]+) nats/token")


def gap(name: str, secret: str, seed: int) -> float | None:
    env = dict(os.environ)
    if secret != "default":
        env["AUTOGRADER_SECRET"] = secret
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "autograder.cli", "grade", str(IMPLEMENTATIONS[name]), "--assignment",
                        "tiny_lm", "--seed", str(seed), "--tests", "test_learned_quality", "--out", out, "--quiet"],
                       env=env, capture_output=True, cwd=KIT)
        found = GAP.search((Path(out) / "report.md").read_text())
    return float(found.group(1)) if found else None


def main() -> None:
    secrets, seeds = sys.argv[1].split(","), [int(s) for s in sys.argv[2].split(",")]
    jobs = [(name, secret, seed) for secret in secrets for seed in seeds for name in IMPLEMENTATIONS]
    with ThreadPoolExecutor(2) as pool:
        for (name, secret, seed), value in zip(jobs, pool.map(lambda job: gap(*job), jobs)):
            print(f"{name:<18} secret {secret[:12]:<12} seed {seed}  gap {value}", flush=True)


if __name__ == "__main__":
    main()
