"""The chapter's scripts run end to end on tiny budgets, and the benchmark's protocol arithmetic is right."""
from __future__ import annotations

import json
import math

import pytest
import torch

from scripts import bench
from scripts.bench import EvalPoint, Evaluator, first_hit, median_or_inf, stable_from

from conftest import ROOT


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    # the scripts set one torch thread for themselves; leave the test process as it was
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_gae_visualizer_writes_its_plots(tmp_path, capsys):
    from demos import gae_visualizer

    rc = gae_visualizer.main(["--impl", "solutions", "--episodes", "12", "--fit-steps", "20", "--states", "3",
                              "--rollouts", "6", "--truth-rollouts", "6", "--horizon", "60", "--out-dir", str(tmp_path)])
    assert rc == 0
    for name in ("gae_td_errors.png", "gae_advantages.png", "gae_bias_variance.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    data = json.loads((tmp_path / "gae_bias_variance.json").read_text())
    lambdas = [r["lambda"] for r in data["rows"]]
    assert {0.0, 0.5, 0.9, 0.95, 1.0} <= set(lambdas)
    assert all(r["variance"] >= 0 for r in data["rows"])
    # one trajectory: the discounted sum of the TD errors telescopes to G_0 - V(s_0)
    line = next(x for x in capsys.readouterr().out.splitlines() if "sum_t gamma^t delta_t" in x)
    lhs, rhs = (float(part.split("=")[-1]) for part in line.split("= G_0 - V(s_0)"))
    assert lhs == pytest.approx(rhs, abs=0.02)


def test_ppo_cartpole_writes_png_and_json(tmp_path, capsys):
    from demos import ppo_cartpole

    out = tmp_path / "ppo"
    rc = ppo_cartpole.main(["--impl", "solutions", "--total-steps", "2048", "--eval-episodes", "2",
                            "--final-episodes", "3", "--out", str(out)])
    assert rc == 0
    assert out.with_suffix(".png").stat().st_size > 10_000
    log = json.loads(out.with_suffix(".json").read_text())
    assert log["updates"] and log["updates"][-1]["steps"] <= 2048 + 1024
    for key in ("steps", "return", "v_loss", "approx_kl", "clip", "expl_var", "sps"):
        assert key in log["updates"][0]
    assert len(log["final_eval"]["returns"]) == 3
    text = capsys.readouterr().out
    assert "approx_kl" in text and "final greedy evaluation" in text


DEMOS = ("ppo_cartpole", "gae_visualizer", "rlhf_pipeline")


@pytest.mark.parametrize("name", DEMOS)
def test_each_demo_has_one_copy_and_picks_the_implementation_with_impl(name, capsys):
    """demos/ holds the only copy; --impl (default assignments) picks the exercise functions."""
    import importlib

    assert not (ROOT / "solutions" / f"{name}.py").exists() and not (ROOT / "assignments" / f"{name}.py").exists()
    demo = importlib.import_module(f"demos.{name}")
    assert "--impl" in demo.__doc__
    with pytest.raises(SystemExit) as exit_:
        demo.main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help
    assert "--impl {assignments,solutions}" in text and "assignments (yours, the default)" in text


def test_demos_pick_the_exercise_module_of_the_named_implementation():
    import demos
    from assignments import ex4_ppo as stub
    from solutions import ex4_ppo as ref

    assert demos.impl_from_argv([]) == "assignments"
    assert demos.impl_from_argv(["--seed", "3", "--impl", "solutions"]) == "solutions"
    assert demos.exercise("assignments", "ex4_ppo") is stub and demos.exercise("solutions", "ex4_ppo") is ref
    with pytest.raises(ValueError):
        demos.exercise("autograder", "ex4_ppo")


def test_the_rlhf_pipeline_imports_no_exercise_module_and_calls_only_the_ops_it_is_given():
    """ex5's hidden test drives it with every function in ops: nothing of assignments/ or solutions/ loads."""
    import subprocess
    import sys

    code = ("import sys; from demos import rlhf_pipeline as rp; from types import SimpleNamespace as NS\n"
            "ops = rp._resolve_ops(NS(**{n: print for n in rp.OPS}), None)\n"
            "assert all(getattr(ops, n) is print for n in rp.OPS)\n"
            "try:\n    rp._resolve_ops(NS(kl_penalty=print), None)\nexcept TypeError: pass\n"
            "else:\n    raise SystemExit('a partial ops without impl was accepted')\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('assignments', 'solutions'))\n"
            "assert not loaded, loaded\n"
            "assert rp.default_ops('solutions').ppo_policy_loss.__module__ == 'solutions.ex4_ppo'\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


# ------------------------------------------------------------------ the benchmark's protocol


def points(means, every=2048, seconds_per_step=1e-3):
    return [EvalPoint(steps=every * (i + 1), seconds=every * (i + 1) * seconds_per_step, mean=m)
            for i, m in enumerate(means)]


@pytest.mark.parametrize("means, first, stable", [
    ([100, 300, 480, 500, 500], 3, 3),  # reaches 475 and stays
    ([100, 480, 200, 475, 500], 2, 4),  # a lucky first hit, then a dip: stable only from the 4th
    ([480, 500, 470], 1, None),  # ends below the threshold: never stable
    ([10, 20, 30], None, None),  # never reaches it
    ([475], 1, 1),  # exactly the threshold counts
    ([500, 500, 500], 1, 1),
    ([], None, None),
])
def test_first_hit_and_stable_from(means, first, stable):
    ps = points(means)
    hit, st = first_hit(ps, 475), stable_from(ps, 475)
    assert (None if hit is None else ps.index(hit) + 1) == first
    assert (None if st is None else ps.index(st) + 1) == stable
    if st is not None:
        assert hit is not None and hit.steps <= st.steps
        assert all(p.mean >= 475 for p in ps if p.steps >= st.steps)


def test_median_counts_never_as_worst():
    assert median_or_inf([3, None, 1]) == 3
    assert median_or_inf([None, None, 1]) == math.inf
    assert median_or_inf([4, 2]) == 3
    assert math.isnan(median_or_inf([]))


def test_evaluator_schedule_and_untimed_evaluations(monkeypatch):
    """Evaluations at each multiple of `every` reached (also when steps jump past one), the final one
    only if that step count was not just evaluated, and their time excluded from the training time."""
    calls = []

    def fake_eval(policy, env_id, episodes, seed, greedy):
        calls.append(seed)
        import time
        time.sleep(0.2)
        return [500.0] * episodes

    monkeypatch.setattr(bench, "evaluate_policy", fake_eval)
    ev = Evaluator(every=2048, episodes=2)
    ev.start()
    for steps in (1024, 2048, 3072, 4096, 5120, 7168):  # 5120 -> no eval (next is 6144); 7168 passes 6144
        ev.maybe_evaluate(steps, policy=None)
    assert [p.steps for p in ev.points] == [2048, 4096, 7168]
    mean, seconds = ev.final(7168, policy=None)  # already evaluated at this step count: reused
    assert len(ev.points) == 3 and mean == 500.0
    ev.final(8000, policy=None)
    assert [p.steps for p in ev.points] == [2048, 4096, 7168, 8000]
    assert len(set(calls)) == len(calls)  # each evaluation has its own environment seeds
    assert ev.eval_seconds >= 4 * 0.2
    assert all(p.seconds < 0.15 for p in ev.points)  # no training happened: only evaluation time passed


def test_summarize_run_and_report():
    ev = Evaluator(every=2048, episodes=1)
    ev.points = points([100, 480, 300, 490, 500], seconds_per_step=1e-4)
    r = bench.summarize_run("kit", 0, ev, steps=10240, seconds=1.0, final_mean=500.0, threshold=475)
    assert (r.first_steps, r.stable_steps) == (4096, 8192)
    assert r.steps_per_second == 10240
    ev2 = Evaluator(every=2048, episodes=1)
    ev2.points = points([100, 200, 476, 480], seconds_per_step=1e-3)
    r2 = bench.summarize_run("sb3", 0, ev2, steps=8192, seconds=8.0, final_mean=480.0, threshold=475)
    meta = {"date": "d", "machine": "m", "torch": "t", "threads": 1, "sb3": "s", "gymnasium": "g",
            "load_before": "0", "load_after": "0", "eval_episodes": 20, "eval_every": 2048, "steps": 100_000}
    text, summary = bench.report([r, r2], meta, 475)
    assert summary["ratios"]["median_stable_steps"] == pytest.approx(8192 / 6144)
    assert summary["ratios"]["median_stable_seconds"] == pytest.approx((8192 * 1e-4) / (6144 * 1e-3))
    assert "| kit | 0 | 4096 |" in text
    json.dumps(bench.finite_or_none(summary), allow_nan=False)


def test_kit_override_parsing():
    assert bench.parse_override("target_return=None") == ("target_return", None)
    assert bench.parse_override(" lr = 1e-3 ") == ("lr", 1e-3)
    assert bench.parse_override("hidden=(32, 32)") == ("hidden", (32, 32))
    for bad in ("lr", "=3", "lr=adam"):
        with pytest.raises(Exception):
            bench.parse_override(bad)


def test_scripts_are_wired_into_the_makefile():
    makefile = (ROOT / "Makefile").read_text()
    for target, module in (("ppo", "demos.ppo_cartpole"), ("gae", "demos.gae_visualizer"),
                           ("rlhf", "demos.rlhf_pipeline"), ("curves", "scripts.curves"), ("seeds", "scripts.seeds"),
                           ("bench", "scripts.bench"),
                           ("grade-bench", "scripts.grade_bench")):
        assert f"\n{target}:" in makefile and f"-m {module}" in makefile, target


def test_grade_bench_names_the_slowest_checks_from_the_report_timing():
    from scripts import grade_bench

    ex = {"tests": [{"id": "test_a", "seconds": 0.2}, {"id": "test_learns", "seconds": 4.25},
                    {"id": "test_b", "seconds": 1.0}]}
    assert grade_bench.slowest(ex) == "learns 4.2, b 1.0"


def test_every_graded_check_reports_its_seconds_and_each_exercise_its_breakdown(tmp_path):
    """The numbers make grade-bench's breakdown: per check, and per exercise (pytest, setup, checks)."""
    from autograder.runner import grade

    report = grade(ROOT / "solutions", ["ex1_values"])
    (ex,) = report["exercises"]
    assert all(isinstance(t["seconds"], float) and t["seconds"] >= 0 for t in ex["tests"])
    timing = ex["timing"]
    assert set(timing) == {"pytest", "setup", "checks"}
    assert 0 < timing["checks"] <= timing["pytest"] <= ex["seconds"]
    assert 0 <= timing["setup"] <= timing["pytest"]


def test_make_seeds_covers_every_suite_with_a_learning_test():
    """Each learning test is stochastic; make seeds must show its margin on 20 other seeds."""
    import ast

    from scripts.seeds import CHECKS

    covered = {check.suite.rsplit(".", 1)[1] for check in CHECKS.values()}
    for path in sorted((ROOT / "autograder" / "suites").glob("test_ex*.py")):
        tree = ast.parse(path.read_text())
        learning = [f.name for f in tree.body if isinstance(f, ast.FunctionDef)
                    and any(isinstance(d, ast.Attribute) and d.attr == "learning" for d in f.decorator_list)]
        if learning:
            assert path.stem in covered, (path.name, learning)


def test_the_early_stopping_check_gives_up_early_with_the_same_answer(monkeypatch):
    """is_solved stops at the first episode that ends below the target: same verdict as the full
    evaluation for every target, and fewer environment steps when the answer is no."""
    import torch

    from common import rollout
    from common.networks import PolicyNet

    steps = {"n": 0}
    real = rollout.make_vec_env

    def counting(*args, **kwargs):
        envs = real(*args, **kwargs)
        step = envs.step

        def counted(actions):
            steps["n"] += 1
            return step(actions)

        envs.step = counted
        return envs

    monkeypatch.setattr(rollout, "make_vec_env", counting)
    saved = []
    for k in range(6):
        torch.manual_seed(k)
        policy = PolicyNet(4, 2, hidden=(16,))
        with torch.no_grad():
            for p in policy.parameters():
                p.mul_(3.0)
        steps["n"] = 0
        returns = rollout.evaluate_policy(policy, "CartPole-v1", 8, seed=k, greedy=True)
        full = steps["n"]
        for target in (10.0, min(returns), max(returns), 475.0):
            steps["n"] = 0
            assert rollout.is_solved(policy, "CartPole-v1", target, 8, seed=k) == (min(returns) >= target)
            assert steps["n"] <= full
            if min(returns) < target:
                saved.append(full - steps["n"])
    assert max(saved) > 0


def test_toy_rlhf_runs_in_threads_give_the_numbers_they_give_in_turn():
    """ex5's suite runs its two toy-RLHF runs in two threads (test_ex5_rlhf._toy_runs): each run
    draws from its own generator, so the numbers do not depend on how the threads interleave."""
    import threading

    from demos import rlhf_pipeline as rp

    stages = rp.load_stages(ROOT / "autograder" / "recorded" / "stages" / "rlhf.npz", rp.RLHFConfig(),
                            torch.device("cpu"))
    ops = rp.default_ops("solutions")

    def run(beta):
        return rp.run_toy_rlhf(beta, seed=0, updates=4, device="cpu", ops=ops, stages=dict(stages))

    in_turn = {beta: run(beta) for beta in (0.2, 0.0)}
    together: dict = {}
    threads = [threading.Thread(target=lambda b=b: together.__setitem__(b, run(b))) for b in (0.0, 0.2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert together == in_turn
    assert in_turn[0.2]["kl_curve"] != in_turn[0.0]["kl_curve"]  # (two different runs)


def test_the_toy_rlhf_check_fails_rewards_that_ignore_beta():
    """ex5's learning check (the suite's own budget and verdict) tells the reference apart from an
    rlhf_rewards without the KL penalty, whose penalised run then drifts as far as the free one."""
    from types import SimpleNamespace

    from autograder.suites import test_ex5_rlhf as suite
    from demos import rlhf_pipeline as rp

    stages = rp.load_stages(suite.RLHF_STAGES, rp.RLHFConfig(), torch.device("cpu"))
    good = rp.default_ops("solutions")
    no_beta = SimpleNamespace(**{n: getattr(good, n) for n in ("preference_loss", "kl_penalty", "token_advantages",
                                                                 "ppo_policy_loss")},
                              rlhf_rewards=lambda s, lp, rl, m, beta: good.rlhf_rewards(s, lp, rl, m, 0.0))

    def verdict(ops):
        kl_run, free = (rp.run_toy_rlhf(beta, seed=suite.RLHF_SEED, updates=suite.RLHF_UPDATES, device="cpu",
                                        ops=ops, stages=dict(stages)) for beta in (suite.RLHF_BETA, 0.0))
        return suite.rlhf_verdict(kl_run, free)

    assert verdict(good) is None
    assert "the penalty is not holding the policy near the reference" in verdict(no_beta)


def test_grade_bench_interleaves_the_baselines_runs_with_this_kits(monkeypatch, tmp_path):
    """--baseline: every measurement alternates between the two kits, so both see the same minutes."""
    from scripts import grade_bench

    calls = []

    def fake_grade(extra, kit):
        calls.append((tuple(extra), kit))
        name = extra[1] if extra else None
        exercises = [{"name": name, "timing": {"pytest": 1.0, "setup": 0.2, "checks": 0.5},
                      "tests": [{"id": "test_x", "seconds": 0.5}]}] if name else []
        return (2.0 if kit == grade_bench.ROOT else 3.0), {"exercises": exercises}

    monkeypatch.setattr(grade_bench, "timed_grade", fake_grade)
    monkeypatch.setattr(grade_bench, "bench_batch", lambda n, kit: (6.0 if kit == grade_bench.ROOT else 4.0, "strict"))
    base = tmp_path / "base"
    (base / "autograder").mkdir(parents=True)
    out = tmp_path / "gb.md"
    assert grade_bench.main(["--repeats", "2", "--batch", "3", "--baseline", str(base), "--out", str(out)]) == 0
    kits = [kit for _, kit in calls]
    assert kits == [grade_bench.ROOT, base.resolve()] * (len(calls) // 2)  # strictly alternating
    assert calls[0][0] == () and calls[2][0] == ()  # the full grades first, twice each
    text = out.read_text()
    assert "| full grade | 3.0 | 2.0 |" in text and "| batch, strict, per minute | 4.0 | 6.0 |" in text
