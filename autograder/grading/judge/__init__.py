"""What a hidden suite imports: checks whose failure messages a student can read.

Every message names the student's function and says what is wrong in one line, and
never shows an expected value, a threshold or a hidden input. ``expect`` judges one value,
``outputs`` many functions' outputs at once.
"""

from autograder.grading.judge.expect import (describe_value, digit_grid, expect_close, expect_finite, expect_learned,
                                     expect_meta, expect_same, expect_tensor, fails, parity_devices, plottable, tier)
from autograder.grading.judge.outputs import (changed_inputs, expect_structure, on_device, output_problems,
                                      recorded_groups, score_checks)
from autograder.sandbox.supervisor import StudentError
from autograder.sandbox.wire import MetaTensor, Raised, Unsupported

__all__ = ["expect_tensor", "expect_close", "expect_same", "expect_meta", "expect_finite", "expect_learned", "parity_devices",
           "expect_structure", "output_problems", "on_device", "score_checks", "changed_inputs", "recorded_groups",
           "StudentError", "MetaTensor", "Raised", "Unsupported", "describe_value", "tier", "digit_grid", "plottable",
           "fails"]
