# Quick check (not graded): -mean([1.2, 0.5, -1.5, -0.8]) = 0.15
new = torch.log(torch.tensor([1.5, 0.5, 1.5, 0.5], device=DEVICE)).requires_grad_(True)
old = torch.zeros(4, device=DEVICE)
adv = torch.tensor([1.0, 1.0, -1.0, -1.0], device=DEVICE)
loss = ppo_policy_loss(new, old, adv, 0.2)
assert abs(float(loss.detach()) - 0.15) < 1e-6, float(loss.detach())
loss.backward()
g = [round(float(x), 6) for x in new.grad.tolist()]
assert g[0] == 0.0 and g[3] == 0.0, f"clipped samples must have zero gradient, got {g}"
print("quick check passed")
