# Quick check (not graded): mean((1 - 0)^2, (2 - 0)^2) = 2.5
values = torch.tensor([1.0, 2.0], device=DEVICE, requires_grad=True)
targets = torch.tensor([0.0, 0.0], device=DEVICE, requires_grad=True)
loss = value_loss(values, targets)
assert abs(float(loss.detach()) - 2.5) < 1e-6, float(loss.detach())
loss.backward()
assert targets.grad is None, "no gradient may reach the targets"
assert values.grad is not None
print("quick check passed")
