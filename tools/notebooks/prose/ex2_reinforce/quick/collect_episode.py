# Quick check (not graded): one episode of CartPole with an untrained policy.
from common.envs import make_env
from common.networks import PolicyNet

torch.manual_seed(0)
env = make_env("CartPole-v1", seed=0)
policy = PolicyNet(4, 2).to(DEVICE)
episode = collect_episode(env, policy, DEVICE, torch.Generator(device=DEVICE).manual_seed(0))
T = len(episode.rewards)
assert tuple(episode.observations.shape) == (T, 4) and tuple(episode.actions.shape) == (T,), "shapes"
assert episode.actions.dtype == torch.int64, episode.actions.dtype
assert episode.log_probs.requires_grad, "keep the graph of the log-probabilities"
assert abs(float(episode.total_reward) - float(episode.rewards.sum())) < 1e-6, "total_reward"
print(f"quick check passed: an episode of {T} steps")
