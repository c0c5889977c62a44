# Quick check (not graded): one update changes the policy and returns a float.
from common.envs import make_env
from common.networks import PolicyNet

torch.manual_seed(0)
env = make_env("CartPole-v1", seed=0)
policy = PolicyNet(4, 2).to(DEVICE)
optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
before = [p.detach().clone() for p in policy.parameters()]
episode = collect_episode(env, policy, DEVICE, torch.Generator(device=DEVICE).manual_seed(0))
loss = reinforce_update(optimizer, episode, 0.99)
assert isinstance(loss, float), f"return loss.item() (a float), got {type(loss).__name__}"
assert any(not torch.equal(b, p.detach()) for b, p in zip(before, policy.parameters())), "no parameter changed"
print("quick check passed")
