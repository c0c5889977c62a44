# Quick check (not graded). State 0: both actions lead to state 1, with rewards 1 and 3.
# State 1 is absorbing (it loops on itself with reward 0).
P = torch.zeros(2, 2, 2, dtype=torch.float64, device=DEVICE)
P[0, :, 1] = 1.0
P[1, :, 1] = 1.0
R = torch.tensor([[1.0, 3.0], [0.0, 0.0]], dtype=torch.float64, device=DEVICE)
pi = torch.full((2, 2), 0.5, dtype=torch.float64, device=DEVICE)
V = policy_evaluation(P, R, pi, 0.9)
got = [round(float(v), 6) for v in V.tolist()]
assert got == [2.0, 0.0], f"expected [2.0, 0.0] (the average of 1 and 3, then nothing), got {got}"

# One state looping on itself with reward 1: V = 1 / (1 - gamma) = 2 for gamma = 0.5.
one = torch.ones(1, 1, 1, dtype=torch.float64, device=DEVICE)
V1 = policy_evaluation(one, one[0], one[0], 0.5)
assert abs(float(V1[0]) - 2.0) < 1e-6, f"expected 2.0, got {float(V1[0])}"
print("quick check passed")
