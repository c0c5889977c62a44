# Quick check (not graded), on the two-state MDP above.
P = torch.zeros(2, 2, 2, dtype=torch.float64, device=DEVICE)
P[0, :, 1] = 1.0
P[1, :, 1] = 1.0
R = torch.tensor([[1.0, 3.0], [0.0, 0.0]], dtype=torch.float64, device=DEVICE)
# A policy that always takes action 0: every episode returns exactly 1.
always0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64, device=DEVICE)
g = torch.Generator(device=DEVICE).manual_seed(0)
v = float(monte_carlo_value(P, R, always0, 0.9, start_state=0, num_episodes=100, generator=g))
assert abs(v - 1.0) < 1e-9, f"expected exactly 1.0, got {v}"
# A coin flip between rewards 1 and 3: about 2, within sampling noise.
coin = torch.full((2, 2), 0.5, dtype=torch.float64, device=DEVICE)
g = torch.Generator(device=DEVICE).manual_seed(0)
v = float(monte_carlo_value(P, R, coin, 0.9, start_state=0, num_episodes=4000, generator=g))
assert abs(v - 2.0) < 0.1, f"expected about 2.0, got {v}"
print("quick check passed")
