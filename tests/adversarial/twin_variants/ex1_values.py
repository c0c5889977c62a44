# Correct twin of the output-format and RNG attacks: different but correct
# implementations (vectorised over a flipped time axis, exact linear solve,
# torch.multinomial with the generator instead of the inverse-CDF sampler,
# non-contiguous intermediate results). 15 / 15.


def discounted_returns(rewards, dones, gamma):
    r = rewards.detach().flip(0)
    nd = (1.0 - dones.to(r.dtype)).flip(0)
    out = []
    running = torch.zeros_like(r[0])
    for t in range(r.shape[0]):
        running = r[t] + gamma * nd[t] * running
        out.append(running)
    return torch.stack(out).flip(0)


def policy_evaluation(P, R, pi, gamma, tol=1e-8, max_iters=10_000):
    S = P.shape[0]
    R_pi = torch.einsum("sa,sa->s", pi, R)
    P_pi = torch.einsum("sa,sat->st", pi, P)
    return torch.linalg.solve(torch.eye(S, dtype=P.dtype, device=P.device) - gamma * P_pi, R_pi)


def action_values(P, R, V, gamma):
    Q_t = (R + gamma * (P @ V)).t().contiguous()
    return Q_t.t()  # a non-contiguous view is a fine answer


def monte_carlo_value(P, R, pi, gamma, start_state, num_episodes=1000, horizon=None, generator=None):
    if horizon is None:
        horizon = default_horizon(gamma)
    states = torch.full((num_episodes,), start_state, dtype=torch.long, device=P.device)
    G = torch.zeros(num_episodes, dtype=P.dtype, device=P.device)
    for t in range(horizon):
        actions = torch.multinomial(pi[states], 1, generator=generator)[:, 0]
        G = G + gamma ** t * R[states, actions]
        states = torch.multinomial(P[states, actions], 1, generator=generator)[:, 0]
    return G.mean()
