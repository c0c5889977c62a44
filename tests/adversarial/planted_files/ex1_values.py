# Sits next to a planted conftest.py, sitecustomize.py, usercustomize.py,
# numpy.py, torch.py, __init__.py, autograder.py, solutions.py and
# pytest.ini. None of them is ever imported or read by the grader. The
# module itself uses the real numpy, and action_values is wrong: 12 / 15.
# If the grader's own process ever imported it, it would leave a marker file.
import builtins as _builtins
import os as _os

import numpy as _np

if "rlkit-sandbox-" not in _os.getcwd():
    # imported outside a sandbox (by the grader's own process?): leave a mark the test looks for
    open("/tmp/rlkit-adversarial-fake.json", "w").write("imported by the parent")

assert not hasattr(_builtins, "__rlkit_pwned__")
assert hasattr(_np, "ndarray"), "the planted numpy.py was imported"


def action_values(P, R, V, gamma):
    return torch.zeros_like(R)
