# Quick check (not graded).
lp = torch.tensor([-1.0, -2.0], device=DEVICE, requires_grad=True)
ref = torch.tensor([-1.5, -1.0], device=DEVICE, requires_grad=True)
kl = kl_penalty(lp, ref)
assert [round(float(x), 6) for x in kl.tolist()] == [0.5, -1.0], kl.tolist()
kl.sum().backward()
assert ref.grad is None, "the reference is frozen: no gradient may reach ref_log_probs"
print("quick check passed")
