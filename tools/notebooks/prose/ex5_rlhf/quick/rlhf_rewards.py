# Quick check (not graded): prompt, two response tokens, padding (whose values must not matter).
scores = torch.tensor([2.0], device=DEVICE)
log_probs = torch.tensor([[0.0, -1.0, -1.0, 0.0]], device=DEVICE)
ref = torch.tensor([[0.0, -2.0, -1.5, 7.0]], device=DEVICE)
mask = torch.tensor([[0.0, 1.0, 1.0, 0.0]], device=DEVICE)
r = rlhf_rewards(scores, log_probs, ref, mask, 0.1)
got = [round(float(x), 6) for x in r[0].tolist()]
assert got == [0.0, -0.1, 1.95, 0.0], f"expected [0.0, -0.1, 1.95, 0.0], got {got}"
print("quick check passed")
