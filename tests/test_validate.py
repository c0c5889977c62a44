"""common.validate.check_finite: its one-reduction fast path must give the exact check's answers."""

from __future__ import annotations

import pytest
import torch

from common.validate import check_finite

BIG = torch.finfo(torch.float32).max


@pytest.mark.parametrize(
    "x",
    [
        torch.tensor([BIG, BIG, BIG]),  # the sum overflows to inf, every entry is finite
        torch.tensor([-BIG, -BIG]),
        torch.full((4,), 60000.0, dtype=torch.float16),  # a half sum overflows sooner
        torch.zeros(0),
        torch.tensor([1, 2, 3]),  # integers have no NaN
        torch.randn(5, requires_grad=True),  # no graph is built, no error
    ],
)
def test_finite_tensors_pass(x):
    check_finite("x", x)


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.tensor([0.0, float("nan")]), "x contains NaN"),
        (torch.tensor([1.0, float("inf")]), "x contains inf"),
        (torch.tensor([1.0, float("-inf")]), "x contains inf"),
        (torch.tensor([float("inf"), float("-inf")]), "x contains inf"),  # the sum is NaN
        (torch.tensor([BIG, BIG, float("-inf")]), "x contains inf"),  # overflow, then inf - inf
        (torch.tensor([1.0, float("nan")], dtype=torch.bfloat16), "x contains NaN"),
    ],
)
def test_nan_and_inf_are_named(x, message):
    with pytest.raises(ValueError, match=message):
        check_finite("x", x)


def test_a_masked_logit_may_be_minus_inf_but_not_plus_inf():
    check_finite("logits", torch.tensor([0.0, float("-inf")]), allow_neg_inf=True)
    with pytest.raises(ValueError, match=r"logits contains \+inf"):
        check_finite("logits", torch.tensor([float("-inf"), float("inf")]), allow_neg_inf=True)
    with pytest.raises(ValueError, match="logits contains NaN"):
        check_finite("logits", torch.tensor([float("-inf"), float("nan")]), allow_neg_inf=True)
