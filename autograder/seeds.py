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
