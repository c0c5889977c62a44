# Quick check (not graded): -log sigmoid(2) = log(1 + e^-2)
loss = preference_loss(torch.tensor([2.0], device=DEVICE), torch.tensor([0.0], device=DEVICE))
assert abs(float(loss) - math.log(1 + math.exp(-2.0))) < 1e-6, float(loss)
huge = preference_loss(torch.tensor([-500.0], device=DEVICE), torch.tensor([500.0], device=DEVICE))
assert math.isfinite(float(huge)) and abs(float(huge) - 1000.0) < 1e-3, f"not stable: {float(huge)}"
print("quick check passed")
