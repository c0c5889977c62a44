"""Environment constructors (gymnasium 1.x).

``make_env`` builds one seeded environment; ``make_vec_env`` builds ``N`` copies
stepping in lockstep, for PPO and for fast evaluation.

A note on gymnasium 1.x vector environments. They reset a finished
sub-environment automatically, in the "next step" mode: the call to ``step``
in which episode ``k`` ends returns its *final* observation with
``terminated``/``truncated`` set; the *following* call ignores the action for
that sub-environment and returns the first observation of episode ``k + 1``
with reward 0 and both flags False. We keep this mode (CartPole's fast numpy
vector environment only implements it) and deal with it where the
transitions are stored: that "reset step" is not a real transition and is
masked out of every loss (see ``solutions/ex4_ppo.py``). A bonus of the mode:
the final observation of a truncated episode arrives as an ordinary
observation, so bootstrapping from ``V(final observation)`` needs no ``info``
lookup.
"""

from __future__ import annotations

import gymnasium as gym

__all__ = ["make_env", "make_vec_env"]


def make_env(env_id: str = "CartPole-v1", seed: int | None = None, **kwargs) -> gym.Env:
    """Create one environment and seed it.

    Args:
        env_id: a registered gymnasium id.
        seed: when given, the environment is reset once with ``reset(seed=seed)``
            and its action space is seeded, so a caller can then call
            ``env.reset()`` *without* a seed and still get a reproducible
            sequence of episodes.
        **kwargs: passed to ``gym.make`` (e.g. ``max_episode_steps``).

    Returns:
        The environment, already reset once when ``seed`` is given.
    """
    env = gym.make(env_id, **kwargs)
    if seed is not None:
        env.reset(seed=int(seed))
        env.action_space.seed(int(seed))
    return env


def make_vec_env(env_id: str = "CartPole-v1", num_envs: int = 8, seed: int | None = None, **kwargs):
    """Create ``num_envs`` copies of an environment behind one vector interface.

    Uses the environment's own vectorised implementation when it has one
    (CartPole: a numpy simulation of all copies at once, much faster than a
    Python loop over ``num_envs`` environments) and ``SyncVectorEnv`` otherwise.

    Observations come back as an array ``[num_envs, obs_dim]``; ``step`` takes
    an array of ``num_envs`` actions. Autoreset mode: "next step" (see the
    module docstring).

    Args:
        env_id: a registered gymnasium id.
        num_envs: number of sub-environments.
        seed: when given, the vector environment is reset with this seed and
            its action space seeded; later ``reset()`` calls need no seed.
        **kwargs: passed to the environment constructor.

    Returns:
        A ``gymnasium.vector.VectorEnv``, already reset once when ``seed`` is given.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    spec = gym.spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **kwargs)
    if seed is not None:
        envs.reset(seed=int(seed))
        envs.action_space.seed(int(seed))
    return envs
