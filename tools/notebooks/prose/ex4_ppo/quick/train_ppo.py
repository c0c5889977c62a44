# Quick check (not graded): two small updates only; the hidden test trains for real.
result = train_ppo("CartPole-v1", total_steps=2048, seed=0, device=DEVICE)
assert len(result.episode_returns) > 0, "no episode finished"
print("quick check passed; first returns:", [float(r) for r in result.episode_returns[:5]])
