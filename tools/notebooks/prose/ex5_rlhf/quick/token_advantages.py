# Quick check (not graded): response = positions 1 and 2, gamma = 1, lam = 1.
rewards = torch.tensor([[0.0, 1.0, 2.0, 0.0]], device=DEVICE)
values = torch.tensor([[0.0, 0.5, 0.5, 9.0]], device=DEVICE)
mask = torch.tensor([[0.0, 1.0, 1.0, 0.0]], device=DEVICE)
adv, ret = token_advantages(rewards, values, mask, lam=1.0)
assert [round(float(x), 6) for x in adv[0].tolist()] == [0.0, 2.5, 1.5, 0.0], adv.tolist()
assert [round(float(x), 6) for x in ret[0].tolist()] == [0.0, 3.0, 2.0, 0.0], ret.tolist()
print("quick check passed")
