# Quick check (not graded): the four cases, eps = 0.2.
ratio = torch.tensor([1.5, 0.5, 1.5, 0.5], device=DEVICE)
adv = torch.tensor([1.0, 1.0, -1.0, -1.0], device=DEVICE)
unclipped, clipped, objective = clipped_surrogate(ratio, adv, 0.2)
as_list = lambda t: [round(float(x), 6) for x in t.tolist()]
assert as_list(unclipped) == [1.5, 0.5, -1.5, -0.5], as_list(unclipped)
assert as_list(clipped) == [1.2, 0.8, -1.2, -0.8], as_list(clipped)
assert as_list(objective) == [1.2, 0.5, -1.5, -0.8], as_list(objective)
print("quick check passed")
