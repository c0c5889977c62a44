# Quick check (not graded), on the two-state MDP above: V = [2, 0].
P = torch.zeros(2, 2, 2, dtype=torch.float64, device=DEVICE)
P[0, :, 1] = 1.0
P[1, :, 1] = 1.0
R = torch.tensor([[1.0, 3.0], [0.0, 0.0]], dtype=torch.float64, device=DEVICE)
V = torch.tensor([2.0, 0.0], dtype=torch.float64, device=DEVICE)
Q = action_values(P, R, V, 0.9)
got = [[round(float(q), 6) for q in row] for row in Q.tolist()]
assert got == [[1.0, 3.0], [0.0, 0.0]], f"expected [[1.0, 3.0], [0.0, 0.0]], got {got}"
# averaging Q over the policy gives V back
pi = torch.full((2, 2), 0.5, dtype=torch.float64, device=DEVICE)
back = [round(float(v), 6) for v in (pi * Q).sum(dim=1).tolist()]
assert back == [2.0, 0.0], back
print("quick check passed")
