# Quick check (not graded): rewards 1, values 1, last value 1, gamma 0.5, no dones.
rewards = torch.ones(3, device=DEVICE)
values = torch.ones(3, device=DEVICE)
dones = torch.zeros(3, device=DEVICE)
last_value = torch.tensor(1.0, device=DEVICE)
adv0, _ = compute_gae(rewards, values, dones, last_value, gamma=0.5, lam=0.0)
assert [round(float(x), 6) for x in adv0.tolist()] == [0.5, 0.5, 0.5], "lam = 0 gives the TD errors"
adv1, ret1 = compute_gae(rewards, values, dones, last_value, gamma=0.5, lam=1.0)
assert [round(float(x), 6) for x in adv1.tolist()] == [0.875, 0.75, 0.5], adv1.tolist()
assert [round(float(x), 6) for x in ret1.tolist()] == [1.875, 1.75, 1.5], "returns = advantages + values"
print("quick check passed")
