# Quick check (not graded). Steps 0-1 are one episode, steps 2-3 a second one still running.
rewards = torch.tensor([1.0, 1.0, 1.0, 1.0], device=DEVICE)
dones = torch.tensor([0.0, 1.0, 0.0, 0.0], device=DEVICE)
G = discounted_returns(rewards, dones, 0.5)
got = [round(float(x), 6) for x in G.tolist()]
assert got == [1.5, 1.0, 1.5, 1.0], f"expected [1.5, 1.0, 1.5, 1.0], got {got}"
assert G.device.type == DEVICE.type, "return the result on the device of the inputs"

# The same numbers as two environments side by side: shape [T=2, N=2].
G2 = discounted_returns(rewards.reshape(2, 2), dones.reshape(2, 2), 0.5)
got2 = [[round(float(x), 6) for x in row] for row in G2.tolist()]
assert got2 == [[1.5, 1.0], [1.0, 1.0]], f"expected [[1.5, 1.0], [1.0, 1.0]], got {got2}"
print("quick check passed")
