# policy_evaluation returns the right numbers with shape [1, S]: 11 / 15.
_reference_policy_evaluation = policy_evaluation


def policy_evaluation(P, R, pi, gamma, tol=1e-8, max_iters=10_000):
    return _reference_policy_evaluation(P, R, pi, gamma, tol=tol, max_iters=max_iters)[None]
