"""A plain SGD optimizer, p <- p - lr * p.grad, with the interface the update exercises use.

The ex2 and ex3 update checks run the student's update with it inside the sandbox (its text is
part of those suites' driver modules, ``harness.PLAIN_SGD_SOURCE``), and the answers run the
reference's updates with it: one copy, so both sides take exactly the same step. A plain step is
proportional to the gradient, so the scale of a loss matters; and torch.optim is left out on
purpose: the first torch.optim optimizer in a process costs about a second of CPU (lazy imports),
in every forked child.
"""
import torch


class PlainSGD:
    """p <- p - lr * p.grad, with ``param_groups``, ``zero_grad`` and ``step`` like torch.optim's."""

    def __init__(self, params, lr):
        self.param_groups = [{"params": list(params), "lr": float(lr)}]

    def zero_grad(self, set_to_none=True):
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.detach_()
                    p.grad.zero_()

    def step(self, closure=None):
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-group["lr"])
        return None
