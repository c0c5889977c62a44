"""Where the suites' inputs come from: the published seed, or an instructor's course seed.

Every test draws its inputs from generators reseeded at its start from
(course seed, suite, test name), so

* a test's inputs never depend on what earlier tests did (a failure that
  stops a test early used to shift every later test's inputs);
* the notebook checks and ``make grade`` use the same inputs;
* an instructor's official run (``--seed``, or ``RLKIT_COURSE_SEED`` in the
  environment) uses inputs students have never seen, so an answer memorised
  from the student kit's recorded data is worth nothing there.

The course seed itself never leaves the trusted side: reports carry a short
fingerprint of it.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import random

import numpy as np
import torch

ENV = "RLKIT_COURSE_SEED"


def course_seed() -> str | None:
    value = os.environ.get(ENV, "").strip()
    return value or None


def fingerprint() -> str:
    """What a report says about the inputs: "published", or a digest of the course seed."""
    seed = course_seed()
    return "published" if seed is None else "course:" + hashlib.sha256(seed.encode()).hexdigest()[:8]


def test_seed(module: str, test: str) -> int:
    """The seed of one test's inputs (63 bits)."""
    text = f"{course_seed() or 'published'}|{module.rsplit('.', 1)[-1]}|{test}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def reseed(module, test: str) -> None:
    """Reseed the suite module's ``rng`` and the global generators for one test."""
    seed = test_seed(getattr(module, "__name__", str(module)), test)
    gen = getattr(module, "rng", None)
    if isinstance(gen, np.random.Generator):
        gen.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    random.seed(seed)


@contextlib.contextmanager
def shared_inputs(module, name: str):
    """Draw inputs that several tests share (built once, then cached) as if for a test of their own
    called ``name``: they must not depend on which test happens to build them first (a notebook
    check, or ``-k``, runs the tests in another order). The generators are restored afterwards."""
    gen = getattr(module, "rng", None)
    saved_gen = gen.bit_generator.state if isinstance(gen, np.random.Generator) else None
    saved = torch.get_rng_state(), np.random.get_state(), random.getstate()
    reseed(module, name)
    try:
        yield
    finally:
        if saved_gen is not None:
            gen.bit_generator.state = saved_gen
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])
