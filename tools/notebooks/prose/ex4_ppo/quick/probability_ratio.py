# Quick check (not graded).
new = torch.tensor([math.log(2.0), 0.0], device=DEVICE, requires_grad=True)
old = torch.tensor([0.0, math.log(2.0)], device=DEVICE, requires_grad=True)
ratio = probability_ratio(new, old)
assert [round(float(x), 6) for x in ratio.tolist()] == [2.0, 0.5], ratio.tolist()
ratio.sum().backward()
assert old.grad is None, "no gradient may reach the old log-probabilities"
print("quick check passed")
