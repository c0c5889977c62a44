# Quick check (not graded): clipping removes the gradient in cases 1 and 4 only.
ratio = torch.tensor([1.5, 0.5, 1.5, 0.5], device=DEVICE)
adv = torch.tensor([1.0, 1.0, -1.0, -1.0], device=DEVICE)
active = clip_active(ratio, adv, 0.2)
assert [bool(x) for x in active.tolist()] == [True, False, False, True], active.tolist()
print("quick check passed")
