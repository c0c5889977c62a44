# Quick check (not graded).
g = torch.Generator(device=DEVICE).manual_seed(0)
logits = torch.tensor([[0.0, 0.0, -30.0], [2.0, -1.0, 0.5]], device=DEVICE, requires_grad=True)
actions, log_probs = sample_action(logits, generator=g)
assert actions.dtype == torch.int64 and tuple(actions.shape) == (2,), (actions.dtype, actions.shape)
assert int(actions[0]) in (0, 1), "action 2 has (almost) zero probability"
expected = torch.log_softmax(logits.detach(), dim=-1)[torch.arange(2, device=DEVICE), actions]
got = [float(x) for x in log_probs.tolist()]
assert all(abs(a - b) < 1e-5 for a, b in zip(got, expected.tolist())), (got, expected.tolist())
log_probs.sum().backward()
assert logits.grad is not None, "log_probs must be differentiable with respect to logits"

# Frequencies: with logits [0, log 3], action 1 should come up about 75% of the time.
many = torch.tensor([0.0, math.log(3.0)], device=DEVICE).expand(20000, 2)
a, _ = sample_action(many, generator=torch.Generator(device=DEVICE).manual_seed(1))
freq = float(a.float().mean())
assert abs(freq - 0.75) < 0.02, f"action 1 sampled with frequency {freq:.3f}, expected about 0.75"
print("quick check passed")
