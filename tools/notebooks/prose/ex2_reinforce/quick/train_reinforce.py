# Quick check (not graded): a few episodes only; the hidden test trains for real.
result = train_reinforce(episodes=5, seed=0, device=DEVICE, target_return=None)
assert len(result.episode_returns) == 5, len(result.episode_returns)
print("quick check passed; returns:", [float(r) for r in result.episode_returns])
