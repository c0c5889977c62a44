# Quick check (not graded): -mean([-1 * 1, -2 * 3]) = 3.5
log_probs = torch.tensor([-1.0, -2.0], device=DEVICE, requires_grad=True)
returns = torch.tensor([1.0, 3.0], device=DEVICE, requires_grad=True)
loss = reinforce_loss(log_probs, returns)
assert tuple(loss.shape) == (), f"the loss should be a scalar, got shape {tuple(loss.shape)}"
assert abs(float(loss.detach()) - 3.5) < 1e-6, f"expected 3.5, got {float(loss.detach())}"
loss.backward()
assert returns.grad is None, "no gradient may reach the returns (detach them)"
assert [round(float(x), 6) for x in log_probs.grad.tolist()] == [-0.5, -1.5], log_probs.grad.tolist()
print("quick check passed")
