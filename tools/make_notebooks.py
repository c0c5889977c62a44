"""Generate the nbgrader source notebooks from the single source of each exercise.

For every exercise whose reference module (``solutions/exN_*.py``) and hidden
suite (``autograder/suites/test_exN_*.py``) both exist, this writes
``course/source/<exercise>/<exercise>.ipynb`` (nbgrader's *source* version):

* markdown cells that teach the idea, with the formulas;
* a locked setup cell (imports, ``DEVICE`` chosen once, the grader's guard);
* one answer cell per function the student writes: the function's full
  source, its solution region between nbgrader's ``### BEGIN SOLUTION`` /
  ``### END SOLUTION`` (the region's ``# TODO:`` line is moved just above the
  region, so it survives in the student's copy);
* locked cells with the code the student is given (helpers, training loops);
* a visible quick check per function (small, hand-checkable examples);
* one hidden test cell per test of the suite, worth that test's points, whose
  hidden part is a single call into ``autograder.notebook.check``: the inputs,
  reference values and check logic stay in ``autograder``;
* for functions imported from an earlier exercise: an ungraded answer cell
  ("paste your ``compute_gae`` from exercise 3") so that every notebook runs on
  its own;
* in ex4_ppo, a written answer graded by hand ("Explain why clipping helps
  stability"), with the rubric inside its solution region.

    python -m tools.make_notebooks            # write course/source/
    python -m tools.make_notebooks --check    # exit 1 if course/source/ differs
    python -m tools.make_notebooks --list     # exercises, functions and points
    python -m tools.make_notebooks --extract NOTEBOOK... --out DIR
                                              # answer cells -> DIR/<exercise>.py (for make grade)
"""
from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
SUITES = ROOT / "autograder" / "suites"
SOURCE = ROOT / "course" / "source"

from autograder.exercises import ORDER as EXERCISE_ORDER  # noqa: E402  (the order of the chapter: the registry)

# Points of the hand-graded written answer in ex4_ppo, ON TOP of its 30 automatic points.
WRITTEN_POINTS = 4.0

from autograder.regions import BEGIN, END, TODO, solution_regions  # noqa: E402,F401  (the one parser)
CHECK_CALL = 'from autograder.notebook import check; check("{module}", "{test}")'


class NotebookError(ValueError):
    pass


# ====================================================================== the prose
# Written for these notebooks. Keys: exercise -> "intro" or a function name.
TEXT: dict[str, dict[str, str]] = {
    "ex1_values": {
        "title": "Exercise 1: returns, values and the Bellman equation",
        "intro": r"""
An agent acts in steps. At step $t$ it is in state $s_t$, chooses an action $a_t$ with its
policy $\pi(a \mid s)$, receives a reward $r_t$ and moves to $s_{t+1}$. Everything in
reinforcement learning revolves around one quantity: how much reward follows a decision.
This notebook builds the four tools that measure it, from sampled trajectories to exact
dynamic programming. Every later exercise uses them.
""",
        "discounted_returns": r"""
## 1. Discounted returns

The **return** from step $t$ adds up what the agent collects from then on, each step
further in the future weighted down by the discount $\gamma \in [0, 1]$:

$$G_t = r_t + \gamma\, r_{t+1} + \gamma^2 r_{t+2} + \dots$$

Written recursively, $G_t = r_t + \gamma\, G_{t+1}$: one pass *backwards* in time computes
all of them. A trajectory may hold several episodes back to back. $d_t = 1$ marks the last
step of an episode, and nothing from a later episode may flow into $G_t$:

$$G_t = r_t + \gamma\,(1 - d_t)\,G_{t+1}, \qquad G_T = 0 .$$

An episode still running at the last step $T-1$ simply stops there (no bootstrapping: that
comes in exercise 3). `rewards` and `dones` are `[T]` for one environment or `[T, N]` for
`N` environments side by side; time is always dimension 0. The returns are *targets* for
learning, so they must not carry gradient.
""",
        "policy_evaluation": r"""
## 2. Iterative policy evaluation

The **state value** $V^\pi(s)$ is the expected return when the agent starts in $s$ and
follows $\pi$. When the dynamics are known (transition probabilities $P(s' \mid s, a)$ and
expected rewards $R(s, a)$ of a small, tabular MDP), it solves the **Bellman expectation
equation**:

$$V^\pi(s) = \sum_a \pi(a \mid s)\Big[R(s, a) + \gamma \sum_{s'} P(s' \mid s, a)\, V^\pi(s')\Big].$$

Read the equation as an update: start from $V = 0$ and apply the right-hand side to every
state at once, again and again. For $\gamma < 1$ each sweep shrinks the distance to the
true values by at least a factor $\gamma$, so the sweeps converge; stop when the largest
change of a sweep falls below `tol`.

*Hint.* Averaging over actions first turns the MDP into a Markov reward process,
$R_\pi(s) = \sum_a \pi(a \mid s) R(s, a)$ and $P_\pi(s, s') = \sum_a \pi(a \mid s) P(s' \mid s, a)$,
and a sweep becomes $V \leftarrow R_\pi + \gamma P_\pi V$.
""",
        "action_values": r"""
## 3. Action values

$Q^\pi(s, a)$ is the expected return after taking action $a$ in state $s$ and following
$\pi$ afterwards. One backup turns state values into action values:

$$Q^\pi(s, a) = R(s, a) + \gamma \sum_{s'} P(s' \mid s, a)\, V^\pi(s').$$

Averaging over the policy gives the state values back, $\sum_a \pi(a \mid s)\,Q^\pi(s, a) = V^\pi(s)$,
and the difference $A^\pi(s, a) = Q^\pi(s, a) - V^\pi(s)$, the **advantage** of an action,
is what the policy-gradient methods of the next exercises push up or down.
""",
        "monte_carlo_value": r"""
## 4. Monte Carlo estimation

A real environment does not hand you $P$ and $R$, but you can play it. Sample $M$ episodes
that start in $s_0$, compute the discounted return of each and average them:

$$\hat V(s_0) = \frac{1}{M} \sum_{i=1}^{M} G^{(i)}, \qquad G^{(i)} = \sum_{t=0}^{H-1} \gamma^t\, R\big(s_t^{(i)}, a_t^{(i)}\big).$$

The estimate is unbiased (up to the cut at the horizon $H$, after which $\gamma^H$ is
negligible) and its error shrinks like $1/\sqrt{M}$. The grader compares it with the exact
value from `policy_evaluation`, allowing for that sampling noise. Simulate all episodes in
parallel: keep one tensor of current states, sample every episode's action at once, then
every next state. Draw all randomness from `generator`, so that a run can be repeated.
""",
    },
    "ex2_reinforce": {
        "title": "Exercise 2: REINFORCE",
        "intro": r"""
Instead of learning values and deriving a policy from them, a **policy-gradient** method
adjusts the policy's parameters $\theta$ directly, in the direction that increases the
expected return $J(\theta)$. The policy-gradient theorem gives that direction as an
expectation over the agent's own experience:

$$\nabla_\theta J(\theta) = \mathbb{E}\Big[\sum_t \nabla_\theta \log \pi_\theta(a_t \mid s_t)\; G_t\Big].$$

Actions followed by a high return become more likely, actions followed by a low return
less likely. **REINFORCE** estimates the expectation with one episode at a time: play an
episode, compute its returns (exercise 1), take a gradient step. You write the pieces and
train a policy that balances a pole (CartPole-v1).
""",
        "sample_action": r"""
## 1. Sampling an action

A policy network maps an observation to **logits** $z \in \mathbb{R}^A$, one number per
action; the policy is their softmax, $\pi(a \mid s) = e^{z_a} / \sum_b e^{z_b}$. Sample one
action per row of `logits` and return its log-probability $\log \pi(a \mid s)$ as well.
REINFORCE differentiates that log-probability, so it must stay connected to `logits`.
`torch.log_softmax` is numerically safe for large logits, and `torch.multinomial` accepts a
`generator` (`torch.distributions.Categorical` does not).
""",
        "reinforce_loss": r"""
## 2. The REINFORCE loss

Optimisers minimise, so the objective becomes a loss with a minus sign:

$$L(\theta) = -\frac{1}{T} \sum_t \log \pi_\theta(a_t \mid s_t)\; G_t .$$

Its gradient is minus the policy-gradient estimate. The returns describe what happened;
they are constants for this step, so detach them.
""",
        "collect_episode": r"""
## 3. Collecting an episode

Run the policy in a gymnasium environment until the episode ends (`terminated or
truncated`). At every step: observation $\to$ float32 tensor on `device` $\to$ logits
$\to$ `sample_action` $\to$ `env.step(action.item())`. Keep each log-probability *with*
its graph: the update differentiates through all of them at once.
""",
        "reinforce_update": r"""
## 4. One update

Put the pieces together for one finished episode: the returns with `discounted_returns`
(the only `done` is at the last step), standardised when asked (subtract the mean, divide by
the standard deviation: a crude baseline that also keeps the step size similar for short and
long episodes), then `zero_grad`, `backward` on `reinforce_loss`, and `step`.
""",
        "train_reinforce": r"""
## 5. Training on CartPole

`train_reinforce` is given: it alternates `collect_episode` and `reinforce_update` and stops
early once the greedy policy keeps the pole up for 475 steps in every evaluation episode.
The hidden test trains with a fixed budget and seed and then evaluates the policy it gets
back; the quick check below only runs a few episodes to see that the pieces fit together.
""",
    },
    "ex3_baseline": {
        "title": "Exercise 3: baselines, actor-critic and GAE",
        "intro": r"""
The REINFORCE estimate is unbiased but noisy: every action of a good episode is pushed up,
including the poor ones. Subtracting a **baseline** $b(s_t)$ that does not depend on the
action leaves the expected gradient unchanged, because
$\mathbb{E}_{a \sim \pi}\big[\nabla_\theta \log \pi_\theta(a \mid s)\big]\, b(s) = 0$, yet it
can remove much of the variance:

$$\nabla_\theta J(\theta) = \mathbb{E}\Big[\sum_t \nabla_\theta \log \pi_\theta(a_t \mid s_t)\,\big(G_t - b(s_t)\big)\Big].$$

The natural baseline is the value function $V(s_t)$, learned by a second network, the
**critic**; the policy is the **actor**. This notebook builds the advantage, the critic's
loss, one-step TD errors and generalised advantage estimation (GAE), which interpolates
between the two.
""",
        "advantages": r"""
## Advantages

$$A_t = G_t - V(s_t)$$

says how much better the return was than the critic expected. It weighs the policy
gradient; it must not train the critic, so cut it from the value network's graph.
""",
        "value_loss": r"""
## The critic's loss

The critic regresses its predictions onto targets (returns, or bootstrapped returns later):

$$L_V = \frac{1}{n} \sum_t \big(V(s_t) - y_t\big)^2 .$$

The targets are constants: no gradient may flow into them.
""",
        "reinforce_baseline_loss": r"""
## REINFORCE with a baseline

Two losses from one batch: the policy loss $-\frac{1}{n}\sum_t \log \pi_\theta(a_t \mid s_t)\, A_t$
with the advantage held constant, and the value loss above. The policy loss must send no
gradient into the value network, and the value loss none into the policy.
""",
        "td_errors": r"""
## TD errors

The critic can also judge a single step. The **temporal-difference error**

$$\delta_t = r_t + \gamma\,(1 - d_t)\,V(s_{t+1}) - V(s_t)$$

is a one-step estimate of the advantage: low variance (one reward) but biased by the
critic's own errors. For the critic's update it is a *semi-gradient*: gradient reaches
$V(s_t)$, while $V(s_{t+1})$ is treated as a constant target.
""",
        "compute_gae": r"""
## Generalised advantage estimation

GAE averages all the $n$-step advantage estimates with weights that decay by $\lambda$:

$$\hat A_t = \sum_{k \ge 0} (\gamma \lambda)^k\, \delta_{t+k}
\quad\Longleftrightarrow\quad
\hat A_t = \delta_t + \gamma \lambda\,(1 - d_t)\, \hat A_{t+1},$$

without crossing an episode boundary. $\lambda = 0$ gives the TD error (low variance, more
bias); $\lambda = 1$ gives the discounted return minus the value (no bias from the critic,
more variance). After the last step, `last_value` $= V(s_T)$ bootstraps an episode that is
still running. The critic's targets are `returns = advantages + values`. Both outputs are
targets: no gradient.
""",
        "gradient_variance": r"""
## Measuring the variance

The claim above can be checked numerically. Flatten all policy parameters into one vector
and compute, for each episode $i$ of a batch, its own gradient estimate

$$g_i = \nabla_\theta \sum_t \log \pi_\theta(a_t \mid s_t)\,(G_t - b_t).$$

The spread of the $g_i$ across episodes, summed over the parameter coordinates (sample
variance with denominator $E - 1$), measures how noisy one update is. Compute it once with
$b_t = 0$ and once with $b_t = V(s_t)$ on the same episodes: a fitted baseline should reduce it.
`flat_grad` (given above) computes one flattened gradient without touching `.grad`.
""",
        "actor_critic_update": r"""
## One actor-critic update

Everything above, on one finished episode: the critic predicts $V(s_t)$ for every step, GAE
turns rewards and predictions into advantages and value targets (the episode ends at its
last step, so nothing is bootstrapped), the advantages are optionally standardised, and each
network takes one optimiser step on its own loss: the actor on the REINFORCE loss weighted
by the advantages, the critic on the value loss. Neither loss may send gradient into the
other network.
""",
        "train_actor_critic": r"""
## Training an actor-critic

With the critic in place, training alternates collecting experience, computing advantages
and updating both networks. The hidden test trains on CartPole-v1 with a fixed budget; the
quick check only runs a short session.
""",
    },
    "ex4_ppo": {
        "title": "Exercise 4: PPO-clip",
        "intro": r"""
A policy-gradient step is only valid near the policy that collected the data. Take too large
a step and the new policy can be much worse, and the next batch is then collected by that
worse policy. **Proximal Policy Optimization** reuses each batch for several epochs of
minibatch updates and removes the incentive to move far from the old policy
$\pi_{\theta_\text{old}}$ by clipping the probability ratio

$$\rho_t(\theta) = \frac{\pi_\theta(a_t \mid s_t)}{\pi_{\theta_\text{old}}(a_t \mid s_t)} .$$

The clipped objective is

$$L^\text{CLIP}(\theta) = \mathbb{E}_t\Big[\min\big(\rho_t(\theta)\, A_t,\ \operatorname{clip}(\rho_t(\theta), 1 - \epsilon, 1 + \epsilon)\, A_t\big)\Big].$$

You write its pieces, answer a written question about it, and train PPO on CartPole.
""",
        "probability_ratio": r"""
## 1. The probability ratio

Computed from log-probabilities, $\rho_t = \exp\big(\log \pi_\theta(a_t \mid s_t) - \log \pi_{\theta_\text{old}}(a_t \mid s_t)\big)$.
The old log-probabilities were recorded when the data was collected: they are data, so no
gradient may reach them.
""",
        "clipped_surrogate": r"""
## 2. The clipped surrogate

Elementwise: the unclipped term $\rho_t A_t$, the clipped term
$\operatorname{clip}(\rho_t, 1 - \epsilon, 1 + \epsilon)\, A_t$, and the objective, their
minimum. The minimum makes the objective a pessimistic bound: whichever term promises less
improvement wins.
""",
        "clip_active": r"""
## 3. Where clipping is active

The four cases of the chapter's exercise:

| advantage | ratio | the minimum picks | gradient |
|---|---|---|---|
| $A_t > 0$ | $\rho_t > 1 + \epsilon$ | the clipped term (a constant) | zero: the action is already more likely enough |
| $A_t > 0$ | $\rho_t \le 1 + \epsilon$ | the unclipped term | pushes $\rho_t$ up |
| $A_t < 0$ | $\rho_t < 1 - \epsilon$ | the clipped term (a constant) | zero: the action is already less likely enough |
| $A_t < 0$ | $\rho_t \ge 1 - \epsilon$ | the unclipped term | pushes $\rho_t$ down |

Return a bool tensor that is True exactly where the minimum selects the clipped term *and*
that term differs from the unclipped one, that is, where the sample contributes no gradient.
""",
        "ppo_policy_loss": r"""
## 4. The PPO policy loss

$$L(\theta) = -\frac{1}{n}\sum_t \min\big(\rho_t A_t,\ \operatorname{clip}(\rho_t, 1 - \epsilon, 1 + \epsilon) A_t\big),$$

built from the two previous functions. Gradient reaches the new log-probabilities only.
""",
        "train_ppo": r"""
## 5. PPO on CartPole

The full algorithm: vectorised environments collect a batch with the current policy, GAE
(from exercise 3) turns it into advantages and value targets, and several epochs of
minibatch updates optimise the clipped loss together with the critic's loss. The hidden test
requires a greedy evaluation return of at least 475 within a fixed budget of environment
steps; the quick check below only runs a tiny budget.
""",
        "written": r"""
## Written answer: why does clipping help stability?

In a few sentences, explain why clipping the ratio makes PPO's training more stable than
taking plain policy-gradient steps on the same batch several times. Refer to the four cases
of the table above, and say what happens to the gradient of a sample once its ratio has left
the interval $[1 - \epsilon, 1 + \epsilon]$ in the direction its advantage favours.
This answer is graded by hand (**{points:g} points**, on top of the 30 automatic points).
""",
        "rubric": r"""
**Rubric for the grader ({points:g} points).**

* 1 point: the update is computed from data collected by the *old* policy; large policy
  changes make that data (and the advantage estimates) unreliable, and one bad step also
  spoils the next batch.
* 1 point: once $\rho_t > 1 + \epsilon$ with $A_t > 0$ (or $\rho_t < 1 - \epsilon$ with
  $A_t < 0$), the clipped term is selected, it does not depend on $\theta$, and the sample's
  gradient is zero: there is no incentive to move the policy further.
* 1 point: the minimum keeps the objective a pessimistic (lower) bound: moves that make the
  objective *worse* are never clipped, so mistakes are still corrected.
* 1 point: the consequence: several epochs of minibatch updates on the same batch stay close
  to the old policy (an approximate trust region, like TRPO's KL constraint, without
  second-order optimisation), which gives steady improvement instead of collapses.

*Model answer.* The batch was collected by the old policy, and the advantages are only
trustworthy near it. Without clipping, repeated gradient steps on the same batch keep
increasing the probability of actions with positive advantage far beyond what the data
supports, and one oversized update can collapse the policy, which then collects bad data.
With clipping, as soon as the ratio of an action leaves $[1-\epsilon, 1+\epsilon]$ in the
direction its advantage favours, the minimum selects the clipped term, which is constant in
$\theta$, so that sample stops contributing gradient. Changes in the harmful direction remain
unclipped because of the minimum, so the objective is a lower bound. Each update therefore
stays in a small region around the old policy, giving a cheap approximate trust region.
""",
    },
    "ex5_rlhf": {
        "title": "Exercise 5: the RLHF objective",
        "intro": r"""
A language model is a policy over tokens: the **state** is the prompt plus the tokens
generated so far, the **action** is the next token, and an **episode** is one complete
response. A reward model trained on human preferences scores the whole response once, and a
penalty keeps the policy close to a frozen reference model $\pi_\text{ref}$:

$$\max_\pi\; \mathbb{E}\big[R_\text{rm}(x, y)\big] - \beta\, \mathrm{KL}\big(\pi \,\|\, \pi_\text{ref}\big).$$

Without the penalty the policy drifts towards whatever fools the reward model ("reward
hacking"). This notebook turns the objective into per-token rewards and advantages that
PPO (exercise 4) can optimise. Batches are `[B, T]`; `mask` is 1 on the response tokens of
each row (one contiguous run) and 0 on the prompt and the padding.
""",
        "preference_loss": r"""
## 1. Training a reward model: the Bradley-Terry loss

Labellers compare two responses to the same prompt. The Bradley-Terry model says response
$a$ is preferred to $b$ with probability $\sigma\big(r(a) - r(b)\big)$. The reward model
maximises the likelihood of the observed choices:

$$L = -\frac{1}{N} \sum_i \log \sigma\big(r(a_i) - r(b_i)\big).$$

Computed naively, $\log \sigma(x)$ underflows to $\log 0$ for very negative $x$; use a
stable form (`torch.nn.functional.logsigmoid`).
""",
        "kl_penalty": r"""
## 2. The per-token KL penalty

For a token sampled from the policy, $\log \pi(a_t \mid s_t) - \log \pi_\text{ref}(a_t \mid s_t)$
is an unbiased one-sample estimate of $\mathrm{KL}\big(\pi(\cdot \mid s_t) \,\|\, \pi_\text{ref}(\cdot \mid s_t)\big)$.
One sample can be negative; the average cannot. The reference is frozen: no gradient reaches it.
""",
        "rlhf_rewards": r"""
## 3. Per-token rewards

The objective spread over the tokens of each response: every response token pays
$-\beta\,\mathrm{kl}_t$, and the last response token also receives the reward model's score:

$$r_{b,t} = -\beta\,\big(\log \pi_{b,t} - \log \pi^\text{ref}_{b,t}\big) + \mathbb{1}[t = \text{last}_b]\; \text{score}_b
\quad \text{on the response, and } 0 \text{ elsewhere.}$$

Values at positions where `mask` is 0 are arbitrary and must not leak into the result
(multiplying by the mask is not enough when they are huge; select instead). A row without
response tokens is all zeros.
""",
        "token_advantages": r"""
## 4. Per-token advantages

Each response is one episode that ends at its last token, with $\gamma = 1$ (every token of
the response counts, however long it is). GAE from exercise 3 then gives per-token
advantages and value targets; positions outside the response get 0.
""",
        "run_toy_rlhf": r"""
## 5. A toy RLHF run

`run_toy_rlhf` (given) trains a tiny token policy with PPO on the rewards your functions
produce, against a scripted reward model and a frozen reference copy. The hidden test checks
that the reward rises while the KL to the reference stays bounded when $\beta > 0$.
""",
    },
}

HOW_TO = r"""
**How this notebook works**

* Write your code in the **answer cells**: replace `raise NotImplementedError()` under
  `# YOUR CODE HERE` with your implementation. The `# TODO:` line above it says what to
  write, and the function's docstring gives the formula and the shapes. Keep the function's
  name and signature.
* Run the **quick check** under each answer. It tests a small example you can verify by
  hand. Passing it is a good sign, not a guarantee of points.
* Cells titled **hidden test** are empty in your copy. When your work is graded, each one runs
  a hidden check of that function (many random inputs, both tensor shapes, edge cases,
  gradients, the device) and is worth the points it shows.
* Read-only cells are restored when your notebook is graded; do not delete, split or reorder
  cells. Before you submit, run *Kernel → Restart & Run All* and make sure every cell runs.
* The setup cell chooses the device once, CUDA when it is available and the CPU otherwise
  (start Jupyter with `RLKIT_DEVICE=cpu` to force the CPU). Everything below uses `DEVICE`.
"""

# ====================================================================== quick checks
# exercise -> function -> (parameter names the check passes by keyword or relies on, code).
# A check is emitted only when the function exists and has those parameters.
QUICK: dict[str, dict[str, tuple[tuple[str, ...], str]]] = {
    "ex1_values": {
        "discounted_returns": (("rewards", "dones", "gamma"), r'''
# Quick check (not graded). Steps 0-1 are one episode, steps 2-3 a second one still running.
rewards = torch.tensor([1.0, 1.0, 1.0, 1.0], device=DEVICE)
dones = torch.tensor([0.0, 1.0, 0.0, 0.0], device=DEVICE)
G = discounted_returns(rewards, dones, 0.5)
got = [round(float(x), 6) for x in G.tolist()]
assert got == [1.5, 1.0, 1.5, 1.0], f"expected [1.5, 1.0, 1.5, 1.0], got {got}"
assert G.device.type == DEVICE.type, "return the result on the device of the inputs"

# The same numbers as two environments side by side: shape [T=2, N=2].
G2 = discounted_returns(rewards.reshape(2, 2), dones.reshape(2, 2), 0.5)
got2 = [[round(float(x), 6) for x in row] for row in G2.tolist()]
assert got2 == [[1.5, 1.0], [1.0, 1.0]], f"expected [[1.5, 1.0], [1.0, 1.0]], got {got2}"
print("quick check passed")
'''),
        "policy_evaluation": (("P", "R", "pi", "gamma"), r'''
# Quick check (not graded). State 0: both actions lead to state 1, with rewards 1 and 3.
# State 1 is absorbing (it loops on itself with reward 0).
P = torch.zeros(2, 2, 2, dtype=torch.float64, device=DEVICE)
P[0, :, 1] = 1.0
P[1, :, 1] = 1.0
R = torch.tensor([[1.0, 3.0], [0.0, 0.0]], dtype=torch.float64, device=DEVICE)
pi = torch.full((2, 2), 0.5, dtype=torch.float64, device=DEVICE)
V = policy_evaluation(P, R, pi, 0.9)
got = [round(float(v), 6) for v in V.tolist()]
assert got == [2.0, 0.0], f"expected [2.0, 0.0] (the average of 1 and 3, then nothing), got {got}"

# One state looping on itself with reward 1: V = 1 / (1 - gamma) = 2 for gamma = 0.5.
one = torch.ones(1, 1, 1, dtype=torch.float64, device=DEVICE)
V1 = policy_evaluation(one, one[0], one[0], 0.5)
assert abs(float(V1[0]) - 2.0) < 1e-6, f"expected 2.0, got {float(V1[0])}"
print("quick check passed")
'''),
        "action_values": (("P", "R", "V", "gamma"), r'''
# Quick check (not graded), on the two-state MDP above: V = [2, 0].
P = torch.zeros(2, 2, 2, dtype=torch.float64, device=DEVICE)
P[0, :, 1] = 1.0
P[1, :, 1] = 1.0
R = torch.tensor([[1.0, 3.0], [0.0, 0.0]], dtype=torch.float64, device=DEVICE)
V = torch.tensor([2.0, 0.0], dtype=torch.float64, device=DEVICE)
Q = action_values(P, R, V, 0.9)
got = [[round(float(q), 6) for q in row] for row in Q.tolist()]
assert got == [[1.0, 3.0], [0.0, 0.0]], f"expected [[1.0, 3.0], [0.0, 0.0]], got {got}"
# averaging Q over the policy gives V back
pi = torch.full((2, 2), 0.5, dtype=torch.float64, device=DEVICE)
back = [round(float(v), 6) for v in (pi * Q).sum(dim=1).tolist()]
assert back == [2.0, 0.0], back
print("quick check passed")
'''),
        "monte_carlo_value": (("P", "R", "pi", "gamma", "start_state", "num_episodes", "generator"), r'''
# Quick check (not graded), on the two-state MDP above.
P = torch.zeros(2, 2, 2, dtype=torch.float64, device=DEVICE)
P[0, :, 1] = 1.0
P[1, :, 1] = 1.0
R = torch.tensor([[1.0, 3.0], [0.0, 0.0]], dtype=torch.float64, device=DEVICE)
# A policy that always takes action 0: every episode returns exactly 1.
always0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=torch.float64, device=DEVICE)
g = torch.Generator(device=DEVICE).manual_seed(0)
v = float(monte_carlo_value(P, R, always0, 0.9, start_state=0, num_episodes=100, generator=g))
assert abs(v - 1.0) < 1e-9, f"expected exactly 1.0, got {v}"
# A coin flip between rewards 1 and 3: about 2, within sampling noise.
coin = torch.full((2, 2), 0.5, dtype=torch.float64, device=DEVICE)
g = torch.Generator(device=DEVICE).manual_seed(0)
v = float(monte_carlo_value(P, R, coin, 0.9, start_state=0, num_episodes=4000, generator=g))
assert abs(v - 2.0) < 0.1, f"expected about 2.0, got {v}"
print("quick check passed")
'''),
    },
    "ex2_reinforce": {
        "sample_action": (("logits", "generator"), r'''
# Quick check (not graded).
g = torch.Generator(device=DEVICE).manual_seed(0)
logits = torch.tensor([[0.0, 0.0, -30.0], [2.0, -1.0, 0.5]], device=DEVICE, requires_grad=True)
actions, log_probs = sample_action(logits, generator=g)
assert actions.dtype == torch.int64 and tuple(actions.shape) == (2,), (actions.dtype, actions.shape)
assert int(actions[0]) in (0, 1), "action 2 has (almost) zero probability"
expected = torch.log_softmax(logits.detach(), dim=-1)[torch.arange(2, device=DEVICE), actions]
got = [float(x) for x in log_probs.tolist()]
assert all(abs(a - b) < 1e-5 for a, b in zip(got, expected.tolist())), (got, expected.tolist())
log_probs.sum().backward()
assert logits.grad is not None, "log_probs must be differentiable with respect to logits"

# Frequencies: with logits [0, log 3], action 1 should come up about 75% of the time.
many = torch.tensor([0.0, math.log(3.0)], device=DEVICE).expand(20000, 2)
a, _ = sample_action(many, generator=torch.Generator(device=DEVICE).manual_seed(1))
freq = float(a.float().mean())
assert abs(freq - 0.75) < 0.02, f"action 1 sampled with frequency {freq:.3f}, expected about 0.75"
print("quick check passed")
'''),
        "reinforce_loss": (("log_probs", "returns"), r'''
# Quick check (not graded): -mean([-1 * 1, -2 * 3]) = 3.5
log_probs = torch.tensor([-1.0, -2.0], device=DEVICE, requires_grad=True)
returns = torch.tensor([1.0, 3.0], device=DEVICE, requires_grad=True)
loss = reinforce_loss(log_probs, returns)
assert tuple(loss.shape) == (), f"the loss should be a scalar, got shape {tuple(loss.shape)}"
assert abs(float(loss.detach()) - 3.5) < 1e-6, f"expected 3.5, got {float(loss.detach())}"
loss.backward()
assert returns.grad is None, "no gradient may reach the returns (detach them)"
assert [round(float(x), 6) for x in log_probs.grad.tolist()] == [-0.5, -1.5], log_probs.grad.tolist()
print("quick check passed")
'''),
        "collect_episode": (("env", "policy", "device", "generator"), r'''
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
'''),
        "reinforce_update": (("optimizer", "episode", "gamma"), r'''
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
'''),
        "train_reinforce": (("episodes", "seed", "device", "target_return"), r'''
# Quick check (not graded): a few episodes only; the hidden test trains for real.
result = train_reinforce(episodes=5, seed=0, device=DEVICE, target_return=None)
assert len(result.episode_returns) == 5, len(result.episode_returns)
print("quick check passed; returns:", [float(r) for r in result.episode_returns])
'''),
    },
    "ex3_baseline": {
        "advantages": (("returns", "values"), r'''
# Quick check (not graded).
returns = torch.tensor([1.0, 2.0], device=DEVICE)
values = torch.tensor([0.5, 0.5], device=DEVICE, requires_grad=True)
adv = advantages(returns, values)
assert [round(float(x), 6) for x in adv.tolist()] == [0.5, 1.5], adv.tolist()
assert not adv.requires_grad, "cut the advantages from the value graph (detach)"
print("quick check passed")
'''),
        "value_loss": (("values", "targets"), r'''
# Quick check (not graded): mean((1 - 0)^2, (2 - 0)^2) = 2.5
values = torch.tensor([1.0, 2.0], device=DEVICE, requires_grad=True)
targets = torch.tensor([0.0, 0.0], device=DEVICE, requires_grad=True)
loss = value_loss(values, targets)
assert abs(float(loss.detach()) - 2.5) < 1e-6, float(loss.detach())
loss.backward()
assert targets.grad is None, "no gradient may reach the targets"
assert values.grad is not None
print("quick check passed")
'''),
        "td_errors": (("rewards", "values", "next_values", "dones", "gamma"), r'''
# Quick check (not graded): delta_0 = 1 + 0.5 * 1 - 0.5 = 1.0 ; delta_1 = 1 + 0 - 0.5 = 0.5 (done)
rewards = torch.tensor([1.0, 1.0], device=DEVICE)
values = torch.tensor([0.5, 0.5], device=DEVICE)
next_values = torch.tensor([1.0, 2.0], device=DEVICE)
dones = torch.tensor([0.0, 1.0], device=DEVICE)
deltas = td_errors(rewards, values, next_values, dones, 0.5)
assert [round(float(x), 6) for x in deltas.tolist()] == [1.0, 0.5], deltas.tolist()
print("quick check passed")
'''),
        "compute_gae": (("rewards", "values", "dones", "last_value", "gamma", "lam"), r'''
# Quick check (not graded): rewards 1, values 1, last value 1, gamma 0.5, no dones.
rewards = torch.ones(3, device=DEVICE)
values = torch.ones(3, device=DEVICE)
dones = torch.zeros(3, device=DEVICE)
last_value = torch.tensor(1.0, device=DEVICE)
adv0, _ = compute_gae(rewards, values, dones, last_value, gamma=0.5, lam=0.0)
assert [round(float(x), 6) for x in adv0.tolist()] == [0.5, 0.5, 0.5], "lam = 0 gives the TD errors"
adv1, ret1 = compute_gae(rewards, values, dones, last_value, gamma=0.5, lam=1.0)
assert [round(float(x), 6) for x in adv1.tolist()] == [0.875, 0.75, 0.5], adv1.tolist()
assert [round(float(x), 6) for x in ret1.tolist()] == [1.875, 1.75, 1.5], "returns = advantages + values"
print("quick check passed")
'''),
    },
    "ex4_ppo": {
        "probability_ratio": (("new_log_probs", "old_log_probs"), r'''
# Quick check (not graded).
new = torch.tensor([math.log(2.0), 0.0], device=DEVICE, requires_grad=True)
old = torch.tensor([0.0, math.log(2.0)], device=DEVICE, requires_grad=True)
ratio = probability_ratio(new, old)
assert [round(float(x), 6) for x in ratio.tolist()] == [2.0, 0.5], ratio.tolist()
ratio.sum().backward()
assert old.grad is None, "no gradient may reach the old log-probabilities"
print("quick check passed")
'''),
        "clipped_surrogate": (("ratio", "advantages", "clip_eps"), r'''
# Quick check (not graded): the four cases, eps = 0.2.
ratio = torch.tensor([1.5, 0.5, 1.5, 0.5], device=DEVICE)
adv = torch.tensor([1.0, 1.0, -1.0, -1.0], device=DEVICE)
unclipped, clipped, objective = clipped_surrogate(ratio, adv, 0.2)
as_list = lambda t: [round(float(x), 6) for x in t.tolist()]
assert as_list(unclipped) == [1.5, 0.5, -1.5, -0.5], as_list(unclipped)
assert as_list(clipped) == [1.2, 0.8, -1.2, -0.8], as_list(clipped)
assert as_list(objective) == [1.2, 0.5, -1.5, -0.8], as_list(objective)
print("quick check passed")
'''),
        "clip_active": (("ratio", "advantages", "clip_eps"), r'''
# Quick check (not graded): clipping removes the gradient in cases 1 and 4 only.
ratio = torch.tensor([1.5, 0.5, 1.5, 0.5], device=DEVICE)
adv = torch.tensor([1.0, 1.0, -1.0, -1.0], device=DEVICE)
active = clip_active(ratio, adv, 0.2)
assert [bool(x) for x in active.tolist()] == [True, False, False, True], active.tolist()
print("quick check passed")
'''),
        "ppo_policy_loss": (("new_log_probs", "old_log_probs", "advantages", "clip_eps"), r'''
# Quick check (not graded): -mean([1.2, 0.5, -1.5, -0.8]) = 0.15
new = torch.log(torch.tensor([1.5, 0.5, 1.5, 0.5], device=DEVICE)).requires_grad_(True)
old = torch.zeros(4, device=DEVICE)
adv = torch.tensor([1.0, 1.0, -1.0, -1.0], device=DEVICE)
loss = ppo_policy_loss(new, old, adv, 0.2)
assert abs(float(loss.detach()) - 0.15) < 1e-6, float(loss.detach())
loss.backward()
g = [round(float(x), 6) for x in new.grad.tolist()]
assert g[0] == 0.0 and g[3] == 0.0, f"clipped samples must have zero gradient, got {g}"
print("quick check passed")
'''),
        "train_ppo": (("env_id", "total_steps", "seed", "device"), r'''
# Quick check (not graded): two small updates only; the hidden test trains for real.
result = train_ppo("CartPole-v1", total_steps=2048, seed=0, device=DEVICE)
assert len(result.episode_returns) > 0, "no episode finished"
print("quick check passed; first returns:", [float(r) for r in result.episode_returns[:5]])
'''),
    },
    "ex5_rlhf": {
        "preference_loss": (("r_chosen", "r_rejected"), r'''
# Quick check (not graded): -log sigmoid(2) = log(1 + e^-2)
loss = preference_loss(torch.tensor([2.0], device=DEVICE), torch.tensor([0.0], device=DEVICE))
assert abs(float(loss) - math.log(1 + math.exp(-2.0))) < 1e-6, float(loss)
huge = preference_loss(torch.tensor([-500.0], device=DEVICE), torch.tensor([500.0], device=DEVICE))
assert math.isfinite(float(huge)) and abs(float(huge) - 1000.0) < 1e-3, f"not stable: {float(huge)}"
print("quick check passed")
'''),
        "kl_penalty": (("log_probs", "ref_log_probs"), r'''
# Quick check (not graded).
lp = torch.tensor([-1.0, -2.0], device=DEVICE, requires_grad=True)
ref = torch.tensor([-1.5, -1.0], device=DEVICE, requires_grad=True)
kl = kl_penalty(lp, ref)
assert [round(float(x), 6) for x in kl.tolist()] == [0.5, -1.0], kl.tolist()
kl.sum().backward()
assert ref.grad is None, "the reference is frozen: no gradient may reach ref_log_probs"
print("quick check passed")
'''),
        "rlhf_rewards": (("scores", "log_probs", "ref_log_probs", "mask", "beta"), r'''
# Quick check (not graded): prompt, two response tokens, padding (whose values must not matter).
scores = torch.tensor([2.0], device=DEVICE)
log_probs = torch.tensor([[0.0, -1.0, -1.0, 0.0]], device=DEVICE)
ref = torch.tensor([[0.0, -2.0, -1.5, 7.0]], device=DEVICE)
mask = torch.tensor([[0.0, 1.0, 1.0, 0.0]], device=DEVICE)
r = rlhf_rewards(scores, log_probs, ref, mask, 0.1)
got = [round(float(x), 6) for x in r[0].tolist()]
assert got == [0.0, -0.1, 1.95, 0.0], f"expected [0.0, -0.1, 1.95, 0.0], got {got}"
print("quick check passed")
'''),
        "token_advantages": (("rewards", "values", "mask", "lam"), r'''
# Quick check (not graded): response = positions 1 and 2, gamma = 1, lam = 1.
rewards = torch.tensor([[0.0, 1.0, 2.0, 0.0]], device=DEVICE)
values = torch.tensor([[0.0, 0.5, 0.5, 9.0]], device=DEVICE)
mask = torch.tensor([[0.0, 1.0, 1.0, 0.0]], device=DEVICE)
adv, ret = token_advantages(rewards, values, mask, lam=1.0)
assert [round(float(x), 6) for x in adv[0].tolist()] == [0.0, 2.5, 1.5, 0.0], adv.tolist()
assert [round(float(x), 6) for x in ret[0].tolist()] == [0.0, 3.0, 2.0, 0.0], ret.tolist()
print("quick check passed")
'''),
    },
}


# ====================================================================== reading the sources
@dataclass
class SuiteTest:
    name: str
    function: str
    points: float
    title: str
    learning: bool = False


@dataclass
class Stmt:
    node: ast.stmt
    text: str
    kind: str  # future | import | relimport | all | main | answer | given
    defines: set[str] = field(default_factory=set)
    name: str = ""


def _mark_arg(dec: ast.expr, mark: str):
    """The first argument of ``@pytest.mark.<mark>(arg)``, or None."""
    if isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == mark:
        inner = dec.func.value
        if isinstance(inner, ast.Attribute) and inner.attr == "mark" and dec.args:
            return ast.literal_eval(dec.args[0])
    if isinstance(dec, ast.Attribute) and dec.attr == mark and isinstance(dec.value, ast.Attribute) \
            and dec.value.attr == "mark":
        return True
    return None


def suite_tests(exercise: str) -> list[SuiteTest]:
    """The tests of ``autograder/suites/test_<exercise>.py`` in file order, with their markers."""
    path = SUITES / f"test_{exercise}.py"
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
            continue
        function = points = None
        learning = False
        for dec in node.decorator_list:
            function = _mark_arg(dec, "function") if function is None else function
            points = _mark_arg(dec, "points") if points is None else points
            learning = learning or bool(_mark_arg(dec, "learning"))
            if _mark_arg(dec, "parametrize") is not None:
                raise NotebookError(f"{path.name}: {node.name} is parametrized; notebooks need one test per cell")
        if points is None:
            continue  # not a graded test
        doc = ast.get_docstring(node) or node.name.removeprefix("test_").replace("_", " ")
        out.append(SuiteTest(node.name, str(function or ""), float(points), doc.strip().splitlines()[0], learning))
    return out


def _defined_names(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    names = set()
    targets = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, ast.Name):
                names.add(n.id)
    return names


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__name__" in _used_names(node.test)


def parse_module(path: Path) -> list[Stmt]:
    """The module's top-level statements with their text (comments right above a statement included)."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source, str(path))
    out = []
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # the module docstring: the notebook has its own prose
    for node in body:
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        end = node.end_lineno  # the AST ends at the last statement: keep the indented comments after it
        while end < len(lines) and (not lines[end].strip() or
                                    (lines[end][:1].isspace() and lines[end].lstrip().startswith("#"))):
            end += 1
        text = "\n".join(lines[start:end]).rstrip() + "\n"
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            kind = "future"
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            kind = "relimport"
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            kind = "import"
        elif isinstance(node, ast.Assign) and _defined_names(node) == {"__all__"}:
            kind = "all"
        elif _is_main_guard(node):
            kind = "main"
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and "### BEGIN SOLUTION" in text:
            kind = "answer"
        else:
            kind = "given"
        if kind in ("given", "main") and "### BEGIN SOLUTION" in text:
            raise NotebookError(f"{path.name}:{node.lineno}: a solution region outside a top-level function")
        name = getattr(node, "name", "")
        out.append(Stmt(node, text, kind, _defined_names(node), name))
    return out


def answer_source(text: str) -> str:
    """A function's source with each region's ``# TODO:`` line moved above ``### BEGIN SOLUTION``."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = BEGIN.match(lines[i])
        if m:
            if i + 1 < len(lines) and TODO.match(lines[i + 1]):
                out.append(lines[i + 1])
                out.append(lines[i])
                i += 2
                continue
        out.append(lines[i])
        i += 1
    return "\n".join(out).rstrip() + "\n"


def _import_text(node: ast.ImportFrom | ast.Import, keep: set[str] | None = None) -> str:
    """An import statement, optionally restricted to the names in ``keep``."""
    aliases = [a for a in node.names if keep is None or (a.asname or a.name).split(".")[0] in keep]
    if not aliases:
        return ""
    parts = [a.name + (f" as {a.asname}" if a.asname else "") for a in aliases]
    if isinstance(node, ast.Import):
        return "\n".join(f"import {p}" for p in parts) + "\n"
    return f"from {node.module} import {', '.join(parts)}\n"


# ====================================================================== dependencies between exercises
@dataclass
class Dependency:
    module: str             # e.g. "ex3_baseline"
    imports: list[str]      # absolute import lines the pasted code needs
    given: list[Stmt]       # helper statements (no solution region)
    answers: list[Stmt]     # functions the student pastes from that exercise


def _module_path(name: str) -> Path:
    return SOLUTIONS / f"{name}.py"


def resolve_dependencies(stmts: list[Stmt], own: str) -> list[Dependency]:
    """What the relative imports of a module need, as self-contained notebook cells."""
    own_defs: dict[str, Stmt] = {}
    for s in stmts:
        if s.kind not in ("answer", "given"):
            continue
        for n in s.defines:
            own_defs[n] = s
    wanted: dict[str, set[str]] = {}
    for s in stmts:
        if s.kind == "relimport":
            node = s.node
            if node.level != 1 or not node.module:
                raise NotebookError(f"{own}: unsupported relative import {s.text.strip()!r}")
            wanted.setdefault(node.module, set()).update(a.name for a in node.names)
            for a in node.names:
                if a.asname and a.asname != a.name:
                    raise NotebookError(f"{own}: 'import ... as' in a relative import is not supported")
    deps: list[Dependency] = []
    seen_modules: set[str] = {own}
    order = sorted(wanted, key=lambda m: EXERCISE_ORDER.index(m) if m in EXERCISE_ORDER else 99)
    queue = [(m, wanted[m]) for m in order]
    provided: set[str] = set()
    while queue:
        module, names = queue.pop(0)
        path = _module_path(module)
        if not path.is_file():
            raise NotebookError(f"{own} imports from {module}, which does not exist yet")
        dstmts = parse_module(path)
        defs: dict[str, Stmt] = {}
        for s in dstmts:
            for n in s.defines:
                defs.setdefault(n, s)
        need: set[str] = set()
        stack = list(names)
        while stack:
            n = stack.pop()
            if n in need:
                continue
            if n not in defs:
                raise NotebookError(f"{own}: {module} defines no {n!r}")
            need.add(n)
            s = defs[n]
            if s.kind in ("answer", "given"):
                stack.extend(x for x in _used_names(s.node) if x in defs and x not in need)
        imports, given, answers, sub = [], [], [], {}
        for s in dstmts:
            hit = s.defines & need
            if not hit:
                continue
            if s.kind == "import":
                imports.append(_import_text(s.node, hit))
            elif s.kind == "relimport":
                sub.setdefault(s.node.module, set()).update(hit)
            elif s.kind in ("answer", "given"):
                clash = [n for n in s.defines if n in own_defs and own_defs[n].text != s.text]
                if clash:
                    raise NotebookError(f"{own} and {module} both define {clash}; rename one of them "
                                        "(the notebook would hold both)")
                if any(n in own_defs for n in s.defines) or s.defines <= provided:
                    continue  # identical code is already in the notebook
                (answers if s.kind == "answer" else given).append(s)
                provided |= s.defines
        for m, ns in sub.items():
            if m not in seen_modules:
                queue.append((m, ns))
        seen_modules.add(module)
        deps.append(Dependency(module, imports, given, answers))
    deps.sort(key=lambda d: EXERCISE_ORDER.index(d.module) if d.module in EXERCISE_ORDER else 99)
    return deps


# ====================================================================== building a notebook
def _nb_meta(**kw) -> dict:
    meta = {"grade": False, "solution": False, "locked": False, "schema_version": 3}
    meta.update(kw)
    return {"nbgrader": meta}


class Builder:
    def __init__(self, exercise: str):
        self.exercise = exercise
        self.cells: list = []
        self.ids: set[str] = set()
        self.md_count = 0

    def _id(self, wanted: str) -> str:
        cid = re.sub(r"[^A-Za-z0-9_-]", "-", wanted)[:60]
        base, k = cid, 2
        while cid in self.ids:
            cid = f"{base}-{k}"
            k += 1
        self.ids.add(cid)
        return cid

    def markdown(self, text: str) -> None:
        self.md_count += 1
        cell = nbformat.v4.new_markdown_cell(text.strip() + "\n")
        cell.id = self._id(f"md-{self.md_count}")
        self.cells.append(cell)

    def code(self, source: str, grade_id: str, *, solution=False, grade=False, locked=False,
             points: float | None = None) -> None:
        cell = nbformat.v4.new_code_cell(source.strip("\n") + "\n")
        cell.id = self._id(grade_id)
        meta = _nb_meta(grade=grade, solution=solution, locked=locked, grade_id=grade_id)
        if points is not None:
            meta["nbgrader"]["points"] = float(points)
        if locked:
            meta["deletable"] = False
            meta["editable"] = False
        cell.metadata = meta
        self.cells.append(cell)

    def written(self, text: str, grade_id: str, points: float) -> None:
        cell = nbformat.v4.new_markdown_cell(text.strip() + "\n")
        cell.id = self._id(grade_id)
        cell.metadata = _nb_meta(grade=True, solution=True, locked=False, grade_id=grade_id, points=float(points))
        self.cells.append(cell)

    def notebook(self):
        nb = nbformat.v4.new_notebook()
        nb.metadata = {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        }
        nb.cells = self.cells
        return nb


COMMON_ZIP = "rlkit_common.zip"  # common/ as one file, released next to each notebook (make release)

SETUP_HEAD = '''\
from __future__ import annotations

# Setup (read-only): imports and the device every cell below uses.
import math
import os
import sys
from pathlib import Path

try:
    import common  # the kit is importable (the grading machine, or the kit installed with pip)
except ImportError:  # the student bundle: common/ sits in a folder above this notebook;
    # fetched from the exchange: rlkit_common.zip (the same common/) sits next to it
    for _folder in [Path.cwd(), *Path.cwd().parents]:
        if (_folder / "common" / "__init__.py").is_file():
            sys.path.insert(0, str(_folder))
            break
        if (_folder / "rlkit_common.zip").is_file():
            sys.path.insert(0, str(_folder / "rlkit_common.zip"))
            break
    import common
'''

SETUP_TAIL = '''\
from common.device import get_device

DEVICE = get_device(os.environ.get("RLKIT_DEVICE", "auto"))  # chosen once: CUDA if available, else CPU
print("device:", DEVICE)

try:  # on the grading machine this loads the hidden checks before any answer cell runs
    import autograder.notebook  # noqa: F401
except ImportError:  # your copy has no grader: nothing to do
    pass
'''


def _function_text(ex: str, fn: str, stmt: Stmt) -> str:
    text = TEXT.get(ex, {}).get(fn)
    if text:
        return text
    doc = ast.get_docstring(stmt.node) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    return f"## `{fn}`\n\n{first}\n\nThe docstring in the cell below gives the formula and the shapes."


def _quick(ex: str, fn: str, stmt: Stmt) -> str | None:
    entry = QUICK.get(ex, {}).get(fn)
    if entry is None:
        return None
    params, code = entry
    node = stmt.node
    have = {a.arg for a in node.args.args + node.args.kwonlyargs + node.args.posonlyargs}
    if not set(params) <= have:
        print(f"note: {ex}.{fn} has no parameter(s) {sorted(set(params) - have)}; its quick check is left out",
              file=sys.stderr)
        return None
    return code


def _hidden_cell(b: Builder, ex: str, t: SuiteTest) -> None:
    pts = f"{t.points:g} point{'s' if t.points != 1 else ''}"
    slow = " (trains an agent: takes a while)" if t.learning else ""
    src = (f"# Hidden test, {pts}{slow}: {t.function}(): {t.title}\n"
           "### BEGIN HIDDEN TESTS\n"
           + CHECK_CALL.format(module=ex, test=t.name) + "\n"
           "### END HIDDEN TESTS\n")
    b.code(src, t.name, grade=True, locked=True, points=t.points)


def available_exercises() -> list[str]:
    names = [p.name[len("test_"):-3] for p in SUITES.glob("test_ex*_*.py")]
    names = [n for n in names if _module_path(n).is_file()]
    return sorted(names, key=lambda n: (EXERCISE_ORDER.index(n) if n in EXERCISE_ORDER else 99, n))


def _imports_relatively(node: ast.AST) -> bool:
    return any(isinstance(n, ast.ImportFrom) and n.level > 0 for n in ast.walk(node))


def _test_uses(exercise: str, names: set[str]) -> dict[str, set[str]]:
    """For each suite test: the notebook functions it calls (string constants naming them,
    followed through the suite's own helper functions)."""
    path = SUITES / f"test_{exercise}.py"
    tree = ast.parse(path.read_text(), str(path))
    funcs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    out = {}
    for name, node in funcs.items():
        if not name.startswith("test_"):
            continue
        seen, stack, used = set(), [node], set()
        while stack:
            cur = stack.pop()
            if cur.name in seen:
                continue
            seen.add(cur.name)
            for n in ast.walk(cur):
                if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in names:
                    used.add(n.value)
                elif isinstance(n, ast.Name) and n.id in funcs and n.id not in seen:
                    stack.append(funcs[n.id])
        out[name] = used
    return out


@dataclass
class Block:
    names: set[str]
    cells: list  # (kind, args) to emit, in order
    tests: list = field(default_factory=list)


def build(exercise: str):
    """The nbgrader source notebook of ``exercise`` (an nbformat NotebookNode)."""
    stmts = parse_module(_module_path(exercise))
    tests = suite_tests(exercise)
    deps = resolve_dependencies(stmts, exercise)
    text = TEXT.get(exercise, {})
    b = Builder(exercise)

    by_function: dict[str, list[SuiteTest]] = {}
    for t in tests:
        by_function.setdefault(t.function, []).append(t)
    auto_points = sum(t.points for t in tests)
    answers = [s for s in stmts if s.kind == "answer"]
    answer_names = {s.name for s in answers}
    defined = {n for s in stmts if s.kind in ("answer", "given") for n in s.defines}
    dep_names = {s.name for d in deps for s in d.answers + d.given if s.name}

    # ---- title, idea, table of points, how to work
    title = text.get("title", exercise)
    extra = f" + {WRITTEN_POINTS:g} written" if exercise == "ex4_ppo" else ""
    rows = ["| function | you write it | points |", "|---|---|---|"]
    listed = [s.name for s in answers] + [f for f in by_function if f not in answer_names]
    for fn in listed:
        pts = sum(t.points for t in by_function.get(fn, []))
        mine = "yes" if fn in answer_names else "given"
        rows.append(f"| `{fn}` | {mine} | {pts:g} |")
    if exercise == "ex4_ppo":
        rows.append(f"| written answer: why clipping helps | yes | {WRITTEN_POINTS:g} (graded by hand) |")
    b.markdown(f"# {title}\n\n**{auto_points:g} points, graded automatically{extra}.**\n\n"
               + text.get("intro", "").strip() + "\n\n" + "\n".join(rows) + "\n\n" + HOW_TO.strip())

    # ---- setup: imports + device
    head_lines = {ln.strip() for ln in SETUP_HEAD.splitlines()}
    imports = "".join(s.text for s in stmts if s.kind == "import" and s.text.strip() not in head_lines)
    b.code(SETUP_HEAD + "\n" + imports + "\n" + SETUP_TAIL, "setup", locked=True)

    # ---- code from earlier exercises
    for dep in deps:
        names = ", ".join(f"`{s.name}`" for s in dep.answers)
        if dep.answers:
            b.markdown(f"## From an earlier exercise ({dep.module})\n\nThis exercise uses {names} from "
                       f"`{dep.module}`. Paste your own implementation into the answer cell below (only the part "
                       "under `# YOUR CODE HERE` is missing). This cell earns no points here, but the hidden "
                       "tests of this notebook call your code through it, so it must work.")
        helper = "".join(dep.imports)
        if dep.given:
            helper += "\n\n" + "\n\n".join(s.text.rstrip() for s in dep.given) + "\n"
        if helper.strip():
            b.code(f"# Given code from {dep.module} (read-only).\n" + helper, f"given_{dep.module}", locked=True)
        for s in dep.answers:
            b.code(answer_source(s.text), f"{dep.module}_{s.name}", solution=True)

    # ---- the module itself, in source order, as blocks
    blocks: list[Block] = []
    pending: list[Stmt] = []
    given_count = 0

    def flush():
        nonlocal pending, given_count
        if pending:
            given_count += 1
            blocks.append(Block(set().union(*(s.defines for s in pending)),
                                [("given", pending, f"given_{given_count}")]))
            pending = []

    for s in stmts:
        if s.kind in ("future", "import", "relimport", "all", "main"):
            continue
        if s.kind == "given" and not (s.name and s.name in by_function):
            if _imports_relatively(s.node):
                # e.g. a helper that loads a sibling module of the kit (ex5's run_toy_rlhf):
                # it cannot run inside a notebook, and nothing in the notebook needs it
                print(f"note: {exercise}.{s.name} imports a sibling module; left out of the notebook",
                      file=sys.stderr)
                continue
            pending.append(s)
            continue
        flush()
        cells = []
        if s.kind == "answer":
            cells.append(("md", _function_text(exercise, s.name, s)))
            cells.append(("answer", s))
        else:  # given code that the suite grades (a training loop that runs the student's functions)
            if s.name in text:
                cells.append(("md", text[s.name]))
            given_count += 1
            cells.append(("given", [s], f"given_{given_count}"))
        quick = _quick(exercise, s.name, s)
        if quick:
            cells.append(("quick", s.name, quick))
        if exercise == "ex4_ppo" and s.name == _written_after(answers):
            cells.append(("written",))
        blocks.append(Block(set(s.defines), cells))
    flush()

    # ---- each hidden test goes after the last block defining a function it calls
    uses = _test_uses(exercise, defined | dep_names)
    homeless = []
    for t in tests:
        need = (uses.get(t.name, set()) | {t.function}) & defined
        where = [i for i, blk in enumerate(blocks) if blk.names & need]
        if t.function in defined and where:
            blocks[max(where)].tests.append(t)
        else:
            homeless.append(t)

    written = False
    for blk in blocks:
        for cell in blk.cells:
            kind = cell[0]
            if kind == "md":
                b.markdown(cell[1])
            elif kind == "answer":
                b.code(answer_source(cell[1].text), cell[1].name, solution=True)
            elif kind == "given":
                b.code("# Given code (read-only).\n\n" + "\n\n".join(x.text.rstrip() for x in cell[1]) + "\n",
                       cell[2], locked=True)
            elif kind == "quick":
                b.code(cell[2], f"quick_{cell[1]}", locked=True)
            elif kind == "written":
                written = True
        for t in blk.tests:
            _hidden_cell(b, exercise, t)
        if any(c[0] == "written" for c in blk.cells):
            _written_answer(b)

    if homeless:
        b.markdown("## Further hidden tests")
        for t in homeless:
            _hidden_cell(b, exercise, t)
    if exercise == "ex4_ppo" and not written:
        _written_answer(b)
    b.markdown("## Before you submit\n\nRun *Kernel → Restart & Run All*. Every cell should run without an "
               "error (the hidden test cells are empty in your copy). Then save the notebook and submit it.")
    missing = [fn for fn in by_function if fn and fn not in defined]
    if missing:
        print(f"note: {exercise}: the suite grades {missing}, which the module does not define", file=sys.stderr)
    return b.notebook()


def _written_after(answers: list[Stmt]) -> str | None:
    names = [s.name for s in answers]
    for candidate in ("clip_active", "clipped_surrogate", "ppo_policy_loss"):
        if candidate in names:
            return candidate
    return None


def _written_answer(b: Builder) -> None:
    t = TEXT["ex4_ppo"]
    b.markdown(t["written"].format(points=WRITTEN_POINTS))
    body = ("### BEGIN SOLUTION\n" + t["rubric"].format(points=WRITTEN_POINTS).strip() + "\n### END SOLUTION\n")
    b.written(body, "clipping_explanation", WRITTEN_POINTS)


def render(exercise: str) -> str:
    nb = build(exercise)
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"


def notebook_path(exercise: str) -> Path:
    return SOURCE / exercise / f"{exercise}.ipynb"


# ====================================================================== from notebooks back to modules
def extract_module(nb, exercise: str | None = None) -> str:
    """A student's notebook as a plain module for ``make grade``: their answer cells, the trusted rest.

    Locked cells are taken from the generator (never from the student's file);
    answer cells (``solution`` cells with a ``grade_id`` the generator knows)
    from the student's notebook. Hidden tests, quick checks and the setup
    cell's notebook-only lines are left out; relative imports become the
    pasted code, so the module stands alone like the notebook.
    """
    exercise = exercise or _exercise_of(nb)
    ref = build(exercise)
    student = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "code" and meta.get("solution") and meta.get("grade_id"):
            student.setdefault(meta["grade_id"], cell.get("source", ""))
    parts = ["# Extracted from a submitted notebook by tools/make_notebooks.py --extract\n"]
    for cell in ref.cells:
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id", "")
        if cell.cell_type != "code" or meta.get("grade") or gid.startswith("quick_"):
            continue
        if gid == "setup":
            stmts = parse_module(_module_path(exercise))
            parts.append("from __future__ import annotations\n\nimport math\nimport os\nimport sys\n\n"
                         + "".join(s.text for s in stmts if s.kind == "import"))
            continue
        if meta.get("solution"):
            parts.append(student.get(gid, "raise NotImplementedError('this cell is missing from the notebook')\n"))
        else:
            parts.append(cell.source)
    return "\n\n".join(p.rstrip() + "\n" for p in parts)


def missing_graded_cells(nb, exercise: str) -> list[str]:
    """grade_ids of the graded cells (hidden tests, the written answer) of ``exercise``'s
    notebook that ``nb`` (a submission) does not have, in notebook order."""
    have = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells}
    return [c.metadata["nbgrader"]["grade_id"] for c in build(exercise).cells
            if c.metadata.get("nbgrader", {}).get("grade") and c.metadata["nbgrader"]["grade_id"] not in have]


def _exercise_of(nb) -> str:
    ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in nb.cells}
    for ex in available_exercises():
        if {t.name for t in suite_tests(ex)} & ids:
            return ex
    raise NotebookError("cannot tell which exercise this notebook is")


# ====================================================================== the student bundle
STUDENT_README = """\
# RL Fundamentals for LLMs: exercises

One Jupyter notebook per exercise, `common/` (shared helpers the notebooks import: devices,
environments, networks, rollouts) and `selfcheck.py`. Keep `common/` next to the exercise
folders: each notebook finds it in the folder above its own.

## Install

    python -m venv .venv && . .venv/bin/activate
    # torch first, pinned. On Linux without an NVIDIA GPU take the CPU build: a 190 MB
    # download, where the default Linux build pulls several GB of CUDA libraries.
    pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
    # Linux with an NVIDIA GPU, macOS and Windows: pip install "torch==2.13.0"
    pip install -r requirements.txt
    jupyter lab                          # open ex1_values/ex1_values.ipynb

## Work

Work through the notebooks in order. Write your code in the answer cells and run the quick
check below each one. Later notebooks ask you to paste functions from earlier ones. The cells
marked "hidden test" are empty here; your instructor runs them when grading. A notebook uses
CUDA when it is available; start Jupyter with RLKIT_DEVICE=cpu to force the CPU.

## Check before you submit

    python -m selfcheck ex1_values       # one exercise; with no argument, every notebook

runs the notebook from top to bottom in a fresh kernel, as the grader does, and lists every
quick check as `ok` or `FAIL`, and every other cell that raised an error. Your file is not
changed. (In Jupyter, *Kernel > Restart Kernel and Run All Cells* does the same by hand.)
Passing every quick check is a good sign, not a guarantee of points: the hidden tests try
many more inputs. Then submit each notebook, unrenamed, the way your instructor asks.
"""

STUDENT_REQUIREMENTS = """\
# torch: install it first, pinned (see README.md)
gymnasium==1.2.2
numpy>=1.26,<3
matplotlib>=3.8
tqdm>=4.66
jupyterlab
# selfcheck.py runs a notebook in a fresh kernel
nbclient>=0.10
nbformat>=5.9
ipykernel
"""

SELFCHECK = '''\
"""Run an exercise notebook from top to bottom in a fresh kernel and report its quick checks.

    python -m selfcheck                  # every notebook of the exercise folders here
    python -m selfcheck ex1_values       # one exercise (a folder name or a path to the .ipynb)

The notebook runs as the grader runs it: a new kernel, every cell in order. Your file is not
changed. The hidden tests are empty in your copy, so passing every quick check is a good
sign, not a guarantee of points. Exit status: 0 when every cell ran, 1 otherwise.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMEOUT = 600  # seconds per cell


def notebooks(names: list[str]) -> list[Path]:
    if not names:
        return sorted(p for p in HERE.glob("ex*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    found = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            path = path / f"{path.name}.ipynb"
        elif not path.suffix:
            path = HERE / name / f"{name}.ipynb"
        if not path.is_file():
            raise SystemExit(f"no notebook {path}")
        found.append(path)
    return found


def _first_line(text: str) -> str:
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return lines[0][:200] if lines else ""


def check(path: Path, timeout: int = TIMEOUT) -> int:
    """Run one notebook; print one line per quick check and per failing cell; return the failures."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    print(f"{path.name}: running every cell in a fresh kernel ...", flush=True)
    client.execute()
    failures = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        gid = str(meta.get("grade_id") or f"cell {index}")
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if meta.get("grade") and not meta.get("solution"):
            continue  # a hidden test: empty in your copy
        what = f"quick check of {gid[len('quick_'):]}()" if gid.startswith("quick_") else f"cell {gid}"
        if errors:
            failures += 1
            err = errors[0]
            detail = f"{err.get('ename', 'Error')}: {_first_line(err.get('evalue', ''))}".rstrip(": ")
            if err.get("ename") == "NotImplementedError":
                detail = "not implemented yet (NotImplementedError)"
            print(f"  FAIL  {what}: {detail}")
        elif gid.startswith("quick_"):
            print(f"  ok    {what}")
    print(f"{path.name}: " + ("every cell ran" if not failures else f"{failures} cell(s) failed") + "\\n")
    return failures


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m selfcheck", description=__doc__.splitlines()[0])
    p.add_argument("notebook", nargs="*", help="exercise folder name or .ipynb path (default: all)")
    p.add_argument("--timeout", type=int, default=TIMEOUT, help="seconds per cell")
    args = p.parse_args(argv)
    paths = notebooks(args.notebook)
    if not paths:
        raise SystemExit("no exercise notebooks found next to selfcheck.py")
    failed = sum(check(path, args.timeout) > 0 for path in paths)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
'''


def write_common_zip(folder: Path) -> Path:
    """``folder/rlkit_common.zip``: common/ as one file, which a notebook's setup cell puts on
    ``sys.path`` when it finds no common/ folder (a notebook fetched from the exchange)."""
    import zipfile

    out = folder / COMMON_ZIP
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted((ROOT / "common").glob("*.py")):
            info = zipfile.ZipInfo(f"common/{f.name}", (2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, f.read_bytes())
    return out


def add_common_zips(release: Path) -> list[Path]:
    """One rlkit_common.zip in every exercise folder of nbgrader's release/ (before release_assignment)."""
    folders = sorted(p.parent for p in release.glob("*/*.ipynb"))
    if not folders:
        raise NotebookError(f"no released notebooks in {release}; run nbgrader generate_assignment first")
    return [write_common_zip(f) for f in folders]


def _strip_line(line: str) -> str:
    return line.strip()


def _substantive(line: str) -> bool:
    """A region line worth protecting: not a TODO (kept on purpose), not short boilerplate
    (``break``, ``loss.backward()``, ``import os``) that appears in any code."""
    return bool(line) and not TODO.match(line) and len(line) >= 16 and not line.startswith(("import ", "from "))


def _public_lines() -> set[str]:
    """Lines students may see anyway: everything outside the solution regions of every module
    in solutions/ (given code, docstrings, validation) and the visible quick checks."""
    public = set()
    for path in sorted(SOLUTIONS.glob("*.py")):
        inside = False
        for line in path.read_text().splitlines():
            if BEGIN.match(line):
                inside = True
            elif END.match(line):
                inside = False
            elif not inside:
                public.add(_strip_line(line))
    for checks in QUICK.values():
        for _params, code in checks.values():
            public |= {_strip_line(x) for x in code.splitlines()}
    return public


def secret_lines(exercises: list[str] | None = None) -> dict[str, set[str]]:
    """Per exercise: every substantive line of a solution region that is not public anyway
    (a line such as ``optimizer.step()`` also appears in given code and gives nothing away)."""
    public = _public_lines()
    out = {}
    for ex in exercises or available_exercises():
        text = _module_path(ex).read_text()
        inside = {_strip_line(x) for region in solution_regions(text) for x in region}
        out[ex] = {x for x in inside - public if _substantive(x)}
    return out


def leaks(text: str, secrets: dict[str, set[str]] | None = None, markers: bool = True) -> list[str]:
    """What in ``text`` (a released notebook, a bundle file) must not reach students: the region
    and hidden-test markers and the hidden check calls (``markers``), and any secret line."""
    found = []
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
                   "autograder.notebook import check", "from solutions", "import solutions"):
        if markers and marker in text:
            found.append(marker)
    lines = {_strip_line(x) for x in text.splitlines()}
    # notebooks are JSON: compare the decoded cell sources too
    try:
        nb = json.loads(text)
        for cell in nb.get("cells", []):
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else src
            lines |= {_strip_line(x) for x in src.splitlines()}
    except (ValueError, AttributeError):
        pass
    for ex, secret in (secrets if secrets is not None else secret_lines()).items():
        for line in sorted(secret & lines):
            found.append(f"{ex}: {line}")
    return found


def make_bundle(release: Path, out: Path) -> Path:
    """build/student_bundle/: the released notebooks, common/, a README; and the same as a .zip."""
    import shutil

    notebooks = sorted(release.glob("*/*.ipynb"))
    if not notebooks:
        raise NotebookError(f"no released notebooks in {release}; run nbgrader generate_assignment first")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for nb in notebooks:
        dest = out / nb.parent.name / nb.name
        dest.parent.mkdir(exist_ok=True)
        shutil.copyfile(nb, dest)
    shutil.copytree(ROOT / "common", out / "common", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (out / "README.md").write_text(STUDENT_README)
    (out / "requirements.txt").write_text(STUDENT_REQUIREMENTS)
    (out / "selfcheck.py").write_text(SELFCHECK)
    secrets = secret_lines()
    problems = []
    for f in sorted(out.rglob("*")):
        if f.is_file():
            bad = leaks(f.read_text(errors="replace"), secrets)
            problems += [f"{f.relative_to(out)}: {b}" for b in bad]
    if problems:
        raise NotebookError("the student bundle would leak solution text:\n  " + "\n  ".join(problems[:20]))
    archive = shutil.make_archive(str(out), "zip", root_dir=out.parent, base_dir=out.name)
    return Path(archive)


# ====================================================================== isolated grading of submissions
def grade_submitted(submitted: Path, out: Path, device: str = "cpu", gradebook: Path | None = None,
                    exercises: list[str] | None = None, students: list[str] | None = None) -> list[dict]:
    """Every submitted notebook through ``make grade``'s sandbox (the isolated grade).

    ``submitted/<student>/<exercise>/<exercise>.ipynb`` becomes
    ``out/modules/<student>/<exercise>.py`` (see :func:`extract_module`), graded by
    ``autograder.runner.grade``. Writes ``out/isolated_grades.csv``; when nbgrader's
    gradebook is given, adds its automatic score and flags every difference.
    """
    import csv

    from autograder.runner import grade

    rows = []
    notes: dict[tuple[str, str], str] = {}
    known = set(exercises or available_exercises())
    for student_dir in sorted(p for p in submitted.iterdir() if p.is_dir()):
        student = student_dir.name
        if students is not None and student not in students:
            continue
        mod_dir = out / "modules" / student
        mod_dir.mkdir(parents=True, exist_ok=True)
        exercises = []
        for ex_dir in sorted(p for p in student_dir.iterdir() if p.is_dir() and p.name in known):
            nb_path = ex_dir / f"{ex_dir.name}.ipynb"
            if not nb_path.is_file():
                continue
            try:
                nb = nbformat.read(nb_path, as_version=4)
                (mod_dir / f"{ex_dir.name}.py").write_text(extract_module(nb, ex_dir.name))
            except Exception as exc:  # an unreadable notebook scores zero, with the reason
                rows.append({"student": student, "exercise": ex_dir.name, "isolated": 0.0, "max": None,
                             "nbgrader": None, "note": f"could not read the notebook: {exc}"})
                continue
            exercises.append(ex_dir.name)
            gone = missing_graded_cells(nb, ex_dir.name)
            if gone:
                notes[(student, ex_dir.name)] = (f"graded cell(s) missing from the submitted notebook: {', '.join(gone)} "
                                                 "(autograde puts them back and grades them)")
        if not exercises:
            continue
        report = grade(mod_dir, exercises=exercises, device=device)
        for ex in report["exercises"]:
            rows.append({"student": student, "exercise": ex["name"], "isolated": ex["score"],
                         "max": ex["max_score"], "nbgrader": None, "note": notes.get((student, ex["name"]), "")})
    if gradebook is not None and gradebook.is_file():
        from nbgrader.api import Gradebook, MissingEntry

        with Gradebook(f"sqlite:///{gradebook}") as gb:
            for r in rows:
                try:
                    sub = gb.find_submission(r["exercise"], r["student"])
                except MissingEntry:
                    continue
                r["nbgrader"] = round(float(sub.code_score), 4)
                if abs(r["nbgrader"] - float(r["isolated"])) > 1e-6:
                    r["note"] = (r["note"] + " " if r["note"] else "") + "MISMATCH: check this submission"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "isolated_grades.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["student", "exercise", "isolated", "max", "nbgrader", "note"])
        w.writeheader()
        w.writerows(rows)
    return rows


# ====================================================================== command line
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="report drift instead of writing")
    p.add_argument("--list", action="store_true", help="list exercises, functions and points")
    p.add_argument("--extract", nargs="+", metavar="NOTEBOOK", help="turn submitted notebooks into modules")
    p.add_argument("--out", type=Path, help="output folder for --extract, --bundle and --grade-submitted")
    p.add_argument("--bundle", type=Path, metavar="RELEASE", help="build the student bundle from nbgrader's release/")
    p.add_argument("--grade-submitted", type=Path, metavar="SUBMITTED",
                   help="grade nbgrader's submitted/ folder with make grade's sandbox")
    p.add_argument("--common-zip", type=Path, metavar="RELEASE",
                   help="write rlkit_common.zip (common/) into every exercise folder of nbgrader's release/")
    p.add_argument("--device", default="cpu", help="grading device for --grade-submitted")
    p.add_argument("--exercise", action="append", help="only this exercise (repeatable) for --grade-submitted")
    p.add_argument("--student", action="append", help="only this student (repeatable) for --grade-submitted")
    args = p.parse_args(argv)

    if args.common_zip:
        for path in add_common_zips(args.common_zip):
            print(f"wrote {path}")
        return 0
    if args.bundle:
        archive = make_bundle(args.bundle, args.out or ROOT / "build" / "student_bundle")
        print(f"student bundle: {archive.with_suffix('')}/ and {archive}")
        return 0
    if args.grade_submitted:
        out = args.out or ROOT / "build" / "notebook_grades"
        rows = grade_submitted(args.grade_submitted, out, device=args.device,
                               gradebook=args.grade_submitted.parent / "gradebook.db",
                               exercises=args.exercise, students=args.student)
        for r in rows:
            nbg = "" if r["nbgrader"] is None else f"   nbgrader {r['nbgrader']:g}"
            print(f"{r['student']:20s} {r['exercise']:15s} isolated {r['isolated']:g}/{r['max']}{nbg}  {r['note']}")
        print(f"wrote {out / 'isolated_grades.csv'}")
        return 1 if any("MISMATCH" in r["note"] for r in rows) else 0

    if args.extract:
        if not args.out:
            p.error("--extract needs --out DIR")
        args.out.mkdir(parents=True, exist_ok=True)
        for path in args.extract:
            nb = nbformat.read(path, as_version=4)
            ex = _exercise_of(nb)
            (args.out / f"{ex}.py").write_text(extract_module(nb, ex))
            print(f"{path} -> {args.out / (ex + '.py')}")
        return 0

    exercises = available_exercises()
    if args.list:
        for ex in exercises:
            tests = suite_tests(ex)
            print(f"{ex}: {sum(t.points for t in tests):g} points, {len(tests)} hidden tests")
            funcs: dict[str, float] = {}
            for t in tests:
                funcs[t.function] = funcs.get(t.function, 0) + t.points
            for fn, pts in funcs.items():
                print(f"  {fn:28s} {pts:g}")
        return 0

    rendered, failed = {}, []
    for ex in exercises:
        try:
            rendered[ex] = render(ex)
        except NotebookError as exc:
            print(f"cannot build the notebook of {ex}: {exc}", file=sys.stderr)
            failed.append(ex)
    stale = sorted(p.parent.name for p in SOURCE.glob("*/*.ipynb")
                   if p.parent.name not in rendered and p.parent.name not in exercises)
    if args.check:
        drift = [ex for ex, text in rendered.items()
                 if not notebook_path(ex).is_file() or notebook_path(ex).read_text() != text]
        if drift or stale:
            print("course/source/ is out of date; run `make notebooks`:", ", ".join(drift + stale))
            return 1
        print(f"course/source/ matches the generator ({len(rendered)} notebooks)")
        return 1 if failed else 0
    for ex in stale:
        notebook_path(ex).unlink()
        print(f"removed {notebook_path(ex).relative_to(ROOT)} (its suite is gone)")
    for ex, text in rendered.items():
        path = notebook_path(ex)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    print(f"{len(rendered)} notebooks in {SOURCE.relative_to(ROOT)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
